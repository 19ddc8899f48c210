import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import type { CrmOperation } from '../../lambdas/core/crm/response-policy';
import type { FileKind } from '../../lambdas/core/files/record-schemas';

/** Records a generated answer holds, as prepare batches them. */
export const BATCH_RECORDS = 100;

/** A record's draw in [0, 1000), from its line alone: the source and each phase's answers agree without sharing state. */
export const draw = (line: number, salt: number) => (Math.imul(line ^ salt, 2654435761) >>> 0) % 1000;

/**
 * The outcome of an accepted record in each phase it reaches: users 30% 8006 -> UPD (5% of those then
 * CONFLICTING_PROFILE), 2% 3217; transactions 6% 4404 -> RETRY1 (half found) -> RETRY2 (half found, the rest fail
 * 4404).
 */
export function mixedFates(kind: FileKind, line: number): RecordOutcome[] {
  const ok: RecordOutcome = { line, status: 'succeeded', code: 200 };
  if (kind === 'users') {
    if (draw(line, 2) >= 300) return [draw(line, 3) < 20 ? { line, status: 'failed', code: 3217, reason: '3217' } : ok];
    const exists: RecordOutcome = { line, status: 'update', code: 8006, reason: '8006', error: 'CUSTOMER_EXISTS' };
    const conflict: RecordOutcome = {
      line,
      status: 'failed',
      code: 200,
      reason: 'CONFLICTING_PROFILE',
      error: 'CONFLICTING_PROFILE',
    };
    return [exists, draw(line, 4) < 50 ? conflict : ok];
  }
  if (draw(line, 2) >= 60) return [ok];
  const notYet: RecordOutcome = {
    line,
    status: 'retry-later',
    code: 4404,
    reason: '4404',
    error: 'CUSTOMER_NOT_FOUND',
  };
  // RETRY1: half find their customer; RETRY2: half of the rest; the others fail as 4404.
  if (draw(line, 5) < 500) return [notYet, ok];
  return [notYet, notYet, draw(line, 6) < 500 ? ok : notYet];
}

/**
 * One phase's outcomes gathered into answers in batch (= line) order, 100 records a batch, as the ledger gives
 * them back: `add` returns an answer when one is full, `rest` the last, partial one.
 */
export function answerBatcher(kind: FileKind, phase: string, at: number) {
  const operation: CrmOperation = kind === 'users' ? (at === 0 ? 'ADD_CUST' : 'UPD_CUST') : 'ADD_TRX';
  let outcomes: RecordOutcome[] = [];
  let batchIndex = 0;
  const take = (): CallAnswer => {
    const answer: CallAnswer = {
      fileId: 'bench',
      phase,
      batchIndex: batchIndex++,
      operation,
      outcomes,
      attempts: 1,
      replayed: false,
    };
    outcomes = [];
    return answer;
  };
  return {
    add(outcome: RecordOutcome): CallAnswer | undefined {
      outcomes.push(outcome);
      return outcomes.length === BATCH_RECORDS ? take() : undefined;
    },
    rest(): CallAnswer | undefined {
      return outcomes.length > 0 ? take() : undefined;
    },
  };
}
