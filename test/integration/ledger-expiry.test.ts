import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import { ledgerExpiresAt } from '../../lambdas/adapters/aws/dynamodb-ledger-expiry';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import { answerKey, CLAIM_SORT_KEY, fileKey, phaseKey } from '../../lambdas/adapters/aws/ledger-keys';
import type { CallAnswer } from '../../lambdas/core/crm/dispatch-call';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';

const DAY_S = 86_400;

describe('ledger items carry their expiry (dynalite: written, never expired)', () => {
  let db: LocalDynamoDb;
  let documents: DynamoDBDocumentClient;
  // A clock the test moves: each write stamps the retention from the time it is made.
  let nowMs = Date.parse('2026-03-01T10:00:00.500Z');
  const now = () => nowMs;
  const nowS = () => Math.floor(nowMs / 1000);

  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
    documents = DynamoDBDocumentClient.from(db.client());
  });
  afterAll(() => db.close());

  const expiresAt = async (pk: string, sk: string) => {
    const { Item } = await documents.send(
      new GetCommand({ TableName: 'ledger', Key: { pk, sk }, ConsistentRead: true }),
    );
    return Item?.expiresAt as unknown;
  };

  it('stamps LEDGER_RETENTION_DAYS after the write, in epoch seconds (30 days unless set)', () => {
    expect(ledgerExpiresAt({ now })).toBe(nowS() + 30 * DAY_S);
    expect(ledgerExpiresAt({ now, retentionDays: 1 })).toBe(nowS() + DAY_S);
  });

  it("keeps a file's claim the retention after the file finished: the summary moves it on", async () => {
    const registry = new DynamoDbFileRegistry(db.client(), 'ledger', { retentionDays: 7, now });
    const fileId = 'a'.repeat(64);
    expect(await registry.claim({ fileId, bucket: 'landing', key: 'in/users.csv', kind: 'users' })).toEqual({
      outcome: 'claimed',
    });
    expect(await expiresAt(fileKey(fileId), CLAIM_SORT_KEY)).toBe(nowS() + 7 * DAY_S);

    nowMs += 20 * 3600 * 1000; // a full load later
    await registry.recordSummary(fileId, { received: 1 });
    expect(await expiresAt(fileKey(fileId), CLAIM_SORT_KEY)).toBe(nowS() + 7 * DAY_S);
    expect((await registry.read(fileId))?.summary).toEqual({ received: 1 });
  });

  it("moves a phase's expiry on with every update of its counters", async () => {
    const answers = new DynamoDbCallAnswers(db.client(), 'ledger');
    const phases = new DynamoDbPhaseCounters(db.client(), 'ledger', answers, { retentionDays: 30, now });
    const fileId = 'b'.repeat(64);
    const key = [fileKey(fileId), phaseKey('ADD')] as const;
    const answer: CallAnswer = {
      fileId,
      phase: 'ADD',
      batchIndex: 0,
      operation: 'ADD_CUST',
      attempts: 1,
      replayed: false,
      outcomes: [{ line: 2, status: 'succeeded', code: 200 }],
    };

    await answers.recordAnswer(answer);
    await phases.storeTaskToken(fileId, 'ADD', 'token');
    expect(await expiresAt(...key)).toBe(nowS() + 30 * DAY_S);
    for (const write of [
      () => phases.countAnswer(answer),
      () => phases.setBatchTotal(fileId, 'ADD', 1),
      () => phases.recount(fileId, 'ADD', 1),
    ]) {
      nowMs += 3600 * 1000;
      await write();
      expect(await expiresAt(...key)).toBe(nowS() + 30 * DAY_S);
    }
    expect(await phases.read(fileId, 'ADD')).toMatchObject({ batches: 1, answered: 1, taskToken: 'token' });
  });

  it('stamps each call answer when it is recorded', async () => {
    const answers = new DynamoDbCallAnswers(db.client(), 'ledger', { retentionDays: 12, now });
    const fileId = 'd'.repeat(64);
    await answers.recordAnswer({
      fileId,
      phase: 'ADD',
      batchIndex: 3,
      operation: 'ADD_CUST',
      attempts: 1,
      replayed: false,
      outcomes: [{ line: 5, status: 'succeeded', code: 200 }],
    });
    expect(await expiresAt(fileKey(fileId), answerKey('ADD', 3))).toBe(nowS() + 12 * DAY_S);
  });

  it('without a retention given, stamps the default', async () => {
    const registry = new DynamoDbFileRegistry(db.client(), 'ledger', { now });
    const fileId = 'c'.repeat(64);
    await registry.claim({ fileId, bucket: 'landing', key: 'in/other.csv', kind: 'users' });
    expect(await expiresAt(fileKey(fileId), CLAIM_SORT_KEY)).toBe(nowS() + 30 * DAY_S);
  });
});
