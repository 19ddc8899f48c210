import Papa from 'papaparse';
import { ErrorNames, FileRejectedError } from '../errors';
import type { Encoding } from '../config';
import { decodeText, encodingFromName, notAccepted, prepend, sniffFormat, type RecordFormat } from './file-encoding';
import { NESTED_JSON_RULE, RefusedValue, UNPAIRED_SURROGATE_RULE } from './record-schemas';

/** One record as the partner wrote it, before validation. */
export interface SourceRecord {
  /** 1-based line of the file where the record starts (CSV: the header is line 1). */
  readonly line: number;
  /**
   * Values by column name (lower-cased, trimmed), as own properties, a `__proto__` column too (a column a row
   * lacks may still find `constructor` on Object.prototype). CSV values are strings; JSONL strings, booleans
   * and nulls are as parsed, numbers as written (their source text: never through a float), and an object or
   * array, or a string with an unpaired surrogate, is a {@link RefusedValue}: no value has depth.
   */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The record could not be taken apart (wrong number of CSV fields, a JSONL line that is no object). */
  readonly problem?: { readonly column: string; readonly rule: string };
  /** JSON Lines: the line as written (without its line end), for the failed-records file. */
  readonly text?: string;
}

export interface ReadOptions {
  /** File name: its suffix gives the format and gzip; without one the content decides. */
  readonly name: string;
  /** Columns a CSV header must have: without one of them the file is unreadable. */
  readonly requiredColumns?: readonly string[];
  /** A record longer than this (an unclosed quote, a binary blob) makes the file unreadable. @default 1 MiB */
  readonly maxRecordChars?: number;
  /** Encodings this deployment takes; another fails with `File.EncodingNotAccepted`. @default all */
  readonly acceptedEncodings?: readonly Encoding[];
  /** Bytes of text (after gunzip) past which the file fails with `File.TooLarge`. @default no limit */
  readonly maxDecompressedBytes?: number;
  /**
   * Go on from this position, given by an earlier read of the same file, exactly as if read from the start
   * (the same lines, records and errors). For a plain file `bytes` must then start at `from.bytes` (a ranged
   * read); for a gzip file they are the whole object, and the text before the position is inflated and dropped.
   */
  readonly from?: ReadPosition;
  /**
   * Told, just before each chunk of records is yielded, where that chunk leaves the reader and where each of its
   * lines starts: a position to go on from later ({@link ReadOptions.from}).
   */
  readonly onPositions?: (positions: ChunkPositions) => void;
}

/** What a reader must know, besides where it is, to go on: the CSV header's column keys, or whether a JSON Lines file has shown an object. */
export type FormatState =
  | { readonly format: 'csv'; readonly columns: readonly string[] }
  | { readonly format: 'jsonl'; readonly seenRecord: boolean };

/** A point between two lines of a file's text, and all a reader needs to go on from it. */
export type ReadPosition = {
  /** Bytes of decoded text (UTF-8, a leading BOM counted) before it: for a plain file, its byte offset. */
  readonly bytes: number;
  /** The 1-based line that starts there. */
  readonly line: number;
  /** The file is gzip: its text is had only by inflating from the start. */
  readonly gzip: boolean;
} & FormatState;

/** Positions in a chunk of records just yielded; valid until the reader is asked for the next chunk. */
export interface ChunkPositions {
  /** Just past the chunk's last record (and any blank lines after it). */
  readonly end: ReadPosition;
  /** At the start of `line`, a line of the chunk (the first line of one of its records). Calls in line order are cheapest. */
  lineStart(line: number): ReadPosition;
}

/** Where the reader stands; `report` gets each yielded chunk's positions. */
interface PositionTracker {
  readonly gzip: boolean;
  /** Bytes before the reader's first text. */
  readonly startBytes: number;
  readonly report: (positions: ChunkPositions) => void;
}

/**
 * The positions of a chunk whose records were parsed from `input`, which starts at `inputBytes`, line
 * `inputLine` (always a line start: text is only ever carried over from the start of an unfinished row).
 */
