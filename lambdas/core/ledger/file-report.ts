import { cancelledOutcome, outcomeReason, type CallAnswer, type RecordOutcome } from '../crm/dispatch-call';
import type { CrmOperation } from '../crm/response-policy';
import { ErrorNames, PipelineError } from '../errors';
import type { RecordFormat } from '../files/file-encoding';
import type { SourceRecord } from '../files/read-records';
import { invalid, validateRecord, type FileKind } from '../files/record-schemas';

/** A file's line in the run summary (local-run.md, Output). */
export interface FileSummary {
  readonly name: string;
  readonly sha256: string;
  readonly kind: FileKind | 'unknown';
  readonly status: 'succeeded' | 'partial' | 'failed' | 'duplicate' | 'cancelled';
  readonly received: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Failed records by reason: the CRM code as a string, an error name, or VALIDATION. */
  readonly failures: Readonly<Record<string, number>>;
  readonly reason?: string;
}

/** Raised when a finished file does not add up: a record with no terminal outcome, or an answer for no record. */
export class ReconciliationError extends PipelineError {
  constructor(message: string) {
    super(ErrorNames.ledgerMismatch, message);
  }
}

/** One row of results.csv: what happened to one record. */
export interface RecordResult {
  readonly line: number;
  readonly recordId: string;
  readonly operations: readonly CrmOperation[];
  readonly outcome: 'succeeded' | 'failed';
  readonly code?: number;
  readonly reason?: string;
  readonly error?: string;
  readonly attempts: number;
}

/** Where report text goes: a local file, or an S3 upload stream on AWS. */
export interface TextSink {
  write(text: string): Promise<void> | void;
}

export interface ReportInput {
  readonly name: string;
  readonly sha256: string;
  readonly kind: FileKind;
  readonly format: RecordFormat;
  /** The source file read again, in line order (validation is deterministic, so rejections need no storage). */
  readonly source: AsyncIterable<readonly SourceRecord[]>;
  /** ADD-phase answers in batch order, which is line order. */
  readonly addAnswers: AsyncIterable<CallAnswer>;
  /**
   * The later phases (UPD, or RETRY1..n), in phase order, each its answers in batch order: a phase batches
   * only the lines it carried, in line order, so each is a sorted stream like the ADD answers.
   */
  readonly laterPhases: readonly AsyncIterable<CallAnswer>[];
  readonly results: TextSink;
  /** Receives the failed-records file, in the source's format; nothing is written when no record failed. */
  readonly failedRecords: TextSink;
  /**
   * Go on from an earlier slice's progress: `source` then yields the records after it, and the answer streams
   * may start at (or before) each phase's next batch. @default the start
   */
  readonly from?: ReportProgress;
  /** Asked after each chunk of records is written: true ends the slice there, with its progress. @default never */
  readonly shouldStop?: () => boolean;
  /**
   * Told of every record's result, in line order, as it is reported (finalise builds the record lookup index
   * from it). Synchronous: a promise only when the merge must wait for it before the next record (a full
   * buffer being written), so the merge does not await once per record. @default none
   */
  readonly onRecord?: (result: RecordResult) => void | Promise<void>;
  /**
   * The file was cancelled: a record no call answered (never sent) or left waiting for a next phase (8006, 4404)
   * fails as CANCELLED instead of being a ReconciliationError. @default false
   */
  readonly cancelled?: boolean;
  /**
   * A redo round of a file that was cancelled before: its records the first run never sent (no ADD answer) or
   * left waiting (8006, 4404) fail as CANCELLED, as they did in its report, unless a redo phase (`laterPhases`
   * from index `redoFrom` on) answered them. @default none
   */
  readonly cancelledBefore?: { readonly redoFrom: number };
}

/** Where an answer stream stands: the batch whose outcome `at` is the next one not taken. */
export interface AnswerPosition {
  readonly batch: number;
  readonly at: number;
}

/** What a report slice leaves for the next, at a record boundary: the counts so far and each stream's place. */
export interface ReportProgress {
  readonly received: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** The failed-records file's CSV header, once written. */
  readonly failedHeader?: readonly string[];
  /** The ADD answers' place. */
  readonly add: AnswerPosition;
  /** Each later phase's place, in phase order. */
  readonly later: readonly AnswerPosition[];
}

export type ReportSlice =
  { readonly done: true; readonly summary: FileSummary } | { readonly done: false; readonly progress: ReportProgress };

