import type { Encoding } from '../config';
import { hashWhileStreaming } from './file-identity';
import { BatchPlanner, type BatchLimits, type PlannedBatch } from './plan-batches';
import { readRecords, type SourceRecord } from './read-records';
import { invalid, requiredColumns, validateRecord, type FileKind } from './record-schemas';

/** A record refused before sending: never sent, reported with its line and reason. */
export interface RejectedRecord {
  readonly line: number;
  readonly reason: string;
  readonly fields: SourceRecord['fields'];
}

export interface PrepareOptions extends BatchLimits {
  /** The file's name (its suffix says the encoding). */
  readonly name: string;
  readonly kind: FileKind;
  /** Largest accepted file in bytes; a larger one fails with `File.TooLarge`. */
  readonly maxFileSizeBytes?: number;
  /** Bytes of text (after gunzip) past which the file fails with `File.TooLarge`. @default no limit */
  readonly maxDecompressedBytes?: number;
  /**
   * Take only these lines (a later phase: the 8006 or 4404 records of the one before). Other records are
   * skipped unvalidated; the batches are numbered from 0 for the phase.
   */
  readonly onlyLines?: { has(line: number): boolean };
  /**
   * Batches below this index were handed on by an earlier slice: they are planned again (batching is
   * deterministic) but not handed on twice. @default 0
   */
  readonly firstBatch?: number;
  /** Asked after each handing-on: true ends the slice there, to be resumed from `nextBatch`. */
  readonly shouldStop?: () => boolean;
  /** Encodings accepted (`ACCEPTED_ENCODINGS`); another fails with `File.EncodingNotAccepted`. @default all */
  readonly acceptedEncodings?: readonly Encoding[];
  /** Receives full batches in order; awaited, so a slow queue slows the reader instead of filling memory. */
  readonly onBatches: (batches: readonly PlannedBatch[]) => Promise<void> | void;
  /** Receives records that broke a rule, in order; awaited likewise. */
  readonly onRejected: (records: readonly RejectedRecord[]) => Promise<void> | void;
}

export interface PrepareSummary {
  /** SHA-256 of the bytes as uploaded: the file's identity. */
  readonly sha256: string;
  readonly bytes: number;
  /** Records found (blank lines are not records). */
  readonly received: number;
  /** Records validated, normalised and handed on in batches. */
  readonly accepted: number;
  readonly rejected: number;
  readonly batches: number;
  /** False when the slice stopped early (`shouldStop`): counts and hash then cover only what was read. */
  readonly complete: boolean;
  /** Where the next slice starts: every batch below it has been handed on. */
  readonly nextBatch: number;
}

/**
 * Streams a partner file through read -> validate -> normalise -> batch: the domain half of the
 * prepare-file Lambda and of the benchmark. Memory stays flat: records live only as long as their chunk.
 * @throws FileRejectedError when the file as a whole cannot be read (nothing of it should then be sent).
 */
export async function prepareFile(source: AsyncIterable<Uint8Array>, options: PrepareOptions): Promise<PrepareSummary> {
  const hashed = hashWhileStreaming(source, options.maxFileSizeBytes);
  const planner = new BatchPlanner(options);
  let received = 0;
  let accepted = 0;
  let rejectedCount = 0;
  let batchCount = 0;
  const records = readRecords(hashed.bytes, {
    name: options.name,
    requiredColumns: requiredColumns(options.kind),
    ...(options.acceptedEncodings ? { acceptedEncodings: options.acceptedEncodings } : {}),
    ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
  });
  const firstBatch = options.firstBatch ?? 0;
  let nextBatch = firstBatch;
  const summary = (complete: boolean): PrepareSummary => ({
    sha256: hashed.sha256(),
    bytes: hashed.size(),
    received,
    accepted,
    rejected: rejectedCount,
    batches: batchCount,
    complete,
    nextBatch,
  });
  const handOn = async (planned: readonly PlannedBatch[]) => {
    const fresh = planned.filter((batch) => batch.index >= firstBatch);
    if (fresh.length === 0) return false;
    await options.onBatches(fresh);
    nextBatch = (fresh[fresh.length - 1] as PlannedBatch).index + 1;
    return options.shouldStop?.() ?? false;
  };
  for await (const chunk of records) {
    const batches: PlannedBatch[] = [];
    const rejected: RejectedRecord[] = [];
    let skipped = 0;
    for (const record of chunk) {
      if (options.onlyLines && !options.onlyLines.has(record.line)) {
        skipped++;
        continue;
      }
      const result = record.problem
        ? invalid(record.problem.column, record.problem.rule)
        : validateRecord(options.kind, record.fields);
      if (!result.ok) {
        rejected.push({ line: record.line, reason: result.reason, fields: record.fields });
        continue;
      }
      const full = planner.add(record.line, JSON.stringify(result.record));
      if (full) batches.push(full);
    }
    received += chunk.length - skipped;
    accepted += chunk.length - skipped - rejected.length;
    rejectedCount += rejected.length;
    batchCount += batches.length;
    if (rejected.length > 0) await options.onRejected(rejected);
    if (await handOn(batches)) return summary(false);
  }
  const last = planner.flush();
  if (last) {
    batchCount++;
    await handOn([last]);
  }
  return summary(true);
}

/**
 * A large set of line numbers in little memory (4 bytes a line): the records a later phase takes, which can
 * be millions (a load of customers the CRM already has). Lines may be added in any order.
 */
export class LineSet {
  private readonly lines: Uint32Array;

  constructor(lines: Iterable<number>) {
    this.lines = Uint32Array.from(lines).sort();
  }

  get size(): number {
    return this.lines.length;
  }

  has(line: number): boolean {
    let low = 0;
    let high = this.lines.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.lines[middle] as number;
      if (value === line) return true;
      if (value < line) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}
