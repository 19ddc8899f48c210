import { createGunzip, constants as zlibConstants } from 'node:zlib';
import { Readable, pipeline } from 'node:stream';
import { ErrorNames, FileRejectedError } from '../errors';

export type RecordFormat = 'csv' | 'jsonl';

/** How a file is written, as far as its name says: format by suffix, gzip by `.gz`. */
export interface NameEncoding {
  readonly format?: RecordFormat;
  readonly gzip: boolean;
}

const SUFFIX = /\.(csv|jsonl|ndjson)?(\.gz)?$/i;

export function encodingFromName(name: string): NameEncoding {
  const m = SUFFIX.exec(name);
  const format = m?.[1]?.toLowerCase();
  return {
    format: format === 'csv' ? 'csv' : format === 'jsonl' || format === 'ndjson' ? 'jsonl' : undefined,
    gzip: Boolean(m?.[2]),
  };
}

/** The format of decoded text when the name does not say: JSON Lines start with `{`. */
export function sniffFormat(head: string): RecordFormat {
  return /^\s*\{/.test(head) ? 'jsonl' : 'csv';
}

/** Largest piece of text handed to the record readers. */
export const MAX_TEXT_CHUNK = 64 * 1024;

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;
const BOM = 0xfeff;

const unreadable = (message: string) => new FileRejectedError(ErrorNames.fileUnreadable, message);

/** A file in an encoding this deployment does not take (`ACCEPTED_ENCODINGS`). */
export const notAccepted = (encoding: string) =>
  new FileRejectedError(ErrorNames.fileEncodingNotAccepted, `${encoding} files are not accepted (ACCEPTED_ENCODINGS)`);

/** `MAX_DECOMPRESSED_BYTES` passed: a gzip bomb, or a plain file larger than the text any file may hold. */
const tooMuchText = (maxBytes: number, gzip: boolean) =>
  new FileRejectedError(
    ErrorNames.fileTooLarge,
    gzip
      ? `decompresses to more than ${maxBytes} bytes (MAX_DECOMPRESSED_BYTES)`
      : `is more than ${maxBytes} bytes of text (MAX_DECOMPRESSED_BYTES)`,
  );

/**
 * `first`, then the rest of an iterator it was taken from (a peek that gives nothing back). A reader that stops
 * early (a refused file) closes `rest` too: the stream under it (an S3 body, a socket) is destroyed, not left
 * with megabytes unread holding its connection, and the process, open.
 */
export async function* prepend<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  let finished = false;
  try {
    yield first;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
    finished = true;
  } finally {
    if (!finished) await rest.return?.();
  }
}

export interface DecodeOptions {
  /** The name says `.gz`: the content must then be gzip. Without it, gzip is still found by its magic bytes. */
  readonly gzip?: boolean;
  /**
   * The bytes are only the start of the file (a ranged read for classification): a gzip stream cut short is
   * then expected, not an error.
   */
  readonly truncated?: boolean;
  /** gzip content is refused (`File.EncodingNotAccepted`) unless this is true. @default true */
  readonly acceptGzip?: boolean;
  /**
   * Bytes of text (out of gunzip; for a plain file, its size) past which the file fails with `File.TooLarge`,
   * as soon as the count passes it: a small gzip bomb must not be read for minutes. @default no limit
   */
  readonly maxBytes?: number;
  /**
   * The text starts this many bytes into the file's decoded text (a slice resuming from a checkpoint): for a
   * gzip file `bytes` is the whole object, inflated from its start, and the first `offset` bytes out of gunzip
   * are dropped unparsed and undecoded; for a plain file `bytes` already start there (a ranged read) and are
   * not sniffed for gzip. A BOM is then no file start: it is kept, as a BOM inside a file is. @default 0
   */
  readonly start?: { readonly offset: number; readonly gzip: boolean };
  /**
   * Told once, before the first text: whether the bytes are gzip, and the bytes of a leading BOM (dropped from
   * the text, but counted in reading positions).
   */
  readonly onHead?: (head: { readonly gzip: boolean; readonly bomBytes: number }) => void;
}

