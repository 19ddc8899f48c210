import { createHash } from 'node:crypto';
import { CallMessageSchema, type QueuedCall } from '../../../lambdas/core/crm/call-message';
import type { PrepareCheckpoint } from '../../../lambdas/core/files/prepare-file';
import type { PhaseCounters } from '../../../lambdas/core/ledger/phase-counters';
import { scheduleRules } from '../../../lambdas/core/schedule/schedule';
import { preparePhaseSlice, type PhaseDeps, type SliceResult } from '../../../lambdas/core/workflow/prepare-phase';
import { CheckpointSchema } from '../../../lambdas/prepare-file/contract';
import { MemorySchedule } from '../../support/memory-schedule';
import { MemoryStore } from '../files/in-memory-pipeline';

/**
 * The records an ADD phase has read and refused (the file view's `received` and VALIDATION failures), carried from
 * slice to slice in the checkpoint and written to the file's schedule entry: counted once however the phase is
 * sliced or a slice is run again, never behind the records queued, never going down.
 */
const RECORDS = 3000;
const INVALID_EVERY = 37;
const FILE = { bucket: 'landing', key: 'users/acme/users_acme_20261124_001.csv' };
const TEXT = [
  'customer_id,first_name,last_name,email,country,created_at',
  ...Array.from(
    { length: RECORDS },
    (_, i) =>
      `C${i},Ada,Alder,${i % INVALID_EVERY === 0 ? 'not-an-email' : `c${i}@example.com`},GB,2026-11-24T03:00:00Z`,
  ),
].join('\n');
const FILE_ID = createHash('sha256').update(TEXT).digest('hex');
const INVALID = Math.ceil(RECORDS / INVALID_EVERY);

function pipeline() {
  const store = new MemoryStore(4096);
  void store.put(FILE, TEXT);
  const schedule = new MemorySchedule();
  /** What the entry said each time batches were queued, and the last line those batches carried. */
  const looks: { received: number; rejected: number; lastLine: number }[] = [];
  let lastLine = 0;
  let queued = 0;
  const record = (calls: readonly QueuedCall[]) => {
    for (const call of calls) lastLine = Math.max(lastLine, ...CallMessageSchema.parse(JSON.parse(call.body)).lines);
    queued += calls.length;
    const entry = schedule.files.get(FILE_ID);
    looks.push({ received: entry?.received ?? 0, rejected: entry?.rejected ?? 0, lastLine });
    return Promise.resolve();
  };
  // Every batch is answered as soon as it is queued: the window never holds a hand-off back.
  const phases = {
    read: (fileId: string, phase: string) =>
      Promise.resolve({ fileId, phase, answered: queued, update: 0, retryLater: 0 }),
    setBatchTotal: (fileId: string, phase: string, batches: number) =>
      Promise.resolve({ fileId, phase, batches, answered: queued, update: 0, retryLater: 0 }),
  } as unknown as PhaseCounters;
  const deps: PhaseDeps = {
    store,
    queue: { send: record },
    phases,
    answers: { answers: async function* () {} },
    notifier: { succeed: () => Promise.resolve() },
    limits: { maxRecords: 10, maxBytes: 200 * 1024 },
    acceptedEncodings: ['csv'],
    turn: {
      schedule,
      rules: scheduleRules({
        sendWindowBatches: 1000,
        partnerWeights: {},
        orderingWindowSeconds: 0,
        orderingScope: 'partner',
        retryLaterDelaySeconds: 1,
        retryLaterMaxWaitSeconds: 60,
        phaseCheckSeconds: 60,
        scheduleCheckSeconds: 1,
      }),
      pollMs: 1,
      // No periodic publish within a slice: only the write before each hand-off keeps the entry current.
      viewMs: 60_000,
    },
  };
  const run = (from: { nextBatch: number; checkpoint?: PrepareCheckpoint }, phase = 'ADD') =>
    preparePhaseSlice(
      {
        file: FILE,
        kind: 'users',
        fileId: FILE_ID,
        phase,
        ...(phase === 'ADD' ? {} : { from: 'ADD' }),
        firstBatch: from.nextBatch,
        ...(from.checkpoint ? { checkpoint: from.checkpoint } : {}),
        partner: 'acme',
      },
      deps,
      () => true,
    );
  return { schedule, looks, run };
}

