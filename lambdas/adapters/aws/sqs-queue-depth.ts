import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueDepth } from '../../core/operations/ports';

/** The call queue's depth from its approximate counts (SQS's own, updated within about a minute). */
export class SqsQueueDepth implements QueueDepth {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async depth(): Promise<{ waiting: number; inFlight: number }> {
    const { Attributes = {} } = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      waiting: Number(Attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}