const RESULTS_HEADER = 'line,record_id,operations,outcome,code,error,attempts\n';
/** Column added to the failed-records file: unknown columns are ignored on upload, so a fixed file can go back as it is. */
export const FAILURE_COLUMN = 'failure_reason';

/**
 * Column of the failed-records file (JSON Lines) that holds a line that was no JSON object, as written: the
 * partner sees what to fix.
 */
export const SOURCE_LINE_COLUMN = 'source_line';

/**
 * A source value as report text: strings, numbers and booleans as they are; anything else is blank (a refused
 * value, or what a column missing from a short row finds on Object.prototype, such as `constructor`).
 */
const plainText = (value: unknown): string =>
  typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';

/**
 * A failed JSON Lines record for the failed-records file: its line as written with the reason added as the last
 * key, so nothing the partner wrote is lost or changed (nested values, long numbers, key case, repeated keys).
 * A line that already has the reason key (a fixed file that failed again) gets a second one; JSON readers,
 * ours too, take the last.
 */
function failedJsonLine(record: SourceRecord, reason: string): string {
  const reasonField = `${JSON.stringify(FAILURE_COLUMN)}:${JSON.stringify(reason)}`;
  const line = record.text?.trim();
  if (line === undefined) return JSON.stringify({ ...record.fields, [FAILURE_COLUMN]: reason });
  if (!record.problem && line.startsWith('{') && line.endsWith('}')) {
    const members = line.slice(1, -1);
    return `{${members}${members.trim() === '' ? '' : ','}${reasonField}}`;
  }
  return `{${JSON.stringify(SOURCE_LINE_COLUMN)}:${JSON.stringify(line)},${reasonField}}`;
}

const csvField = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

/**
 * One phase's answers read as a stream of outcomes in line order, holding one answer at a time: merged with the
 * source by line, they cost O(records) time and memory that does not grow with the file or its answers.
 */
class OutcomeStream {
  private readonly answers: AsyncIterator<CallAnswer>;
  private outcomes: readonly RecordOutcome[] = [];
  private at = 0;
  private ended = false;
  /** The answer being read (the one that holds `head()`). */
  answer: CallAnswer | undefined;

  /** `start`: a slice's place; answers before its batch (an adapter may start earlier) are passed over. */
  constructor(
    answers: AsyncIterable<CallAnswer>,
    private readonly start: AnswerPosition = { batch: 0, at: 0 },
  ) {
    this.answers = answers[Symbol.asyncIterator]();
  }

  /** Where the next slice goes on: the answer in hand and the next outcome in it, or where this one began. */
  position(): AnswerPosition {
    return this.answer ? { batch: this.answer.batchIndex, at: this.at } : this.start;
  }

  /**
   * The next outcome not taken, or undefined when every answer is read. A promise only when the answer in
   * hand is used up, so the merge awaits once per answer, not once per record.
   */
  head(): RecordOutcome | undefined | Promise<RecordOutcome | undefined> {
    if (this.at < this.outcomes.length) return this.outcomes[this.at];
    return this.ended ? undefined : this.load();
  }

  take(): void {
    this.at++;
  }

  /** After the last record: an outcome or answer left over, which then matches no record. */
  async leftOver(): Promise<{ outcome: RecordOutcome } | { answer: CallAnswer } | undefined> {
    if (this.at < this.outcomes.length) return { outcome: this.outcomes[this.at] as RecordOutcome };
    if (this.ended) return undefined;
    for (;;) {
      const next = await this.answers.next();
      if (next.done) return undefined;
      const { batchIndex, outcomes } = next.value;
      // Resumed at the end of a file: the answers a slice before took are no left-overs.
      if (batchIndex < this.start.batch) continue;
      if (batchIndex === this.start.batch && this.answer === undefined) {
        this.answer = next.value;
        if (this.start.at < outcomes.length) return { outcome: outcomes[this.start.at] as RecordOutcome };
        continue;
      }
      return { answer: next.value };
    }
  }

