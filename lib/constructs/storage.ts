import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  StorageClass,
  type BucketProps,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeNag } from './nag';

export interface StorageProps {
  /** Encrypts every bucket but the access-log bucket (S3 server access logs take SSE-S3 only). */
  readonly key: IKey;
  /** Days before archived files move to Glacier Flexible Retrieval. */
  readonly archiveTransitionDays: number;
  /** Days before a replaced or deleted archive version is removed. */
  readonly archiveNoncurrentExpiryDays: number;
  /** Days a raw file may stay in the landing and failed buckets (GDPR). */
  readonly rawRetentionDays: number;
}

/**
 * The buckets: landing (partners' uploads; EventBridge notifications on), archive (processed files and
 * reports under `reports/`), failed (quarantined files), and the server access logs of all three. Every one
 * blocks public access, refuses plain HTTP and is versioned; data is retained when the stack is deleted.
 */
export class Storage extends Construct {
  public readonly landingBucket: Bucket;
  public readonly archiveBucket: Bucket;
  public readonly failedBucket: Bucket;
  public readonly accessLogsBucket: Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const safe: BucketProps = {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.accessLogsBucket = new Bucket(this, 'AccessLogs', {
      ...safe,
      versioned: false,
      encryption: BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
    });
    acknowledgeNag(this.accessLogsBucket, {
      'AwsSolutions-S1': 'This is the access-log bucket; logging it into itself would loop.',
    });
    const encrypted = (prefix: string): BucketProps => ({
      ...safe,
      encryption: BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: `${prefix}/`,
    });
    const abortUploads = { abortIncompleteMultipartUploadAfter: Duration.days(1) };

    this.landingBucket = new Bucket(this, 'Landing', {
      ...encrypted('landing'),
      // Object Created events go to EventBridge (multipart uploads included), where the workflow's rule is.
      eventBridgeEnabled: true,
      lifecycleRules: [
        { ...abortUploads, expiration: Duration.days(props.rawRetentionDays) },
        { noncurrentVersionExpiration: Duration.days(1) },
      ],
    });
    this.archiveBucket = new Bucket(this, 'Archive', {
      ...encrypted('archive'),
      lifecycleRules: [
        {
          ...abortUploads,
          transitions: [
            { storageClass: StorageClass.GLACIER, transitionAfter: Duration.days(props.archiveTransitionDays) },
          ],
          noncurrentVersionExpiration: Duration.days(props.archiveNoncurrentExpiryDays),
        },
        // The text a finalise slice carries to the next (finalise/<sha256>/...): removed by finalise itself; what
        // a failed file leaves goes after a week, not to Glacier.
        { prefix: 'finalise/', expiration: Duration.days(7), noncurrentVersionExpiration: Duration.days(1) },
      ],
    });
    this.failedBucket = new Bucket(this, 'Failed', {
      ...encrypted('failed'),
      lifecycleRules: [
        {
          ...abortUploads,
          expiration: Duration.days(props.rawRetentionDays),
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
    });
  }
}
