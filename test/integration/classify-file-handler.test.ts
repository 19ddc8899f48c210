import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { embeddedServicesClients } from '../../lambdas/local/wiring/local-pipeline';
import { awsClients } from '../../lambdas/adapters/aws/clients';
import { classifyFileContract } from '../../lambdas/classify-file/contract';
import { awsDependencies, makeHandler } from '../../lambdas/classify-file/make-handler';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';

const context = {
  functionName: 'classify-file',
  awsRequestId: 'r1',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;
const USERS =
  'customer_id,first_name,last_name,email,phone,country,created_at\nC1,Ada,Alder,a@example.com,,GB,2026-01-01T00:00:00Z\n';

describe('classify-file handler on the embedded S3 and DynamoDB', () => {
  let s3: LocalS3;
  let db: LocalDynamoDb;
  let handler: ReturnType<typeof makeHandler>;
  const invoke = (payload: unknown) => handler(payload, context) as Promise<Record<string, unknown>>;
  const put = (key: string, body: string) =>
    s3.client().send(new PutObjectCommand({ Bucket: 'landing', Key: key, Body: body }));

  beforeAll(async () => {
    [s3, db] = await Promise.all([startLocalS3(['landing']), startLocalDynamoDb()]);
    await db.createTable('ledger', TABLES.ledger);
    // The same handler and adapters as on AWS, from the environment CDK would set, on the embedded services.
    const environment = classifyFileContract.environment.read({
      LEDGER_TABLE_NAME: 'ledger',
      MAX_FILE_SIZE_BYTES: '100000',
    });
    const clients = awsClients(embeddedServicesClients({ s3: s3.endpoint, dynamodb: db.endpoint }));
    handler = makeHandler(awsDependencies(environment, { clients }));
  });
  afterAll(async () => {
    await Promise.all([s3.close(), db.close()]);
  });

  it('classifies, then claims once; the same event again is a redelivery; the same bytes elsewhere a duplicate', async () => {
    await put('demo/users_demo_20261124_001.csv', USERS);
    const file = { bucket: 'landing', key: 'demo/users_demo_20261124_001.csv', size: USERS.length };
    const classification = await invoke({ action: 'classify', file });
    expect(classification).toMatchObject({ kind: 'users', by: 'name', format: 'csv', size: USERS.length });
    expect(await invoke({ action: 'claim', file, classification })).toEqual({ outcome: 'claimed' });
    expect(await invoke({ action: 'claim', file, classification })).toEqual({ outcome: 'redelivered' });

    await put('demo/again.csv', USERS);
    const copy = { bucket: 'landing', key: 'demo/again.csv' };
    const second = await invoke({ action: 'classify', file: copy });
    expect(second.sha256).toBe(classification.sha256);
    expect(await invoke({ action: 'claim', file: copy, classification: second })).toEqual({
      outcome: 'duplicate',
      duplicateOf: 'demo/users_demo_20261124_001.csv',
    });
  });

  it('a file over the limit fails with File.TooLarge, the name the state machine quarantines on', async () => {
    await put('demo/users_demo_20261124_002.csv', USERS + 'x'.repeat(100_001));
    await expect(
      invoke({ action: 'classify', file: { bucket: 'landing', key: 'demo/users_demo_20261124_002.csv' } }),
    ).rejects.toMatchObject({
      name: 'File.TooLarge',
    });
  });

  it('refuses a malformed payload, naming the field', async () => {
    await expect(
      invoke({
        action: 'claim',
        file: { bucket: 'landing', key: 'k' },
        classification: { kind: 'users', sha256: 'nope' },
      }),
    ).rejects.toThrow(/sha256/);
  });

  it('an object no longer there (moved by an earlier execution) is File.Gone, not a retry', async () => {
    await expect(
      invoke({ action: 'classify', file: { bucket: 'landing', key: 'demo/gone.csv' } }),
    ).rejects.toMatchObject({ name: 'File.Gone', message: 's3://landing/demo/gone.csv is no longer there' });
  });
});
