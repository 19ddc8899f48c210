import Papa from 'papaparse';
import { z } from 'zod';
import { CANCELLED } from '../crm/dispatch-call';
import type { ObjectReader } from '../files/object-store';
import { ApiError } from './api-error';
import { catalogued, LimitParam, parseParams, type FileQueries } from './files';

/** One record of a finished file (results.csv's row), as GET /v1/files/{fileId}/records answers it. */
export interface FileRecord {
  readonly line: number;
  readonly recordId: string;
  readonly operations: string[];
  readonly outcome: 'succeeded' | 'failed';
  /** The CRM's code, or for a failure without one the reason it is counted under (VALIDATION, CANCELLED, ...). */
  readonly code: string | null;
  readonly error: string | null;
  readonly attempts: number;
}

const RecordsQuery = z.object({
  outcome: z.enum(['succeeded', 'failed'], { error: 'outcome: succeeded or failed' }).optional(),
  code: z.string().min(1).optional(),
  limit: LimitParam,
  cursor: z.string().min(1).optional(),
});

/** Bytes of results.csv one request reads at most: a sparse filter answers a short page with a `next`, never a slow one. */
export const MAX_SCAN_BYTES = 32 * 1024 * 1024;

/**
 * The reason a failed row is counted under in the summary's `failures`: the code, the error name a 200 carried
 * (CONFLICTING_PROFILE), VALIDATION, or CANCELLED (results.csv keeps the code and the error, not the reason).
 */
function resultReason(code: string, error: string): string {
  if (code === '200' && error) return error;
  if (code) return code;
  if (error.startsWith('VALIDATION')) return 'VALIDATION';
  if (error.startsWith('cancelled by an operator')) return CANCELLED;
  return /^[A-Z][A-Za-z_.]*/.exec(error)?.[0] ?? 'UNKNOWN';
}

/** A results.csv row's fields as the API's record. */
function toRecord(fields: readonly string[]): FileRecord {
  const [line = '', recordId = '', operations = '', outcome = '', code = '', error = '', attempts = '0'] = fields;
  const failed = outcome === 'failed';
  return {
    line: Number(line),
    recordId,
    operations: operations ? operations.split('+') : [],
    outcome: failed ? 'failed' : 'succeeded',
    code: failed ? resultReason(code, error) : code || null,
    error: error || null,
    attempts: Number(attempts),
  };
}

/** The rows of a CSV text from a byte offset, each with the offset just past it; rows may hold quoted newlines. */
async function* csvRows(chunks: AsyncIterable<Uint8Array>, start: number) {
  let pending = Buffer.alloc(0);
  let offset = start;
  for await (const chunk of chunks) {
    pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
    let quoted = false;
    let rowStart = 0;
    for (let i = 0; i < pending.length; i++) {
      const byte = pending[i];
      if (byte === 0x22) quoted = !quoted;
      else if (byte === 0x0a && !quoted) {
        const text = pending.subarray(rowStart, i).toString('utf8').replace(/\r$/, '');
        offset += i + 1 - rowStart;
        rowStart = i + 1;
        yield { text, end: offset };
      }
    }
    pending = pending.subarray(rowStart);
  }
  if (pending.length > 0) yield { text: pending.toString('utf8'), end: offset + pending.length };
}

/**
 * A page's place: the byte offset of the next row in results.csv, for this file and this version of its reports
 * (a retry by code rewrites results.csv at the same key, so an offset into the old one means nothing in the new).
 */
interface RecordsCursor {
  readonly o: number;
  readonly f: string;
  readonly r: number;
}

const encodeCursor = (cursor: RecordsCursor) => Buffer.from(JSON.stringify(cursor)).toString('base64url');

function decodeCursor(text: string): RecordsCursor {
  try {
    const cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<RecordsCursor>;
    const { o, f, r } = cursor;
    if (typeof o === 'number' && Number.isInteger(o) && o > 0 && typeof f === 'string' && typeof r === 'number') {
      return { o, f, r };
    }
  } catch {
    // Answered below.
  }
  throw new ApiError('BadRequest', 'cursor: not a cursor this API gave (pass the last page\'s "next" as it is)');
}

/**
 * GET /v1/files/{fileId}/records: a finished file's records in line order, from its results.csv, filtered by
 * outcome and code (the CRM code or the failure reason). The cursor is a byte offset into results.csv, so each
 * page reads from where the last ended (a ranged GET), whatever the file's size. 409 while the file runs: its
 * records are listed once its reports are written (its counts are in the file view meanwhile).
 */
export async function fileRecords(
  deps: Pick<FileQueries, 'catalog'> & { readonly reports: ObjectReader },
  fileId: string,
  params: Record<string, string | undefined>,
): Promise<{ records: FileRecord[]; next: string | null }> {
  const query = parseParams(RecordsQuery, params);
  const entry = await catalogued(deps, fileId);
  const summary = entry.summary;
  if (!summary) {
    throw new ApiError(
      'Conflict',
      `${entry.name} is still running: its records are listed once its reports are written`,
    );
  }
  const resultsKey = summary.reports.results;
  if (!resultsKey) return { records: [], next: null };
  const ref = { bucket: summary.reports.bucket, key: resultsKey };
  const size = (await deps.reports.head(ref)).size;
  const version = summary.redoRounds ?? 0;
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  if (cursor && cursor.f !== entry.fileId) {
    throw new ApiError('BadRequest', 'cursor: it belongs to another file (pass the last page\'s "next" of this file)');
  }
  if (cursor && cursor.r !== version) {
    throw new ApiError(
      'Conflict',
      `${entry.name}: its reports were rewritten by a retry since this cursor was given; start again from the first page`,
    );
  }
  const from = cursor?.o ?? 0;
  if (from >= size) return { records: [], next: null };
  const records: FileRecord[] = [];
  let next: number | null = null;
  for await (const row of resultRows(deps.reports, ref, { start: from, end: size - 1 })) {
    const { record } = row;
    if (
      (query.outcome === undefined || record.outcome === query.outcome) &&
      (query.code === undefined || record.code === query.code || row.crmCode === query.code)
    ) {
      records.push(record);
    }
    if (row.end >= size) break;
    if (records.length === query.limit || row.end - from >= MAX_SCAN_BYTES) {
      next = row.end;
      break;
    }
  }
  return { records, next: next === null ? null : encodeCursor({ o: next, f: entry.fileId, r: version }) };
}

/**
 * The records of a results.csv in line order, streamed (one row parsed at a time), from a byte range's start (a
 * page's cursor) or the whole file (a retry picks its failed records from it), each with its CRM code as written
 * and the offset just past its row.
 */
export async function* resultRows(
  reports: Pick<ObjectReader, 'read'>,
  ref: { bucket: string; key: string },
  range?: { start: number; end: number },
) {
  const start = range?.start ?? 0;
  for await (const row of csvRows(reports.read(ref, range), start)) {
    // The header is the first row only; no data row starts with `line,` (a line is a number).
    if (row.text === '' || (start === 0 && row.text.startsWith('line,'))) continue;
    const fields = Papa.parse<string[]>(row.text).data[0] ?? [];
    yield { record: toRecord(fields), crmCode: fields[4] ?? '', end: row.end };
  }
}
