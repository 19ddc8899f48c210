import type { Encoding } from '../config';
import { callMessageBody, operationFor, type CallQueue } from '../crm/call-message';
import type { CallAnswer } from '../crm/dispatch-call';
import { ErrorNames, PipelineError } from '../errors';
import type { ObjectRef, ObjectStore } from '../files/object-store';
import type { BatchLimits } from '../files/plan-batches';
import { LineSet, prepareFile, type PrepareCheckpoint, type RecordTotals } from '../files/prepare-file';
import { readFromPosition } from '../files/read-from';
import type { FileKind } from '../files/record-schemas';
import { CARRIED_STATUS, resumeIfComplete, type PhaseCounters, type TaskNotifier } from '../ledger/phase-counters';
import { recheckSeconds, wakeWaiting, type ScheduleRules } from '../schedule/schedule';
import { SendTurn, type Stopped, type TurnDeps } from '../schedule/send-turn';
import { fileNameOf } from './storage-keys';

/** Where a phase's answers are read back, in batch order. */
export interface AnswerSource {
  answers(fileId: string, phase: string): AsyncIterable<CallAnswer>;
}

export interface PhaseDeps {
  readonly store: ObjectStore;
  readonly queue: CallQueue;
  readonly phases: PhaseCounters;
  readonly answers: AnswerSource;
  readonly notifier: TaskNotifier;
  readonly limits: BatchLimits;
  readonly acceptedEncodings: readonly Encoding[];
  /** Bytes of text past which the file is refused (`MAX_DECOMPRESSED_BYTES`). @default no limit */
  readonly maxDecompressedBytes?: number;
  /** The CRM budget's schedule (docs/design.md, Scheduling); without it every batch is sent at once. */
  readonly turn?: TurnDeps;
}

export interface PhaseSlice {
  readonly file: ObjectRef;
  readonly kind: FileKind;
  readonly fileId: string;
  /** ADD, UPD, RETRY<n>, REDO<n> or REDO<n>UPD. */
  readonly phase: string;
  /** The phase whose 8006 (UPD, REDO<n>UPD) or 4404 (RETRY<n>) records this one takes; none for ADD or REDO<n>. */
  readonly from?: string;
  /**
   * A redo round's first phase (REDO<n>): the lines it takes, chosen by the retry request (the failed records
   * with the codes asked for), in an object written by it (`redo/<fileId>/<round>.lines`, see
   * {@link readLineSet}), instead of the answers of a phase before.
   */
  readonly lines?: ObjectRef;
  /** The first batch this slice may enqueue: earlier ones were enqueued by earlier slices. */
  readonly firstBatch: number;
  /**
   * Where the slice before stopped: this one reads on from there (a plain file by a ranged read). Without one
   * (the phase's first slice, or one started before checkpoints existed), the file is read from its start.
   */
  readonly checkpoint?: PrepareCheckpoint;
  /** The file's name and partner, for the schedule. */
  readonly name?: string;
  readonly partner?: string;
}

export interface SliceResult {
  readonly complete: boolean;
  /** Where the next slice starts; once complete, the phase's number of batches. */
  readonly nextBatch: number;
  readonly received: number;
  readonly rejected: number;
  /** Where the next slice goes on from, when this one is not complete. */
  readonly checkpoint?: PrepareCheckpoint;
  /**
   * Why the slice stopped before the phase's end and may not go on now: `waiting` (a rule or a pause holds it;
   * the state machine asks again after SCHEDULE_CHECK_S), `cancelled` or `gaveUp` (the phase was closed with
   * the batches already queued: complete is then true).
   */
  readonly held?: {
    readonly state: 'waiting' | 'paused' | 'cancelled';
    readonly reason: string;
    readonly gaveUp?: boolean;
    /** Ask again after this long if nothing wakes the file first. */
    readonly recheckSeconds: number;
  };
  /** This slice ended a wait of the file: how long, on which rule. */
  readonly waited?: { readonly rule: string; readonly seconds: number };
}

/**
 * The lines a later phase takes: the records the phase before answered 8006 (UPD) or 4404 (RETRY<n>), added
 * to a {@link LineSet} (a bitmap: 12.5 MB for a 100M-line file) one by one as the answers stream in, never
 * gathered in an array first (8 bytes or more a line: 800 MB for 100M lines).
 */
