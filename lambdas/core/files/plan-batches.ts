/** One record in a batch: its source line (for outcomes and reports) and its CRM JSON, serialised once. */
export interface BatchItem {
  readonly line: number;
  readonly json: string;
}

/** A batch of records for one CRM call, numbered in file order from the phase's first index. */
export interface PlannedBatch {
  readonly index: number;
  readonly items: readonly BatchItem[];
  /** UTF-8 bytes of the call body `{"records":[...]}` these items make. */
  readonly bytes: number;
}

export interface BatchLimits {
  /** Records per call (the CRM takes at most 100). */
  readonly maxRecords: number;
  /** Bytes of the call body: a batch travels as one queue message / state payload, capped at 256 KiB. */
  readonly maxBytes: number;
}

const BODY_PREFIX = '{"records":[';
const BODY_SUFFIX = ']}';
const EMPTY_BODY_BYTES = BODY_PREFIX.length + BODY_SUFFIX.length;

/** The CRM call body of a batch, byte for byte the same on every retry (the idempotency key needs it). */
export const batchBody = (items: readonly BatchItem[]) =>
  `${BODY_PREFIX}${items.map((i) => i.json).join(',')}${BODY_SUFFIX}`;

/**
 * Cuts a stream of records into batches of at most `maxRecords` records and `maxBytes` bytes, in order,
 * numbered deterministically: the same records always give the same batches and indexes.
 */
export class BatchPlanner {
  private items: BatchItem[] = [];
  private bytes = EMPTY_BODY_BYTES;
  private nextIndex: number;

  constructor(
    private readonly limits: BatchLimits,
    firstIndex = 0,
  ) {
    this.nextIndex = firstIndex;
  }

  /** Adds a record; returns the batch that became full before it, if any. */
  add(line: number, json: string): PlannedBatch | undefined {
    const size = Buffer.byteLength(json);
    if (EMPTY_BODY_BYTES + size > this.limits.maxBytes) {
      throw new RangeError(
        `line ${line}: one record is ${size} bytes, over the batch budget of ${this.limits.maxBytes}`,
      );
    }
    let full: PlannedBatch | undefined;
    // +1: the comma before every record but the first.
    if (this.items.length >= this.limits.maxRecords || this.bytes + size + 1 > this.limits.maxBytes)
      full = this.flush();
    this.bytes += this.items.length > 0 ? size + 1 : size;
    this.items.push({ line, json });
    return full;
  }

  /** The batch being filled, if it holds anything; planning then goes on with the next index. */
  flush(): PlannedBatch | undefined {
    if (this.items.length === 0) return undefined;
    const batch: PlannedBatch = { index: this.nextIndex++, items: this.items, bytes: this.bytes };
    this.items = [];
    this.bytes = EMPTY_BODY_BYTES;
    return batch;
  }
}
