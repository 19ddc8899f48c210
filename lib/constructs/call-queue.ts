import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CALL_QUEUE } from '../../lambdas/contracts/infrastructure';

export interface CallQueueProps {
  readonly key: IKey;
}

/**
 * The CRM call queue: one message per batch of at most 100 records, and its dead-letter queue for batches
 * whose retries are spent (support redrives them from the console once the CRM is back). KMS-encrypted,
 * TLS-only; its timings are those of lambdas/contracts/infrastructure.ts, which the local runtime uses too.
 */
export class CallQueue extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: CallQueueProps) {
    super(scope, id);
    const common = {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(CALL_QUEUE.retentionDays),
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.deadLetterQueue = new Queue(this, 'DeadLetters', common);
    this.queue = new Queue(this, 'Calls', {
      ...common,
      visibilityTimeout: Duration.seconds(CALL_QUEUE.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: CALL_QUEUE.maxReceiveCount },
    });
  }
}