export async function carriedLines(
  answers: AnswerSource,
  fileId: string,
  phase: string,
  from: string,
): Promise<LineSet> {
  const status = CARRIED_STATUS[phase.startsWith('RETRY') ? 'RETRY' : 'UPD'];
  const lines = new LineSet();
  for await (const answer of answers.answers(fileId, from)) {
    for (const outcome of answer.outcomes) if (outcome.status === status) lines.add(outcome.line);
  }
  return lines;
}

/**
 * The lines of a redo round, read from the object the retry request wrote: line numbers as decimal text, one a
 * line, in ascending order ({@link lineSetText}). Streamed into a {@link LineSet}, so a million lines cost their
 * bitmap, not an array.
 */
export async function readLineSet(store: Pick<ObjectStore, 'read'>, ref: ObjectRef): Promise<LineSet> {
  const lines = new LineSet();
  let partial = '';
  const take = (text: string) => {
    if (text === '') return;
    const line = Number(text);
    if (!Number.isInteger(line) || line < 1) throw new RangeError(`${ref.key}: not a line number: ${text}`);
    lines.add(line);
  };
  const decoder = new TextDecoder();
  for await (const chunk of store.read(ref)) {
    const parts = (partial + decoder.decode(chunk, { stream: true })).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) take(part.trim());
  }
  take((partial + decoder.decode()).trim());
  return lines;
}

/** The text of a redo round's lines object: each line number, one a line ({@link readLineSet} reads it). */
export const lineSetText = (lines: readonly number[]) => (lines.length > 0 ? `${lines.join('\n')}\n` : '');

/**
 * One slice of a phase (the prepare-file Lambda's use case): streams the file, validates and normalises, cuts
 * batches and sends each as one message to the call queue (a bounded window of sends in flight while reading
 * goes on), until `shouldStop` says the Lambda's time is nearly up; the slice then ends once every batch before
 * its checkpoint is sent. The slice that reaches the end records the phase's batch total, which may complete the phase at once
 * (no batches, or every answer already in). A slice repeated after a crash sends some messages again: each is
 * answered once (the ledger) and applied once (the Idempotency-Key).
 */
export async function preparePhaseSlice(
  slice: PhaseSlice,
  deps: PhaseDeps,
  shouldStop: () => boolean,
): Promise<SliceResult> {
  if (slice.phase !== 'ADD' && !slice.from && !slice.lines) {
    throw new RangeError(`phase ${slice.phase} needs the phase it follows, or its lines`);
  }
  let turn: SendTurn | undefined;
  if (deps.turn) {
    const begun = await SendTurn.begin(
      deps.turn,
      deps.phases,
      {
        fileId: slice.fileId,
        phase: slice.phase,
        firstBatch: slice.firstBatch,
        name: slice.name ?? fileNameOf(slice.file.key),
        partner: slice.partner ?? '',
        kind: slice.kind,
      },
      shouldStop,
    );
    if (!begun.first.send) {
      if (closes(begun.first)) return closePhase(slice, deps, slice.firstBatch, begun.first, shouldStop);
      return {
        complete: false,
        nextBatch: slice.firstBatch,
        received: 0,
        rejected: 0,
        ...(slice.checkpoint ? { checkpoint: slice.checkpoint } : {}),
        held: held(begun.first, deps.turn.rules),
      };
    }
    turn = begun.turn;
  }
  const onlyLines = slice.lines
    ? await readLineSet(deps.store, slice.lines)
    : slice.from
      ? await carriedLines(deps.answers, slice.fileId, slice.phase, slice.from)
      : undefined;
  const meta = { fileId: slice.fileId, phase: slice.phase, operation: operationFor(slice.kind, slice.phase) };
  // The phase's batches in all, for the ETA: a later phase's from the lines it carries; the ADD phase's from the
  // share of the file read so far (unknown for gzip, whose text size is not known until its end).
  let read = { bytes: 0, gzip: false, cut: 0 };
  if (turn && onlyLines) {
    const batches = Math.ceil(onlyLines.size / deps.limits.maxRecords);
    turn.estimate = () => batches;
  } else if (turn) {
    const size = (await deps.store.head(slice.file)).size;
    turn.estimate = (sent) =>
      read.bytes > 0 && !read.gzip ? Math.max(sent, Math.ceil((read.cut * size) / read.bytes)) : undefined;
  }
  const checkpoint = slice.checkpoint?.nextBatch === slice.firstBatch ? slice.checkpoint : undefined;
  // The ADD phase's records read so far, over all its slices: the file view's `received` and VALIDATION failures.
  let totals: RecordTotals | undefined;
  if (turn && slice.phase === 'ADD') turn.records = () => totals;
  const summary = await prepareFile(await readFromPosition(deps.store, slice.file, checkpoint?.position), {
    name: slice.file.key,
    kind: slice.kind,
    ...deps.limits,
    acceptedEncodings: deps.acceptedEncodings,
    ...(deps.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: deps.maxDecompressedBytes }),
    firstBatch: slice.firstBatch,
    ...(checkpoint ? { from: checkpoint } : {}),
    shouldStop,
    onRead: (end, cut, readSoFar) => {
      read = { bytes: end.bytes, gzip: end.gzip, cut };
      totals = readSoFar;
    },
    ...(onlyLines ? { onlyLines } : {}),
    ...(turn ? { gate: (batches: number) => (turn as SendTurn).admit(batches) } : {}),
    onBatches: (batches) =>
      deps.queue.send(batches.map((batch) => ({ body: callMessageBody(batch, meta), records: batch.items.length }))),
    // Validation failures need no storage: the report validates the file again (it is deterministic).
    onRejected: () => undefined,
  });
  const stopped = turn?.stopped;
  if (stopped && !summary.complete && closes(stopped)) {
    return {
      ...(await closePhase(slice, deps, summary.nextBatch, stopped, shouldStop)),
      received: summary.received,
      rejected: summary.rejected,
    };
  }
  totals = summary.totals ?? totals;
  await turn?.end({ complete: summary.complete, nextBatch: summary.nextBatch });
  if (summary.complete) {
    if (summary.sha256 !== slice.fileId) {
      throw new PipelineError(
        ErrorNames.ledgerMismatch,
        `${slice.file.key} is not the file that was claimed: its bytes changed`,
      );
    }
    await resumeIfComplete(
      await deps.phases.setBatchTotal(slice.fileId, slice.phase, summary.nextBatch),
      deps.notifier,
    );
  }
  return {
    complete: summary.complete,
    nextBatch: summary.nextBatch,
    received: summary.received,
    rejected: summary.rejected,
    ...(summary.checkpoint ? { checkpoint: summary.checkpoint } : {}),
    ...(stopped && !summary.complete && deps.turn ? { held: held(stopped, deps.turn.rules) } : {}),
    ...(turn?.waited ? { waited: turn.waited } : {}),
  };
}

