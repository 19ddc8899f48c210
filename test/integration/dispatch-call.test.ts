import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { CallMessageSchema, type CallMessage } from '../../lambdas/core/crm/call-message';
import { CrmClient } from '../../lambdas/core/crm/crm-client';
import { dispatchCall } from '../../lambdas/core/crm/dispatch-call';
import { startCrmSimulator, type CrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { customer, transaction } from '../fixtures/crm-records';

const FILE = 'b'.repeat(64);

describe('dispatchCall: CRM simulator + DynamoDB ledger (dynalite)', () => {
  let db: LocalDynamoDb;
  let sim: CrmSimulator;
  let ledger: DynamoDbCallAnswers;
  const client = (token = sim.token) =>
    new CrmClient({
      baseUrl: sim.url,
      token,
      timeoutMs: 1000,
      retryAttempts: 8,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
    });
  const message = (fields: Partial<CallMessage> & Pick<CallMessage, 'operation' | 'records'>): CallMessage =>
    CallMessageSchema.parse({
      fileId: FILE,
      phase: 'ADD',
      batchIndex: 0,
      lines: fields.records.map((_, i) => i + 2),
      ...fields,
    });

  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
    ledger = new DynamoDbCallAnswers(db.client(), 'ledger');
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    sim = await startCrmSimulator({ customers: [customer('EXISTS')] });
  });
  afterEach(() => sim.close());

  it('records each record outcome by line: succeeded, update (8006), failed with its code', async () => {
    const users = message({
      operation: 'ADD_CUST',
      batchIndex: 1,
      records: [customer('NEW'), customer('EXISTS'), customer('BAD', 'b@invalid.example')],
    });
    const result = await dispatchCall(users, { client: client(), answers: ledger });
    expect(result).toMatchObject({ status: 'answered', recorded: 'recorded' });
    expect(await ledger.readAnswer(FILE, 'ADD', 1)).toEqual([
      { line: 2, status: 'succeeded', code: 200 },
      { line: 3, status: 'update', code: 8006, reason: '8006', error: 'CUSTOMER_EXISTS' },
      { line: 4, status: 'failed', code: 3217, reason: '3217', error: 'INVALID_DATA' },
    ]);
  });

  it('routes 4404 transactions to the retry-later phase', async () => {
    const trx = message({
      operation: 'ADD_TRX',
      batchIndex: 2,
      records: [transaction('T1', 'EXISTS'), transaction('T2', 'LATER')],
    });
    await dispatchCall(trx, { client: client(), answers: ledger });
    expect((await ledger.readAnswer(FILE, 'ADD', 2))?.map((o) => o.status)).toEqual(['succeeded', 'retry-later']);
  });

  it('does not call the CRM again for a batch already answered (the same message delivered twice)', async () => {
    const trx = message({ operation: 'ADD_TRX', batchIndex: 3, records: [transaction('T3', 'EXISTS')] });
    await dispatchCall(trx, { client: client(), answers: ledger });
    const callsBefore = sim.stats().callsAccepted;
    expect(await dispatchCall(trx, { client: client(), answers: ledger })).toEqual({ status: 'already-answered' });
    expect(sim.stats().callsAccepted).toBe(callsBefore);
  });

  it('a first delivery skips the ledger read; a duplicate of it is replayed by the CRM and recorded once', async () => {
    const trx = message({ operation: 'ADD_TRX', batchIndex: 5, records: [transaction('T6', 'EXISTS')] });
    const first = await dispatchCall(trx, { client: client(), answers: ledger }, { firstDelivery: true });
    const duplicate = await dispatchCall(trx, { client: client(), answers: ledger }, { firstDelivery: true });
    expect(first).toMatchObject({ status: 'answered', recorded: 'recorded' });
    expect(duplicate).toMatchObject({ status: 'answered', recorded: 'already-recorded', answer: { replayed: true } });
    expect(sim.transactionCounts().get('T6')).toBe(1);
  });

  it('two deliveries racing: one answer is recorded, the CRM applies the transactions once', async () => {
    const trx = message({
      operation: 'ADD_TRX',
      batchIndex: 4,
      records: [transaction('T4', 'EXISTS'), transaction('T5', 'EXISTS')],
    });
    const results = await Promise.all([
      dispatchCall(trx, { client: client(), answers: ledger }),
      dispatchCall(trx, { client: client(), answers: ledger }),
    ]);
    const recorded = results.map((r) => (r.status === 'answered' ? r.recorded : r.status)).sort();
    expect(recorded).toEqual(['already-recorded', 'recorded']);
    expect(sim.transactionCounts().get('T4')).toBe(1);
    expect(sim.stats().transactionsAppliedMoreThanOnce).toBe(0);
  });

  it('with dropped answers and 5xx, every batch is answered once and no transaction is applied twice', async () => {
    sim.setFaults({ dropRate: 0.2, serverErrorRate: 0.2 });
    for (let batch = 10; batch < 30; batch++) {
      const records = [0, 1, 2].map((n) => transaction(`F${batch}-${n}`, 'EXISTS'));
      const result = await dispatchCall(message({ operation: 'ADD_TRX', batchIndex: batch, records }), {
        client: client(),
        answers: ledger,
      });
      expect(result.status).toBe('answered');
    }
    const stats = sim.stats();
    expect(stats.answersDropped + stats.serverErrorsServed).toBeGreaterThan(5);
    expect(stats.transactionsCreated).toBe(60);
    expect(stats.transactionsAppliedMoreThanOnce).toBe(0);
  });

  it('credentials rejected: Crm.AuthRejected, nothing recorded, the records stay pending', async () => {
    const users = message({ operation: 'ADD_CUST', batchIndex: 40, records: [customer('P1')] });
    await expect(dispatchCall(users, { client: client('wrong'), answers: ledger })).rejects.toMatchObject({
      name: 'Crm.AuthRejected',
    });
    expect(await ledger.readAnswer(FILE, 'ADD', 40)).toBeUndefined();
  });

  it('refuses a malformed call message at the boundary, naming the problem', () => {
    const parsed = CallMessageSchema.safeParse({
      fileId: FILE,
      phase: 'ADD',
      batchIndex: 0,
      operation: 'ADD_TRX',
      lines: [2],
      records: [{ ...transaction('T9', 'C1'), amount: '12.5' }],
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({
      path: ['records', 0],
      message: 'amount: a decimal with at most 2 fraction digits',
    });
  });
});