  /** Stops the reader under it (a read-ahead in the adapter) when the merge ends early; never throws. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await Promise.resolve(this.answers.return?.()).catch(() => undefined);
  }

  private async load(): Promise<RecordOutcome | undefined> {
    while (this.at >= this.outcomes.length) {
      const next = await this.answers.next();
      if (next.done) {
        this.ended = true;
        return undefined;
      }
      if (next.value.batchIndex < this.start.batch) continue;
      this.answer = next.value;
      this.outcomes = next.value.outcomes;
      this.at = next.value.batchIndex === this.start.batch ? this.start.at : 0;
    }
    return this.outcomes[this.at];
  }
}

/**
 * The terminal outcome of a record: its last phase decides (retry-later left at the end fails as 4404). Each
 * later phase's next outcome is this record's when it names its line; one for an earlier line named no record
 * the phases sent (a VALIDATION failure, or out of line order).
 */
async function resolve(
  line: number,
  addOutcome: RecordOutcome,
  operation: CrmOperation | undefined,
  later: OutcomeStream[],
) {
  const operations: CrmOperation[] = operation ? [operation] : [];
  let outcome = addOutcome;
  // The phase whose outcome is the record's: -1 for ADD, else its index in `later`.
  let from = -1;
  for (const [index, stream] of later.entries()) {
    const next = stream.head();
    const head = next instanceof Promise ? await next : next;
    if (head === undefined || head.line > line) continue;
    const answer = stream.answer as CallAnswer;
    if (head.line < line) {
      throw new ReconciliationError(
        `a ${answer.phase} answer (batch ${answer.batchIndex}) for line ${head.line} matches no record sent`,
      );
    }
    stream.take();
    // A batch answered CANCELLED by the dispatcher was never sent: no operation, no attempt.
    if (answer.attempts !== 0) operations.push(answer.operation);
    outcome = head;
    from = index;
  }
  return { operations, outcome, from };
}

/**
 * Reconciles a finished file and writes its reports: every record received ends succeeded or failed, with
 * `received = succeeded + failed`; a record left pending, or an answer that matches no record, is a
 * ReconciliationError, never a silent report. Writes results.csv (one row per record) and the failed-records
 * file, and returns the summary.
 */
export async function reportFile(input: ReportInput): Promise<FileSummary> {
  const { shouldStop: _never, ...whole } = input;
  const slice = await reportFileSlice(whole);
  if (!slice.done) throw new Error('a report without shouldStop ran to its end');
  return slice.summary;
}

/**
 * {@link reportFile} in slices: from `input.from` to the end of the file, or to the first chunk after which
 * `shouldStop` says so, returning the progress to go on from. Slices write the same text as one run.
 */
export async function reportFileSlice(input: ReportInput): Promise<ReportSlice> {
  const add = new OutcomeStream(input.addAnswers, input.from?.add);
  const later = input.laterPhases.map((answers, i) => new OutcomeStream(answers, input.from?.later[i]));
  try {
    return await mergeAndReport(input, add, later);
  } finally {
    await Promise.all([add, ...later].map((stream) => stream.close()));
  }
}

async function mergeAndReport(input: ReportInput, add: OutcomeStream, later: OutcomeStream[]): Promise<ReportSlice> {
  const idColumn = input.kind === 'users' ? 'customer_id' : 'transaction_id';
  const nextAddOutcome = async (line: number) => {
    const next = add.head();
    const outcome = next instanceof Promise ? await next : next;
    if ((input.cancelled || input.cancelledBefore) && (!outcome || outcome.line > line)) return undefined;
    if (!outcome) throw new ReconciliationError(`line ${line}: accepted, but no ADD answer: the record is pending`);
    if (outcome.line !== line) {
      throw new ReconciliationError(
        `line ${line}: the next ADD answer is for line ${outcome.line}; answers and source disagree`,
      );
    }
    add.take();
    const answer = add.answer as CallAnswer;
    return { outcome, operation: answer.attempts !== 0 ? answer.operation : undefined };
  };

  let received = input.from?.received ?? 0;
  let succeeded = input.from?.succeeded ?? 0;
  let failed = input.from?.failed ?? 0;
  const failures: Record<string, number> = { ...input.from?.failures };
  let failedHeader: string[] | undefined = input.from?.failedHeader && [...input.from.failedHeader];
  if (!input.from) await input.results.write(RESULTS_HEADER);

  const writeFailedRecord = async (record: SourceRecord, reason: string) => {
    if (input.format === 'jsonl') {
      await input.failedRecords.write(`${failedJsonLine(record, reason)}\n`);
      return;
    }
    if (!failedHeader) {
      failedHeader = [...Object.keys(record.fields).filter((c) => c !== FAILURE_COLUMN), FAILURE_COLUMN];
      await input.failedRecords.write(`${failedHeader.map(csvField).join(',')}\n`);
    }
    const row = failedHeader.map((column) => (column === FAILURE_COLUMN ? reason : plainText(record.fields[column])));
    await input.failedRecords.write(`${row.map(csvField).join(',')}\n`);
  };

  for await (const chunk of input.source) {
    let rows = '';
    for (const record of chunk) {
      received++;
      const recordId = plainText(record.fields[idColumn]);
      const validated = record.problem
        ? invalid(record.problem.column, record.problem.rule)
        : validateRecord(input.kind, record.fields);
      let result: RecordResult;
      if (!validated.ok) {
        result = {
          line: record.line,
          recordId,
          operations: [],
          outcome: 'failed',
          reason: 'VALIDATION',
          error: validated.reason,
          attempts: 0,
        };
      } else {
        const first = await nextAddOutcome(record.line);
        // Never sent in a cancelled run: CANCELLED, unless a redo round of the file has since sent it.
        const resolved = first
          ? await resolve(record.line, first.outcome, first.operation, later)
          : input.cancelledBefore
            ? await resolve(record.line, cancelledOutcome(record.line), undefined, later)
            : { operations: [] as CrmOperation[], outcome: cancelledOutcome(record.line), from: -1 };
        const { operations } = resolved;
        let { outcome } = resolved;
        const cancelledHere =
          input.cancelled || (input.cancelledBefore !== undefined && resolved.from < input.cancelledBefore.redoFrom);
        if (cancelledHere && (outcome.status === 'update' || outcome.status === 'retry-later')) {
          outcome = cancelledOutcome(record.line);
        }
        if (outcome.status === 'update') {
          throw new ReconciliationError(`line ${record.line}: 8006 but no UPD answer: the record is pending`);
        }
        const terminal = outcome.status === 'succeeded' ? 'succeeded' : 'failed';
        result = {
          line: record.line,
          recordId,
          operations,
          outcome: terminal,
          ...(outcome.code === undefined ? {} : { code: outcome.code }),
          ...(terminal === 'failed' ? { reason: outcomeReason(outcome) } : {}),
          ...(outcome.error === undefined ? {} : { error: outcome.error }),
          attempts: operations.length,
        };
      }
      const told = input.onRecord?.(result);
      if (told) await told;
      if (result.outcome === 'succeeded') {
        succeeded++;
      } else {
        failed++;
        const reason = result.reason as string;
        failures[reason] = (failures[reason] ?? 0) + 1;
        await writeFailedRecord(record, result.error && reason === 'VALIDATION' ? result.error : reason);
      }
      rows += `${[result.line, csvField(result.recordId), result.operations.join('+'), result.outcome, result.code ?? '', csvField(result.error ?? ''), result.attempts].join(',')}\n`;
    }
    if (rows) await input.results.write(rows);
    if (input.shouldStop?.()) {
      const progress: ReportProgress = {
        received,
        succeeded,
        failed,
        failures,
        ...(failedHeader ? { failedHeader } : {}),
        add: add.position(),
        later: later.map((stream) => stream.position()),
      };
      return { done: false, progress };
    }
  }
  for (const stream of [add, ...later]) {
    const left = await stream.leftOver();
    if (!left) continue;
    const phase = 'outcome' in left ? (stream.answer as CallAnswer).phase : left.answer.phase;
    if ('outcome' in left)
      throw new ReconciliationError(`${phase} answers for line ${left.outcome.line} and after match no record`);
    throw new ReconciliationError(
      `${phase === 'ADD' ? 'an' : 'a'} ${phase} answer (batch ${left.answer.batchIndex}) matches no record`,
    );
  }
  if (received !== succeeded + failed)
    throw new ReconciliationError(`received ${received} != ${succeeded} succeeded + ${failed} failed`);

  const status = input.cancelled ? 'cancelled' : failed === 0 ? 'succeeded' : succeeded === 0 ? 'failed' : 'partial';
  const summary: FileSummary = {
    name: input.name,
    sha256: input.sha256,
    kind: input.kind,
    status,
    received,
    succeeded,
    failed,
    failures,
    ...(status === 'failed' ? { reason: 'every record failed' } : {}),
  };
  return { done: true, summary };
}
