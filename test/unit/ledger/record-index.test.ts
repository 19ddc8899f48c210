import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import { readRecords } from '../../../lambdas/core/files/read-records';
import { requiredColumns } from '../../../lambdas/core/files/record-schemas';
import { reportFile, type RecordResult } from '../../../lambdas/core/ledger/file-report';
import {
  decodeEntries,
  encodeEntries,
  encodeShard,
  entriesText,
  entriesWithId,
  entryOf,
  MAX_ERROR_CHARS,
  RECORD_INDEX_SHARDS,
  RecordIndexBuffer,
  shardOf,
  type IndexChunk,
  type IndexEntry,
} from '../../../lambdas/core/ledger/record-index';
import { chunksOf } from '../helpers';

const result = (line: number, recordId: string, outcome: Partial<RecordResult> = {}): RecordResult => ({
  line,
  recordId,
  operations: ['ADD_CUST'],
  outcome: 'succeeded',
  code: 200,
  attempts: 1,
  ...outcome,
});

const FILE = { fileId: 'a'.repeat(64), name: 'users_acme_20261124.csv', partner: 'acme', kind: 'users' } as const;

/** A writer that keeps what it is given, and the buffer's size at each write. */
function recordingWriter() {
  const chunks: IndexChunk[] = [];
  return { chunks, writeChunk: (chunk: IndexChunk) => Promise.resolve(void chunks.push(chunk)) };
}

describe('record index entries', () => {
  it('round-trip through the stored encoding: ids and errors with any characters, codes, lines', () => {
    const entries: IndexEntry[] = [
      { id: 'C-1042', line: 2, outcome: 'succeeded', code: '200' },
      { id: 'C "quoted", \\ back\nline', line: 7, outcome: 'failed', code: 'VALIDATION', error: 'email: an email' },
      { id: 'Åsa_ünï', line: 1_000_000_123, outcome: 'failed', code: '4404', error: 'CUSTOMER_NOT_FOUND' },
      { id: 'C9', line: 1_000_000_124, outcome: 'failed' },
    ];
    expect(decodeEntries(encodeEntries(entries))).toEqual(entries);
    expect(decodeEntries(encodeEntries([]))).toEqual([]);
  });

  it("take a failure's reason as its code, a success's CRM code, and cut the error to 200 characters", () => {
    expect(entryOf(result(2, 'C1'))).toEqual({ id: 'C1', line: 2, outcome: 'succeeded', code: '200' });
    const conflicting = result(3, 'C2', {
      outcome: 'failed',
      code: 200,
      reason: 'CONFLICTING_PROFILE',
      error: 'CONFLICTING_PROFILE',
    });
    expect(entryOf(conflicting)).toMatchObject({ outcome: 'failed', code: 'CONFLICTING_PROFILE' });
    const validation = result(4, 'C3', {
      outcome: 'failed',
      reason: 'VALIDATION',
      error: 'x'.repeat(500),
      code: undefined,
      attempts: 0,
    });
    const entry = entryOf(validation);
    expect(entry).toMatchObject({ code: 'VALIDATION' });
    expect(entry?.error).toHaveLength(MAX_ERROR_CHARS);
    // No id, or one no partner could mean (a whole line where an id should be): not indexed.
    expect(entryOf(result(5, ''))).toBeUndefined();
    expect(entryOf(result(6, 'C'.repeat(257)))).toBeUndefined();
  });

  it('are found by exact id only: a longer id that starts alike is not a hit', () => {
    const text = entriesText(
      encodeEntries([
        { id: 'C1', line: 2, outcome: 'succeeded', code: '200' },
        { id: 'C10', line: 3, outcome: 'succeeded', code: '200' },
        { id: 'C1', line: 9, outcome: 'failed', code: '3217', error: 'INVALID_DATA "C10"' },
      ]),
    );
    expect(entriesWithId(text, 'C1').map((e) => e.line)).toEqual([2, 9]);
    expect(entriesWithId(text, 'C10').map((e) => e.line)).toEqual([3]);
    expect(entriesWithId(text, 'C100')).toEqual([]);
  });

  it("split a shard's entries too large for one item into parts that decode to the same entries", () => {
    const entries: IndexEntry[] = Array.from({ length: 1000 }, (_, i) => ({
      id: `T${String(i).padStart(8, '0')}`,
      line: 10 + i * 3,
      outcome: 'failed',
      code: 'VALIDATION',
      error: `amount: ${i} ${'z'.repeat(i % 50)}`,
    }));
    const parts = encodeShard(7, entries, 2_000);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((p) => p.part)).toEqual(parts.map((_, i) => i));
    for (const part of parts) expect(part.entries.length).toBeLessThanOrEqual(2_000);
    expect(parts.flatMap((p) => decodeEntries(p.entries))).toEqual(entries);
    expect(parts.reduce((sum, p) => sum + p.count, 0)).toBe(1000);
    expect(encodeShard(7, entries)).toHaveLength(1);
  });
});