function chunkPositions(
  input: string,
  inputBytes: number,
  inputLine: number,
  end: { readonly bytes: number; readonly line: number },
  gzip: boolean,
  state: (line: number) => FormatState,
): ChunkPositions {
  let memoLine = inputLine;
  let memoAt = 0;
  let memoBytes = inputBytes;
  return {
    end: { bytes: end.bytes, line: end.line, gzip, ...state(end.line) },
    lineStart(line) {
      if (line < memoLine) {
        memoLine = inputLine;
        memoAt = 0;
        memoBytes = inputBytes;
      }
      let at = memoAt;
      for (; memoLine < line; memoLine++) {
        const newline = input.indexOf('\n', at);
        if (newline === -1) throw new RangeError(`line ${line} does not start in this chunk`);
        at = newline + 1;
      }
      memoBytes += Buffer.byteLength(input.slice(memoAt, at));
      memoAt = at;
      return { bytes: memoBytes, line, gzip, ...state(line) };
    },
  };
}

const DEFAULT_MAX_RECORD_CHARS = 1024 * 1024;
const BOM = 0xfeff;

const unreadable = (message: string) => new FileRejectedError(ErrorNames.fileUnreadable, message);

/** Column names are matched case-insensitively and trimmed (file-formats.md). */
export const columnKey = (name: string) => name.trim().toLowerCase();

/** A column name as an error message quotes it: a header cell can be a megabyte long. */
const quoted = (name: string) => `"${name.length > 64 ? `${name.slice(0, 64)}...` : name}"`;

/**
 * Sets a field. A `__proto__` column becomes an own property: assigned, it would call Object.prototype's setter
 * and make the value the prototype, whose keys every rule would then read as fields. (An object without a
 * prototype would do too, but V8 keeps those as hash tables: 150 ns more per record.)
 */
function setField(fields: Record<string, unknown>, name: string, value: unknown) {
  if (name === '__proto__')
    Object.defineProperty(fields, name, { value, enumerable: true, writable: true, configurable: true });
  else fields[name] = value;
}

/**
 * Streams a partner file's records, in chunks (one per decoded text chunk) to keep per-record overhead
 * low. Memory is bounded by the chunk size and `maxRecordChars`, never by the file.
 * @throws FileRejectedError (`File.Unreadable`) when the file cannot be read as its encoding.
 */
export async function* readRecords(
  bytes: AsyncIterable<Uint8Array>,
  options: ReadOptions,
): AsyncGenerator<SourceRecord[]> {
  const fromName = encodingFromName(options.name);
  const accepted = options.acceptedEncodings;
  const from = options.from;
  let head = { gzip: false, bomBytes: 0 };
  const text = decodeText(bytes, {
    gzip: fromName.gzip,
    acceptGzip: !accepted || accepted.includes('gzip'),
    ...(options.maxDecompressedBytes === undefined ? {} : { maxBytes: options.maxDecompressedBytes }),
    ...(from ? { start: { offset: from.bytes, gzip: from.gzip } } : {}),
    onHead: (h) => void (head = h),
  });
  const first = await text.next();
  if (first.done) return;
  const format: RecordFormat = from?.format ?? fromName.format ?? sniffFormat(first.value);
  if (accepted && !accepted.includes(format)) throw notAccepted(format);
  const chunks = prepend(first.value, text);
  const maxRecordChars = options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  const tracker: PositionTracker | undefined = options.onPositions && {
    gzip: from?.gzip ?? head.gzip,
    startBytes: (from?.bytes ?? 0) + head.bomBytes,
    report: options.onPositions,
  };
  if (format === 'csv') {
    const resumed = from?.format === 'csv' ? from : undefined;
    yield* readCsv(chunks, options.requiredColumns ?? [], maxRecordChars, tracker, resumed);
  } else {
    yield* readJsonLines(chunks, maxRecordChars, tracker, from?.format === 'jsonl' ? from : undefined);
  }
}

