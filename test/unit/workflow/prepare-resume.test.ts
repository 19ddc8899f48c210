import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { CallMessageSchema, type CallQueue, type QueuedCall } from '../../../lambdas/core/crm/call-message';
import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import type { ObjectRef } from '../../../lambdas/core/files/object-store';
import type { PrepareCheckpoint } from '../../../lambdas/core/files/prepare-file';
import {
  preparePhaseSlice,
  type AnswerSource,
  type PhaseDeps,
  type SliceResult,
} from '../../../lambdas/core/workflow/prepare-phase';
import { CheckpointSchema, MAX_CHECKPOINT_CHARS } from '../../../lambdas/prepare-file/contract';
import { phaseDeps } from '../../support/prepare-deps';
import { MemoryStore } from '../files/in-memory-pipeline';
import { countingReads } from '../../support/counting-reads';

/** Users with a quoted multi-line note every 7th record (across many chunk boundaries), a bad email every 53rd. */
function usersCsv(records: number): string {
  const rows = ['customer_id,first_name,last_name,email,country,created_at,note'];
  for (let i = 0; i < records; i++) {
    const note = i % 7 === 0 ? `"first line\r\nsecond ""quoted"" line ${i}\n"` : `plain ${i}`;
    const email = i % 53 === 0 ? 'not-an-email' : `u${i}@example.com`;
    rows.push(`C${i},Åsa,Lee ${'é'.repeat(i % 5)},${email},GB,2026-01-02T03:04:05Z,${note}`);
  }
  return `${rows.join('\r\n')}\r\n`;
}

