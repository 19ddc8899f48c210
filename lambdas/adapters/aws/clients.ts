import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ErrorNames, PipelineError } from '../../core/errors';

/**
 * Where the SDK clients go. On Lambda nothing is set: region and credentials come from the runtime. The
 * one-machine runtime points them at the embedded services, with the S3 settings s3rver needs (DESIGN.md).
 */
export interface AwsClientOptions {
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints?: {
    readonly s3?: string;
    readonly dynamodb?: string;
    readonly sqs?: string;
    readonly sfn?: string;
    readonly eventBridge?: string;
    readonly secretsManager?: string;
  };
  /** Path-style bucket addressing (s3rver). */
  readonly s3ForcePathStyle?: boolean;
  /** Checksums only when the operation requires them: s3rver corrupts streamed uploads otherwise. */
  readonly checksumsWhenRequired?: boolean;
}

export interface AwsClients {
  readonly s3: S3Client;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly sfn: SFNClient;
  readonly eventBridge: EventBridgeClient;
  readonly secretsManager: SecretsManagerClient;
  readonly cloudWatch: CloudWatchClient;
}

/** The SDK clients of one function, each created on first use (a function builds only those it calls). */
export function awsClients(options: AwsClientOptions = {}): AwsClients {
  const common = {
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const at = (endpoint?: string) => ({ ...common, ...(endpoint ? { endpoint } : {}) });
  const endpoints = options.endpoints ?? {};
  const made = new Map<string, unknown>();
  const once = <T>(name: string, make: () => T): T => {
    if (!made.has(name)) made.set(name, make());
    return made.get(name) as T;
  };
  return {
    get s3() {
      return once(
        's3',
        () =>
          new S3Client({
            ...at(endpoints.s3),
            forcePathStyle: options.s3ForcePathStyle ?? false,
            ...(options.checksumsWhenRequired
              ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
              : {}),
          }),
      );
    },
    get dynamodb() {
      return once('dynamodb', () => new DynamoDBClient(at(endpoints.dynamodb)));
    },
    get sqs() {
      return once('sqs', () => new SQSClient(at(endpoints.sqs)));
    },
    get sfn() {
      return once('sfn', () => new SFNClient(at(endpoints.sfn)));
    },
    get eventBridge() {
      return once('eventBridge', () => new EventBridgeClient(at(endpoints.eventBridge)));
    },
    get secretsManager() {
      return once('secretsManager', () => new SecretsManagerClient(at(endpoints.secretsManager)));
    },
    get cloudWatch() {
      return once('cloudWatch', () => new CloudWatchClient(common));
    },
  };
}

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
 * machine retries with back-off; anything else is returned as it is.
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
    return new PipelineError(ErrorNames.transient, `${failure.name ?? 'AWS error'}: ${failure.message ?? ''}`);
  }
  return error;
}
