import seedrandom from 'seedrandom';
import type { CallAnswer, RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import type { CrmOperation } from '../../../lambdas/core/crm/response-policy';
import { readRecords, type SourceRecord } from '../../../lambdas/core/files/read-records';
import { requiredColumns, type FileKind } from '../../../lambdas/core/files/record-schemas';
import { FAILURE_COLUMN, reportFile } from '../../../lambdas/core/ledger/file-report';
import { conflicting, exists, notYet, ok, refused as invalidData } from '../../support/crm-outcomes';
import { chunksOf, collect } from '../helpers';

const SHA = 'e'.repeat(64);
const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at,notes';

interface Scenario {
  readonly kind: FileKind;
  readonly name: string;
  readonly text: string;
  /** Records by line: their id, and the validation error of those that break a rule. */
  readonly records: ReadonlyMap<number, { id: string; validation?: string }>;
  /** ADD, then each later phase, each its answers in batch order. */
  readonly phases: readonly (readonly CallAnswer[])[];
}

/** A phase's outcomes cut into batches in line order, numbered from 0, as prepare plans them (sizes vary). */
function batches(phase: string, operation: CrmOperation, outcomes: RecordOutcome[], rng: () => number) {
  const answers: CallAnswer[] = [];
  for (let at = 0; at < outcomes.length;) {
    const size = rng() < 0.2 ? 1 + Math.floor(rng() * 99) : 100;
    answers.push({
      fileId: SHA,
      phase,
      batchIndex: answers.length,
      operation,
      outcomes: outcomes.slice(at, at + size),
      attempts: 1,
      replayed: false,
    });
    at += size;
  }
  return answers;
}

/** Users: 2% VALIDATION, 30% 8006 (10% of them CONFLICTING_PROFILE in UPD), 3% 3217. */
function usersScenario(count: number, seed: string): Scenario {
  const rng = seedrandom(seed);
  const rows = [USERS_HEADER];
  const records = new Map<number, { id: string; validation?: string }>();
  const add: RecordOutcome[] = [];
  const upd: RecordOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const line = i + 2;
    const id = `C${i}`;
    const bad = rng() < 0.02;
    rows.push(`${id},Ada,"Alder, Jr.",${bad ? 'not-an-email' : `u${i}@example.com`},,GB,2026-01-01T00:00:00Z,`);
    records.set(line, bad ? { id, validation: 'VALIDATION: email: an email address' } : { id });
    if (bad) continue;
    const r = rng();
    if (r < 0.3) {
      add.push(exists(line));
      upd.push(rng() < 0.1 ? conflicting(line) : ok(line));
    } else add.push(r < 0.33 ? invalidData(line) : ok(line));
  }
  return {
    kind: 'users',
    name: 'users_acme_20261124.csv',
    text: rows.join('\n'),
    records,
    phases: [batches('ADD', 'ADD_CUST', add, rng), batches('UPD', 'UPD_CUST', upd, rng)],
  };
}

/**
 * Transactions (JSON Lines): 2% VALIDATION, 20% 4404 in ADD; each of `retries` RETRY phases takes the 4404
 * records of the one before: 40% succeed, 5% 3217, the rest 4404 again (failed as 4404 after the last).
 */
function transactionsScenario(count: number, retries: number, seed: string): Scenario {
  const rng = seedrandom(seed);
  const lines: string[] = [];
  const records = new Map<number, { id: string; validation?: string }>();
  const add: RecordOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const line = i + 1;
    const id = `T${i}`;
    const bad = rng() < 0.02;
    const currency = bad ? 'XXX' : 'EUR';
    lines.push(
      JSON.stringify({
        transaction_id: id,
        customer_id: `C${i}`,
        amount: '1.00',
        currency,
        occurred_at: '2026-01-01T00:00:00Z',
      }),
    );
    records.set(line, bad ? { id, validation: 'VALIDATION: currency: an ISO 4217 currency code' } : { id });
    if (bad) continue;
    const r = rng();
    add.push(r < 0.2 ? notYet(line) : r < 0.22 ? invalidData(line) : ok(line));
  }
  const phases = [batches('ADD', 'ADD_TRX', add, rng)];
  let carried = add.filter((o) => o.status === 'retry-later').map((o) => o.line);
  for (let n = 1; n <= retries; n++) {
    const outcomes = carried.map((line) => {
      const r = rng();
      return r < 0.4 ? ok(line) : r < 0.45 ? invalidData(line) : notYet(line);
    });
    phases.push(batches(`RETRY${n}`, 'ADD_TRX', outcomes, rng));
    carried = outcomes.filter((o) => o.status === 'retry-later').map((o) => o.line);
  }
  return { kind: 'transactions', name: 'trx_acme_20261124.jsonl', text: lines.join('\n'), records, phases };
}

