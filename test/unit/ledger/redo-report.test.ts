import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import { operationFor } from '../../../lambdas/core/crm/call-message';
import type { CrmOperation } from '../../../lambdas/core/crm/response-policy';
import { readRecords } from '../../../lambdas/core/files/read-records';
import { requiredColumns } from '../../../lambdas/core/files/record-schemas';
import { reportFile } from '../../../lambdas/core/ledger/file-report';
import { comparePhases } from '../../../lambdas/core/ledger/phase-counters';
import { exists, notYet, ok, refused } from '../../support/crm-outcomes';
import { chunksOf } from '../helpers';

/** A redo round's report: its REDO phases come last and replace the outcomes of the records they answered. */
const SHA = 'b'.repeat(64);
const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  'C1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z',
  'C2,Bo,Birch,bo@example.com,,GB,2026-01-01T00:00:00Z',
  'C3,Cy,Cedar,cy@example.com,,GB,2026-01-01T00:00:00Z',
  'C4,Di,Dogwood,di@example.com,,GB,2026-01-01T00:00:00Z',
].join('\n');

const answer = (phase: string, operation: CrmOperation, outcomes: RecordOutcome[], batchIndex = 0): CallAnswer => ({
  fileId: SHA,
  phase,
  batchIndex,
  operation,
  outcomes,
  attempts: 1,
  replayed: false,
});
async function* each<T>(items: T[]) {
  yield* items;
}

async function report(add: CallAnswer[], later: CallAnswer[][], options: { redoFrom?: number } = {}) {
  const rows: string[] = [];
  const summary = await reportFile({
    name: 'users_acme_20261124.csv',
    sha256: SHA,
    kind: 'users',
    format: 'csv',
    source: readRecords(chunksOf(USERS, 64), { name: 'users.csv', requiredColumns: requiredColumns('users') }),
    addAnswers: each(add),
    laterPhases: later.map((phase) => each(phase)),
    results: { write: (text) => void rows.push(text) },
    failedRecords: { write: () => undefined },
    ...(options.redoFrom === undefined ? {} : { cancelledBefore: { redoFrom: options.redoFrom } }),
  });
  const results = rows.join('').trim().split('\n').slice(1);
  return { summary, results: results.map((row) => row.split(',').slice(0, 5).join(',')) };
}

describe('a redo round in the report', () => {
  it('a 3217 retried and accepted replaces the failure; one retried and refused again stays failed', async () => {
    const add = [answer('ADD', 'ADD_CUST', [ok(2), refused(3), refused(4), ok(5)])];
    const { summary, results } = await report(add, [[], [answer('REDO1', 'ADD_CUST', [ok(3), refused(4)])], []]);
    expect(results).toEqual([
      '2,C1,ADD_CUST,succeeded,200',
      '3,C2,ADD_CUST+ADD_CUST,succeeded,200',
      '4,C3,ADD_CUST+ADD_CUST,failed,3217',
      '5,C4,ADD_CUST,succeeded,200',
    ]);
    expect(summary).toMatchObject({ status: 'partial', succeeded: 3, failed: 1, failures: { '3217': 1 } });
  });

  it('a cancelled file: the records it never sent, or left at 8006, are CANCELLED unless a redo round answered them', async () => {
    // C1 ok, C2 8006 (UPD never ran: cancelled), C3 and C4 never sent.
    const add = [answer('ADD', 'ADD_CUST', [ok(2), exists(3)])];
    const redo = [answer('REDO1', 'ADD_CUST', [exists(3), ok(4)])];
    const redoUpd = [answer('REDO1UPD', 'UPD_CUST', [ok(3)])];
    const { summary, results } = await report(add, [[], redo, redoUpd], { redoFrom: 1 });
    expect(results).toEqual([
      '2,C1,ADD_CUST,succeeded,200',
      '3,C2,ADD_CUST+ADD_CUST+UPD_CUST,succeeded,200',
      '4,C3,ADD_CUST,succeeded,200',
      '5,C4,,failed,',
    ]);
    expect(summary).toMatchObject({ status: 'partial', succeeded: 3, failed: 1, failures: { CANCELLED: 1 } });
  });

  it('a 4404 answered in a redo round is final: it fails as 4404 (no RETRY waits for it)', async () => {
    const { summary } = await report(
      [answer('ADD', 'ADD_CUST', [ok(2), ok(3), ok(4), notYet(5)])],
      [[answer('REDO1', 'ADD_CUST', [notYet(5)])]],
    );
    expect(summary).toMatchObject({ failed: 1, failures: { '4404': 1 } });
  });

  it('phases in order, and the operation of each', () => {
    const phases = ['REDO2UPD', 'REDO10', 'RETRY2', 'REDO2', 'ADD', 'REDO1', 'UPD', 'RETRY10', 'REDO1UPD'];
    expect([...phases].sort(comparePhases)).toEqual([
      'ADD',
      'UPD',
      'RETRY2',
      'RETRY10',
      'REDO1',
      'REDO1UPD',
      'REDO2',
      'REDO2UPD',
      'REDO10',
    ]);
    expect(['REDO3', 'REDO3UPD'].map((phase) => operationFor('users', phase))).toEqual(['ADD_CUST', 'UPD_CUST']);
    expect(operationFor('transactions', 'REDO3')).toBe('ADD_TRX');
    expect(() => operationFor('users', 'REDO0')).toThrow(RangeError);
  });
});
