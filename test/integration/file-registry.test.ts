import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import type { FileClaim } from '../../lambdas/core/ledger/file-claim';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';

describe('DynamoDbFileRegistry (dynalite)', () => {
  let db: LocalDynamoDb;
  let registry: DynamoDbFileRegistry;
  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
    registry = new DynamoDbFileRegistry(db.client(), 'ledger');
  });
  afterAll(() => db.close());

  const claim = (fileId: string, key: string, versionId?: string): FileClaim => ({
    fileId: fileId.repeat(64),
    bucket: 'landing',
    key,
    kind: 'users',
    ...(versionId ? { versionId } : {}),
  });

  it('claims new bytes once; the same event again is a redelivery', async () => {
    expect(await registry.claim(claim('a', 'in/users_a_20261124.csv', 'v1'))).toEqual({ outcome: 'claimed' });
    expect(await registry.claim(claim('a', 'in/users_a_20261124.csv', 'v1'))).toEqual({ outcome: 'redelivered' });
  });

  it('the same bytes under another name, or uploaded again as a new version, are a duplicate of the first', async () => {
    await registry.claim(claim('b', 'in/users_b_20261124.csv', 'v1'));
    expect(await registry.claim(claim('b', 'in/copy-of-users.csv', 'v7'))).toEqual({
      outcome: 'duplicate',
      duplicateOf: 'in/users_b_20261124.csv',
    });
    expect(await registry.claim(claim('b', 'in/users_b_20261124.csv', 'v2'))).toEqual({
      outcome: 'duplicate',
      duplicateOf: 'in/users_b_20261124.csv',
    });
  });

  it('two objects with the same bytes claiming at once: exactly one is claimed', async () => {
    const outcomes = await Promise.all(
      ['x1.csv', 'x2.csv', 'x3.csv', 'x4.csv'].map((key) => registry.claim(claim('c', key))),
    );
    expect(outcomes.filter((o) => o.outcome === 'claimed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.outcome === 'duplicate')).toHaveLength(3);
  });
});