describe('shardOf', () => {
  it('is stable: the same shard for an id in every run (FNV-1a 32-bit mod 4096)', () => {
    expect(RECORD_INDEX_SHARDS).toBe(4096);
    // Fixed values: a change of hash would strand every item already written.
    expect(shardOf('C-1042')).toBe(shardOf('C-1042'));
    expect([shardOf(''), shardOf('a'), shardOf('foobar')]).toEqual([
      0x811c9dc5 % 4096,
      0xe40c292c % 4096,
      0xbf9cf968 % 4096,
    ]);
  });

  it('spreads realistic ids evenly over the shards', () => {
    const counts = new Array<number>(RECORD_INDEX_SHARDS).fill(0);
    const ids = 409_600;
    for (let n = 1; n <= ids; n++) {
      const shard = shardOf(`C${String(n).padStart(8, '0')}`);
      counts[shard] = (counts[shard] as number) + 1;
    }
    // 100 a shard on average (and none outside 0..4095): none empty, none more than twice that.
    expect(counts).toHaveLength(RECORD_INDEX_SHARDS);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(200);
  });
});

describe('RecordIndexBuffer', () => {
  it('never holds more than flushRecords entries, and writes chunks from deterministic first lines', async () => {
    const writer = recordingWriter();
    const buffer = new RecordIndexBuffer(writer, FILE, { flushRecords: 100, shards: 16 });
    let sizes = 0;
    let promises = 0;
    for (let i = 0; i < 250; i++) {
      const told = buffer.add(result(i + 2, `C${i}`));
      if (told) {
        promises++;
        await told;
      }
      expect(buffer.size).toBeLessThanOrEqual(100);
      sizes = Math.max(sizes, buffer.size);
    }
    expect(sizes).toBe(100);
    // A promise only when the buffer was written: the merge awaits twice in 250 records.
    expect(promises).toBe(2);
    await buffer.flush({ finishedAt: '2026-11-24T10:00:00.000Z' });
    await buffer.flush();
    expect(writer.chunks.map((c) => [c.firstLine, c.finishedAt])).toEqual([
      [2, undefined],
      [102, undefined],
      [202, '2026-11-24T10:00:00.000Z'],
    ]);
    for (const chunk of writer.chunks) {
      expect(chunk.file).toEqual(FILE);
      expect(new Set(chunk.parts.map((p) => p.shard)).size).toBe(chunk.parts.length);
      for (const part of chunk.parts) {
        for (const entry of decodeEntries(part.entries)) expect(shardOf(entry.id, 16)).toBe(part.shard);
      }
    }
    const lines = writer.chunks.flatMap((c) => c.parts.flatMap((p) => decodeEntries(p.entries).map((e) => e.line)));
    expect(lines.sort((a, b) => a - b)).toEqual(Array.from({ length: 250 }, (_, i) => i + 2));
  });

  it('is told every record by the report, in line order, VALIDATION failures too', async () => {
    const csv = [
      'customer_id,first_name,last_name,email,phone,country,created_at',
      'C1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z',
      'C2,Ben,Birch,not-an-email,,GB,2026-01-01T00:00:00Z',
      'C3,Eve,Cedar,eve@example.com,,GB,2026-01-01T00:00:00Z',
    ].join('\n');
    const outcomes: RecordOutcome[] = [
      { line: 2, status: 'succeeded', code: 200 },
      { line: 4, status: 'failed', code: 3217, reason: '3217', error: 'INVALID_DATA' },
    ];
    const answer: CallAnswer = {
      fileId: FILE.fileId,
      phase: 'ADD',
      batchIndex: 0,
      operation: 'ADD_CUST',
      outcomes,
      attempts: 1,
      replayed: false,
    };
    const writer = recordingWriter();
    const buffer = new RecordIndexBuffer(writer, FILE);
    const sink = { write: () => undefined };
    await reportFile({
      name: FILE.name,
      sha256: FILE.fileId,
      kind: 'users',
      format: 'csv',
      source: readRecords(chunksOf(csv, 32), { name: FILE.name, requiredColumns: requiredColumns('users') }),
      addAnswers: (async function* () {
        yield answer;
      })(),
      laterPhases: [],
      results: sink,
      failedRecords: sink,
      onRecord: (told) => buffer.add(told),
    });
    await buffer.flush();
    const entries = writer.chunks.flatMap((c) => c.parts.flatMap((p) => decodeEntries(p.entries)));
    expect(entries.sort((a, b) => a.line - b.line)).toEqual([
      { id: 'C1', line: 2, outcome: 'succeeded', code: '200' },
      { id: 'C2', line: 3, outcome: 'failed', code: 'VALIDATION', error: 'VALIDATION: email: an email address' },
      { id: 'C3', line: 4, outcome: 'failed', code: '3217', error: 'INVALID_DATA' },
    ]);
  });
});
