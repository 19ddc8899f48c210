import { callBody, type CallMessage } from './call-message';
import { CrmClient, idempotencyKey } from './crm-client';
import type { CrmOperation, RecordAction } from './response-policy';

/**
 * Where a record stands after a call. `update` (8006: send again with UPD_CUST) and `retry-later` (4404:
 * send again after a delay) are not terminal: the workflow's next phase picks them up.
 */
export type OutcomeStatus = 'succeeded' | 'failed' | 'update' | 'retry-later';

const STATUS_OF: Record<RecordAction, OutcomeStatus> = {
  succeeded: 'succeeded',
  failed: 'failed',
  'retry-with-update': 'update',
  'retry-later': 'retry-later',
};

export interface RecordOutcome {
  readonly line: number;
  readonly status: OutcomeStatus;
  readonly code?: number;
  /** The key reports count failures by: `"3217"`, `"CONFLICTING_PROFILE"`, `"400"`... */
  readonly reason?: string;
  readonly error?: string;
}

/** A batch's answer: what the call did to each of its records. */
export interface CallAnswer {
  readonly fileId: string;
  readonly phase: string;
  readonly batchIndex: number;
  readonly operation: CrmOperation;
  readonly outcomes: readonly RecordOutcome[];
  readonly attempts: number;
  readonly replayed: boolean;
}

/** The port to the ledger: each batch is answered once, however often its message is delivered. */
export interface CallAnswers {
  hasAnswer(fileId: string, phase: string, batchIndex: number): Promise<boolean>;
  /** Stores the answer unless one is stored already (a second delivery racing the first). */
  recordAnswer(answer: CallAnswer): Promise<'recorded' | 'already-recorded'>;
}

export type DispatchResult =
  | { readonly status: 'answered'; readonly answer: CallAnswer; readonly recorded: 'recorded' | 'already-recorded' }
  | { readonly status: 'already-answered' };

/**
 * Makes one queued call and records what it did to each record (the CrmDispatch Lambda's use case; the same
 * code runs locally). A redelivered message whose batch is already answered is not sent again, so it costs
 * no API budget; a first delivery skips that read (one DynamoDB request less per call): should it be a
 * duplicate after all, the CRM replays it under the same Idempotency-Key and the answer is recorded once.
 * Whole-call failures (auth, 409, transient past the retries) throw a named `CrmCallError`: the message then
 * stays on the queue and its records stay pending; nothing is marked failed for them.
 */
export async function dispatchCall(
  message: CallMessage,
  deps: { client: CrmClient; answers: CallAnswers; beforeSend?: () => Promise<void> },
  delivery: { firstDelivery?: boolean } = {},
): Promise<DispatchResult> {
  if (!delivery.firstDelivery && (await deps.answers.hasAnswer(message.fileId, message.phase, message.batchIndex))) {
    return { status: 'already-answered' };
  }
  const result = await deps.client.send({
    operation: message.operation,
    idempotencyKey: idempotencyKey(message.fileId, message.phase, message.batchIndex),
    body: callBody(message),
    recordCount: message.records.length,
    ...(deps.beforeSend ? { beforeSend: deps.beforeSend } : {}),
  });
  const outcomes: RecordOutcome[] =
    result.kind === 'answered'
      ? result.decisions.map((decision, i) => ({
          line: message.lines[i] as number,
          status: STATUS_OF[decision.action],
          code: decision.code,
          ...(decision.reason === undefined ? {} : { reason: decision.reason }),
          ...(decision.error === undefined ? {} : { error: decision.error }),
        }))
      : message.lines.map((line) => ({
          line,
          status: 'failed',
          code: result.status,
          reason: String(result.status),
          error: result.message,
        }));
  const answer: CallAnswer = {
    fileId: message.fileId,
    phase: message.phase,
    batchIndex: message.batchIndex,
    operation: message.operation,
    outcomes,
    attempts: result.attempts,
    replayed: result.kind === 'answered' && result.replayed,
  };
  return { status: 'answered', answer, recorded: await deps.answers.recordAnswer(answer) };
}

/** The reason of records a cancel stopped before they were sent. */
export const CANCELLED = 'CANCELLED';

/**
 * The reason a failed record is counted under: its decision's reason, else its code. The one key of the file
 * report's `failures` and of the live tallies on the phase counters, so the two add up.
 */
export const outcomeReason = (outcome: Pick<RecordOutcome, 'reason' | 'code'>): string =>
  outcome.reason ?? String(outcome.code ?? 'UNKNOWN');

/** What a cancel leaves of a record never sent (or never sent again): the dispatcher's answer, and the report's. */
export const cancelledOutcome = (line: number): RecordOutcome => ({
  line,
  status: 'failed',
  reason: CANCELLED,
  error: 'cancelled by an operator before it was sent',
});

/**
 * The answer of a queued call whose file was cancelled: nothing is sent, every record fails as CANCELLED, and
 * the answer is stored and counted like any other, so the phase completes and finalise reports them.
 */
export function cancelledAnswer(
  message: Pick<CallMessage, 'fileId' | 'phase' | 'batchIndex' | 'operation' | 'lines'>,
): CallAnswer {
  return {
    fileId: message.fileId,
    phase: message.phase,
    batchIndex: message.batchIndex,
    operation: message.operation,
    outcomes: message.lines.map(cancelledOutcome),
    attempts: 0,
    replayed: false,
  };
}
