import { gunzipSync, gzipSync } from 'node:zlib';
import type { FileKind } from '../files/record-schemas';
import type { IndexedRecord, RecordIndex } from '../operations/ports';
import type { RecordResult } from './file-report';

/**
 * The record lookup index (docs/design.md, Record lookup index): customer or transaction id -> the files and
 * lines it was in, written by finalise without a write per record. Record ids are spread over a fixed number of
 * shards by a stable hash; finalise buffers its report's records by shard and writes, per chunk of records, one
 * item per shard that has entries: the entries of that shard, gzip-compressed. A lookup reads the items of one
 * shard and keeps the entries with the id.
 */

/**
 * Shards per kind. More shards mean smaller lookups (a lookup reads 1/SHARDS of what is kept) but more items per
 * chunk (up to SHARDS a chunk, each at least one write unit): 4096 keeps both in range at 120M records a load.
 */
export const RECORD_INDEX_SHARDS = 4096;

/**
 * Records buffered before they are written: each flush writes up to {@link RECORD_INDEX_SHARDS} items, so the
 * larger the chunk, the more entries share an item (and a write unit). 500,000 entries take about 40 MB of a
 * finalise function's 1,769 MB.
 */
export const FLUSH_RECORDS = 500_000;

/** An entry's error is cut to this: enough to say why, and an item stays small. */
export const MAX_ERROR_CHARS = 200;

/**
 * Ids longer than this are not indexed: no accepted id is (1-64 characters), and a VALIDATION failure's id can be
 * any text of a line, which would only bloat the items; such a record is still in its file's results.
 */
export const MAX_ID_CHARS = 256;

/** Compressed bytes past which a shard's entries are split over several items (DynamoDB's limit is 400 KB). */
export const MAX_ITEM_BYTES = 300_000;

/** One record as the index keeps it. */
export interface IndexEntry {
  readonly id: string;
  readonly line: number;
  readonly outcome: 'succeeded' | 'failed';
  /** Failed: the failure reason (the CRM code, VALIDATION, CONFLICTING_PROFILE, CANCELLED...); succeeded: the code. */
  readonly code?: string;
  readonly error?: string;
}

/** The file a chunk of entries came from, stored on every item so that a lookup needs no other read. */
export interface IndexedFile {
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly kind: FileKind;
}

/** One item to write: a shard's entries of a chunk (or a part of them, when they are too many for one item). */
export interface IndexPart {
  readonly shard: number;
  /** 0, or the part's number when a shard's entries of the chunk are split over several items. */
  readonly part: number;
  /** {@link encodeEntries} of the part's entries. */
  readonly entries: Uint8Array;
  /** How many entries it holds. */
  readonly count: number;
}

/** The items of one chunk: the records finalise reported between two flushes. */
export interface IndexChunk {
  readonly file: IndexedFile;
  /** The line of the chunk's first record: with the file and the shard, the items' key. */
  readonly firstLine: number;
  readonly parts: readonly IndexPart[];
  /** Set on the file's last chunk: when its reports were finished (ISO 8601). */
  readonly finishedAt?: string;
}

/** Where finalise writes the index: each item replaces the one at its key, so a retried slice writes over itself. */
export interface RecordIndexWriter {
  writeChunk(chunk: IndexChunk): Promise<void>;
}

/** A hit of a lookup, with what its item says of the file. */
export interface LocatedRecord extends IndexedRecord {
  readonly name: string;
  readonly partner: string;
  /** Only on the entries of the file's last chunk (see {@link IndexChunk.finishedAt}). */
  readonly finishedAt?: string;
  /** When its item was written (epoch ms): the order of files whose finish is not known. */
  readonly indexedAt?: number;
}

/** The index as the lookup reads it: each hit with its file's name and partner, newest file first. */
export interface RecordLocations extends RecordIndex {
  lookup(kind: FileKind, recordId: string): Promise<readonly LocatedRecord[]>;
}