function usersJsonl(records: number): string {
  const lines: string[] = [];
  for (let i = 0; i < records; i++) {
    const email = i % 53 === 0 ? 'not-an-email' : `u${i}@example.com`;
    lines.push(
      JSON.stringify({
        customer_id: `C${i}`,
        first_name: 'Åsa 😀',
        last_name: 'Lee',
        email,
        country: 'GB',
        created_at: '2026-01-02T03:04:05Z',
      }),
    );
    if (i % 11 === 0) lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** A queue that keeps every message it is sent, in order. */
class KeepingQueue implements CallQueue {
  readonly messages: string[] = [];
  send(calls: readonly QueuedCall[]): Promise<void> {
    for (const call of calls) this.messages.push(call.body);
    return Promise.resolve();
  }
}

function answersOf(lines: readonly number[], status: (line: number) => RecordOutcome['status']): AnswerSource {
  return {
    async *answers(fileId, phase) {
      for (let at = 0; at < lines.length; at += 100) {
        yield {
          fileId,
          phase,
          batchIndex: at / 100,
          operation: 'ADD_CUST',
          outcomes: lines.slice(at, at + 100).map((line) => ({ line, status: status(line), code: 200 })),
          attempts: 1,
          replayed: false,
        } as CallAnswer;
      }
    },
  };
}

const depsOf = (store: MemoryStore, queue: CallQueue, answers: AnswerSource = answersOf([], () => 'succeeded')) =>
  phaseDeps(store, queue, answers);

/** Runs a phase to its end in slices, each told to stop after every chunk, passing each checkpoint on as the state machine does (through its JSON). */
async function inSlices(deps: PhaseDeps, file: ObjectRef, fileId: string, phase = 'ADD', from?: string) {
  let checkpoint: PrepareCheckpoint | undefined;
  let firstBatch = 0;
  const results: SliceResult[] = [];
  for (;;) {
    const result = await preparePhaseSlice(
      {
        file,
        kind: 'users',
        fileId,
        phase,
        ...(from ? { from } : {}),
        firstBatch,
        ...(checkpoint ? { checkpoint } : {}),
      },
      deps,
      () => true,
    );
    results.push(result);
    firstBatch = result.nextBatch;
    if (result.complete) return results;
    expect(result.checkpoint).toBeDefined();
    const carried = JSON.stringify(result.checkpoint);
    expect(carried.length).toBeLessThan(MAX_CHECKPOINT_CHARS);
    checkpoint = CheckpointSchema.parse(JSON.parse(carried));
  }
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('prepare slices resume from their checkpoint', () => {
  const records = 6000;
  const files = [
    ['users/acme/users.csv', Buffer.from(usersCsv(records))],
    ['users/acme/users.csv.gz', gzipSync(Buffer.from(usersCsv(records)))],
    ['users/acme/users.jsonl', Buffer.from(usersJsonl(records))],
  ] as const;

  it.each(files)(
    '%s: slices stopped after every chunk send every batch once, in order, the messages of one unsliced run',
    async (key, bytes) => {
      const file = { bucket: 'landing', key };
      const store = countingReads(new MemoryStore(4096));
      await store.put(file, bytes);
      const fileId = sha256(bytes);

      const whole = new KeepingQueue();
      const one = depsOf(store, whole);
      const unsliced = await preparePhaseSlice(
        { file, kind: 'users', fileId, phase: 'ADD', firstBatch: 0 },
        one.deps,
        () => false,
      );
      expect(unsliced.complete).toBe(true);

      store.bytesRead = 0;
      store.ranges = [];
      const sliced = new KeepingQueue();
      const { deps, totals } = depsOf(store, sliced);
      const results = await inSlices(deps, file, fileId);

      expect(results.length).toBeGreaterThan(20);
      expect(sliced.messages).toEqual(whole.messages);
      expect(sliced.messages.map((m) => CallMessageSchema.parse(JSON.parse(m)).batchIndex)).toEqual(
        whole.messages.map((_, i) => i),
      );
      expect(totals).toEqual([{ phase: 'ADD', batches: whole.messages.length }]);
      // Every record counted once across the slices: a slice counts none past its checkpoint.
      expect(results.reduce((sum, r) => sum + r.received, 0)).toBe(records);
      expect(results.reduce((sum, r) => sum + r.rejected, 0)).toBe(Math.ceil(records / 53));
      if (key.endsWith('.gz')) {
        expect(store.ranges.every((range) => range === undefined)).toBe(true);
      } else {
        // Each slice reads from its checkpoint: in all about the file once (a chunk more a slice), not slices x file.
        expect(store.ranges.slice(1).every((range) => range !== undefined && range.start > 0)).toBe(true);
        expect(store.bytesRead).toBeLessThan(bytes.length + results.length * 3 * 4096);
      }
    },
  );

  it('a later phase (onlyLines) resumes the same way: the carried lines, re-batched from 0, each once', async () => {
    const [key, bytes] = files[0];
    const file = { bucket: 'landing', key };
    const store = countingReads(new MemoryStore(4096));
    await store.put(file, bytes);
    const fileId = sha256(bytes);
    const addLines: number[] = [];
    const add = new KeepingQueue();
    await preparePhaseSlice(
      { file, kind: 'users', fileId, phase: 'ADD', firstBatch: 0 },
      depsOf(store, add).deps,
      () => false,
    );
    for (const m of add.messages) addLines.push(...CallMessageSchema.parse(JSON.parse(m)).lines);
    const answers = answersOf(addLines, (line) => (line % 3 === 0 ? 'update' : 'succeeded'));

    const whole = new KeepingQueue();
    await preparePhaseSlice(
      { file, kind: 'users', fileId, phase: 'UPD', from: 'ADD', firstBatch: 0 },
      depsOf(store, whole, answers).deps,
      () => false,
    );
    const sliced = new KeepingQueue();
    const results = await inSlices(depsOf(store, sliced, answers).deps, file, fileId, 'UPD', 'ADD');

    expect(results.length).toBeGreaterThan(5);
    expect(sliced.messages).toEqual(whole.messages);
    const lines = sliced.messages.flatMap((m) => CallMessageSchema.parse(JSON.parse(m)).lines);
    expect(lines).toEqual(addLines.filter((line) => line % 3 === 0));
  });

  it('the SHA-256 check still holds: bytes changed past a checkpoint fail the slice that reaches the end', async () => {
    const [key, bytes] = files[0];
    const file = { bucket: 'landing', key };
    const store = countingReads(new MemoryStore(4096));
    await store.put(file, bytes);
    const { deps, totals } = depsOf(store, new KeepingQueue());
    const first = await preparePhaseSlice(
      { file, kind: 'users', fileId: sha256(bytes), phase: 'ADD', firstBatch: 0 },
      deps,
      () => true,
    );
    // Same length, one letter changed near the end (a record not yet read): the object is no longer the one claimed.
    const changed = Buffer.from(bytes);
    changed[changed.length - 5] = 'X'.charCodeAt(0);
    await store.put(file, changed);
    await expect(
      preparePhaseSlice(
        {
          file,
          kind: 'users',
          fileId: sha256(bytes),
          phase: 'ADD',
          firstBatch: first.nextBatch,
          checkpoint: first.checkpoint!,
        },
        deps,
        () => false,
      ),
    ).rejects.toMatchObject({ name: 'Ledger.Mismatch' });
    expect(totals).toEqual([]);
    // And the resumed slices of an unchanged file end with the hash of the whole file: no mismatch.
    await store.put(file, bytes);
    await expect(inSlices(deps, file, sha256(bytes))).resolves.toBeDefined();
    await expect(inSlices(deps, file, 'e'.repeat(64))).rejects.toMatchObject({ name: 'Ledger.Mismatch' });
  });
});
