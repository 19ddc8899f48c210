import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import { finaliseFile } from '../../lambdas/core/workflow/finalise-file';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { answerPhases, crm } from '../support/crm-outcomes';
import { finaliseDeps, MemoryStore } from '../unit/files/in-memory-pipeline';

/**
 * Finalise of files with large later phases, through the real batching (prepare's planner: ADD, then each later
 * phase's carried lines) and the real ledger adapter on dynalite, read back in small key ranges several at a
 * time: every record's row is what its phases decided, in line order.
 */
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
    const fileId = await answerPhases(
      new DynamoDbCallAnswers(db.client(), 'ledger'),
      () => store.read(file),
      file.key,
      kind,
    );
    const summary = await finaliseFile(
      { file, kind, fileId, format: 'csv', retryPhases: kind === 'users' ? 0 : 2 },
      // Small ranges, several ahead: the phases are read in many parallel queries.
      finaliseDeps(store, new DynamoDbCallAnswers(db.client(), 'ledger', { rangeBatches: 3, rangesAhead: 3 })),
    );
    const results = store.text({ bucket: 'archive', key: summary.reports.results as string });
    expect(results).toBe(expectedResults(kind, count));
    const failedRows = (results as string).split('\n').filter((row) => row.includes(',failed,')).length;
    expect(summary).toMatchObject({ received: count, failed: failedRows, succeeded: count - failedRows });
    const failedFile = store.text({ bucket: 'archive', key: summary.reports.failedRecords as string });
    expect((failedFile as string).trimEnd().split('\n')).toHaveLength(failedRows + 1);
  });
});