/**
 * What the reports must say, by the rule the code had before the merge: each record's phases in order, the
 * last phase that answered its line decides; worked out per line with maps, independently of the merge.
 */
function expectedReport(scenario: Scenario) {
  const history = new Map<number, { operation: CrmOperation; outcome: RecordOutcome }[]>();
  for (const phase of scenario.phases) {
    for (const answer of phase) {
      for (const outcome of answer.outcomes) {
        history.set(outcome.line, [...(history.get(outcome.line) ?? []), { operation: answer.operation, outcome }]);
      }
    }
  }
  const rows = ['line,record_id,operations,outcome,code,error,attempts'];
  const failures: Record<string, number> = {};
  const failed: [string, string][] = [];
  let succeeded = 0;
  for (const [line, record] of scenario.records) {
    if (record.validation) {
      rows.push(`${line},${record.id},,failed,,${record.validation},0`);
      failures.VALIDATION = (failures.VALIDATION ?? 0) + 1;
      failed.push([record.id, record.validation]);
      continue;
    }
    const steps = history.get(line) ?? [];
    const { outcome } = steps[steps.length - 1] as { outcome: RecordOutcome };
    const operations = steps.map((s) => s.operation).join('+');
    const terminal = outcome.status === 'succeeded' ? 'succeeded' : 'failed';
    rows.push(
      `${line},${record.id},${operations},${terminal},${outcome.code ?? ''},${outcome.error ?? ''},${steps.length}`,
    );
    if (terminal === 'succeeded') succeeded++;
    else {
      const reason = outcome.reason as string;
      failures[reason] = (failures[reason] ?? 0) + 1;
      failed.push([record.id, reason]);
    }
  }
  return { results: `${rows.join('\n')}\n`, failures, failed, succeeded };
}

function sink() {
  const parts: string[] = [];
  return { write: (text: string) => void parts.push(text), text: () => parts.join('') };
}

async function* each<T>(items: readonly T[], onNext?: (item: T) => void) {
  for (const item of items) {
    onNext?.(item);
    yield item;
  }
}

function run(scenario: Scenario, options: { chunkBytes?: number; source?: AsyncIterable<SourceRecord[]> } = {}) {
  const results = sink();
  const failedRecords = sink();
  const [add = [], ...later] = scenario.phases;
  const report = reportFile({
    name: scenario.name,
    sha256: SHA,
    kind: scenario.kind,
    format: scenario.name.endsWith('.jsonl') ? 'jsonl' : 'csv',
    source:
      options.source ??
      readRecords(chunksOf(scenario.text, options.chunkBytes ?? 4096), {
        name: scenario.name,
        requiredColumns: requiredColumns(scenario.kind),
      }),
    addAnswers: each(add),
    laterPhases: later.map((phase) => each(phase)),
    results,
    failedRecords,
  });
  return { report, results, failedRecords };
}

async function failedRecordsOf(scenario: Scenario, text: string) {
  const records = await collect(
    readRecords(chunksOf(text), { name: scenario.name, requiredColumns: requiredColumns(scenario.kind) }),
  );
  return records.map((r) => [
    r.fields[scenario.kind === 'users' ? 'customer_id' : 'transaction_id'],
    r.fields[FAILURE_COLUMN],
  ]);
}

/** A copy of the scenario with one phase's answers changed. */
const withPhase = (scenario: Scenario, at: number, answers: CallAnswer[]): Scenario => ({
  ...scenario,
  phases: scenario.phases.map((phase, i) => (i === at ? answers : phase)),
});

const validationLines = (scenario: Scenario) =>
  [...scenario.records].filter(([, r]) => r.validation).map(([line]) => line);

