import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { PlannedBatch } from '../../../lambdas/core/files/plan-batches';
import { prepareFile, type PrepareOptions } from '../../../lambdas/core/files/prepare-file';
import { generateFiles } from '../../../lambdas/local/cli/generate-files';
import { chunksOf, tempDir } from '../helpers';

/** A queue whose sends are held until released: what is in flight, and what was ever handed on. */
function heldQueue() {
  const held: { batches: readonly PlannedBatch[]; release: () => void; fail: (error: Error) => void }[] = [];
  const handed: PlannedBatch[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const onBatches = (batches: readonly PlannedBatch[]) =>
    new Promise<void>((resolve, reject) => {
      handed.push(...batches);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      const settle = () => void inFlight--;
      held.push({
        batches,
        release: () => {
          settle();
          resolve();
        },
        fail: (error) => {
          settle();
          reject(error);
        },
      });
    });
  return {
    onBatches,
    held,
    handed,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    releaseAll: () => held.splice(0).forEach((h) => h.release()),
  };
}

/** The file's bytes as a stream, counting what the reader pulled. */
function counted(bytes: Uint8Array, chunkSize = 16 * 1024) {
  const source = { pulled: 0 };
  async function* read() {
    for await (const chunk of chunksOf(bytes, chunkSize)) {
      source.pulled += chunk.length;
      yield chunk;
    }
  }
  return { source, bytes: read() };
}

/** Lets the reader run until it waits on the queue: it pulls no more bytes over a few checks. */
async function untilIdle(source: { pulled: number }) {
  for (let stable = 0, before = -1; stable < 3;) {
    stable = before === source.pulled ? stable + 1 : 0;
    before = source.pulled;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until `condition` holds (the reader got that far). */
async function waitFor(condition: () => boolean) {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('prepareFile sends batches while it reads, in a bounded window', () => {
  const dir = tempDir();
  let bytes: Buffer;
  let name: string;
  let whole: PlannedBatch[];

  beforeAll(async () => {
    const [trx] = await generateFiles({ users: 0, transactions: 20_000, outDir: dir.path, badRate: 0, seed: 'sends' });
    bytes = readFileSync(trx!.path);
    name = basename(trx!.path);
    whole = [];
    await prepareFile(chunksOf(bytes), { ...options(), onBatches: (b) => void whole.push(...b) });
  });
  afterAll(() => dir.remove());

  const options = (): Omit<PrepareOptions, 'onBatches'> => ({
    name,
    kind: 'transactions',
    maxRecords: 100,
    maxBytes: 200 * 1024,
    onRejected: () => undefined,
  });

  it('keeps several sends in flight while reading on, and waits when the window is full (back-pressure)', async () => {
    const queue = heldQueue();
    const { source, bytes: stream } = counted(bytes);
    const prepared = prepareFile(stream, { ...options(), sendsInFlight: 4, onBatches: queue.onBatches });
    await waitFor(() => queue.held.length === 4);
    await untilIdle(source);
    // Four sends of 10 batches are out and the reader waits: it has read about what they hold, not the file.
    expect(queue.inFlight()).toBe(4);
    expect(queue.held.map((h) => h.batches.length)).toEqual([10, 10, 10, 10]);
    expect(source.pulled).toBeLessThan(bytes.length / 3);
    // Releasing one send lets exactly one more start.
    queue.held.shift()!.release();
    await waitFor(() => queue.held.length === 4);
    await untilIdle(source);
    expect(queue.inFlight()).toBe(4);
    expect(queue.held).toHaveLength(4);
    const releasing = setInterval(queue.releaseAll, 5);
    const summary = await prepared.finally(() => clearInterval(releasing));
    expect(queue.inFlight()).toBe(0);
    expect(summary).toMatchObject({ complete: true, nextBatch: whole.length, batches: whole.length });
    // Every batch handed on once, in order, the same as with a queue that answers at once.
    expect(queue.handed).toEqual(whole);
    expect(queue.maxInFlight()).toBe(4);
  });

  it('overlaps sends by default: more than one SendMessageBatch worth is out at once', async () => {
    const queue = heldQueue();
    const releasing = setInterval(queue.releaseAll, 10);
    await prepareFile(chunksOf(bytes), { ...options(), onBatches: queue.onBatches }).finally(() =>
      clearInterval(releasing),
    );
    expect(queue.maxInFlight()).toBeGreaterThan(1);
    expect(queue.handed).toEqual(whole);
  });

  it('bounds the bytes in flight as well as the sends', async () => {
    const queue = heldQueue();
    const { source, bytes: stream } = counted(bytes);
    const batchBytes = whole[0]!.bytes;
    const prepared = prepareFile(stream, {
      ...options(),
      sendsInFlight: 100,
      batchesPerSend: 1,
      maxBytesInFlight: batchBytes * 3.5,
      onBatches: queue.onBatches,
    });
    await waitFor(() => queue.inFlight() === 3);
    await untilIdle(source);
    expect(queue.inFlight()).toBe(3);
    const releasing = setInterval(queue.releaseAll, 2);
    await prepared.finally(() => clearInterval(releasing));
    expect(queue.handed).toEqual(whole);
  });

  it('fails on the first failed send, once no other send is out, and reads no further', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const queue = heldQueue();
      const { source, bytes: stream } = counted(bytes);
      const prepared = prepareFile(stream, { ...options(), sendsInFlight: 4, onBatches: queue.onBatches });
      let outcome: unknown;
      prepared.then(
        () => (outcome = 'resolved'),
        (error: unknown) => (outcome = error),
      );
      await waitFor(() => queue.held.length === 4);
      await untilIdle(source);
      const pulled = source.pulled;
      queue.held[1]!.fail(new Error('SQS said no'));
      queue.held[3]!.fail(new Error('SQS said no again'));
      await untilIdle(source);
      // Still waiting for the two sends that are out: a failed prepare leaves nothing sending behind it.
      expect(outcome).toBeUndefined();
      queue.held[0]!.release();
      queue.held[2]!.release();
      await expect(prepared).rejects.toThrow('SQS said no');
      expect(queue.inFlight()).toBe(0);
      expect(queue.held).toHaveLength(4);
      expect(source.pulled).toBe(pulled);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('stops only where every batch before the checkpoint is sent; the next slice resumes there, no gap, no repeat', async () => {
    const [small] = await generateFiles({
      users: 0,
      transactions: 6000,
      outDir: `${dir.path}/small`,
      badRate: 0.02,
      seed: 'stops',
    });
    const smallBytes = readFileSync(small!.path);
    const smallOptions = { ...options(), name: basename(small!.path) };
    const { batches } = await prepareFile(chunksOf(smallBytes), { ...smallOptions, onBatches: () => undefined });
    const sent: number[] = [];
    let inFlight = 0;
    let firstBatch = 0;
    let slices = 0;
    for (;;) {
      slices++;
      const started = Date.now();
      const summary = await prepareFile(chunksOf(smallBytes, 4096), {
        ...smallOptions,
        firstBatch,
        shouldStop: () => Date.now() - started > 15,
        onBatches: async (batches) => {
          inFlight++;
          await new Promise((resolve) => setTimeout(resolve, 3));
          sent.push(...batches.map((b) => b.index));
          inFlight--;
        },
      });
      expect(inFlight).toBe(0);
      // Every batch below the checkpoint is sent, none above it.
      expect([...sent].sort((a, b) => a - b)).toEqual(Array.from({ length: summary.nextBatch }, (_, i) => i));
      firstBatch = summary.nextBatch;
      if (summary.complete) break;
    }
    expect(slices).toBeGreaterThan(2);
    expect(firstBatch).toBe(batches);
  });
});
