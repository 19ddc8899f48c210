import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ErrorNames } from '../../core/errors';

/**
 * SDK clients for the Lambdas. Endpoints and checksum behaviour come from the SDK's own environment variables
 * (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB, AWS_REQUEST_CHECKSUM_CALCULATION, ...), so the one-machine
 * runtime points the same code at the embedded services; only path-style S3 needs a setting of ours.
 */
export const s3Client = () => new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' });
export const dynamoDbClient = () => new DynamoDBClient({});
export const sqsClient = () => new SQSClient({});
export const secretsManagerClient = () => new SecretsManagerClient({});
export const sfnClient = () => new SFNClient({});
export const eventBridgeClient = () => new EventBridgeClient({});

const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
  'RequestTimeout',
  'ServiceUnavailable',
  'InternalError',
  'TimeoutError',
]);

/**
 * An AWS failure worth retrying (throttling, 5xx, timeouts) as `Pipeline.Transient`, the name the state
 * machine retries with back-off; anything else is returned as it is, to fail the state for a redrive.
 */
export function asTransient(error: unknown): unknown {
  const failure = error as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const status = failure.$metadata?.httpStatusCode ?? 0;
  if (status >= 500 || failure.$retryable || TRANSIENT_NAMES.has(failure.name ?? '')) {
    return Object.assign(new Error(`${failure.name ?? 'AWS error'}: ${failure.message ?? ''}`), {
      name: ErrorNames.transient,
    });
  }
  return error;
}
