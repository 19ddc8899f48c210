import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import type { CrmOperation } from '../../lambdas/core/crm/response-policy';
import type { PlannedBatch } from '../../lambdas/core/files/plan-batches';
import { prepareFile } from '../../lambdas/core/files/prepare-file';
import type { FileKind } from '../../lambdas/core/files/record-schemas';

/** The CRM's answers for one record, as the response policy classifies them. */
export const ok = (line: number): RecordOutcome => ({ line, status: 'succeeded', code: 200 });
export const exists = (line: number): RecordOutcome => ({
  line,
  status: 'update',
  code: 8006,
  reason: '8006',
  error: 'CUSTOMER_EXISTS',
});
export const conflicting = (line: number): RecordOutcome => ({
  line,
  status: 'failed',
  code: 200,
  reason: 'CONFLICTING_PROFILE',
  error: 'CONFLICTING_PROFILE',
});
export const refused = (line: number): RecordOutcome => ({
  line,
  status: 'failed',
  code: 3217,
  reason: '3217',
  error: 'INVALID_DATA',
});
export const notYet = (line: number): RecordOutcome => ({
  line,
  status: 'retry-later',
  code: 4404,
  reason: '4404',
  error: 'CUSTOMER_NOT_FOUND',
});

/** What the CRM answers record `i` in each phase it reaches; none: it fails VALIDATION. */
export function crm(kind: FileKind, i: number, line: number): RecordOutcome[] {
  if (i % 97 === 5) return [];
  if (kind === 'users') {
    if (i % 10 === 0 || i % 10 === 3 || i % 10 === 6) return [exists(line), i % 7 === 0 ? conflicting(line) : ok(line)];
    return [i % 50 === 1 ? refused(line) : ok(line)];
  }
  if (i % 5 !== 0) return [ok(line)];
  // 4404 in ADD; a third found in RETRY1; half the rest in RETRY2; the others fail as 4404.
  return i % 3 === 0 ? [notYet(line), ok(line)] : [notYet(line), notYet(line), i % 2 === 0 ? ok(line) : notYet(line)];
}

/**
 * Every phase of a file batched by prepare as the workflow does (ADD, then each later phase's carried lines),
 * answered by `crm` and stored in the ledger; `read` gives the file's bytes from the start each time, `name` is
 * its key (record `i` is at line i + 1 in JSON Lines, i + 2 below a CSV header). Returns the file's SHA-256.
 */
export async function answerPhases(
  ledger: { recordAnswer(answer: CallAnswer): Promise<unknown> },
  read: () => AsyncIterable<Uint8Array>,
  name: string,
  kind: FileKind,
): Promise<string> {
  const phases = kind === 'users' ? ['ADD', 'UPD'] : ['ADD', 'RETRY1', 'RETRY2'];
  const firstLine = name.includes('.jsonl') ? 1 : 2;
  let fileId = '';
  let carried: Set<number> | undefined;
  for (const [at, phase] of phases.entries()) {
    const batches: PlannedBatch[] = [];
    const prepared = await prepareFile(read(), {
      name,
      kind,
      maxRecords: 100,
      maxBytes: 200 * 1024,
      ...(carried ? { onlyLines: carried } : {}),
      onBatches: (planned) => void batches.push(...planned),
      onRejected: () => undefined,
    });
    fileId = prepared.sha256;
    const operation: CrmOperation = kind === 'transactions' ? 'ADD_TRX' : phase === 'UPD' ? 'UPD_CUST' : 'ADD_CUST';
    const answers: CallAnswer[] = batches.map((batch) => ({
      fileId,
      phase,
      batchIndex: batch.index,
      operation,
      attempts: 1,
      replayed: false,
      outcomes: batch.items.map((item) => crm(kind, item.line - firstLine, item.line)[at] as RecordOutcome),
    }));
    await Promise.all(answers.map((answer) => ledger.recordAnswer(answer)));
    carried = new Set(
      answers
        .flatMap((a) => a.outcomes.filter((o) => o.status !== 'succeeded' && o.status !== 'failed'))
        .map((o) => o.line),
    );
  }
  return fileId;
}
