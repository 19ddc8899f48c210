import type { Encoding } from '../config';
import { BatchPlanner, type BatchLimits, type PlannedBatch } from './plan-batches';
import { readHashedRecords } from './read-from';
import type { ChunkPositions, ReadPosition, SourceRecord } from './read-records';
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
   * Batches below this index were handed on by an earlier slice that left no checkpoint: they are planned again
   * (batching is deterministic) but not handed on twice. Ignored with `from`. @default 0
   */
  readonly firstBatch?: number;
  /**
   * Go on from the checkpoint an earlier slice of the same phase returned: the source then holds the bytes from
   * {@link resumeOffset} (a plain file from the checkpoint's byte, a gzip file whole), and batches are numbered
   * from its `nextBatch`.
   */
  readonly from?: PrepareCheckpoint;
  /**
   * Asked after each piece of text that gave this slice a batch: true ends the slice there, once every batch
   * cut so far is handed on and its `onBatches` settled, to be resumed from its `checkpoint`.
   */
  readonly shouldStop?: () => boolean;
  /**
   * Asked before each hand-off of `batches` batches, in order, awaited: true hands them on; false ends the slice
   * there, its checkpoint at the start of the first of them (nothing past the gate is sent). The gate may wait
   * (for room in the file's window of calls). @default every hand-off goes
   */
  readonly gate?: (batches: number) => Promise<boolean>;
  /**
   * Told after each chunk where the reading stands (its end), the index past the last batch cut so far (handed
   * on or not): enough to estimate the batches to come, and the phase's records read and refused up to there
   * over all its slices (unknown when resumed from a checkpoint that does not carry them).
   */
  readonly onRead?: (end: ReadPosition, batchesCut: number, totals: RecordTotals | undefined) => void;
  /** Encodings accepted (`ACCEPTED_ENCODINGS`); another fails with `File.EncodingNotAccepted`. @default all */
  readonly acceptedEncodings?: readonly Encoding[];
  /**
   * Receives full batches in order, `batchesPerSend` at a time. Calls overlap the reading: up to `sendsInFlight`
   * may be pending at once (each started after the one before), and the reader waits when that many are, so a
   * slow queue slows the reader instead of filling memory. Every call has settled before prepareFile returns;
   * the first rejection fails it.
   */
  readonly onBatches: (batches: readonly PlannedBatch[]) => Promise<void> | void;
  /** Batches handed on in one `onBatches` call. @default 10 (one SendMessageBatch request) */
  readonly batchesPerSend?: number;
  /** `onBatches` calls pending at once. @default 16 */
  readonly sendsInFlight?: number;
  /** Bytes of the batches of pending `onBatches` calls past which the reader waits. @default 16 MiB */
  readonly maxBytesInFlight?: number;
  /**
   * Receives records that broke a rule, in order; awaited. A slice that stops may have passed on some past its
   * checkpoint (after the first record of the batch it leaves unsent): the next slice passes them on again.
   */
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
  /** Where the next slice starts: every batch below it has been handed on and its send has settled. */
  readonly nextBatch: number;
  /** Where the next slice goes on from, when this one stopped early. */
  readonly checkpoint?: PrepareCheckpoint;
  /**
   * The phase's records over all its slices up to where this one ended (its checkpoint, or the file's end):
   * `received` and `rejected` added to those of the slices before. Unknown when resumed from a checkpoint that
   * does not carry them.
   */
  readonly totals?: RecordTotals;
}

/** Records read and refused (VALIDATION) by a phase so far. */
export interface RecordTotals {
  readonly received: number;
  readonly rejected: number;
}

/**
 * Where a phase's next slice goes on: a batch boundary (the start of batch `nextBatch`'s first record), so no
 * partly filled batch is carried between slices, and no record: a few hundred bytes, whatever the file.
 */
export interface PrepareCheckpoint {
  readonly position: ReadPosition;
  readonly nextBatch: number;
  /**
   * A plain file: the SHA-256 state (hash-wasm, base64) after the bytes before `position.bytes`, so the slice
   * that reaches the end checks the whole file's identity having read each byte once. A gzip file is inflated
   * from its start by every slice, and hashed whole by each.
   */
  readonly sha256State?: string;
  /**
   * The phase's records before `position` over all its slices, so each slice adds only its own: a slice run
   * again from the same checkpoint (a retry) counts nothing twice. Missing from checkpoints of older executions.
   */
  readonly totals?: RecordTotals;
}

