import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import { quarantineFile } from '../../lambdas/core/workflow/finalise-file';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { finaliseDeps, MemoryStore } from '../unit/files/in-memory-pipeline';

/**
 * A file refused after its claim (too large once inflated, unreadable past its head) is finished, failed: its
 * summary is kept on its claim, so the operations API lists it as failed rather than in flight for ever.
 */
describe('a quarantined file in the file catalogue (dynalite)', () => {
  let db: LocalDynamoDb;
  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
  });
  afterAll(() => db.close());

  it('keeps the summary of a claimed file it quarantines; leaves a file never claimed out of the catalogue', async () => {
    const registry = new DynamoDbFileRegistry(db.client(), 'ledger');
    const store = new MemoryStore(4096);
    const deps = { ...finaliseDeps(store, new DynamoDbCallAnswers(db.client(), 'ledger')), outcomes: registry };
    const claimed = { bucket: 'landing', key: 'users/acme/users_acme_20261124_001.csv.gz' };
    const fileId = 'c'.repeat(64);
    await store.put(claimed, 'not gzip');
    await registry.claim({
      fileId,
      ...claimed,
      kind: 'users',
      name: 'users_acme_20261124_001.csv.gz',
      partner: 'acme',
    });
    const error = { Error: 'File.TooLarge', Cause: 'over MAX_DECOMPRESSED_BYTES once inflated' };
    await quarantineFile({ file: claimed, error, kind: 'users', fileId }, deps);

    // Finished: its view has its times, as any finished file's (when it was claimed, when it was refused).
    expect((await registry.get(fileId))?.summary).toMatchObject({
      landedAt: expect.any(String),
      finishedAt: expect.any(String),
      status: 'failed',
      reason: expect.stringContaining('File.TooLarge'),
    });
    expect((await registry.list({ limit: 10, finished: 'failed' })).entries.map((entry) => entry.fileId)).toEqual([
      fileId,
    ]);
    expect((await registry.list({ limit: 10, finished: 'unfinished' })).entries).toEqual([]);

    const never = { bucket: 'landing', key: 'incoming/acme/notes.txt' };
    await store.put(never, 'hello');
    await quarantineFile({ file: never, error: { Error: 'File.UnknownKind', Cause: 'unknown file kind' } }, deps);
    expect((await registry.list({ limit: 10 })).entries).toHaveLength(1);
  });
});
