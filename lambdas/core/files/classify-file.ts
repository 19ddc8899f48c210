import Papa from 'papaparse';
import { FILE_KINDS, type FileKind } from './record-schemas';
import { columnKey } from './read-records';
import { sniffFormat } from './file-encoding';

/** How a file's kind was decided: the first rule of file-formats.md that matched. */
export type ClassifiedBy = 'metadata' | 'tag' | 'name' | 'header';

export type Classification =
  { readonly kind: FileKind; readonly by: ClassifiedBy } | { readonly kind: 'unknown'; readonly reason: string };

export interface ClassifyInput {
  /** The object key or file name; only the last path segment counts. */
  readonly name: string;
  /** S3 user metadata (keys without `x-amz-meta-`). */
  readonly metadata?: Readonly<Record<string, string | undefined>>;
  /** S3 object tags. */
  readonly tags?: Readonly<Record<string, string | undefined>>;
  /** The start of the file's decoded text (header or first record), if it was read. */
  readonly head?: string;
}

/**
 * The longest file name (bytes of UTF-8) the pipeline takes: every key it derives from a name (the archive, the
 * reports folder, the partner's copy, which holds the name twice) stays well inside S3's 1,024-byte keys, and
 * inside the 255-byte names of the embedded S3's files on one machine. A longer name is quarantined, with this
 * reason, before anything is read; the embedded SFTP server refuses it at upload.
 */
export const MAX_FILE_NAME_BYTES = 200;

/** Why a file name cannot be taken, or undefined when it can. */
export function fileNameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(baseName(name), 'utf8');
  return bytes > MAX_FILE_NAME_BYTES ? `file name too long: ${bytes} bytes, at most ${MAX_FILE_NAME_BYTES}` : undefined;
}

/** Partner file names: `<kind>_<partner>_<yyyymmdd>[T<hhmm[ss]>][_<seq>].<csv|jsonl|ndjson>[.gz]`. */
const FILE_NAME =
  /^(users|customers|transactions|trx)_(.+?)_(\d{8})(?:T(\d{4}|\d{6}))?(?:_(\d+))?\.(csv|jsonl|ndjson)(\.gz)?$/i;

/** The kind words of file names, and the file-type values of metadata and tags. */
const KIND_WORDS: Readonly<Record<string, FileKind>> = {
  users: 'users',
  customers: 'users',
  transactions: 'transactions',
  trx: 'transactions',
};

export interface PartnerFileName {
  readonly kind: FileKind;
  readonly partner: string;
  readonly date: string;
  readonly sequence?: number;
}

export const baseName = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/** The parts of a partner file name, or undefined when the name does not follow the convention. */
export function parseFileName(name: string): PartnerFileName | undefined {
  const m = FILE_NAME.exec(baseName(name));
  if (!m) return undefined;
  const [, kindWord = '', partner = '', date = '', , sequence] = m;
  return {
    kind: KIND_WORDS[kindWord.toLowerCase()] as FileKind,
    partner,
    date,
    ...(sequence === undefined ? {} : { sequence: Number(sequence) }),
  };
}

function kindFromValue(value: string | undefined): FileKind | undefined {
  const word = value?.trim().toLowerCase();
  return FILE_KINDS.find((kind) => kind === word);
}

/** The column names of the first non-blank line: a CSV header, or the keys of the first JSON record. */
export function headColumns(head: string): string[] {
  const firstLine = (head.split('\n').find((line) => line.trim() !== '') ?? '').replace(/\r$/, '');
  if (sniffFormat(firstLine) === 'jsonl') {
    try {
      const record: unknown = JSON.parse(firstLine);
      return record && typeof record === 'object' ? Object.keys(record).map(columnKey) : [];
    } catch {
      return [];
    }
  }
  const row = (new Papa.Parser({ delimiter: ',', newline: '\n' }).parse(firstLine, 0, false).data[0] ?? []) as string[];
  return row.map(columnKey);
}

function kindFromColumns(columns: readonly string[]): FileKind | undefined {
  const has = new Set(columns);
  if (has.has('transaction_id') && has.has('amount')) return 'transactions';
  if (has.has('customer_id') && has.has('email') && !has.has('transaction_id')) return 'users';
  return undefined;
}

/**
 * Decides a file's kind by the rules of file-formats.md, first match wins: metadata `file-type`, tag
 * `file-type`, the file name, the header (or first JSON record); otherwise unknown, with the reason.
 */
export function classifyFile(input: ClassifyInput): Classification {
  const badName = fileNameProblem(input.name);
  if (badName) return { kind: 'unknown', reason: badName };
  const byMetadata = kindFromValue(input.metadata?.['file-type']);
  if (byMetadata) return { kind: byMetadata, by: 'metadata' };
  const byTag = kindFromValue(input.tags?.['file-type']);
  if (byTag) return { kind: byTag, by: 'tag' };
  const byName = parseFileName(input.name)?.kind;
  if (byName) return { kind: byName, by: 'name' };
  const byHeader = input.head === undefined ? undefined : kindFromColumns(headColumns(input.head));
  if (byHeader) return { kind: byHeader, by: 'header' };
  return {
    kind: 'unknown',
    reason:
      'unknown file kind: no file-type metadata or tag, the name does not follow <kind>_<partner>_<yyyymmdd>..., ' +
      'and the header has neither transaction_id and amount nor customer_id and email',
  };
}
