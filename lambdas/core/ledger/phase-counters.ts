import { outcomeReason, type CallAnswer, type OutcomeStatus, type RecordOutcome } from '../crm/dispatch-call';

/**
 * Where a phase of a file stands: how many batches it has (known once its last prepare slice has enqueued
 * them), how many are answered, and how many of their records go on to a next phase.
 */
export interface PhaseState {
  readonly fileId: string;
  readonly phase: string;
  readonly batches?: number;
  readonly answered: number;
  /** Records answered 8006: the UPD phase takes them. */
  readonly update: number;
  /** Records answered 4404: the next RETRY phase takes them. */
  readonly retryLater: number;
  /** CRM calls its answers took (retries of a call included; a cancelled batch took none). */
  readonly calls?: number;
  /** The waiting execution's task token, once the await step has stored it. */
  readonly taskToken?: string;
  /** Records its answers ended succeeded, and failed (terminal: not 8006 or 4404, which a next phase takes). */
  readonly succeeded?: number;
  readonly failed?: number;
  /** The failed ones by reason (the CRM code as a string, or an error name such as CANCELLED). */
  readonly failures?: Readonly<Record<string, number>>;
}

/** What a finished phase tells the state machine (its NextPhase choice reads `update` and `retryLater`). */
export interface PhaseResult {
  readonly phase: string;
  readonly batches: number;
  readonly answered: number;
  readonly update: number;
  readonly retryLater: number;
}

export const isComplete = (state: PhaseState): state is PhaseState & { batches: number } =>
  state.batches !== undefined && state.answered >= state.batches;

export const phaseResult = (state: PhaseState & { batches: number }): PhaseResult => ({
  phase: state.phase,
  batches: state.batches,
  answered: state.answered,
  update: state.update,
  retryLater: state.retryLater,
});

/** What answers add to their phase's counters. */
export interface OutcomeTally {
  readonly update: number;
  readonly retryLater: number;
  /** Records the answers ended: succeeded, and failed by reason (8006 and 4404 are not ended: a next phase takes them). */
  readonly succeeded: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
}

/**
 * Counts answers' outcomes, an answer at a time (a recount streams a whole phase through one). A retry-later left
 * at the file's end fails as 4404 in the report only; while the file runs it is pending, so it is counted here as
 * carried, never as failed. Reasons are kept in a Map (a CRM's error name such as `__proto__` is just a key).
 */
export class OutcomeCounter {
  private update = 0;
  private retryLater = 0;
  private succeeded = 0;
  private failed = 0;
  private readonly failures = new Map<string, number>();

  add(outcomes: readonly RecordOutcome[]): this {
    for (const outcome of outcomes) {
      if (outcome.status === 'update') this.update++;
      else if (outcome.status === 'retry-later') this.retryLater++;
      else if (outcome.status === 'succeeded') this.succeeded++;
      else {
        this.failed++;
        const reason = outcomeReason(outcome);
        this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
      }
    }
    return this;
  }

  tally(): OutcomeTally {
    const { update, retryLater, succeeded, failed } = this;
    return { update, retryLater, succeeded, failed, failures: Object.fromEntries(this.failures) };
  }
}

/** What one answer's outcomes add to its phase's counters. */
export const tallyOutcomes = (outcomes: readonly RecordOutcome[]): OutcomeTally =>
  new OutcomeCounter().add(outcomes).tally();

const RETRY_PHASE = /^RETRY(\d+)$/;
const REDO_PHASE = /^REDO(\d+)(UPD)?$/;

/**
 * Phase order: ADD, UPD, then RETRY1, RETRY2 ... RETRY10 by number (a name sort would put RETRY10 before RETRY2),
 * then each redo round by number, REDO<n> before its REDO<n>UPD.
 */
