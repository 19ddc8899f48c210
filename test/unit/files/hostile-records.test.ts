import Papa from 'papaparse';
import seedrandom from 'seedrandom';
import { gzipSync } from 'node:zlib';
import { CallMessageSchema, callMessageBody, operationFor } from '../../../lambdas/core/crm/call-message';
import { ERROR_NAMES, FileRejectedError } from '../../../lambdas/core/errors';
import { identifyFile } from '../../../lambdas/core/files/identify-file';
import { readRecords } from '../../../lambdas/core/files/read-records';
import { COLUMN_RULES, type FileKind } from '../../../lambdas/core/files/record-schemas';
import { FAILURE_COLUMN } from '../../../lambdas/core/ledger/file-report';
import { chunksOf, collect } from '../helpers';
import { MemoryStore, runThroughPipeline, type PipelineRun } from './in-memory-pipeline';

/**
 * Hostile records, generated from a seed: whatever a partner writes, a record ends as a per-record VALIDATION
 * failure (its neighbours still go), or the file fails as a whole with a named FileRejectedError; no other
 * exception, and nothing invalid is sent to the CRM.
 */

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
const MIB = 1024 * 1024;

/** A value as it is written in each format: the JSON text of the value, and the CSV cell. */
interface Written {
  readonly json: Buffer;
  readonly csv: Buffer;
  /** It may end its line early or swallow the next one (a raw newline or CR): the next record may go with it. */
  readonly breaksLines?: boolean;
}

const csvCell = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
const text = (value: string): Written => ({
  json: Buffer.from(JSON.stringify(value)),
  csv: Buffer.from(csvCell(value)),
});
/** JSON text as it is (a number, an escape, nesting); in CSV the same characters as a cell. */
const jsonText = (json: string): Written => ({ json: Buffer.from(json), csv: Buffer.from(csvCell(json)) });
/** Raw bytes inside a JSON string, and as the CSV cell. */
const bytes = (raw: number[]): Written => ({
  json: Buffer.concat([Buffer.from('"a'), Buffer.from(raw), Buffer.from('b"')]),
  csv: Buffer.concat([Buffer.from('a'), Buffer.from(raw), Buffer.from('b')]),
  breaksLines: raw.includes(0x0a) || raw.includes(0x0d),
});
/** A CSV cell written as it is (odd quoting); in JSON, the same characters inside a string, unescaped. */
const rawCell = (cell: string): Written => ({
  json: Buffer.from(`"${cell}"`),
  csv: Buffer.from(cell),
  breaksLines: true,
});

const HOSTILE: readonly ((rng: Rng) => Written)[] = [
  (rng) => {
    // 20 000 levels of the longest form are 260 KB: still a line the reader takes.
    const depth = pick(rng, [64, 5000, 20_000]);
    return pick(rng, [
      jsonText(`${'['.repeat(depth)}${']'.repeat(depth)}`),
      jsonText(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
      jsonText(`[${'{"toString":'.repeat(depth)}null${'}'.repeat(depth)}]`),
    ]);
  },
  (rng) =>
    text(
      pick(rng, ['x', 'é', '😀', ' ', '"', ',', '\n', '\\']).repeat(
        pick(rng, [101, 201, 65, 64 * 1024, MIB - 500, MIB + 10, 1.5 * MIB]),
      ),
    ),
  (rng) =>
    text(
      pick(rng, [
        '\u0000',
        'a\u0000b',
        '\u0001',
        '\u2028',
        '\u2029',
        '\t',
        'a\r\nb',
        '\ufeffAda',
        'Ada\ufeff',
        '   ',
        '\u00a0',
      ]),
    ),
  (rng) =>
    bytes(
      pick(rng, [
        [0xff],
        [0xc3, 0x28],
        [0xed, 0xa0, 0x80],
        [0xc0, 0xaf],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0x00],
        [0xe2, 0x82],
        [0x0d],
        [0x0a],
      ]),
    ),
  (rng) =>
    jsonText(
      pick(rng, [
        '"\\ud800"',
        '"x\\udc00"',
        '"\\ud83d"',
        '"\\ud83d\\ude00"',
        '"\\udc00\\ud800"',
        '"\\u0000"',
        '"\\u0041da"',
      ]),
    ),
  (rng) =>
    jsonText(
      pick(rng, [
        '1e400',
        '-1e400',
        '-0',
        '0e0',
        '1E2',
        '12345678901234567890',
        '9007199254740993',
        '0.1000000000000000055511151231257827',
        '1'.repeat(400),
        `0.${'0'.repeat(400)}1`,
        '-0.00',
        '1.005',
        '12.5',
        '-12',
        '1e-7',
        `${'0'.repeat(MIB / 2)}1`,
      ]),
    ),
  (rng) =>
    jsonText(
      pick(rng, [
        'true',
        'false',
        'null',
        '[]',
        '{}',
        '""',
        '"   "',
        '{"__proto__":{"x":1}}',
        '{"toString":1}',
        '{"valueOf":null,"toString":null}',
      ]),
    ),
  (rng) => text(`${'0'.repeat(pick(rng, [64 * 1024, MIB / 2]))}${pick(rng, ['x', '.123', '1', '.5'])}`),
  (rng) =>
    rawCell(
      pick(rng, ['"abc"def', '"unclosed', 'a"b', '""', '"a""b"', '"x\r\ny"', '" spaced "', '"a"   ', 'a\rb', '"']),
    ),
];