/**
 * Bytes as uploaded -> UTF-8 text, gunzipped when the content starts with the gzip magic bytes (or must, by
 * its name). Text that is not UTF-8, or holds NUL characters, is binary: the file is unreadable. A BOM is
 * dropped. Chunks are yielded as they come: memory does not grow with the file.
 */
export async function* decodeText(
  bytes: AsyncIterable<Uint8Array>,
  options: DecodeOptions = {},
): AsyncGenerator<string> {
  const offset = options.start?.offset ?? 0;
  const iterator = bytes[Symbol.asyncIterator]();
  let first = await iterator.next();
  while (!first.done && first.value.length === 0) first = await iterator.next();
  if (first.done) return;
  const head = first.value;
  const isGzip =
    offset > 0
      ? (options.start?.gzip ?? false)
      : head[0] === GZIP_MAGIC_0 && (head.length < 2 || head[1] === GZIP_MAGIC_1);
  if (options.gzip && !isGzip && offset === 0) throw unreadable('named .gz but not gzip-compressed');
  if (isGzip && options.acceptGzip === false) throw notAccepted('gzip');
  let source: AsyncIterable<Uint8Array> = prepend(head, iterator);
  if (isGzip) {
    const gunzip = createGunzip(options.truncated ? { finishFlush: zlibConstants.Z_SYNC_FLUSH } : {});
    // pipeline, not pipe: a failing source must fail the gunzip stream we iterate, not leave it waiting.
    source = pipeline(Readable.from(source), gunzip, () => undefined);
  }
  // Resumed past the start, a BOM is text like any other (the readers drop one at a line start).
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  // A plain file read by range starts at `offset`; a gzip one inflates the bytes before it, to be dropped.
  let decodedBytes = isGzip ? 0 : offset;
  let atStart = true;
  try {
    for await (const raw of source) {
      let chunk = raw as Uint8Array;
      const before = decodedBytes;
      decodedBytes += chunk.length;
      if (decodedBytes > maxBytes) throw tooMuchText(maxBytes, isGzip);
      if (before < offset) {
        // Inflated text an earlier slice parsed: dropped without decoding (inflating alone is several times faster).
        if (decodedBytes <= offset) continue;
        chunk = chunk.subarray(offset - before);
      }
      let text = decoder.decode(chunk, { stream: true });
      if (text.length === 0) continue;
      if (atStart) {
        atStart = false;
        const bom = offset === 0 && text.charCodeAt(0) === BOM;
        if (bom) text = text.slice(1);
        options.onHead?.({ gzip: isGzip, bomBytes: bom ? 3 : 0 });
      }
      if (text.includes('\0')) throw unreadable('binary content (NUL bytes): not a text file');
      // Small pieces keep the records parsed from each short-lived (young-generation garbage): with 1 MiB
      // pieces GC took a quarter of the run and peak RSS was 315 MB, with 64 KiB 5% and about 120 MB.
      for (let at = 0; at < text.length; at += MAX_TEXT_CHUNK) yield text.slice(at, at + MAX_TEXT_CHUNK);
    }
    if (!options.truncated) {
      const rest = decoder.decode();
      if (rest) yield rest;
    }
  } catch (error) {
    if (error instanceof FileRejectedError) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'ERR_ENCODING_INVALID_ENCODED_DATA') throw unreadable('not UTF-8 text (binary content?)');
    if (code?.startsWith('Z_')) throw unreadable(`broken gzip: ${(error as Error).message}`);
    throw error;
  }
}

/** The first `maxChars` characters of a file's text (for classification), read from the start of its bytes. */
export async function readHead(bytes: AsyncIterable<Uint8Array>, maxChars: number, options: DecodeOptions = {}) {
  let head = '';
  for await (const text of decodeText(bytes, { truncated: true, ...options })) {
    head += text;
    if (head.length >= maxChars) break;
  }
  return head.slice(0, maxChars);
}