export function comparePhases(a: string, b: string): number {
  const order = (phase: string): [number, number] => {
    const retry = RETRY_PHASE.exec(phase);
    const redo = REDO_PHASE.exec(phase);
    if (phase === 'ADD') return [0, 0];
    if (phase === 'UPD') return [1, 0];
    if (retry) return [2, Number(retry[1])];
    if (redo) return [3, Number(redo[1]) * 2 + (redo[2] ? 1 : 0)];
    return [4, 0];
  };
  const [rankA, numberA] = order(a);
  const [rankB, numberB] = order(b);
  return rankA - rankB || numberA - numberB || (a < b ? -1 : a > b ? 1 : 0);
}

/** The status that sends a record on from each phase to the next. */
export const CARRIED_STATUS: Readonly<Record<'UPD' | 'RETRY', OutcomeStatus>> = { UPD: 'update', RETRY: 'retry-later' };

/**
 * The port to the phase counters. Single-item writes only (the design allows no transactions): an answer is
 * stored by one conditional put, then counted by one atomic update made only by the writer whose put created
 * it, so a count is never doubled. A crash between the two leaves the counter short; {@link checkPhase}
 * heals that by counting the stored answers again.
 */
export interface PhaseCounters {
  read(fileId: string, phase: string): Promise<PhaseState>;
  /** Set by the last prepare slice of the phase. */
  setBatchTotal(fileId: string, phase: string, batches: number): Promise<PhaseState>;
  /** Counts one newly stored answer: the batch, its calls, and its records by outcome (see {@link tallyOutcomes}). */
  countAnswer(answer: CallAnswer): Promise<PhaseState>;
  storeTaskToken(fileId: string, phase: string, taskToken: string): Promise<PhaseState>;
  /**
   * Counts the stored answers again and sets the counters from them, unless `answered` has moved from
   * `expected` meanwhile (answers are still arriving: nothing was lost); then `moved`.
   */
  recount(fileId: string, phase: string, expected: number): Promise<PhaseState | 'moved'>;
}

/** The port to the waiting execution (Step Functions' SendTaskSuccess on AWS, an in-process call locally). */
export interface TaskNotifier {
  /** Resumes the execution waiting on `taskToken`; a token already used is not an error. */
  succeed(taskToken: string, result: PhaseResult): Promise<void>;
}

/**
 * Resumes the waiting execution when the phase is complete. Called by each of the three writers that can
 * complete it (the dispatcher counting the last answer, the last prepare slice setting the total, the await
 * step storing the token), so whichever comes last resumes it; two of them may both send, which is harmless.
 */
export async function resumeIfComplete(state: PhaseState, notifier: TaskNotifier): Promise<boolean> {
  if (!isComplete(state) || !state.taskToken) return false;
  await notifier.succeed(state.taskToken, phaseResult(state));
  return true;
}

export type PhaseCheck = PhaseResult & { readonly complete: boolean; readonly recounted: boolean };

/**
 * The state machine's periodic check while it awaits a phase (the await task's timeout): complete, still
 * moving (answers arrived since the last check: wait on), or stalled short of its total, when the stored
 * answers are counted again, which heals a count lost to a crash between an answer and its count.
 */
export async function checkPhase(
  ledger: PhaseCounters,
  fileId: string,
  phase: string,
  previous?: { phase: string; answered: number },
): Promise<PhaseCheck> {
  let state = await ledger.read(fileId, phase);
  let recounted = false;
  const stalled = previous?.phase === phase && previous.answered === state.answered;
  if (!isComplete(state) && stalled && state.batches !== undefined) {
    const counted = await ledger.recount(fileId, phase, state.answered);
    if (counted !== 'moved') {
      state = counted;
      recounted = true;
    }
  }
  return {
    phase,
    batches: state.batches ?? -1,
    answered: state.answered,
    update: state.update,
    retryLater: state.retryLater,
    complete: isComplete(state),
    recounted,
  };
}

/** The dispatcher's part, after it stored a new answer: count it, and resume the execution if it was the last. */
export async function countAnswer(answer: CallAnswer, ledger: PhaseCounters, notifier: TaskNotifier): Promise<boolean> {
  return resumeIfComplete(await ledger.countAnswer(answer), notifier);
}
