import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { callBody, callMessageBody, CallMessageSchema, operationFor } from '../../../lambdas/core/crm/call-message';
import { batchBody, type PlannedBatch } from '../../../lambdas/core/files/plan-batches';
import { LineSet, prepareFile, type RejectedRecord } from '../../../lambdas/core/files/prepare-file';
import type { FileKind } from '../../../lambdas/core/files/record-schemas';
import { generateFiles, type GeneratedFile } from '../../../lambdas/local/cli/generate-files';
import { chunksOf, tempDir } from '../helpers';

async function prepare(path: string, kind: FileKind, maxBytes = 200 * 1024) {
  const batches: PlannedBatch[] = [];
  const rejected: RejectedRecord[] = [];
  const summary = await prepareFile(createReadStream(path, { highWaterMark: 4096 }), {
    name: basename(path),
    kind,
    maxRecords: 100,
    maxBytes,
    onBatches: (b) => void batches.push(...b),
    onRejected: (r) => void rejected.push(...r),
  });
  return { summary, batches, rejected };
}

describe('prepareFile', () => {
  const dir = tempDir();
  let csv: GeneratedFile[];
  let gz: GeneratedFile[];
  let jsonl: GeneratedFile[];
  let jsonlGz: GeneratedFile[];

  beforeAll(async () => {
    const options = { users: 1500, transactions: 2500, badRate: 0.05, seed: 'prepare' };
    csv = await generateFiles({ ...options, outDir: `${dir.path}/csv` });
    gz = await generateFiles({ ...options, outDir: `${dir.path}/gz`, gzip: true });
    jsonl = await generateFiles({ ...options, outDir: `${dir.path}/jsonl`, format: 'jsonl' });
    jsonlGz = await generateFiles({ ...options, outDir: `${dir.path}/jsonl-gz`, format: 'jsonl', gzip: true });
  });
  afterAll(() => dir.remove());

  it.each(['users', 'transactions'] as const)(
    'sends every valid %s record once and fails each bad one with its line and reason',
    async (kind) => {
      const file = csv.find((f) => f.kind === kind) as GeneratedFile;
      const { summary, batches, rejected } = await prepare(file.path, kind);
      const bad = Object.values(file.bad).reduce((a, b) => a + b, 0);
      expect(bad).toBeGreaterThan(50);
      expect(summary).toMatchObject({
        received: file.records,
        rejected: bad,
        accepted: file.records - bad,
        batches: batches.length,
      });
      expect(rejected.every((r) => /^VALIDATION: [a-z_]+: .+/.test(r.reason))).toBe(true);
      const rejectedByColumn: Record<string, number> = {};
      for (const r of rejected) {
        const column = r.reason.split(': ')[1] as string;
        rejectedByColumn[column] = (rejectedByColumn[column] ?? 0) + 1;
      }
      expect(rejectedByColumn).toEqual(file.bad);
      const lines = [...batches.flatMap((b) => b.items.map((i) => i.line)), ...rejected.map((r) => r.line)];
      expect(new Set(lines).size).toBe(file.records);
      expect(batches.map((b) => b.index)).toEqual(batches.map((_, i) => i));
      expect(batches.every((b) => b.items.length <= 100)).toBe(true);
      expect(batches.slice(0, -1).every((b) => b.items.length === 100)).toBe(true);
    },
  );

  it('gives the line a record starts on, as a partner counts lines in the file', async () => {
    const file = csv.find((f) => f.kind === 'transactions') as GeneratedFile;
    const { batches, rejected } = await prepare(file.path, 'transactions');
    const text = readFileSync(file.path, 'utf8');
    const lineStarts = [0];
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lineStarts.push(at + 1);
    for (const r of rejected.slice(0, 40)) {
      const id = r.fields.transaction_id as string;
      expect(text.slice(lineStarts[r.line - 1], lineStarts[r.line - 1]! + id.length)).toBe(id);
    }
    const item = batches[3]!.items[50]!;
    const id = JSON.parse(item.json).transactionId as string;
    expect(text.slice(lineStarts[item.line - 1], lineStarts[item.line - 1]! + id.length)).toBe(id);
  });

  it('identifies the file by the SHA-256 of its bytes as uploaded', async () => {
    for (const file of [csv[0]!, gz[0]!]) {
      const { summary } = await prepare(file.path, file.kind);
      const bytes = readFileSync(file.path);
      expect(summary.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(summary.bytes).toBe(bytes.length);
    }
    const [plainUsers, gzUsers] = [csv[0]!, gz[0]!];
    expect((await prepare(plainUsers.path, 'users')).summary.sha256).not.toBe(
      (await prepare(gzUsers.path, 'users')).summary.sha256,
    );
  });

  it('prepares the same batches from CSV, CSV.gz, JSON Lines and JSON Lines.gz of the same data', async () => {
    const bodies = async (files: GeneratedFile[]) => {
      const { batches, rejected } = await prepare(files.find((f) => f.kind === 'transactions')!.path, 'transactions');
      return { bodies: batches.map((b) => batchBody(b.items)), rejected: rejected.map((r) => r.reason) };
    };
    const fromCsv = await bodies(csv);
    expect(await bodies(gz)).toEqual(fromCsv);
    const fromJsonl = await bodies(jsonl);
    expect(fromJsonl.rejected).toEqual(fromCsv.rejected);
    expect(fromJsonl.bodies).toEqual(fromCsv.bodies);
    expect(await bodies(jsonlGz)).toEqual(fromJsonl);
  });

  it('respects the byte budget as well as the record count', async () => {
    const { batches } = await prepare(csv[0]!.path, 'users', 4096);
    expect(batches.every((b) => b.bytes <= 4096 && Buffer.byteLength(batchBody(b.items)) === b.bytes)).toBe(true);
    expect(batches.some((b) => b.items.length < 100)).toBe(true);
  });

  it('fails a file over the size limit as File.TooLarge, and an unreadable file before any batch is sent', async () => {
    const onBatches = jest.fn();
    const options = { kind: 'users' as const, maxRecords: 100, maxBytes: 10_000, onBatches, onRejected: jest.fn() };
    await expect(
      prepareFile(createReadStream(csv[0]!.path), { ...options, name: 'u.csv', maxFileSizeBytes: 1000 }),
    ).rejects.toMatchObject({
      name: 'File.TooLarge',
    });
    await expect(
      prepareFile(chunksOf('customer_id,first_name\nC1,A\n'), { ...options, name: 'u.csv' }),
    ).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: 'line 1: missing required columns last_name, email, country, created_at',
    });
    expect(onBatches).not.toHaveBeenCalled();
  });

  it('succeeds with zero records for an empty file', async () => {
    writeFileSync(`${dir.path}/empty.csv`, '');
    const { summary, batches } = await prepare(`${dir.path}/empty.csv`, 'users');
    expect(summary).toMatchObject({ received: 0, accepted: 0, rejected: 0, batches: 0, bytes: 0 });
    expect(batches).toEqual([]);
  });
});

