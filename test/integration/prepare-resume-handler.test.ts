import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import { createTelemetry } from '../../lambdas/adapters/aws/telemetry';
import type { CallQueue, QueuedCall } from '../../lambdas/core/crm/call-message';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { prepareFileContract } from '../../lambdas/prepare-file/contract';
import { makeHandler } from '../../lambdas/prepare-file/make-handler';
import { phaseDeps } from '../support/prepare-deps';
import { countingReads } from '../support/counting-reads';
import { sliceContext } from '../support/slice-context';

class KeepingQueue implements CallQueue {
  readonly messages: string[] = [];
  /** Set: the next send after this many more is where the invocation is killed (as Lambda at its timeout). */
  killAfter: number | undefined;
  send(calls: readonly QueuedCall[]): Promise<void> {
    if (this.killAfter !== undefined && this.killAfter-- === 0) {
      this.killAfter = undefined;
      return Promise.reject(Object.assign(new Error('Task timed out'), { name: 'Sandbox.Timedout' }));
    }
    for (const call of calls) this.messages.push(call.body);
    return Promise.resolve();
  }
}

function usersCsv(records: number): Buffer {
  const rows = ['customer_id,first_name,last_name,email,country,created_at,note'];
  for (let i = 0; i < records; i++) {
    const note = i % 9 === 0 ? `"two\nlines ${i}"` : `n${i}`;
    rows.push(`C${i},Åsa,Lee,u${i}@example.com,GB,2026-01-02T03:04:05Z,${note}`);
  }
  return Buffer.from(`${rows.join('\n')}\n`);
}

const contextOf = (short: boolean, answersWithTime?: number) => sliceContext('prepare-file', short, answersWithTime);

describe('prepare-file handler: slices resume from the checkpoint they return (embedded S3)', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
  });
  afterAll(() => s3.close());

  /** A phase through the handler; `killAt`: the slice that is killed after a few sends, then run again from its input. */
  async function runPhase(key: string, bytes: Buffer, short: boolean, killAt?: number) {
    const store = countingReads(new S3ObjectStore(s3.client()));
    const queue = new KeepingQueue();
    const handler = makeHandler({
      ...phaseDeps(store, queue).deps,
      landingPrefix: 'incoming/',
      telemetry: createTelemetry('prepare-file', { output: new PassThrough() }),
    });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let resume: unknown = { phase: 'ADD', from: null, done: false, slices: 0, batches: 0 };
    for (let slice = 1; ; slice++) {
      const event = {
        action: 'prepare',
        file: { bucket: 'landing', key },
        classification: { kind: 'users', sha256 },
        resume,
      };
      if (slice === killAt) {
        // A longer slice (its first 40 questions find time left), killed at its third send. (On Lambda the kill
        // is no error of the handler's: Step Functions sees Sandbox.Timedout and runs the same input again.)
        queue.killAfter = 2;
        const killed = await handler(event, contextOf(short, 40)).then(
          () => undefined,
          (error: Error) => error,
        );
        expect(killed).toBeInstanceOf(Error);
      }
      const output = (await handler(event, contextOf(short))) as Record<string, unknown>;
      prepareFileContract.outputs.prepare.parse(output);
      // Through the state machine's JSON, as `$.prepare`.
      resume = JSON.parse(JSON.stringify(output));
      if (output.done) return { queue, store, slices: output.slices as number };
    }
  }

  it.each([
    ['users/acme/killed.csv', usersCsv(30_000)],
    ['users/acme/killed.csv.gz', gzipSync(usersCsv(30_000))],
  ])(
    '%s: a slice killed after some sends, run again from its input, sends every message of one run',
    async (key, bytes) => {
      await s3.client().send(new PutObjectCommand({ Bucket: 'landing', Key: key, Body: bytes }));
      const whole = await runPhase(key, bytes, false);
      const killed = await runPhase(key, bytes, true, 3);
      // The killed slice's sends are made again (the dispatcher skips a batch already answered): nothing missing,
      // nothing sent more than twice, and in the order of one run once repeats are set aside.
      expect([...new Set(killed.queue.messages)]).toEqual(whole.queue.messages);
      const repeats = killed.queue.messages.length - whole.queue.messages.length;
      expect(repeats).toBeGreaterThan(0);
      const counts = new Map<string, number>();
      for (const message of killed.queue.messages) counts.set(message, (counts.get(message) ?? 0) + 1);
      expect(Math.max(...counts.values())).toBe(2);
    },
  );

  it.each([
    ['users/acme/users.csv', usersCsv(30_000)],
    ['users/acme/users.csv.gz', gzipSync(usersCsv(30_000))],
  ])('%s: the same messages in many slices as in one; a plain file is read about once in all', async (key, bytes) => {
    await s3.client().send(new PutObjectCommand({ Bucket: 'landing', Key: key, Body: bytes }));
    const whole = await runPhase(key, bytes, false);
    const sliced = await runPhase(key, bytes, true);
    expect(whole.slices).toBe(1);
    expect(sliced.slices).toBeGreaterThan(5);
    expect(sliced.queue.messages).toEqual(whole.queue.messages);
    expect(whole.queue.messages).toHaveLength(300);
    if (key.endsWith('.gz')) {
      expect(sliced.store.ranges.every((range) => range === undefined)).toBe(true);
    } else {
      expect(sliced.store.ranges.slice(1).every((range) => range && range.end === bytes.length - 1)).toBe(true);
      expect(sliced.store.bytesRead).toBeLessThan(bytes.length * 1.5);
    }
  });
});
