import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SqsCallQueue } from '../../lambdas/adapters/aws/sqs-call-queue';
import { CallMessageSchema, RECORDS_ATTRIBUTE, type QueuedCall } from '../../lambdas/core/crm/call-message';
import type { PhaseCounters } from '../../lambdas/core/ledger/phase-counters';
import { preparePhaseSlice, type PhaseDeps } from '../../lambdas/core/workflow/prepare-phase';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { startLocalSqs, type LocalSqs } from '../../lambdas/local/services/local-sqs';
import { MemoryStore } from '../unit/files/in-memory-pipeline';
import { tempDir } from '../unit/helpers';

/** Every message on the queue, deleted as it is read: batch index and number of records of each. */
async function drainQueue(sqs: SQSClient, queueUrl: string) {
  const messages: { batchIndex: number; records: number; lines: number }[] = [];
  for (let empty = 0; empty < 2;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    for (const message of Messages) {
      const body = CallMessageSchema.parse(JSON.parse(message.Body ?? ''));
      messages.push({
        batchIndex: body.batchIndex,
        records: Number(message.MessageAttributes?.[RECORDS_ATTRIBUTE]?.StringValue),
        lines: body.lines.length,
      });
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
      }),
    );
  }
  return messages;
}

describe('prepare into the call queue (local SQS)', () => {
  const dir = tempDir();
  const file = { bucket: 'landing', key: 'users/acme/users.csv' };
  let sqs: LocalSqs;
  let client: SQSClient;
  let store: MemoryStore;
  let fileId: string;

  beforeAll(async () => {
    sqs = await startLocalSqs();
    client = sqs.client();
    const [users] = await generateFiles({ users: 6000, transactions: 0, outDir: dir.path, badRate: 0.02, seed: 'q' });
    const bytes = readFileSync(users!.path);
    fileId = createHash('sha256').update(bytes).digest('hex');
    store = new MemoryStore(8192);
    await store.put(file, bytes);
  });
  afterAll(async () => {
    await sqs.close();
    dir.remove();
  });

  const deps = (queue: SqsCallQueue, totals: number[]): PhaseDeps => ({
    store,
    queue,
    phases: {
      setBatchTotal: (id: string, phase: string, batches: number) => {
        totals.push(batches);
        return Promise.resolve({ fileId: id, phase, batches, answered: 0, update: 0, retryLater: 0 });
      },
    } as unknown as PhaseCounters,
    answers: { answers: () => (async function* () {})() },
    notifier: { succeed: () => Promise.resolve() },
    limits: { maxRecords: 100, maxBytes: 200 * 1024 },
    acceptedEncodings: ['csv', 'jsonl', 'gzip'],
  });

  it('slices stopped after a few milliseconds put every batch on the queue exactly once', async () => {
    const { QueueUrl: queueUrl = '' } = await client.send(new CreateQueueCommand({ QueueName: 'calls-slices' }));
    const totals: number[] = [];
    const phaseDeps = deps(new SqsCallQueue(client, queueUrl), totals);
    let firstBatch = 0;
    let slices = 0;
    for (;;) {
      slices++;
      const started = Date.now();
      const slice = { file, kind: 'users' as const, fileId, phase: 'ADD', firstBatch };
      const result = await preparePhaseSlice(slice, phaseDeps, () => Date.now() - started > 10);
      firstBatch = result.nextBatch;
      if (result.complete) break;
    }
    const messages = await drainQueue(client, queueUrl);
    expect(slices).toBeGreaterThan(2);
    expect(totals).toEqual([firstBatch]);
    expect(messages.map((m) => m.batchIndex).sort((a, b) => a - b)).toEqual(
      Array.from({ length: firstBatch }, (_, i) => i),
    );
    expect(messages.every((m) => m.records === m.lines && m.records <= 100)).toBe(true);
  });

  it('a refused SendMessageBatch fails the slice, after the requests already out have finished', async () => {
    const { QueueUrl: queueUrl = '' } = await client.send(new CreateQueueCommand({ QueueName: 'calls-refused' }));
    let requests = 0;
    let out = 0;
    let outWhenFailed = -1;
    const refusing = {
      async send(command: SendMessageBatchCommand) {
        const request = ++requests;
        out++;
        try {
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (request === 3) {
            return {
              Successful: [],
              Failed: [{ Id: '0', SenderFault: true, Code: 'InvalidParameterValue', Message: 'no' }],
            };
          }
          return await client.send(command);
        } finally {
          out--;
        }
      },
    } as unknown as SQSClient;
    const queue = new SqsCallQueue(refusing, queueUrl);
    const totals: number[] = [];
    const failed = preparePhaseSlice(
      { file, kind: 'users', fileId, phase: 'ADD', firstBatch: 0 },
      deps(queue, totals),
      () => false,
    ).catch((error: unknown) => {
      outWhenFailed = out;
      throw error;
    });
    await expect(failed).rejects.toThrow('the call queue refused a message: InvalidParameterValue: no');
    expect(outWhenFailed).toBe(0);
    expect(totals).toEqual([]);
    // Nothing went on sending behind the failure.
    const sentAfter = requests;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(requests).toBe(sentAfter);
  });

  it('SqsCallQueue packs up to 10 messages a request, each with its number of records', async () => {
    const { QueueUrl: queueUrl = '' } = await client.send(new CreateQueueCommand({ QueueName: 'calls-packed' }));
    const sizes: number[] = [];
    const counting = {
      send(command: SendMessageBatchCommand) {
        sizes.push(command.input.Entries?.length ?? 0);
        return client.send(command);
      },
    } as unknown as SQSClient;
    const calls: QueuedCall[] = Array.from({ length: 95 }, (_, i) => ({
      body: JSON.stringify({ i, pad: 'x'.repeat(1000) }),
      records: 1,
    }));
    await new SqsCallQueue(counting, queueUrl).send(calls);
    expect(sizes).toEqual([...Array<number>(9).fill(10), 5]);
    const received = await client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
    );
    expect(received.Messages?.[0]?.MessageAttributes?.[RECORDS_ATTRIBUTE]?.StringValue).toBe('1');
  });
});