/** The checkpoint as the state machine carries it: through JSON and the function's input schema. */
const carried = (result: SliceResult): PrepareCheckpoint =>
  CheckpointSchema.parse(JSON.parse(JSON.stringify(result.checkpoint))) as PrepareCheckpoint;

const neverDown = (values: readonly number[]) => values.every((value, i) => i === 0 || value >= values[i - 1]!);

describe('the records an ADD phase read, over its slices', () => {
  it('each slice adds its own to the checkpoint; the entry counts every record queued, never goes down, ends whole', async () => {
    const { schedule, looks, run } = pipeline();
    const results: SliceResult[] = [];
    let from: { nextBatch: number; checkpoint?: PrepareCheckpoint } = { nextBatch: 0 };
    for (;;) {
      const result = await run(from);
      results.push(result);
      if (result.complete) break;
      from = { nextBatch: result.nextBatch, checkpoint: carried(result) };
      // The totals so far: this slice's counts added to those of the slices before.
      expect(from.checkpoint?.totals).toEqual({
        received: results.reduce((sum, r) => sum + r.received, 0),
        rejected: results.reduce((sum, r) => sum + r.rejected, 0),
      });
    }

    expect(results.length).toBeGreaterThan(10);
    expect(schedule.files.get(FILE_ID)).toMatchObject({ received: RECORDS, rejected: INVALID });
    // Record i is on line i + 2: the entry had counted every record of the batches queued before they went.
    const behind = looks.filter((look) => look.received < look.lastLine - 1);
    expect(behind).toEqual([]);
    expect(neverDown(looks.map((look) => look.received))).toBe(true);
    expect(neverDown(looks.map((look) => look.rejected))).toBe(true);
    expect(looks.every((look) => look.rejected <= look.received)).toBe(true);
  });

  it('a slice run again from the same checkpoint (a retry) counts nothing twice', async () => {
    const { schedule, run } = pipeline();
    const first = await run({ nextBatch: 0 });
    const from = { nextBatch: first.nextBatch, checkpoint: carried(first) };
    // The second slice runs, then its invocation is lost: the state machine runs it again from the same input.
    await run(from);
    let result = await run(from);
    while (!result.complete) result = await run({ nextBatch: result.nextBatch, checkpoint: carried(result) });

    expect(schedule.files.get(FILE_ID)).toMatchObject({ received: RECORDS, rejected: INVALID });
  });

  it('a checkpoint of an older execution (no totals) goes on, leaving the entry as it was', async () => {
    const { schedule, run } = pipeline();
    const first = await run({ nextBatch: 0 });
    const before = schedule.files.get(FILE_ID);
    const { totals: _dropped, ...older } = carried(first);
    const second = await run({ nextBatch: first.nextBatch, checkpoint: older });

    expect(second.checkpoint?.totals).toBeUndefined();
    expect(second.nextBatch).toBeGreaterThan(first.nextBatch);
    expect(schedule.files.get(FILE_ID)).toMatchObject({ received: before?.received, rejected: before?.rejected });
  });

  it('a later phase leaves the counts of the ADD phase alone', async () => {
    const { schedule, run } = pipeline();
    let result = await run({ nextBatch: 0 });
    while (!result.complete) result = await run({ nextBatch: result.nextBatch, checkpoint: carried(result) });
    // No 8006 answered: the UPD phase carries no line, queues nothing, and changes no count.
    let upd = await run({ nextBatch: 0 }, 'UPD');
    while (!upd.complete) upd = await run({ nextBatch: upd.nextBatch, checkpoint: carried(upd) }, 'UPD');

    expect(schedule.files.get(FILE_ID)).toMatchObject({ phase: 'UPD', received: RECORDS, rejected: INVALID });
  });
});
