import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import type { CrmOperation } from '../../../lambdas/core/crm/response-policy';
import { readRecords } from '../../../lambdas/core/files/read-records';
import { requiredColumns } from '../../../lambdas/core/files/record-schemas';
import { FAILURE_COLUMN, reportFile, type ReportInput } from '../../../lambdas/core/ledger/file-report';
import { chunksOf, collect } from '../helpers';

const SHA = 'f'.repeat(64);
const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at,notes',
  'C1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z,vip',
  'C2,Ben,Birch,not-an-email,,GB,2026-01-01T00:00:00Z,',
  'C3,Eve,"Cedar, Jr.",eve@example.com,,GB,2026-01-01T00:00:00Z,',
  'C4,Jun,Yew,jun@example.com,,GB,2026-01-01T00:00:00Z,',
  'C5,Kofi,Larch,kofi@example.com,,GB,2026-01-01T00:00:00Z,',
].join('\n');

const ok = (line: number): RecordOutcome => ({ line, status: 'succeeded', code: 200 });
const answer = (operation: CrmOperation, phase: string, batchIndex: number, outcomes: RecordOutcome[]): CallAnswer => ({
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

/** The later answers as the port gives them: one stream per phase, in phase order, each in batch order. */
function byPhase(answers: readonly CallAnswer[]): AsyncIterable<CallAnswer>[] {
  const phases = new Map<string, CallAnswer[]>();
  for (const a of answers) phases.set(a.phase, [...(phases.get(a.phase) ?? []), a]);
  return [...phases.values()].map((phase) => each(phase));
}

function sink() {
  const parts: string[] = [];
  return { write: (text: string) => void parts.push(text), text: () => parts.join('') };
}

function input(
  kind: 'users' | 'transactions',
  file: string,
  text: string,
  add: CallAnswer[],
  later: CallAnswer[] = [],
) {
  const results = sink();
  const failedRecords = sink();
  const report: ReportInput = {
    name: file,
    sha256: SHA,
    kind,
    format: file.includes('.jsonl') ? 'jsonl' : 'csv',
    source: readRecords(chunksOf(text, 64), { name: file, requiredColumns: requiredColumns(kind) }),
    addAnswers: each(add),
    laterPhases: byPhase(later),
    results,
    failedRecords,
  };
  return { report, results, failedRecords };
}

describe('reportFile', () => {
  it('gives each record one terminal outcome, counts failures by reason, and writes results and failed records', async () => {
    const { report, results, failedRecords } = input(
      'users',
      'users_acme_20261124.csv',
      USERS,
      [
        answer('ADD_CUST', 'ADD', 0, [
          ok(2),
          { line: 4, status: 'update', code: 8006, reason: '8006', error: 'CUSTOMER_EXISTS' },
          { line: 5, status: 'update', code: 8006, reason: '8006', error: 'CUSTOMER_EXISTS' },
          { line: 6, status: 'failed', code: 3217, reason: '3217', error: 'INVALID_DATA' },
        ]),
      ],
      [
        answer('UPD_CUST', 'UPD', 0, [
          ok(4),
          { line: 5, status: 'failed', code: 200, reason: 'CONFLICTING_PROFILE', error: 'CONFLICTING_PROFILE' },
        ]),
      ],
    );
    const summary = await reportFile(report);
    expect(summary).toEqual({
      name: 'users_acme_20261124.csv',
      sha256: SHA,
      kind: 'users',
      status: 'partial',
      received: 5,
      succeeded: 2,
      failed: 3,
      failures: { VALIDATION: 1, CONFLICTING_PROFILE: 1, '3217': 1 },
    });
    expect(results.text().split('\n')).toEqual([
      'line,record_id,operations,outcome,code,error,attempts',
      '2,C1,ADD_CUST,succeeded,200,,1',
      '3,C2,,failed,,VALIDATION: email: an email address,0',
      '4,C3,ADD_CUST+UPD_CUST,succeeded,200,,2',
      '5,C4,ADD_CUST+UPD_CUST,failed,200,CONFLICTING_PROFILE,2',
      '6,C5,ADD_CUST,failed,3217,INVALID_DATA,1',
      '',
    ]);
    // The failed records in the source's own format, unknown columns kept, the reason beside them.
    const failed = failedRecords.text();
    expect(failed.split('\n')[0]).toBe(
      `customer_id,first_name,last_name,email,phone,country,created_at,notes,${FAILURE_COLUMN}`,
    );
    const fixable = await collect(
      readRecords(chunksOf(failed), { name: 'fixed.csv', requiredColumns: requiredColumns('users') }),
    );
    expect(fixable.map((r) => [r.fields.customer_id, r.fields[FAILURE_COLUMN]])).toEqual([
      ['C2', 'VALIDATION: email: an email address'],
      ['C4', 'CONFLICTING_PROFILE'],
      ['C5', '3217'],
    ]);
  });

  it('JSON Lines: 4404 resolved by a retry succeeds; 4404 still there after the last retry fails as 4404', async () => {
    const trx = (id: string) =>
      JSON.stringify({
        transaction_id: id,
        customer_id: 'C1',
        amount: '1.00',
        currency: 'EUR',
        occurred_at: '2026-01-01T00:00:00Z',
      });
    const text = [trx('T1'), trx('T2'), '', trx('T3')].join('\n');
    const retry = (line: number): RecordOutcome => ({
      line,
      status: 'retry-later',
      code: 4404,
      reason: '4404',
      error: 'CUSTOMER_NOT_FOUND',
    });
    const { report, results, failedRecords } = input(
      'transactions',
      'trx_acme_20261124.jsonl',
      text,
      [answer('ADD_TRX', 'ADD', 0, [ok(1), retry(2), retry(4)])],
      [answer('ADD_TRX', 'RETRY1', 0, [ok(2), retry(4)]), answer('ADD_TRX', 'RETRY2', 0, [retry(4)])],
    );
    const summary = await reportFile(report);
    expect(summary).toMatchObject({ status: 'partial', received: 3, succeeded: 2, failed: 1, failures: { '4404': 1 } });
    expect(results.text()).toContain('4,T3,ADD_TRX+ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,3');
    expect(results.text()).toContain('2,T2,ADD_TRX+ADD_TRX,succeeded,200,,2');
    expect(JSON.parse(failedRecords.text())).toMatchObject({ transaction_id: 'T3', [FAILURE_COLUMN]: '4404' });
  });

  it('a file whose records all succeed writes no failed-records file', async () => {
    const { report, failedRecords } = input('users', 'u.csv', USERS.split('\n').slice(0, 2).join('\n'), [
      answer('ADD_CUST', 'ADD', 0, [ok(2)]),
    ]);
    expect(await reportFile(report)).toMatchObject({
      status: 'succeeded',
      received: 1,
      succeeded: 1,
      failed: 0,
      failures: {},
    });
    expect(failedRecords.text()).toBe('');
  });

  it('an empty file succeeds with zero records', async () => {
    const { report } = input('users', 'u.csv', '', []);
    expect(await reportFile(report)).toMatchObject({ status: 'succeeded', received: 0, succeeded: 0, failed: 0 });
  });

  it.each([
    [
      'a valid record with no answer (pending)',
      [answer('ADD_CUST', 'ADD', 0, [ok(2)])],
      [],
      /line 4: accepted, but no ADD answer: the record is pending/,
    ],
    [
      'an 8006 record with no UPD answer',
      [answer('ADD_CUST', 'ADD', 0, [ok(2), { line: 4, status: 'update', code: 8006 }, ok(5), ok(6)])],
      [],
      /line 4: 8006 but no UPD answer/,
    ],
    [
      'answers out of step with the source',
      [answer('ADD_CUST', 'ADD', 0, [ok(2), ok(5), ok(4), ok(6)])],
      [],
      /line 4: the next ADD answer is for line 5/,
    ],
    [
      'an answer for no record',
      [answer('ADD_CUST', 'ADD', 0, [ok(2), ok(4), ok(5), ok(6)]), answer('ADD_CUST', 'ADD', 1, [ok(9)])],
      [],
      /batch 1\) matches no record/,
    ],
  ])('refuses to report %s: Ledger.Mismatch', async (_case, add, later, message) => {
    const { report } = input('users', 'u.csv', USERS, add, later);
    await expect(reportFile(report)).rejects.toMatchObject({
      name: 'Ledger.Mismatch',
      message: expect.stringMatching(message),
    });
  });
});
