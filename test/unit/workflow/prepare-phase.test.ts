import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CallMessageSchema, type CallQueue, type QueuedCall } from '../../../lambdas/core/crm/call-message';
import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import { carriedLines, preparePhaseSlice, type AnswerSource } from '../../../lambdas/core/workflow/prepare-phase';
import { prepareFile } from '../../../lambdas/core/files/prepare-file';
import { generateFiles } from '../../../lambdas/local/cli/generate-files';
import { phaseDeps } from '../../support/prepare-deps';
import { MemoryStore } from '../files/in-memory-pipeline';
import { tempDir } from '../helpers';

const FILE_ID = 'f'.repeat(64);

/** Lines `first` .. `first + count - 1`, made as they are read. */
function* lineRange(first: number, count: number) {
  for (let line = first; line < first + count; line++) yield line;
}

/** The answers of a phase that sent `lines` in order, 100 a batch, each line's status by `statusOf`. */
function answersOf(lines: Iterable<number>, statusOf: (line: number) => RecordOutcome['status']): AnswerSource {
  return {
    async *answers(fileId, phase) {
      let outcomes: RecordOutcome[] = [];
      let batchIndex = 0;
      const answer = () =>
        ({
          fileId,
          phase,
          batchIndex: batchIndex++,
          operation: 'ADD_TRX',
          outcomes,
          attempts: 1,
          replayed: false,
        }) as CallAnswer;
      for (const line of lines) {
        outcomes.push({ line, status: statusOf(line), code: 200 });
        if (outcomes.length === 100) {
          yield answer();
          outcomes = [];
        }
      }
      if (outcomes.length > 0) yield answer();
    },
  };
}

/** A call queue with a fixed round trip: what it was sent, and how many sends were out at once. */
class FakeQueue implements CallQueue {
  readonly sent: number[] = [];
  readonly lines: number[] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    private readonly roundTripMs: number,
    private readonly failOnSend?: number,
  ) {}

  private sends = 0;

  async send(calls: readonly QueuedCall[]): Promise<void> {
    const send = ++this.sends;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.roundTripMs));
      if (send === this.failOnSend) throw new Error('the call queue refused a message');
      for (const call of calls) {
        const message = CallMessageSchema.parse(JSON.parse(call.body));
        this.sent.push(message.batchIndex);
        this.lines.push(...message.lines);
      }
    } finally {
      this.inFlight--;
    }
  }
}

describe('carriedLines', () => {
  it('holds millions of carried lines in a bitmap built as answers stream in: memory bounded, membership exact', async () => {
    const lines = 20_000_000;
    const carried = (line: number) => line % 7 !== 0;
    // What is live, not what the collector has yet to sweep (how much garbage waits depends on the heap's
    // size so far in this process, not on the code under test): collected before each look.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const memory = () => {
      gc();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const before = memory();
    let peak = before;
    const source = answersOf(lineRange(2, lines), (line) => {
      if (line % 1_000_000 === 0) peak = Math.max(peak, memory());
      return carried(line) ? 'retry-later' : 'succeeded';
    });

    const set = await carriedLines(source, FILE_ID, 'RETRY1', 'ADD');

    expect(set.size).toBe(lines - Math.floor((lines + 1) / 7));
    // One bit a line of the file (2.5 MB for 20M lines), at most doubled by growth; a number[] of the 17M
    // carried lines would be 137 MB or more before any set is built.
    expect(set.byteLength).toBeLessThanOrEqual(2 * Math.ceil((lines + 2) / 8));
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    for (const line of [0, 1, 2, 7, 8, 13, 14, 15, 9_999_999, lines, lines + 1, lines + 2, 2 ** 32]) {
      expect([line, set.has(line)]).toEqual([line, line >= 2 && line <= lines + 1 && carried(line)]);
    }
  }, 60_000);

  it('takes the 8006 records for UPD and the 4404 records for RETRY<n>', async () => {
    const statuses: RecordOutcome['status'][] = ['succeeded', 'update', 'retry-later', 'failed'];
    const source = answersOf([...lineRange(2, 1000)], (line) => statuses[line % 4] as RecordOutcome['status']);
    const update = await carriedLines(source, FILE_ID, 'UPD', 'ADD');
    const retry = await carriedLines(source, FILE_ID, 'RETRY2', 'RETRY1');
    const range = Array.from({ length: 1010 }, (_, i) => i);
    expect(range.filter((l) => update.has(l))).toEqual(range.filter((l) => l >= 2 && l <= 1001 && l % 4 === 1));
    expect(range.filter((l) => retry.has(l))).toEqual(range.filter((l) => l >= 2 && l <= 1001 && l % 4 === 2));
  });
});