describe('prepareFile for a later phase, and the queue messages', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('re-batches only the given lines, numbered from 0, into messages the dispatcher accepts', async () => {
    const [users] = await generateFiles({
      users: 700,
      transactions: 0,
      outDir: dir.path,
      badRate: 0.05,
      seed: 'phase',
    });
    const all = await prepare(users!.path, 'users');
    const acceptedLines = all.batches.flatMap((b) => b.items.map((i) => i.line));
    // Say every third accepted record answered 8006: the UPD phase takes exactly those.
    const updateLines = new Set(acceptedLines.filter((_, i) => i % 3 === 0));
    const batches: PlannedBatch[] = [];
    const summary = await prepareFile(createReadStream(users!.path), {
      name: basename(users!.path),
      kind: 'users',
      maxRecords: 100,
      maxBytes: 200 * 1024,
      onlyLines: updateLines,
      onBatches: (b) => void batches.push(...b),
      onRejected: () => {
        throw new Error('lines of a later phase were valid before and are valid again');
      },
    });
    expect(summary).toMatchObject({ received: updateLines.size, accepted: updateLines.size, rejected: 0, batches: 3 });
    expect(batches.map((b) => b.index)).toEqual([0, 1, 2]);
    expect(batches.flatMap((b) => b.items.map((i) => i.line))).toEqual([...updateLines]);

    const operation = operationFor('users', 'UPD');
    const messages = batches.map((b) =>
      CallMessageSchema.parse(JSON.parse(callMessageBody(b, { fileId: summary.sha256, phase: 'UPD', operation }))),
    );
    expect(messages[0]).toMatchObject({ fileId: summary.sha256, phase: 'UPD', batchIndex: 0, operation: 'UPD_CUST' });
    expect(messages.flatMap((m) => m.lines)).toEqual([...updateLines]);
    // The message body carries the same records, byte for byte, as the batch's call body.
    expect(callBody(messages[1]!)).toBe(batchBody(batches[1]!.items));
    expect(
      Buffer.byteLength(callMessageBody(batches[0]!, { fileId: summary.sha256, phase: 'UPD', operation })),
    ).toBeLessThan(256 * 1024);
  });

  it('in slices: each stops where it is told and the next resumes there; together they hand on every batch once', async () => {
    const [trx] = await generateFiles({
      users: 0,
      transactions: 3000,
      outDir: dir.path,
      badRate: 0.02,
      seed: 'slices',
    });
    const whole = await prepare(trx!.path, 'transactions');
    const handed: PlannedBatch[] = [];
    let firstBatch = 0;
    let slices = 0;
    for (;;) {
      slices++;
      let handings = 0;
      const summary = await prepareFile(createReadStream(trx!.path, { highWaterMark: 4096 }), {
        name: basename(trx!.path),
        kind: 'transactions',
        maxRecords: 100,
        maxBytes: 200 * 1024,
        firstBatch,
        shouldStop: () => ++handings >= 2,
        onBatches: (b) => void handed.push(...b),
        onRejected: () => undefined,
      });
      firstBatch = summary.nextBatch;
      if (summary.complete) {
        expect(summary).toMatchObject({ sha256: whole.summary.sha256, batches: whole.summary.batches });
        break;
      }
    }
    expect(slices).toBeGreaterThan(3);
    expect(handed.map((b) => b.index)).toEqual(whole.batches.map((b) => b.index));
    expect(handed.flatMap((b) => b.items)).toEqual(whole.batches.flatMap((b) => b.items));
  });

  it('LineSet: membership of lines given in any order, one bit a line of the file', () => {
    const lines = new LineSet([9, 2, 70_000, 5, 3, 9]);
    expect(lines.size).toBe(5);
    expect([1, 2, 3, 4, 5, 9, 10, 69_999, 70_000, 70_001].filter((l) => lines.has(l))).toEqual([2, 3, 5, 9, 70_000]);
    expect([-1, 2.5, 2 ** 32 + 2, Number.NaN].some((l) => lines.has(l))).toBe(false);
    expect(lines.byteLength).toBeLessThanOrEqual(2 * Math.ceil(70_001 / 8));
    expect(new LineSet([]).has(1)).toBe(false);
    expect(() => new LineSet([1.5])).toThrow(RangeError);
  });

  it('knows the operation of every phase, and refuses what does not exist', () => {
    expect(operationFor('users', 'ADD')).toBe('ADD_CUST');
    expect(operationFor('transactions', 'RETRY2')).toBe('ADD_TRX');
    expect(() => operationFor('users', 'RETRY1')).toThrow('users have no RETRY1 phase');
    expect(() => operationFor('transactions', 'LATER')).toThrow('not a phase: LATER');
  });
});

it('refuses to build a message from a file id or phase that would need escaping', () => {
  const batch = { index: 0, bytes: 20, items: [{ line: 2, json: '{}' }] };
  expect(() => callMessageBody(batch, { fileId: 'x"', phase: 'ADD', operation: 'ADD_CUST' })).toThrow(RangeError);
  expect(() => callMessageBody(batch, { fileId: 'a'.repeat(64), phase: 'ADD"', operation: 'ADD_CUST' })).toThrow(
    RangeError,
  );
});
