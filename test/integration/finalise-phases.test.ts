import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import type { CrmOperation } from '../../lambdas/core/crm/response-policy';
import type { PlannedBatch } from '../../lambdas/core/files/plan-batches';
import { prepareFile } from '../../lambdas/core/files/prepare-file';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import { finaliseFile, type FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { MemoryStore } from '../unit/files/in-memory-pipeline';

/**
 * Finalise of files with large later phases, through the real batching (prepare's planner: ADD, then each later
 * phase's carried lines) and the real ledger adapter on dynalite, read back in small key ranges several at a
 * time: every record's row is what its phases decided, in line order.
 */
const ok = (line: number): RecordOutcome => ({ line, status: 'succeeded', code: 200 });
const exists = (line: number): RecordOutcome => ({
  line,
  status: 'update',
  code: 8006,
  reason: '8006',
  error: 'CUSTOMER_EXISTS',
});
const conflicting = (line: number): RecordOutcome => ({
  line,
  status: 'failed',
  code: 200,
  reason: 'CONFLICTING_PROFILE',
  error: 'CONFLICTING_PROFILE',
});
const refused = (line: number): RecordOutcome => ({
  line,
  status: 'failed',
  code: 3217,
  reason: '3217',
  error: 'INVALID_DATA',
});
const notYet = (line: number): RecordOutcome => ({
  line,
  status: 'retry-later',
  code: 4404,
  reason: '4404',
  error: 'CUSTOMER_NOT_FOUND',
});

/** What the CRM answers record `i` in each phase it reaches; none: it fails VALIDATION. */
function crm(kind: FileKind, i: number, line: number): RecordOutcome[] {
  if (i % 97 === 5) return [];
  if (kind === 'users') {
    if (i % 10 === 0 || i % 10 === 3 || i % 10 === 6) return [exists(line), i % 7 === 0 ? conflicting(line) : ok(line)];
    return [i % 50 === 1 ? refused(line) : ok(line)];
  }
  if (i % 5 !== 0) return [ok(line)];
  // 4404 in ADD; a third found in RETRY1; half the rest in RETRY2; the others fail as 4404.
  return i % 3 === 0 ? [notYet(line), ok(line)] : [notYet(line), notYet(line), i % 2 === 0 ? ok(line) : notYet(line)];
}

function partnerFile(kind: FileKind, count: number) {
  const rows =
    kind === 'users'
      ? ['customer_id,first_name,last_name,email,phone,country,created_at']
      : ['transaction_id,customer_id,amount,currency,occurred_at'];
  for (let i = 0; i < count; i++) {
    const bad = crm(kind, i, 0).length === 0;
    rows.push(
      kind === 'users'
        ? `C${i},Ada,Alder,${bad ? 'no-email' : `u${i}@example.com`},,GB,2026-01-01T00:00:00Z`
        : `T${i},C${i},1.00,${bad ? 'XXX' : 'EUR'},2026-01-01T00:00:00Z`,
    );
  }
  return rows.join('\n');
}

describe('finalise with large UPD and RETRY phases, answers read back from the ledger (dynalite)', () => {
  let db: LocalDynamoDb;
  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
  });
  afterAll(() => db.close());

  /** Every phase batched by prepare as the workflow does, answered by `crm`, stored in the ledger. */
  async function runPhases(store: MemoryStore, file: { bucket: string; key: string }, kind: FileKind) {
    const ledger = new DynamoDbCallAnswers(db.client(), 'ledger');
    const phases = kind === 'users' ? ['ADD', 'UPD'] : ['ADD', 'RETRY1', 'RETRY2'];
    let fileId = '';
    let carried: Set<number> | undefined;
    for (const [at, phase] of phases.entries()) {
      const batches: PlannedBatch[] = [];
      const prepared = await prepareFile(store.read(file), {
        name: file.key,
        kind,
        maxRecords: 100,
        maxBytes: 200 * 1024,
        ...(carried ? { onlyLines: { has: (line: number) => (carried as Set<number>).has(line) } } : {}),
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
        outcomes: batch.items.map((item) => crm(kind, item.line - 2, item.line)[at] as RecordOutcome),
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

  /** results.csv as the phases decided: the last phase that answered a record decides, every call counted. */
  function expectedResults(kind: FileKind, count: number) {
    const rows = ['line,record_id,operations,outcome,code,error,attempts'];
    for (let i = 0; i < count; i++) {
      const line = i + 2;
      const id = kind === 'users' ? `C${i}` : `T${i}`;
      const steps = crm(kind, i, line);
      const last = steps[steps.length - 1];
      if (!last) {
        const rule = kind === 'users' ? 'email: an email address' : 'currency: an ISO 4217 currency code';
        rows.push(`${line},${id},,failed,,VALIDATION: ${rule},0`);
        continue;
      }
      const operations = steps.map((_, at) =>
        kind === 'transactions' ? 'ADD_TRX' : at === 0 ? 'ADD_CUST' : 'UPD_CUST',
      );
      const outcome = last.status === 'succeeded' ? 'succeeded' : 'failed';
      rows.push(`${line},${id},${operations.join('+')},${outcome},${last.code},${last.error ?? ''},${steps.length}`);
    }
    return `${rows.join('\n')}\n`;
  }

  it.each([
    ['users', 3000],
    ['transactions', 3000],
  ] as const)('%s: every record once, as its last phase decided', async (kind, count) => {
    const store = new MemoryStore(4096);
    const file = { bucket: 'landing', key: `incoming/${kind}/acme/${kind}_acme_20261124.csv` };
    await store.put(file, partnerFile(kind, count));
    const fileId = await runPhases(store, file, kind);
    let kept: FinalSummary | undefined;
    const summary = await finaliseFile(
      { file, kind, fileId, format: 'csv', retryPhases: kind === 'users' ? 0 : 2 },
      {
        store,
        // Small ranges, several ahead: the phases are read in many parallel queries.
        answers: new DynamoDbCallAnswers(db.client(), 'ledger', { rangeBatches: 3, rangesAhead: 3 }),
        outcomes: {
          read: () => Promise.resolve(kept && { summary: kept }),
          recordSummary: (_id, s) => {
            kept = s as FinalSummary;
            return Promise.resolve();
          },
        },
        events: { fileCompleted: () => Promise.resolve() },
        archiveBucket: 'archive',
        failedBucket: 'failed',
        landingPrefix: 'incoming/',
        acceptedEncodings: ['csv', 'jsonl', 'gzip'],
      },
    );
    const results = store.text({ bucket: 'archive', key: summary.reports.results as string });
    expect(results).toBe(expectedResults(kind, count));
    const failedRows = (results as string).split('\n').filter((row) => row.includes(',failed,')).length;
    expect(summary).toMatchObject({ received: count, failed: failedRows, succeeded: count - failedRows });
    const failedFile = store.text({ bucket: 'archive', key: summary.reports.failedRecords as string });
    expect((failedFile as string).trimEnd().split('\n')).toHaveLength(failedRows + 1);
  });
});