/** FNV-1a (32-bit) of the id's UTF-16 code units: stable across runs and runtimes, and cheap per record. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The shard of a record id: the same for every file, every run and the lookup. */
export const shardOf = (recordId: string, shards = RECORD_INDEX_SHARDS): number => fnv1a(recordId) % shards;

/**
 * A stored entry: [id, its line minus the line before it (entries are in line order, so small numbers), 1
 * succeeded / 0 failed, code, error?]. An item's text is `[<line before the first entry>, ...entries]`: JSON
 * tuples in gzip are compact, and JSON.parse is the fastest decoder at hand.
 */
type StoredEntry = [id: string, lineStep: number, succeeded: 0 | 1, code: string | null, error?: string];

/** The index entry of a reported record, or undefined when its id is not indexed (none, or too long). */
export function entryOf(result: RecordResult): IndexEntry | undefined {
  const id = result.recordId;
  if (id === '' || id.length > MAX_ID_CHARS) return undefined;
  const code =
    result.outcome === 'failed' ? result.reason : result.code === undefined ? undefined : String(result.code);
  const error = result.error === undefined ? undefined : result.error.slice(0, MAX_ERROR_CHARS);
  return {
    id,
    line: result.line,
    outcome: result.outcome,
    ...(code === undefined ? {} : { code }),
    ...(error === undefined ? {} : { error }),
  };
}

/**
 * The stored text of one entry, after the entry at `previousLine`. A fresh string: the buffer keeps no slice of
 * the source's text alive.
 */
function storedText(entry: IndexEntry, previousLine: number): string {
  const tuple: StoredEntry = [
    entry.id,
    entry.line - previousLine,
    entry.outcome === 'succeeded' ? 1 : 0,
    entry.code ?? null,
  ];
  if (entry.error !== undefined) tuple.push(entry.error);
  return JSON.stringify(tuple);
}

const gzipTexts = (baseLine: number, texts: readonly string[]) =>
  gzipSync(texts.length === 0 ? `[${baseLine}]` : `[${baseLine},${texts.join(',')}]`);

/** Entries (in line order) as an item's `entries`. */
export function encodeEntries(entries: readonly IndexEntry[]): Uint8Array {
  return gzipTexts(0, textsOf(entries).texts);
}

function textsOf(entries: readonly IndexEntry[]) {
  let previous = 0;
  const texts = entries.map((entry) => {
    const text = storedText(entry, previous);
    previous = entry.line;
    return text;
  });
  return { texts, lines: entries.map((entry) => entry.line) };
}

/** The decompressed text of an item's `entries`. */
export const entriesText = (bytes: Uint8Array): string => gunzipSync(bytes).toString('utf8');

/** An item's entries, from the text {@link entriesText} gives back. */
export function parseEntries(text: string): IndexEntry[] {
  const [baseLine, ...stored] = JSON.parse(text) as [number, ...StoredEntry[]];
  let line = baseLine;
  return stored.map(([id, step, succeeded, code, error]) => {
    line += step;
    return {
      id,
      line,
      outcome: succeeded === 1 ? 'succeeded' : 'failed',
      ...(code === null ? {} : { code }),
      ...(error === undefined ? {} : { error }),
    };
  });
}

export const decodeEntries = (bytes: Uint8Array): IndexEntry[] => parseEntries(entriesText(bytes));

/**
 * The entries of `text` ({@link entriesText}) with this id. Most items of a shard hold other ids: they are
 * passed over by a substring test, and only an item that names the id is parsed.
 */
export function entriesWithId(text: string, recordId: string): IndexEntry[] {
  if (!text.includes(JSON.stringify(recordId))) return [];
  return parseEntries(text).filter((entry) => entry.id === recordId);
}

/**
 * A shard's stored texts (and their lines) as items: one, or several parts when the compressed entries would
 * pass `maxBytes` (ids crafted to share a shard must not make an item DynamoDB refuses).
 */