/** How long the answered count must stay still, twice, before a closed phase's total is set. */
const CLOSE_SETTLE_MS = 3000;

/** A cancel, or a RETRY phase that waited past its bound, closes the phase with what is already queued. */
const closes = (stopped: Stopped) => stopped.state === 'cancelled' || stopped.giveUp === true;

const held = (stopped: Stopped, rules: ScheduleRules): NonNullable<SliceResult['held']> => ({
  state: stopped.state,
  reason: stopped.reason,
  ...(stopped.giveUp ? { gaveUp: true } : {}),
  recheckSeconds: recheckSeconds(stopped, rules),
});

/**
 * Ends the phase at `batches` (those queued so far): its total is set, so it completes once they are answered
 * (the dispatcher answers a cancelled file's queued batches CANCELLED without a call), and finalise reports the
 * records never sent: CANCELLED, or 4404 for a RETRY phase that gave up.
 */
async function closePhase(
  slice: PhaseSlice,
  deps: PhaseDeps,
  queued: number,
  stopped: Stopped,
  shouldStop: () => boolean,
): Promise<SliceResult> {
  // A slice killed after queueing batches past its input's firstBatch leaves them to be answered (CANCELLED by
  // the dispatcher, or made): wait until the answers stop coming (a held-back call comes back within 5 s), and
  // count them in the total, so none of them is left out of the report.
  let state = await deps.phases.read(slice.fileId, slice.phase);
  for (let quiet = 0; quiet < 2 && !shouldStop();) {
    await new Promise((resolve) => setTimeout(resolve, CLOSE_SETTLE_MS));
    const next = await deps.phases.read(slice.fileId, slice.phase);
    quiet = next.answered === state.answered ? quiet + 1 : 0;
    state = next;
  }
  const batches = Math.max(queued, state.answered, state.batches ?? 0);
  await resumeIfComplete(await deps.phases.setBatchTotal(slice.fileId, slice.phase, batches), deps.notifier);
  const turn = deps.turn as TurnDeps;
  await turn.schedule.update(slice.fileId, {
    state: 'awaiting',
    phase: slice.phase,
    sent: batches,
    batchesEstimate: batches,
  });
  if (turn.notifier) await wakeWaiting(turn.schedule, turn.notifier);
  return { complete: true, nextBatch: batches, received: 0, rejected: 0, held: held(stopped, turn.rules) };
}