const BASE: Record<FileKind, Record<string, string>> = {
  users: {
    customer_id: 'C',
    first_name: 'Ada',
    last_name: 'Alder',
    email: 'ada@example.com',
    phone: '+44 7911 123456',
    country: 'GB',
    created_at: '2026-01-01T00:00:00Z',
  },
  transactions: {
    transaction_id: 'T',
    customer_id: 'C1',
    amount: '-12.50',
    currency: 'EUR',
    occurred_at: '2026-01-01T10:00:00+01:00',
    type: 'refund',
    merchant: 'Shop',
  },
};
const ID_COLUMN: Record<FileKind, string> = { users: 'customer_id', transactions: 'transaction_id' };
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype'];

interface Row {
  /** Keys in order; a key may repeat (JSON Lines only). */
  readonly cells: [string, Written][];
  readonly lineEnd: string;
  readonly prefix: string;
  /** Columns left out: in CSV the cell is missing, so the row has fewer fields than the header. */
  readonly dropped: ReadonlySet<string>;
}

interface Case {
  readonly kind: FileKind;
  readonly format: 'csv' | 'jsonl';
  readonly gzip: boolean;
  readonly description: string[];
  readonly rows: Row[];
  /** The hostile row may take the next record with it. */
  readonly breaksLines: boolean;
  /** The hostile row breaks a rule whatever else it holds. */
  readonly mustNotSend: boolean;
}

const goodRow = (kind: FileKind, id: string): Row => ({
  cells: Object.entries({ ...BASE[kind], [ID_COLUMN[kind]]: id }).map(([k, v]) => [k, text(v)]),
  lineEnd: '\n',
  prefix: '',
  dropped: new Set(),
});