function encodeTexts(shard: number, texts: readonly string[], lines: readonly number[], maxBytes: number) {
  const parts: IndexPart[] = [];
  const split = (from: number, to: number) => {
    const bytes = gzipTexts(from === 0 ? 0 : (lines[from - 1] as number), texts.slice(from, to));
    if (bytes.length > maxBytes && to - from > 1) {
      const middle = Math.floor((from + to) / 2);
      split(from, middle);
      split(middle, to);
      return;
    }
    parts.push({ shard, part: parts.length, entries: bytes, count: to - from });
  };
  split(0, texts.length);
  return parts;
}

/** A shard's entries (in line order) as items: see {@link RecordIndexBuffer}. */
export function encodeShard(shard: number, entries: readonly IndexEntry[], maxBytes = MAX_ITEM_BYTES): IndexPart[] {
  const { texts, lines } = textsOf(entries);
  return encodeTexts(shard, texts, lines, maxBytes);
}

export interface IndexBufferOptions {
  /** @default FLUSH_RECORDS */
  readonly flushRecords?: number;
  /** @default RECORD_INDEX_SHARDS */
  readonly shards?: number;
  /** @default MAX_ITEM_BYTES */
  readonly maxItemBytes?: number;
}

/** One shard's part of the buffer: its entries' stored texts and their lines. */
interface ShardBuffer {
  readonly texts: string[];
  readonly lines: number[];
}

/**
 * A finalise slice's records on their way to the index: entries buffered by shard, written as one chunk when
 * `flushRecords` are held (and at the end of the slice), so the buffer never holds more than that. A chunk
 * starts at the slice's first record and every `flushRecords` indexed records after it: a slice retried from
 * the same checkpoint writes the same keys again.
 */
export class RecordIndexBuffer {
  private readonly flushRecords: number;
  private readonly shards: number;
  private readonly maxItemBytes: number;
  private buffered: ShardBuffer[] = [];
  private held = 0;
  private firstLine: number | undefined;

  constructor(
    private readonly writer: RecordIndexWriter,
    private readonly file: IndexedFile,
    options: IndexBufferOptions = {},
  ) {
    this.flushRecords = options.flushRecords ?? FLUSH_RECORDS;
    this.shards = options.shards ?? RECORD_INDEX_SHARDS;
    this.maxItemBytes = options.maxItemBytes ?? MAX_ITEM_BYTES;
  }

  /** Entries held, not yet written. */
  get size(): number {
    return this.held;
  }

  /**
   * The report's hook (ReportInput.onRecord): buffers the record; a promise, to await before the next record,
   * only when the buffer is full and is written first. (Written before the next record, not after the last that
   * fills it: the file's last chunk is never empty, so it carries the finish time.)
   */
  add(result: RecordResult): void | Promise<void> {
    const entry = entryOf(result);
    if (!entry) return;
    if (this.held < this.flushRecords) return this.hold(entry);
    return this.flush().then(() => this.hold(entry));
  }

  private hold(entry: IndexEntry): void {
    const shard = (this.buffered[shardOf(entry.id, this.shards)] ??= { texts: [], lines: [] });
    shard.texts.push(storedText(entry, shard.lines[shard.lines.length - 1] ?? 0));
    shard.lines.push(entry.line);
    this.firstLine ??= entry.line;
    this.held++;
  }

  /** Writes what is held as one chunk (nothing when it holds nothing); `finishedAt` on the file's last. */
  async flush(finish: { readonly finishedAt?: string } = {}): Promise<void> {
    if (this.firstLine === undefined) return;
    const buffered = this.buffered;
    const firstLine = this.firstLine;
    this.buffered = [];
    this.held = 0;
    this.firstLine = undefined;
    const parts: IndexPart[] = [];
    buffered.forEach(({ texts, lines }, shard) => parts.push(...encodeTexts(shard, texts, lines, this.maxItemBytes)));
    await this.writer.writeChunk({
      file: this.file,
      firstLine,
      parts,
      ...(finish.finishedAt === undefined ? {} : { finishedAt: finish.finishedAt }),
    });
  }
}
