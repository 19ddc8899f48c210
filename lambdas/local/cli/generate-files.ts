import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import seedrandom from 'seedrandom';
import type { FileKind } from '../../core/files/record-schemas';

export type GeneratedFormat = 'csv' | 'jsonl';

export interface GenerateOptions {
  readonly users: number;
  readonly transactions: number;
  readonly outDir: string;
  readonly gzip?: boolean;
  readonly format?: GeneratedFormat;
  /** Share of rows (0..1) given one bad value, of each kind file-formats.md names, in turn. @default 0 */
  readonly badRate?: number;
  /** Same seed, same bytes. @default 1 */
  readonly seed?: string | number;
  /** @default 'demo' */
  readonly partner?: string;
  /** yyyymmdd in the file names. @default '20261124' */
  readonly date?: string;
  /** Customer ids are `<prefix><n>`: distinct prefixes give distinct customers across loads. @default 'C' */
  readonly customerPrefix?: string;
  /** Transaction ids are `<prefix><n>`. @default 'T' */
  readonly transactionPrefix?: string;
  /** Number of the file in the name (`_001`). @default 1 */
  readonly sequence?: number;
}

export interface GeneratedFile {
  readonly path: string;
  readonly kind: FileKind;
  readonly records: number;
  /** Rows written with a bad value, by the column that is bad. */
  readonly bad: Readonly<Record<string, number>>;
}

type Row = Record<string, string>;

/** One bad value per entry: the column it breaks and how (file-formats.md, the rules of each column). */
const BAD_VALUES: Record<FileKind, ReadonlyArray<readonly [column: string, value: (n: number) => string]>> = {
  users: [
    ['customer_id', (n) => `C ${n}!`],
    ['customer_id', () => 'C'.repeat(65)],
    ['first_name', () => ''],
    ['last_name', () => 'L'.repeat(101)],
    ['email', (n) => `user${n}.example.com`],
    ['phone', () => '12345'],
    ['phone', () => '+12 34'],
    ['country', () => 'XX'],
    ['country', () => 'USA'],
    ['created_at', () => '2026-13-01T00:00:00Z'],
    ['created_at', () => 'yesterday'],
  ],
  transactions: [
    ['transaction_id', (n) => `T/${n}`],
    ['customer_id', () => ''],
    ['amount', () => '12.345'],
    ['amount', () => '1,000.00'],
    ['amount', () => 'ten'],
    ['currency', () => 'EURO'],
    ['currency', () => 'ZZZ'],
    ['occurred_at', () => '2026-02-30T10:00:00Z'],
    ['type', () => 'gift'],
    ['merchant', () => 'M'.repeat(201)],
  ],
};

const COLUMNS: Record<FileKind, readonly string[]> = {
  users: ['customer_id', 'first_name', 'last_name', 'email', 'phone', 'country', 'created_at'],
  transactions: ['transaction_id', 'customer_id', 'amount', 'currency', 'occurred_at', 'type', 'merchant'],
};

const FIRST_NAMES = ['Ada', 'Ben', 'Chloé', 'Dmitri', 'Eve', 'Farah', 'Goran', 'Hana', 'Ivo', 'Jun', 'Kofi', 'Lena'];
const LAST_NAMES = ['Alder', 'Birch', 'Cedar', "O'Hazel", 'Maple, Jr.', 'Rowan', 'Spruce', 'Willow', 'Yew', 'Larch'];
const COUNTRIES = ['GB', 'us', 'DE', 'fr', 'ES', 'IT', 'NL', 'SE', 'PL', 'JP', 'BR', 'CA'];
const CURRENCIES = ['EUR', 'usd', 'GBP', 'SEK', 'jpy', 'PLN', 'CAD'];
const TYPES = ['purchase', 'refund', 'adjustment', '', 'Purchase'];
const MERCHANTS = ['Corner Shop', 'Books & Co', '"The" Bakery, Ltd', 'Main St\nBranch 2', '', 'Café Ünïcode'];

/** A timestamp in one of the forms partners send: zone Z, an offset, none (UTC), space separator. */
function timestamp(random: () => number): string {
  const day = 1 + Math.floor(random() * 28);
  const month = 1 + Math.floor(random() * 12);
  const hour = Math.floor(random() * 24);
  const minute = Math.floor(random() * 60);
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `2026-${p(month)}-${p(day)}`;
  switch (Math.floor(random() * 4)) {
    case 0:
      return `${date}T${p(hour)}:${p(minute)}:00Z`;
    case 1:
      return `${date}T${p(hour)}:${p(minute)}:30+02:00`;
    case 2:
      return `${date}T${p(hour)}:${p(minute)}:00`;
    default:
      return `${date} ${p(hour)}:${p(minute)}`;
  }
}

