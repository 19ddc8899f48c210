import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  MAY_HAVE_BEEN_SENT_ATTRIBUTE,
  RECORDS_ATTRIBUTE,
  type CallQueue,
  type QueuedCall,
} from '../../core/crm/call-message';
import { ErrorNames, PipelineError } from '../../core/errors';

/** SendMessageBatch limits: 10 entries and 256 KiB of bodies (kept at the classic limit, which every queue has). */
const MAX_ENTRIES = 10;
const MAX_BATCH_BYTES = 256 * 1024;
/**
 * Requests in flight for one `send` (a call of many messages, or of large ones); prepare keeps several sends
 * in flight as well, bounded by its own window.
 */
const IN_FLIGHT = 8;
const ATTEMPTS = 5;
/** What the records attribute adds to a message's size (its name, type and value), rounded up. */
const ATTRIBUTE_BYTES = 32;

/**
 * The call queue on SQS: messages packed into SendMessageBatch requests, each with its number of records as a
 * message attribute; failed entries are sent again.
 */
export class SqsCallQueue implements CallQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(calls: readonly QueuedCall[]): Promise<void> {
    const requests: QueuedCall[][] = [];
    let current: QueuedCall[] = [];
    let bytes = 0;
    for (const call of calls) {
      const size = Buffer.byteLength(call.body) + ATTRIBUTE_BYTES;
      if (current.length === MAX_ENTRIES || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
        requests.push(current);
        current = [];
        bytes = 0;
      }
      current.push(call);
      bytes += size;
    }
    if (current.length > 0) requests.push(current);
    let next = 0;
    let failed = false;
    const worker = async () => {
      try {
        while (!failed && next < requests.length) await this.sendBatch(requests[next++] as QueuedCall[]);
      } catch (error) {
        failed = true;
        throw error;
      }
    };
    // A failure stops the other workers taking more requests, and send settles only once none is out, so
    // nothing is still sending when the caller hears of the failure.
    const settled = await Promise.allSettled(Array.from({ length: Math.min(IN_FLIGHT, requests.length) }, worker));
    const rejected = settled.find((result) => result.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  private async sendBatch(calls: QueuedCall[]): Promise<void> {
    let entries = calls.map((call, i) => ({
      Id: String(i),
      MessageBody: call.body,
      MessageAttributes: {
        [RECORDS_ATTRIBUTE]: { DataType: 'Number', StringValue: String(call.records) },
        ...(call.mayHaveBeenSent
          ? { [MAY_HAVE_BEEN_SENT_ATTRIBUTE]: { DataType: 'String', StringValue: 'true' } }
          : {}),
      },
      ...(call.delaySeconds ? { DelaySeconds: call.delaySeconds } : {}),
    }));
    for (let attempt = 1; ; attempt++) {
      const { Failed = [] } = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
      );
      if (Failed.length === 0) return;
      const senderFault = Failed.find((f) => f.SenderFault);
      if (senderFault) throw new Error(`the call queue refused a message: ${senderFault.Code}: ${senderFault.Message}`);
      if (attempt === ATTEMPTS) {
        throw new PipelineError(
          ErrorNames.transient,
          `the call queue kept failing ${Failed.length} messages: ${Failed[0]?.Code}`,
        );
      }
      const failed = new Set(Failed.map((f) => f.Id));
      entries = entries.filter((e) => failed.has(e.Id));
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt * Math.random()));
    }
  }
}