describe('preparePhaseSlice', () => {
  const dir = tempDir();
  const file = { bucket: 'landing', key: 'transactions/acme/trx.csv' };
  let store: MemoryStore;
  let fileId: string;
  /** The lines the ADD phase sends, in order (the generated file has some records that fail validation). */
  let addLines: number[];

  beforeAll(async () => {
    const [trx] = await generateFiles({ users: 0, transactions: 8000, outDir: dir.path, badRate: 0, seed: 'phase' });
    const bytes = readFileSync(trx!.path);
    fileId = createHash('sha256').update(bytes).digest('hex');
    store = new MemoryStore(4096);
    await store.put(file, bytes);
    addLines = [];
    await prepareFile(store.read(file), {
      name: file.key,
      kind: 'transactions',
      maxRecords: 100,
      maxBytes: 200 * 1024,
      onBatches: (batches) => void addLines.push(...batches.flatMap((b) => b.items.map((i) => i.line))),
      onRejected: () => undefined,
    });
  });
  afterAll(() => dir.remove());

  const slice = (phase: string, firstBatch: number, from?: string) => ({
    file,
    kind: 'transactions' as const,
    fileId,
    phase,
    firstBatch,
    ...(from ? { from } : {}),
  });

  it('stopped by a short shouldStop, slices resume where the last ended: every batch sent once, none still out', async () => {
    const queue = new FakeQueue(5);
    const { deps, totals } = phaseDeps(
      store,
      queue,
      answersOf([], () => 'succeeded'),
    );
    let firstBatch = 0;
    let slices = 0;
    for (;;) {
      slices++;
      const started = Date.now();
      const result = await preparePhaseSlice(slice('ADD', firstBatch), deps, () => Date.now() - started > 20);
      expect(queue.inFlight).toBe(0);
      expect([...queue.sent].sort((a, b) => a - b)).toEqual(Array.from({ length: result.nextBatch }, (_, i) => i));
      firstBatch = result.nextBatch;
      if (result.complete) break;
    }
    expect(slices).toBeGreaterThan(2);
    expect(totals).toEqual([{ phase: 'ADD', batches: Math.ceil(addLines.length / 100) }]);
    expect(queue.lines).toEqual(addLines);
    expect(queue.maxInFlight).toBeGreaterThan(1);
  });

  it('a later phase sends exactly the carried lines, re-batched from 0', async () => {
    const queue = new FakeQueue(1);
    const { deps, totals } = phaseDeps(
      store,
      queue,
      answersOf(addLines, (line) => (line % 3 === 0 ? 'retry-later' : 'succeeded')),
    );
    const result = await preparePhaseSlice(slice('RETRY1', 0, 'ADD'), deps, () => false);
    const carried = addLines.filter((line) => line % 3 === 0);
    expect(result).toMatchObject({
      complete: true,
      received: carried.length,
      nextBatch: Math.ceil(carried.length / 100),
    });
    expect(queue.lines).toEqual(carried);
    expect([...queue.sent].sort((a, b) => a - b)).toEqual(Array.from({ length: result.nextBatch }, (_, i) => i));
    expect(totals).toEqual([{ phase: 'RETRY1', batches: result.nextBatch }]);
  });

  it('a failed send fails the slice, after the other sends have settled, and records no total', async () => {
    const queue = new FakeQueue(5, 3);
    const { deps, totals } = phaseDeps(
      store,
      queue,
      answersOf([], () => 'succeeded'),
    );
    await expect(preparePhaseSlice(slice('ADD', 0), deps, () => false)).rejects.toThrow(
      'the call queue refused a message',
    );
    expect(queue.inFlight).toBe(0);
    expect(totals).toEqual([]);
  });
});