/** The `index`th case: its first change sets each column of the kind to each kind of hostile value in turn. */
function hostileCase(rng: Rng, kind: FileKind, format: 'csv' | 'jsonl', index: number): Case {
  const description: string[] = [];
  const row = goodRow(kind, 'H1');
  const cells = row.cells;
  let lineEnd = '\n';
  let prefix = '';
  let breaksLines = false;
  let mustNotSend = false;
  const dropped = new Set<string>();
  const columns = COLUMN_RULES[kind].map((c) => c.column);
  for (let n = 0, changes = 1 + Math.floor(rng() * 3); n < changes; n++) {
    const mutation =
      n === 0 ? 'value' : pick(rng, ['value', 'value', 'extra', 'repeat', 'many', 'lineEnd', 'bom', 'drop', 'proto']);
    const hostile = n === 0 ? HOSTILE[Math.floor(index / columns.length) % HOSTILE.length] : undefined;
    const value = (hostile ?? pick(rng, HOSTILE))(rng);
    const shown = (w: Written) => JSON.stringify(w.json.subarray(0, 40).toString('latin1'));
    if (mutation === 'value') {
      const at = n === 0 ? index % columns.length : Math.floor(rng() * cells.length);
      cells[at] = [cells[at]![0], value];
      breaksLines ||= Boolean(value.breaksLines);
      description.push(`${cells[at]![0]}=${shown(value)}`);
    } else if (mutation === 'extra') {
      const key = pick(rng, [...PROTOTYPE_KEYS, 'Customer_ID ', 'EMAIL', ' notes ']);
      cells.push([key, value]);
      breaksLines ||= Boolean(value.breaksLines);
      description.push(`+${key}=${shown(value)}`);
    } else if (mutation === 'repeat' && format === 'jsonl') {
      const column = pick(rng, columns);
      cells.push([pick(rng, [column, column.toUpperCase()]), value]);
      breaksLines ||= Boolean(value.breaksLines);
      description.push(`${column} again=${shown(value)}`);
    } else if (mutation === 'many') {
      for (let i = 0; i < 5000; i++) cells.push([`x${i}`, pick(rng, [text(''), jsonText('1'), jsonText('[[1]]')])]);
      description.push('5000 more columns');
    } else if (mutation === 'lineEnd') {
      lineEnd = pick(rng, ['\r\n', '\r', '\n\r', '\r\r\n', '\u2028\n']);
      breaksLines ||= lineEnd.includes('\r') && !lineEnd.endsWith('\n');
      description.push(`line end ${JSON.stringify(lineEnd)}`);
    } else if (mutation === 'bom') {
      prefix = '\ufeff';
      description.push('BOM first');
    } else if (mutation === 'proto' && format === 'jsonl') {
      // Every field under `__proto__`: as the prototype of the fields, they would pass every rule.
      const inner = cells.splice(0, cells.length);
      const json = Buffer.concat([
        Buffer.from('{'),
        ...inner.flatMap(([key, written], i) => [
          Buffer.from(`${i > 0 ? ',' : ''}${JSON.stringify(key)}:`),
          written.json,
        ]),
        Buffer.from('}'),
      ]);
      cells.push(['__proto__', { json, csv: json }]);
      mustNotSend = true;
      description.push('all under __proto__');
    } else if (mutation === 'drop') {
      const at = Math.floor(rng() * cells.length);
      description.push(`no ${cells[at]![0]}`);
      dropped.add(cells[at]![0]);
      cells.splice(at, 1);
    }
  }
  const gzip = rng() < 0.2;
  return {
    kind,
    format,
    gzip,
    description,
    rows: [goodRow(kind, 'G1'), { cells, lineEnd, prefix, dropped }, goodRow(kind, 'G2')],
    breaksLines,
    mustNotSend,
  };
}

/** The file's bytes: a CSV header of every key (a dropped one left empty), or one object per line. */
function fileBytes(c: Case): Buffer {
  const parts: Buffer[] = [];
  if (c.format === 'jsonl') {
    for (const row of c.rows) {
      parts.push(Buffer.from(`${row.prefix}{`));
      row.cells.forEach(([key, value], i) => {
        parts.push(Buffer.from(`${i > 0 ? ',' : ''}${JSON.stringify(key)}:`), value.json);
      });
      parts.push(Buffer.from(`}${row.lineEnd}`));
    }
  } else {
    const header: string[] = [];
    for (const row of c.rows) for (const [key] of row.cells) if (!header.includes(key)) header.push(key);
    for (const row of c.rows) for (const key of row.dropped) if (!header.includes(key)) header.push(key);
    parts.push(Buffer.from(`${header.map(csvCell).join(',')}\n`));
    for (const row of c.rows) {
      const byKey = new Map(row.cells);
      // A dropped column's cell is left out (the field count breaks); other columns a row lacks are empty.
      const keys = header.filter((key) => !row.dropped.has(key));
      parts.push(Buffer.from(row.prefix));
      keys.forEach((key, i) => {
        parts.push(Buffer.from(i > 0 ? ',' : ''), byKey.get(key)?.csv ?? Buffer.alloc(0));
      });
      parts.push(Buffer.from(row.lineEnd));
    }
  }
  const plain = Buffer.concat(parts);
  return c.gzip ? gzipSync(plain) : plain;
}

const fileName = (c: Case) => `${c.kind}_acme_20261124.${c.format}${c.gzip ? '.gz' : ''}`;

/** The thrown error, which must be a named whole-file failure. */
function expectFileRejected(error: unknown, c: Case) {
  const context = `${fileName(c)} ${c.description.join('; ')}`;
  expect({ context, error: error instanceof FileRejectedError }).toEqual({ context, error: true });
  const name = (error as FileRejectedError).name;
  expect({ context, name: ERROR_NAMES.includes(name) && name.startsWith('File.') }).toEqual({ context, name: true });
}

