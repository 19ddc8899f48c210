import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface CallQueueProps {
  readonly key: IKey;
  /** The dispatcher's timeout: a message stays hidden six times as long, as AWS advises for event sources. */
  readonly dispatchTimeout: Duration;
  /** Deliveries of a message before it goes to the dead-letter queue. @default 10 */
  readonly maxReceiveCount?: number;
}

/**
 * The CRM call queue: one message per batch of at most 100 records, and its dead-letter queue for batches
 * whose retries are spent (support redrives them from the console once the CRM is back). KMS-encrypted,
 * TLS-only; messages are kept 14 days so a long CRM outage loses nothing.
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
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.deadLetterQueue = new Queue(this, 'DeadLetters', common);
    this.queue = new Queue(this, 'Calls', {
      ...common,
      visibilityTimeout: Duration.seconds(props.dispatchTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 10 },
    });
  }
}