/** Where a slice's counts start: from the file's start, nothing; from a checkpoint, what it carries (if it does). */
const totalsBefore = (from: PrepareCheckpoint | undefined): RecordTotals | undefined =>
  from ? from.totals : { received: 0, rejected: 0 };

const plus = (before: RecordTotals | undefined, slice: RecordTotals): RecordTotals | undefined =>
  before && { received: before.received + slice.received, rejected: before.rejected + slice.rejected };

/** Defaults of the send window: why these numbers, see {@link SendWindow}. */
export const BATCHES_PER_SEND = 10;
const SENDS_IN_FLIGHT = 16;
const MAX_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

/**
 * Streams a partner file through read -> validate -> normalise -> batch: the domain half of the
 * prepare-file Lambda and of the benchmark. Memory stays flat: records live only as long as their chunk, and
 * batches only until their send settles (a bounded window of them).
 * @throws FileRejectedError when the file as a whole cannot be read (nothing of it should then be sent).
 */
export async function prepareFile(source: AsyncIterable<Uint8Array>, options: PrepareOptions): Promise<PrepareSummary> {
  const from = options.from;
  const before = totalsBefore(from);
  const planner = new BatchPlanner(options, from?.nextBatch ?? 0);
  const window = new SendWindow(options.onBatches, {
    sends: options.sendsInFlight ?? SENDS_IN_FLIGHT,
    bytes: options.maxBytesInFlight ?? MAX_BYTES_IN_FLIGHT,
  });
  const batchesPerSend = options.batchesPerSend ?? BATCHES_PER_SEND;
  let received = 0;
  let accepted = 0;
  let rejectedCount = 0;
  let batchCount = 0;
  // The positions of the chunk in hand. Bytes before the previous chunk's end are hashed as they go: every
  // later batch starts at or after it.
  const { hash, records, positions } = await readHashedRecords(source, {
    name: options.name,
    requiredColumns: requiredColumns(options.kind),
    ...(options.acceptedEncodings ? { acceptedEncodings: options.acceptedEncodings } : {}),
    ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
    ...(from ? { from: from.position } : {}),
    ...(from?.sha256State ? { sha256State: from.sha256State } : {}),
    ...(options.maxFileSizeBytes === undefined ? {} : { maxHashedBytes: options.maxFileSizeBytes }),
  });
  const firstBatch = from ? from.nextBatch : (options.firstBatch ?? 0);
  // The batch being filled: where its first record starts (the checkpoint, were the slice to stop now), the
  // hash state there, and the counts before it. A slice stops only at a batch boundary, so none is carried.
  type BatchStart = {
    position: ReadPosition;
    sha256State?: string;
    received: number;
    accepted: number;
    rejected: number;
  };
  let open: BatchStart | undefined;
  // Where each batch cut but not yet handed on starts: a gate that refuses a hand-off ends the slice there.
  const starts = new Map<number, BatchStart>();
  let refused: PlannedBatch | undefined;
  const openBatch = (line: number) => {
    const position = (positions() as ChunkPositions).lineStart(line);
    open = {
      position,
      ...(position.gzip ? {} : { sha256State: hash.saveAt(position.bytes) }),
      received,
      accepted,
      rejected: rejectedCount,
    };
  };
  // Batches of this slice cut but not yet handed on (fewer than batchesPerSend), and the index past the last
  // one handed on. `nextBatch` is only moved there once every send before it has settled: the checkpoint.
  let group: PlannedBatch[] = [];
  let handedEnd = firstBatch;
  let batchesCut = firstBatch;
  let nextBatch = firstBatch;
  /** Hands the group on, unless the gate refuses it: then false, and the slice ends at its first batch. */
  const handOn = async () => {
    if (group.length === 0) return true;
    const batches = group;
    if (options.gate && !(await options.gate(batches.length))) {
      refused = batches[0];
      return false;
    }
    group = [];
    handedEnd = (batches[batches.length - 1] as PlannedBatch).index + 1;
    for (const batch of batches) starts.delete(batch.index);
    await window.send(batches);
    return true;
  };
  const take = async (batches: readonly PlannedBatch[]) => {
    for (const batch of batches) {
      if (batch.index < firstBatch) {
        starts.delete(batch.index);
        continue;
      }
      group.push(batch);
      if (group.length >= batchesPerSend && !(await handOn())) return false;
    }
    return true;
  };
  const finish = async (complete: boolean): Promise<PrepareSummary> => {
    if (!refused) await handOn();
    await window.drain();
    nextBatch = handedEnd;
    let checkpoint: PrepareCheckpoint | undefined;
    let counts = { received, accepted, rejected: rejectedCount };
    const stoppedAt = refused && starts.get(refused.index);
    if (refused && !stoppedAt) throw new Error(`batch ${refused.index}: where it starts is not known`);
    if (stoppedAt) {
      // Refused by the gate: at the start of the first batch not handed on (the next slice cuts it again).
      complete = false;
      checkpoint = {
        position: stoppedAt.position,
        nextBatch,
        ...(stoppedAt.sha256State === undefined ? {} : { sha256State: stoppedAt.sha256State }),
      };
      counts = { received: stoppedAt.received, accepted: stoppedAt.accepted, rejected: stoppedAt.rejected };
    } else if (!complete) {
      // Stopped after a chunk: at the start of the open batch (re-read by the next slice), or, with none open,
      // just past the chunk.
      const end = (positions() as ChunkPositions).end;
      const at = open ?? { position: end, ...(end.gzip ? {} : { sha256State: hash.saveAt(end.bytes) }) };
      checkpoint = {
        position: at.position,
        nextBatch,
        ...(at.sha256State === undefined ? {} : { sha256State: at.sha256State }),
      };
      if (open) counts = { received: open.received, accepted: open.accepted, rejected: open.rejected };
    }
    // The counts end where the checkpoint is: records past it are read again, and counted, by the next slice.
    const totals = plus(before, counts);
    if (checkpoint && totals) checkpoint = { ...checkpoint, totals };
    return {
      sha256: hash.sha256(),
      bytes: hash.size(),
      ...counts,
      batches: batchCount,
      complete,
      nextBatch,
      ...(checkpoint ? { checkpoint } : {}),
      ...(totals ? { totals } : {}),
    };
  };
  try {
    for await (const chunk of records) {
      window.throwIfFailed();
      const batches: PlannedBatch[] = [];
      const rejected: RejectedRecord[] = [];
      for (const record of chunk) {
        if (options.onlyLines && !options.onlyLines.has(record.line)) continue;
        const result = record.problem
          ? invalid(record.problem.column, record.problem.rule)
          : validateRecord(options.kind, record.fields);
        if (!result.ok) {
          received++;
          rejectedCount++;
          rejected.push({ line: record.line, reason: result.reason, fields: record.fields });
          continue;
        }
        const full = planner.add(record.line, JSON.stringify(result.record));
        if (full) {
          batches.push(full);
          if (options.gate) starts.set(full.index, open as BatchStart);
        }
        if (full || !open) openBatch(record.line);
        received++;
        accepted++;
      }
      batchCount += batches.length;
      if (rejected.length > 0) await options.onRejected(rejected);
      const cut = batches.length > 0 ? (batches[batches.length - 1] as PlannedBatch).index + 1 : undefined;
      if (cut !== undefined) batchesCut = cut;
      // Before the hand-offs, which may wait (a gate): an estimate of the batches to come is current meanwhile.
      options.onRead?.(
        (positions() as ChunkPositions).end,
        batchesCut,
        plus(before, { received, rejected: rejectedCount }),
      );
      if (!(await take(batches))) return await finish(false);
      // Only once this slice has a batch of its own: a slice that stopped before would make no progress.
      const progressed = group.length > 0 || handedEnd > firstBatch;
      if (progressed && options.shouldStop?.()) return await finish(false);
    }
    const last = planner.flush();
    if (last) {
      batchCount++;
      if (options.gate) starts.set(last.index, open as BatchStart);
      if (!(await take([last]))) return await finish(false);
    }
    return await finish(true);
  } catch (error) {
    // Nothing goes on sending behind a failed prepare, and a send's failure is reported once, as this one.
    await window.settle();
    throw error;
  }
}

