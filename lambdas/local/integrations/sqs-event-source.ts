import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { RECORDS_ATTRIBUTE } from '../../core/crm/call-message';

export interface SqsEventSourceOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** Messages per invocation. */
  readonly batchSize: number;
  /** Pollers, each invoking the function with what it received: the event source's maximum concurrency. */
  readonly concurrency: number;
  readonly invoke: (event: SQSEvent) => Promise<SQSBatchResponse>;
}

export interface SqsEventSource {
  /** Batches and records whose messages were handled and deleted. */
  readonly handled: () => { readonly batches: number; readonly records: number };
  /** Stops receiving; resolves once every invocation in hand has returned. */
  stop(): Promise<void>;
}

/**
 * The SQS event source of the dispatcher, as Lambda runs it: pollers long-poll the queue, hand each batch to
 * the function with ApproximateReceiveCount (the embedded SQS keeps none: counted here, so a first delivery
 * skips the ledger read and a failing batch's back-off grows), and delete what the partial batch response does
 * not name. A function that throws fails the whole batch, which comes back after its visibility timeout.
 */
export function startSqsEventSource(options: SqsEventSourceOptions): SqsEventSource {
  const { client, queueUrl } = options;
  let stopping = false;
  let batches = 0;
  let records = 0;
  const receives = new Map<string, number>();
  const poll = async () => {
    while (!stopping) {
      const { Messages = [] } = await client
        .send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: options.batchSize,
            WaitTimeSeconds: 1,
            MessageAttributeNames: ['All'],
          }),
        )
        .catch(() => ({ Messages: [] }));
      if (Messages.length === 0 || stopping) continue;
      const event: SQSEvent = {
        Records: Messages.map((m) => {
          const count = (receives.get(m.MessageId ?? '') ?? 0) + 1;
          receives.set(m.MessageId ?? '', count);
          return {
            messageId: m.MessageId ?? '',
            receiptHandle: m.ReceiptHandle ?? '',
            body: m.Body ?? '',
            attributes: { ApproximateReceiveCount: String(count) } as never,
            // As Lambda's event source hands them on: every attribute, camel-cased fields.
            messageAttributes: Object.fromEntries(
              Object.entries(m.MessageAttributes ?? {}).map(([name, value]) => [
                name,
                {
                  dataType: value.DataType ?? 'String',
                  stringValue: value.StringValue,
                  stringListValues: [],
                  binaryListValues: [],
                },
              ]),
            ),
            md5OfBody: m.MD5OfBody ?? '',
            eventSource: 'aws:sqs',
            eventSourceARN: options.queueArn,
            awsRegion: 'us-east-1',
          };
        }),
      };
      const response = await options
        .invoke(event)
        .catch(() => ({ batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) }));
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const answered = Messages.filter((message) => !failed.has(message.MessageId ?? ''));
      if (answered.length === 0) continue;
      await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: answered.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
      for (const message of answered) {
        receives.delete(message.MessageId ?? '');
        batches++;
        records += Number(message.MessageAttributes?.[RECORDS_ATTRIBUTE]?.StringValue ?? 0);
      }
    }
  };
  const pollers = Array.from({ length: options.concurrency }, poll);
  return {
    handled: () => ({ batches, records }),
    async stop() {
      stopping = true;
      await Promise.allSettled(pollers);
    },
  };
}