describe('reportFile merges the phases as sorted streams', () => {
  it.each([
    ['users with a large UPD phase (30% 8006, CONFLICTING_PROFILE among them)', usersScenario(20_000, 'users')],
    ['transactions with three RETRY rounds (20% 4404)', transactionsScenario(20_000, 3, 'trx')],
    ['transactions with one RETRY round', transactionsScenario(3_000, 1, 'trx-1')],
    ['transactions whose 4404 records are never retried (no RETRY phase ran)', transactionsScenario(3_000, 0, 'trx-0')],
  ])('%s: results.csv, the failed-records file and the summary as before', async (_case, scenario) => {
    const expected = expectedReport(scenario);
    const { report, results, failedRecords } = run(scenario);
    const summary = await report;
    expect(results.text()).toBe(expected.results);
    expect(summary).toMatchObject({
      received: scenario.records.size,
      succeeded: expected.succeeded,
      failed: scenario.records.size - expected.succeeded,
      failures: expected.failures,
    });
    expect(await failedRecordsOf(scenario, failedRecords.text())).toEqual(expected.failed);
  });

  it('the scenarios hold the cases that matter: retried twice then succeeded, failed after the last retry, CONFLICTING_PROFILE', async () => {
    const trx = expectedReport(transactionsScenario(20_000, 3, 'trx')).results;
    expect(trx).toMatch(/\n\d+,T\d+,ADD_TRX\+ADD_TRX\+ADD_TRX,succeeded,200,,3\n/);
    expect(trx).toMatch(/\n\d+,T\d+,ADD_TRX\+ADD_TRX\+ADD_TRX\+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,4\n/);
    expect(trx).toMatch(/\n\d+,T\d+,ADD_TRX\+ADD_TRX,failed,3217,INVALID_DATA,2\n/);
    const users = expectedReport(usersScenario(20_000, 'users')).results;
    expect(users).toMatch(/\n\d+,C\d+,ADD_CUST\+UPD_CUST,failed,200,CONFLICTING_PROFILE,2\n/);
  });

  it('holds one answer of each phase at a time: answers are read as the source reaches their lines', async () => {
    const scenario = transactionsScenario(20_000, 3, 'lazy');
    const pulled = scenario.phases.map(() => 0);
    const ahead: number[] = [];
    let sourceLine = 0;
    async function* source() {
      for await (const chunk of readRecords(chunksOf(scenario.text, 2048), { name: scenario.name })) {
        // Before the merge takes this chunk: answers taken per phase against those whose lines it has passed.
        scenario.phases.forEach((phase, i) => {
          const needed = phase.filter((a) => (a.outcomes[0]?.line ?? 0) <= sourceLine).length;
          ahead.push((pulled[i] as number) - needed);
        });
        sourceLine = chunk[chunk.length - 1]?.line ?? sourceLine;
        yield chunk;
      }
    }
    const [add = [], ...later] = scenario.phases;
    const summary = await reportFile({
      name: scenario.name,
      sha256: SHA,
      kind: 'transactions',
      format: 'jsonl',
      source: source(),
      addAnswers: each(add, () => void (pulled[0] as number)++),
      laterPhases: later.map((phase, i) => each(phase, () => void (pulled[i + 1] as number)++)),
      results: sink(),
      failedRecords: sink(),
    });
    expect(summary.received).toBe(20_000);
    expect(Math.max(...ahead)).toBeLessThanOrEqual(1);
    expect(pulled).toEqual(scenario.phases.map((phase) => phase.length));
  });

  describe('refuses to report an answer the records do not match: Ledger.Mismatch', () => {
    const users = usersScenario(2_000, 'mismatch-users');
    const trx = transactionsScenario(2_000, 2, 'mismatch-trx');
    const [badUser = 0] = validationLines(users);
    const [badTrx = 0] = validationLines(trx);
    /** The phase with an outcome for `line` added where line order puts it; and that answer's batch index. */
    const insert = (phase: readonly CallAnswer[], line: number) => {
      const at = Math.max(
        0,
        phase.findIndex((a) => (a.outcomes[a.outcomes.length - 1]?.line ?? 0) > line),
      );
      const answers = phase.map((a, i) =>
        i === at ? { ...a, outcomes: [...a.outcomes, ok(line)].sort((x, y) => x.line - y.line) } : a,
      );
      return { answers, batch: at };
    };
    const updBad = insert(users.phases[1] as CallAnswer[], badUser);
    const retryBad = insert(trx.phases[2] as CallAnswer[], badTrx);
    const addBad = insert(users.phases[0] as CallAnswer[], badUser);
    const later = (phase: string, outcomes: RecordOutcome[], batchIndex: number): CallAnswer => ({
      fileId: SHA,
      phase,
      batchIndex,
      operation: phase === 'UPD' ? 'UPD_CUST' : 'ADD_TRX',
      outcomes,
      attempts: 1,
      replayed: false,
    });

    it.each([
      [
        'a UPD answer for a line that failed VALIDATION',
        () => withPhase(users, 1, updBad.answers),
        new RegExp(`a UPD answer \\(batch ${updBad.batch}\\) for line ${badUser} matches no record sent`),
      ],
      [
        'a RETRY2 answer for a line that failed VALIDATION',
        () => withPhase(trx, 2, retryBad.answers),
        new RegExp(`a RETRY2 answer \\(batch ${retryBad.batch}\\) for line ${badTrx} matches no record sent`),
      ],
      [
        'an ADD answer for a line that failed VALIDATION',
        () => withPhase(users, 0, addBad.answers),
        new RegExp(`line \\d+: the next ADD answer is for line ${badUser}; answers and source disagree`),
      ],
      [
        'a RETRY1 answer past the last record',
        () => withPhase(trx, 1, [...(trx.phases[1] as CallAnswer[]), later('RETRY1', [ok(99_999)], 999)]),
        /a RETRY1 answer \(batch 999\) matches no record/,
      ],
      [
        'a RETRY2 outcome past the last record, in its last answer',
        () => {
          const retry2 = [...(trx.phases[2] as CallAnswer[])];
          const last = retry2.pop() as CallAnswer;
          return withPhase(trx, 2, [...retry2, { ...last, outcomes: [...last.outcomes, ok(99_999)] }]);
        },
        /RETRY2 answers for line 99999 and after match no record/,
      ],
      [
        'a UPD answer with no outcomes after the last',
        () => withPhase(users, 1, [...(users.phases[1] as CallAnswer[]), later('UPD', [], 999)]),
        /a UPD answer \(batch 999\) matches no record/,
      ],
      [
        'UPD answers out of line order (the first batch read last: its records look pending)',
        () => {
          const [first, second, ...rest] = users.phases[1] as CallAnswer[];
          return withPhase(users, 1, [second as CallAnswer, first as CallAnswer, ...rest]);
        },
        /line \d+: 8006 but no UPD answer: the record is pending/,
      ],
    ])('%s', async (_case, scenario, message) => {
      await expect(run(scenario()).report).rejects.toMatchObject({
        name: 'Ledger.Mismatch',
        message: expect.stringMatching(message),
      });
    });

    it('an 8006 record whose UPD answer is missing is pending, and every stream is closed', async () => {
      const upd = users.phases[1] as CallAnswer[];
      const dropped = upd[3]?.outcomes[0]?.line as number;
      const closed: string[] = [];
      async function* tracked(phase: string, answers: readonly CallAnswer[]) {
        try {
          yield* answers;
        } finally {
          closed.push(phase);
        }
      }
      const report = reportFile({
        name: users.name,
        sha256: SHA,
        kind: 'users',
        format: 'csv',
        source: readRecords(chunksOf(users.text), { name: users.name, requiredColumns: requiredColumns('users') }),
        addAnswers: tracked('ADD', users.phases[0] as CallAnswer[]),
        laterPhases: [
          tracked(
            'UPD',
            upd.map((a, i) => (i === 3 ? { ...a, outcomes: a.outcomes.slice(1) } : a)),
          ),
        ],
        results: sink(),
        failedRecords: sink(),
      });
      await expect(report).rejects.toMatchObject({
        name: 'Ledger.Mismatch',
        message: `line ${dropped}: 8006 but no UPD answer: the record is pending`,
      });
      expect(closed.sort()).toEqual(['ADD', 'UPD']);
    });
  });
});