/** What a run sent and reported adds up, only valid records went out, and the failed records can go back. */
async function expectPerRecordOutcomes(run: PipelineRun, c: Case) {
  const context = `${fileName(c)} ${c.description.join('; ')}`;
  const operation = operationFor(c.kind, 'ADD');
  const sent: string[] = [];
  for (const batch of run.batches) {
    const message = CallMessageSchema.safeParse(
      JSON.parse(callMessageBody(batch, { fileId: run.prepared.sha256, phase: 'ADD', operation })),
    );
    expect({ context, issues: message.error?.issues }).toEqual({ context, issues: undefined });
    for (const record of message.data?.records ?? []) sent.push(String(record.customerId ?? ''));
    for (const record of message.data?.records ?? []) sent.push(String(record.transactionId ?? ''));
  }
  expect({ context, G1: sent.includes('G1') }).toEqual({ context, G1: true });
  if (!c.breaksLines) expect({ context, G2: sent.includes('G2') }).toEqual({ context, G2: true });
  if (c.mustNotSend) expect({ context, H1: sent.includes('H1') }).toEqual({ context, H1: false });
  const reasons = run.rejected.map((r) => r.reason);
  expect({ context, reasons: reasons.filter((r) => !/^VALIDATION: [a-z_]+: \S/.test(r)) }).toEqual({
    context,
    reasons: [],
  });
  const accepted = run.batches.reduce((n, b) => n + b.items.length, 0);
  expect(run.prepared.received).toBe(accepted + run.rejected.length);
  expect(run.final).toMatchObject({ received: run.prepared.received, succeeded: accepted, failed: reasons.length });
  const results = Papa.parse<string[]>(run.results.trimEnd(), { delimiter: ',', newline: '\n' });
  expect({ context, errors: results.errors, rows: results.data.length }).toEqual({
    context,
    errors: [],
    rows: run.prepared.received + 1,
  });
  // The failed-records file reads back as its format, one record per failure, with the reason beside it.
  const failed = await collect(
    readRecords(chunksOf(run.failedRecords), { name: `fixed.${c.format}`, maxRecordChars: 4 * MIB }),
  );
  expect({ context, reasons: failed.map((r) => r.fields[FAILURE_COLUMN]) }).toEqual({ context, reasons });
}

async function runCase(c: Case) {
  const bytesOfFile = fileBytes(c);
  const store = new MemoryStore();
  const ref = { bucket: 'landing', key: `incoming/acme/${fileName(c)}` };
  await store.put(ref, bytesOfFile);
  let identifyError: unknown;
  try {
    await identifyFile(store, ref, {
      maxFileSizeBytes: 10 * MIB,
      maxDecompressedBytes: 20 * MIB,
      acceptedEncodings: ['csv', 'jsonl', 'gzip'],
    });
  } catch (error) {
    identifyError = error;
  }
  let run: PipelineRun | undefined;
  let runError: unknown;
  try {
    run = await runThroughPipeline(fileName(c), c.kind, bytesOfFile, { prepare: { maxDecompressedBytes: 20 * MIB } });
  } catch (error) {
    runError = error;
  }
  if (identifyError !== undefined || runError !== undefined) {
    expectFileRejected(identifyError ?? runError, c);
    // Classification reads the file as prepare does: it refuses what prepare would.
    expect((runError as Error | undefined)?.name).toBe((identifyError as Error | undefined)?.name);
    return 'file';
  }
  await expectPerRecordOutcomes(run!, c);
  return run!.rejected.length > 0 ? 'record' : 'valid';
}

describe('hostile records (seeded)', () => {
  it.each([
    ['users', 'csv'],
    ['users', 'jsonl'],
    ['transactions', 'csv'],
    ['transactions', 'jsonl'],
  ] as const)('%s %s: each record fails alone as VALIDATION, or the file as a whole by name', async (kind, format) => {
    const rng = seedrandom(`hostile-${kind}-${format}`);
    const outcomes = { file: 0, record: 0, valid: 0 };
    const cases = COLUMN_RULES[kind].length * HOSTILE.length;
    for (let i = 0; i < cases; i++) outcomes[await runCase(hostileCase(rng, kind, format, i))]++;
    // The seed gives a spread of all three.
    expect(outcomes.record).toBeGreaterThan(20);
    expect(outcomes.file).toBeGreaterThan(3);
  });
});