/**
 * The sends in progress: up to `sends` `onBatches` calls pending, holding at most about `bytes` of batches,
 * so reading overlaps the queue's round trips (one SendMessageBatch takes ~20 ms from Lambda, as long as
 * parsing a few thousand records) while memory stays bounded. 10 batches a call fill one SendMessageBatch;
 * 16 calls in flight carry 160 batches per round trip, ~8,000 batches/s at 20 ms, several times what one
 * Lambda parses, so parsing stays the bound; 160 batches of 100 typical records are ~3 MB, and the byte bound
 * (16 MiB, twice that while their message bodies exist) holds for batches near the 256 KiB message limit.
 * A failed send is kept (never an unhandled rejection) and thrown by the next `send`, `throwIfFailed` or `drain`.
 */
export class SendWindow {
  private readonly pending = new Set<Promise<void>>();
  private bytesInFlight = 0;
  private failure: { readonly error: unknown } | undefined;

  constructor(
    private readonly onBatches: PrepareOptions['onBatches'],
    private readonly limits: { readonly sends: number; readonly bytes: number } = {
      sends: SENDS_IN_FLIGHT,
      bytes: MAX_BYTES_IN_FLIGHT,
    },
  ) {}

  /** Starts handing `batches` on once the window has room for them. */
  async send(batches: readonly PlannedBatch[]): Promise<void> {
    const bytes = batches.reduce((sum, batch) => sum + batch.bytes, 0);
    while (
      !this.failure &&
      this.pending.size > 0 &&
      (this.pending.size >= this.limits.sends || this.bytesInFlight + bytes > this.limits.bytes)
    ) {
      await Promise.race(this.pending);
    }
    this.throwIfFailed();
    this.bytesInFlight += bytes;
    const sending: Promise<void> = (async () => this.onBatches(batches))()
      .then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => {
        this.pending.delete(sending);
        this.bytesInFlight -= bytes;
      });
    this.pending.add(sending);
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every send; throws the first failure among them. */
  async drain(): Promise<void> {
    await this.settle();
    this.throwIfFailed();
  }