const pick = <T>(random: () => number, values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;

const csvValue = (value: string) => (/[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

function formatRow(format: GeneratedFormat, columns: readonly string[], row: Row): string {
  if (format === 'jsonl') return JSON.stringify(row);
  return columns.map((column) => csvValue(row[column] ?? '')).join(',');
}

/** Lines joined into blocks, so the stream sees a few large writes rather than millions of small ones. */
function* blocksOf(lines: Iterable<string>): Generator<string> {
  let block: string[] = [];
  for (const line of lines) {
    block.push(line);
    if (block.length === 2000) {
      yield `${block.join('\n')}\n`;
      block = [];
    }
  }
  if (block.length > 0) yield `${block.join('\n')}\n`;
}

/** `(n + 1)` as the id number, zero-padded so ids sort in file order. */
export const idOf = (prefix: string, n: number) => `${prefix}${String(n + 1).padStart(8, '0')}`;

function* rows(kind: FileKind, count: number, options: Required<GenerateOptions>, bad: Record<string, number>) {
  const random = seedrandom.alea(`${options.seed}:${kind}`);
  const badValues = BAD_VALUES[kind];
  let badTurn = 0;
  for (let n = 0; n < count; n++) {
    const row: Row =
      kind === 'users'
        ? {
            customer_id: idOf(options.customerPrefix, n),
            first_name: pick(random, FIRST_NAMES),
            last_name: pick(random, LAST_NAMES),
            email: `user${n + 1}.${options.customerPrefix.toLowerCase()}@example.com`,
            phone: random() < 0.8 ? `+999 ${String(Math.floor(random() * 1e9)).padStart(9, '0')}` : '',
            country: pick(random, COUNTRIES),
            created_at: timestamp(random),
          }
        : {
            transaction_id: idOf(options.transactionPrefix, n),
            customer_id: idOf(options.customerPrefix, Math.floor(random() * Math.max(options.users, 1))),
            amount: `${random() < 0.1 ? '-' : ''}${Math.floor(random() * 1000)}.${String(Math.floor(random() * 100)).padStart(2, '0')}`,
            currency: pick(random, CURRENCIES),
            occurred_at: timestamp(random),
            type: pick(random, TYPES),
            merchant: pick(random, MERCHANTS),
          };
    if (options.badRate > 0 && random() < options.badRate) {
      const [column, value] = badValues[badTurn++ % badValues.length] as (typeof badValues)[number];
      row[column] = value(n);
      bad[column] = (bad[column] ?? 0) + 1;
    }
    yield row;
  }
}

/** The name of a generated file, following file-formats.md: `users_demo_20261124_001.csv.gz`. */
export const generatedFileName = (
  kind: FileKind,
  options: Pick<Required<GenerateOptions>, 'partner' | 'date' | 'sequence' | 'format' | 'gzip'>,
) =>
  `${kind}_${options.partner}_${options.date}_${String(options.sequence).padStart(3, '0')}.${options.format}${options.gzip ? '.gz' : ''}`;

/**
 * Writes a users file and a transactions file (each only if its count is above zero) that follow
 * file-formats.md, deterministic for a seed. Transactions refer to the generated customers. Rows are
 * streamed, so any size can be written in constant memory.
 */
export async function generateFiles(input: GenerateOptions): Promise<GeneratedFile[]> {
  const options: Required<GenerateOptions> = {
    gzip: false,
    format: 'csv',
    badRate: 0,
    seed: 1,
    partner: 'demo',
    date: '20261124',
    customerPrefix: 'C',
    transactionPrefix: 'T',
    sequence: 1,
    ...input,
  };
  if (!(options.badRate >= 0 && options.badRate <= 1)) throw new RangeError('bad-rate must be from 0 to 1');
  mkdirSync(options.outDir, { recursive: true });
  const files: GeneratedFile[] = [];
  for (const kind of ['users', 'transactions'] as const) {
    const count = kind === 'users' ? options.users : options.transactions;
    if (count <= 0) continue;
    const path = join(options.outDir, generatedFileName(kind, options));
    const bad: Record<string, number> = {};
    const columns = COLUMNS[kind];
    const lines = (function* () {
      if (options.format === 'csv') yield columns.join(',');
      for (const row of rows(kind, count, options, bad)) yield formatRow(options.format, columns, row);
    })();
    const source = Readable.from(blocksOf(lines));
    if (options.gzip) await pipeline(source, createGzip(), createWriteStream(path));
    else await pipeline(source, createWriteStream(path));
    files.push({ path, kind, records: count, bad });
  }
  return files;
}