function countNewlines(row: readonly string[]): number {
  let count = 0;
  for (const field of row) {
    for (let at = field.indexOf('\n'); at !== -1; at = field.indexOf('\n', at + 1)) count++;
  }
  return count;
}

/** Papa's quoting errors as a partner reads them. */
const QUOTING_ERRORS: Readonly<Record<string, string>> = {
  MissingQuotes: 'a quoted field is never closed',
  InvalidQuotes: 'text after the closing quote of a quoted field',
};

const isBlank = (row: readonly string[]) => row.length === 1 && (row[0] ?? '').trim() === '';

interface Header {
  readonly names: readonly string[];
}

function readHeader(row: readonly string[], requiredColumns: readonly string[]): Header {
  const names = row.map(columnKey);
  const seen = new Set<string>();
  for (const name of names) {
    if (name && seen.has(name)) throw unreadable(`line 1: duplicate column ${quoted(name)} in the header`);
    seen.add(name);
  }
  const missing = requiredColumns.filter((column) => !seen.has(column));
  if (missing.length > 0) {
    throw unreadable(`line 1: missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  return { names };
}

/**
 * CSV (RFC 4180) with papaparse's core parser, fed chunk by chunk: each call parses the complete rows and
 * hands back where the unfinished last row starts, which is carried into the next chunk. The delimiter and
 * newline are fixed (`,` and `\n`), so nothing is guessed from the data; a `\r` before `\n` is dropped with
 * the surrounding white space of each value, so LF, CRLF and mixed files read alike.
 */
async function* readCsv(
  chunks: AsyncIterable<string>,
  requiredColumns: readonly string[],
  maxRecordChars: number,
  tracker?: PositionTracker,
  from?: ReadPosition & { readonly format: 'csv' },
): AsyncGenerator<SourceRecord[]> {
  const parser = new Papa.Parser({ delimiter: ',', newline: '\n', quoteChar: '"' });
  let header: Header | undefined = from && { names: from.columns };
  let nextLine = from?.line ?? 1;
  let carried = '';
  // Tracking positions: where `carried` starts, and its UTF-8 bytes (a surrogate pair split between two
  // pieces of text is counted whole by taking the bytes of carried + chunk together).
  let carriedStart = tracker?.startBytes ?? 0;
  let carriedBytes = 0;
  const state = (): FormatState => ({ format: 'csv', columns: header?.names ?? [] });
  const report = (input: string, inputBytes: number, inputLine: number) => {
    if (!tracker) return;
    const end = { bytes: carriedStart, line: nextLine };
    tracker.report(chunkPositions(input, inputBytes, inputLine, end, tracker.gzip, state));
  };
  const advance = (input: string, inputBytes: number) => {
    if (!tracker) return;
    const total = Buffer.byteLength(input);
    carriedBytes = Buffer.byteLength(carried);
    carriedStart = inputBytes + total - carriedBytes;
  };

  /**
   * Fails the file on the first quoting error in `rows`. While streaming, an error on the unfinished last
   * row is provisional (a chunk may end between a closing quote and its newline) and is left for the next
   * parse; at the end (`final`) every error counts.
   */
  const failOnQuoting = (
    rows: readonly string[][],
    mayHoldNewlines: boolean,
    errors: readonly Papa.ParseError[],
    final: boolean,
  ) => {
    const error = errors.find((e) => final || (e.row ?? 0) < rows.length);
    if (!error) return;
    let line = nextLine;
    for (let i = 0; i < Math.min(error.row ?? 0, rows.length); i++) {
      line += mayHoldNewlines ? 1 + countNewlines(rows[i] as string[]) : 1;
    }
    throw unreadable(`line ${line}: ${QUOTING_ERRORS[error.code] ?? error.message} (CSV quoting)`);
  };

  const take = (rows: readonly string[][], mayHoldNewlines: boolean): SourceRecord[] => {
    const records: SourceRecord[] = [];
    for (const row of rows) {
      const line = nextLine;
      nextLine += mayHoldNewlines ? 1 + countNewlines(row) : 1;
      if (isBlank(row)) continue;
      if (!header) {
        header = readHeader(row, requiredColumns);
        continue;
      }
      const names = header.names;
      const fields: Record<string, string> = {};
      const count = Math.min(row.length, names.length);
      for (let c = 0; c < count; c++) {
        const name = names[c] as string;
        if (name) setField(fields, name, (row[c] as string).trim());
      }
      records.push(
        row.length === names.length
          ? { line, fields }
          : {
              line,
              fields,
              problem: { column: 'record', rule: `${names.length} fields as in the header, found ${row.length}` },
            },
      );
    }
    return records;
  };

  for await (const chunk of chunks) {
    const input = carried + chunk;
    const inputBytes = carriedStart;
    const inputLine = nextLine;
    const result = parser.parse(input, 0, true);
    carried = input.slice(result.meta.cursor);
    if (carried.length > maxRecordChars) {
      throw unreadable(`line ${nextLine}: a record longer than ${maxRecordChars} characters (an unclosed quote?)`);
    }
    const rows = result.data as string[][];
    const mayHoldNewlines = input.includes('"');
    failOnQuoting(rows, mayHoldNewlines, result.errors, false);
    const records = take(rows, mayHoldNewlines);
    advance(input, inputBytes);
    if (records.length > 0) {
      report(input, inputBytes, inputLine);
      yield records;
    }
  }
  const lastInput = carried;
  const lastLine = nextLine;
  const lastStart = carriedStart;
  const last = parser.parse(carried, 0, false);
  const lastRows = last.data as string[][];
  const lastMayHoldNewlines = carried.includes('"');
  failOnQuoting(lastRows, lastMayHoldNewlines, last.errors, true);
  const records = take(lastRows, lastMayHoldNewlines);
  carriedStart += carriedBytes;
  if (records.length > 0) {
    report(lastInput, lastStart, lastLine);
    yield records;
  }
}

/** JSON Lines: one object per line; blank lines skipped. A first line that is no JSON object means this is no JSON Lines file. */
async function* readJsonLines(
  chunks: AsyncIterable<string>,
  maxRecordChars: number,
  tracker?: PositionTracker,
  from?: ReadPosition & { readonly format: 'jsonl' },
): AsyncGenerator<SourceRecord[]> {
  let carried = '';
  let line = from ? from.line - 1 : 0;
  let seenRecord = from?.seenRecord ?? false;
  // The line of the first object: whether a position at a line start has seen one.
  let firstObjectLine = seenRecord ? 0 : Number.POSITIVE_INFINITY;
  let carriedStart = tracker?.startBytes ?? 0;
  const state = (at: number): FormatState => ({ format: 'jsonl', seenRecord: firstObjectLine < at });
  const report = (input: string, inputBytes: number, inputLine: number) => {
    if (!tracker) return;
    const end = { bytes: carriedStart, line: line + 1 };
    tracker.report(chunkPositions(input, inputBytes, inputLine, end, tracker.gzip, state));
  };

  const take = (lineText: string, records: SourceRecord[]) => {
    line++;
    // The \r of a CRLF line end is no part of the record (kept, it would end up inside the failed-records file),
    // nor is a BOM that starts a line (files joined together): CSV values are trimmed of it too.
    const end = lineText.endsWith('\r') ? lineText.length - 1 : lineText.length;
    const text = lineText.slice(lineText.charCodeAt(0) === BOM ? 1 : 0, end);
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      if (!seenRecord) throw unreadable(`line ${line}: not a JSON object (not a JSON Lines file?)`);
      records.push({
        line,
        text,
        fields: {},
        problem: { column: 'record', rule: 'a JSON object on one line' },
      });
      return;
    }
    if (!seenRecord) firstObjectLine = line;
    seenRecord = true;
    records.push({ line, text, fields: jsonFields(value as Record<string, unknown>, text) });
  };

  for await (const chunk of chunks) {
    const input = carried + chunk;
    const inputBytes = carriedStart;
    const inputLine = line + 1;
    const records: SourceRecord[] = [];
    let start = 0;
    for (let end = input.indexOf('\n'); end !== -1; end = input.indexOf('\n', start)) {
      take(input.slice(start, end), records);
      start = end + 1;
    }
    carried = input.slice(start);
    if (carried.length > maxRecordChars) {
      throw unreadable(`line ${line + 1}: a line longer than ${maxRecordChars} characters`);
    }
    if (tracker) carriedStart = inputBytes + Buffer.byteLength(input) - Buffer.byteLength(carried);
    if (records.length > 0) {
      report(input, inputBytes, inputLine);
      yield records;
    }
  }
  const records: SourceRecord[] = [];
  const lastStart = carriedStart;
  const lastLine = line + 1;
  if (carried !== '') take(carried, records);
  if (tracker) carriedStart += Buffer.byteLength(carried);
  if (records.length > 0) {
    report(carried, lastStart, lastLine);
    yield records;
  }
}

const NESTED_JSON = new RefusedValue(NESTED_JSON_RULE);
const UNPAIRED_SURROGATE = new RefusedValue(UNPAIRED_SURROGATE_RULE);
/** With the `u` flag a surrogate pair is one code point: only an unpaired half matches. */
const SURROGATE = /[\ud800-\udfff]/u;

/**
 * The fields of a parsed JSON Lines object, flat: JSON.parse takes any depth (it is iterative), but
 * JSON.stringify, String() and zod recurse, so a value thousands of levels deep overflowed the stack where a
 * report or a log met it. Such values, and strings that are no Unicode text, become a {@link RefusedValue}.
 * Numbers are handed on as written: through a float `1e-400` would become 0, and 17 digits would be rounded.
 */
function jsonFields(parsed: Record<string, unknown>, line: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  // A lone surrogate can only come from a `\u` escape: decoded UTF-8 text is always well formed.
  const escapes = line.includes('\\u');
  let numbers: Map<string, string> | undefined;
  for (const [key, value] of Object.entries(parsed)) {
    let field = value;
    if (typeof value === 'object' && value !== null) field = NESTED_JSON;
    else if (typeof value === 'number') field = (numbers ??= numbersAsWritten(line)).get(key) ?? String(value);
    else if (escapes && typeof value === 'string' && SURROGATE.test(value)) field = UNPAIRED_SURROGATE;
    setField(fields, columnKey(key), field);
  }
  return fields;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Where the JSON string starting at `start` (its opening quote) ends: just past its closing quote. */
function stringEnd(line: string, start: number): number {
  for (let at = start + 1; ;) {
    const quote = line.indexOf('"', at);
    if (quote === -1) return line.length;
    let backslashes = 0;
    for (let i = quote - 1; line.charCodeAt(i) === BACKSLASH; i--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

const isNumberChar = (c: number) =>
  (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || (c | 0x20) === 0x65;

/**
 * The source text of each number that is the value of a key of the line's object (not of a nested one), by
 * key; a repeated key keeps its last, as JSON.parse does. The line is valid JSON (it was parsed), so telling
 * strings, brackets, `:` and `,` apart is enough. One pass, no recursion.
 */
function numbersAsWritten(line: string): Map<string, string> {
  const numbers = new Map<string, string>();
  let depth = 0;
  let key = '';
  let afterColon = false;
  for (let at = 0; at < line.length;) {
    const c = line.charCodeAt(at);
    if (c === QUOTE) {
      const end = stringEnd(line, at);
      if (depth === 1 && !afterColon) key = line.slice(at, end);
      afterColon = false;
      at = end;
      continue;
    }
    if (afterColon && isNumberChar(c)) {
      let end = at + 1;
      while (end < line.length && isNumberChar(line.charCodeAt(end))) end++;
      numbers.set(JSON.parse(key) as string, line.slice(at, end));
      afterColon = false;
      at = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      depth++;
      afterColon = false;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x3a) {
      afterColon = depth === 1;
    } else if (c === 0x2c) {
      afterColon = false;
    }
    at++;
  }
  return numbers;
}