  /** Waits for every send, whatever its outcome. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}

/**
 * The lines a later phase takes (the records the phase before answered 8006 or 4404), which can be all of a
 * file's 100 million: a bitmap over line numbers, one bit a line of the file up to the highest line added,
 * so 100M lines take 12.5 MB however many of them are carried, and membership (asked for every record) is one
 * array read. A sorted Uint32Array would take 4 bytes a carried line (400 MB when every line of a 100M file
 * is carried, and a binary search per record); it is smaller only when few lines are carried, where both are
 * small. Built line by line, in any order, with no intermediate array: the bitmap grows by doubling.
 */
export class LineSet {
  private bits = new Uint8Array(0);
  private count = 0;

  constructor(lines: Iterable<number> = []) {
    for (const line of lines) this.add(line);
  }

  /** Lines in the set. */
  get size(): number {
    return this.count;
  }

  /** Bytes the bitmap holds (capacity, up to twice the highest line / 8). */
  get byteLength(): number {
    return this.bits.byteLength;
  }

  add(line: number): void {
    if (line >>> 0 !== line) throw new RangeError(`not a line number: ${line}`);
    const at = line >>> 3;
    if (at >= this.bits.length) {
      const grown = new Uint8Array(Math.max(at + 1, this.bits.length * 2, 4096));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (line & 7);
    const byte = this.bits[at] as number;
    if ((byte & mask) === 0) {
      this.bits[at] = byte | mask;
      this.count++;
    }
  }

  has(line: number): boolean {
    if (line >>> 0 !== line) return false;
    const at = line >>> 3;
    return at < this.bits.length && ((this.bits[at] as number) & (1 << (line & 7))) !== 0;
  }
}
