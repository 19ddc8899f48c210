import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { AppConfig } from '../config';
import { CallQueue } from '../constructs/call-queue';
import { PipelineTables } from '../constructs/pipeline-tables';
import { LandingZone } from '../constructs/landing-zone';
import { acknowledgeNag } from '../constructs/nag';
import { Storage } from '../constructs/storage';

export interface StatefulStackProps extends StackProps {
  readonly config: AppConfig;
}

/**
 * What holds data: the KMS key, the buckets, the tables, the call queue and its DLQ, the CRM token secret and
 * the SFTP server with its users. Termination protection on; data is retained if the stack is deleted.
 */
export class StatefulStack extends Stack {
  public readonly key: Key;
  public readonly storage: Storage;
  public readonly registry: PipelineTables;
  public readonly calls: CallQueue;
  public readonly landingZone: LandingZone;
  public readonly crmToken: Secret;
  /** The credentials' secret of each polled source, by source name (made here unless the source names one). */
  public readonly sourceSecrets: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, { terminationProtection: true, ...props });
    const { settings, deployment } = props.config;
    this.key = new Key(this, 'DataKey', {
      description: 'Partner files, ledger, queue, secret and logs of the CRM ingestion',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts the pipeline's log groups with this key.
    this.key.grantEncryptDecrypt(new ServicePrincipal(`logs.${this.region}.amazonaws.com`));
    this.storage = new Storage(this, 'Storage', {
      key: this.key,
      archiveTransitionDays: settings.archiveTransitionDays,
      archiveNoncurrentExpiryDays: settings.archiveNoncurrentExpiryDays,
      rawRetentionDays: deployment.rawRetentionDays,
    });
    this.registry = new PipelineTables(this, 'FileRegistry', { key: this.key });
    this.calls = new CallQueue(this, 'CallQueue', { key: this.key });
    this.crmToken = new Secret(this, 'CrmToken', {
      description: 'The CRM API bearer token: set its value after the first deploy',
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeNag(this.crmToken, {
      'AwsSolutions-SMG4':
        'A third-party CRM token: it is issued by the CRM vendor and rotated by hand, not by a Lambda.',
    });
    acknowledgeNag(this, {
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
        "CDK's own handler that turns on the landing bucket's EventBridge notifications at deploy time.",
    });
    const sourceSecrets: Record<string, string> = {};
    for (const source of deployment.pollSources) {
      if (source.secretArn) {
        sourceSecrets[source.name] = source.secretArn;
        continue;
      }
      const secret = new Secret(this, `SourceSecret-${source.name}`, {
        description: `SFTP credentials of source ${source.name} (${source.username}@${source.host}): {"password": ...} or {"privateKey": ..., "passphrase"?: ...}`,
        encryptionKey: this.key,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      acknowledgeNag(secret, {
        'AwsSolutions-SMG4': "A partner's SFTP credentials: issued by the partner, changed with them, not by a Lambda.",
      });
      sourceSecrets[source.name] = secret.secretArn;
    }
    this.sourceSecrets = sourceSecrets;
    this.landingZone = new LandingZone(this, 'LandingZone', {
      landingBucket: this.storage.landingBucket,
      key: this.key,
      partners: deployment.partners,
      endpoint: deployment.sftpEndpoint,
      ...(deployment.sftpVpc ? { vpc: deployment.sftpVpc } : {}),
    });
  }
}
