import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { LOCAL_NAMES, startLocalPipeline, type LocalPipeline } from '../../lambdas/local/wiring/local-pipeline';

/**
 * The file workflow end to end on the embedded S3, DynamoDB and SQS: the real handlers, the real state machine
 * file, the dispatcher fed from the queue, and the CRM simulator. Partner files go in; messages, ledger
 * entries, moves, reports and events come out.
 */
const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const USERS = [
  USERS_HEADER,
  'C1,Ada,Alder,ada@example.com,+44 20 7946 0001,GB,2026-01-01T00:00:00Z',
  // C2 exists in the CRM already: 8006, then UPD_CUST succeeds.
  'C2,Bo,Birch,bo@example.com,,SE,2026-01-02T00:00:00Z',
  // C3 exists, and its new email belongs to C1: 8006, then CONFLICTING_PROFILE.
  'C3,Cy,Cedar,ada@example.com,,FR,2026-01-03T00:00:00Z',
  // The CRM refuses the data: 3217.
  'C4,Di,Dogwood,di@invalid.example,,DE,2026-01-04T00:00:00Z',
  // Refused before sending.
  'C5,Ed,Elm,ed@example.com,,XX,2026-01-05T00:00:00Z',
  '"C6","Fa, ""Fay""",Fir,fay@example.com,,NL,2026-01-06T00:00:00+02:00',
].join('\n');
const TRANSACTIONS = [
  'transaction_id,customer_id,amount,currency,occurred_at,type,merchant',
  'T1,C1,12.5,eur,2026-02-01T10:00:00Z,purchase,Shop',
  // C7 arrives in a later users file: 4404, then created on a RETRY phase.
  'T2,C7,-3.00,EUR,2026-02-01T11:00:00Z,refund,',
  // C99 never arrives: 4404 until the attempts run out.
  'T3,C99,1.00,USD,2026-02-01T12:00:00Z,,',
  'T4,C1,1.001,EUR,2026-02-01T13:00:00Z,,',
].join('\n');
const LATE_USERS = [USERS_HEADER, 'C7,Gil,Gum,gil@example.com,,IE,2026-01-07T00:00:00Z'].join('\n');

describe('the file workflow on the embedded services', () => {
  let pipeline: LocalPipeline;
  const byName = (summaries: FinalSummary[], name: string) => summaries.find((s) => s.name === name) as FinalSummary;
  const text = async (bucket: string, key: string) =>
    (await pipeline.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
  const keys = async (bucket: string) =>
    ((await pipeline.s3.client().send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);

  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      sweepMinAgeSeconds: 0,
      env: {
        RETRY_LATER_DELAY_S: '1',
        RETRY_LATER_ATTEMPTS: '3',
        // No hold for users files landing with a transactions file: the late users file lands while it sends.
        ORDERING_WINDOW_S: '0',
        CRM_RETRY_BASE_DELAY_MS: '50',
      },
      concurrency: 3,
      simulator: {
        customers: [
          {
            customerId: 'C2',
            firstName: 'Bo',
            lastName: 'Birch',
            email: 'bo@old.example',
            country: 'SE',
            createdAt: '2025-01-01T00:00:00Z',
          },
          {
            customerId: 'C3',
            firstName: 'Cy',
            lastName: 'Cedar',
            email: 'cy@example.com',
            country: 'FR',
            createdAt: '2025-01-01T00:00:00Z',
          },
        ],
      },
    });
  }, 60_000);
  afterAll(async () => {
    await pipeline?.close();
  });

  it('every record of every file ends succeeded or failed with its reason; reports, moves and events follow', async () => {
    await pipeline.land('acme/users_acme_20261124_001.csv', USERS);
    await pipeline.land('acme/transactions_acme_20261124_001.csv', TRANSACTIONS);
    // The late users file lands once the transactions have met their first 4404.
    while ((pipeline.simulator?.stats().calls.ADD_TRX ?? 0) === 0) await new Promise((r) => setTimeout(r, 50));
    await pipeline.land('acme/users_acme_20261124_002.csv', LATE_USERS);
    // The same bytes under another name: a duplicate. A file of no known kind: quarantined.
    await pipeline.land('acme/users-copy.csv', USERS);
    await pipeline.land('acme/notes.txt', 'hello\n');

    const summaries = await pipeline.waitForFiles(5);
    const users = byName(summaries, 'users_acme_20261124_001.csv');
    expect(users).toMatchObject({
      kind: 'users',
      status: 'partial',
      received: 6,
      succeeded: 3,
      failed: 3,
      failures: { CONFLICTING_PROFILE: 1, '3217': 1, VALIDATION: 1 },
    });
    const transactions = byName(summaries, 'transactions_acme_20261124_001.csv');
    expect(transactions).toMatchObject({
      kind: 'transactions',
      status: 'partial',
      received: 4,
      succeeded: 2,
      failed: 2,
      failures: { '4404': 1, VALIDATION: 1 },
    });
    expect(byName(summaries, 'users_acme_20261124_002.csv')).toMatchObject({ status: 'succeeded', received: 1 });
    expect(byName(summaries, 'users-copy.csv')).toMatchObject({
      status: 'duplicate',
      reason: expect.stringContaining('incoming/acme/users_acme_20261124_001.csv'),
    });
    expect(byName(summaries, 'notes.txt')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^File\.UnknownKind: /),
    });
    for (const s of summaries.filter((f) => f.status === 'partial' || f.status === 'succeeded')) {
      expect(s.received).toBe(s.succeeded + s.failed);
    }

    // results.csv: one row per record with its operations and outcome.
    const results = (await text(LOCAL_NAMES.archiveBucket, users.reports.results!)).trim().split('\n');
    expect(results).toEqual([
      'line,record_id,operations,outcome,code,error,attempts',
      '2,C1,ADD_CUST,succeeded,200,,1',
      '3,C2,ADD_CUST+UPD_CUST,succeeded,200,,2',
      '4,C3,ADD_CUST+UPD_CUST,failed,200,CONFLICTING_PROFILE,2',
      expect.stringMatching(/^5,C4,ADD_CUST,failed,3217,/),
      expect.stringMatching(/^6,C5,,failed,,VALIDATION: country: .*,0$/),
      '7,C6,ADD_CUST,succeeded,200,,1',
    ]);
    const trxResults = (await text(LOCAL_NAMES.archiveBucket, transactions.reports.results!)).trim().split('\n');
    expect(trxResults.slice(1).map((r) => r.split(',').slice(0, 4).join(','))).toEqual([
      // C1 comes in the users file processed at the same time: a first try may find it not there yet.
      expect.stringMatching(/^2,T1,ADD_TRX(\+ADD_TRX)*,succeeded$/),
      expect.stringMatching(/^3,T2,ADD_TRX(\+ADD_TRX)+,succeeded$/),
      '4,T3,ADD_TRX+ADD_TRX+ADD_TRX+ADD_TRX,failed',
      '5,T4,,failed',
    ]);
    // The failed-records file: the partner's own rows and columns, plus the reason, ready to fix and upload.
    const failedRows = (await text(LOCAL_NAMES.archiveBucket, users.reports.failedRecords!)).trim().split('\n');
    expect(users.reports.failedRecords).toMatch(/users_acme_20261124_001\.failed\.csv$/);
    expect(failedRows[0]).toBe(`${USERS_HEADER},failure_reason`);
    expect(failedRows.slice(1).map((r) => r.split(',')[0])).toEqual(['C3', 'C4', 'C5']);
    expect(failedRows[1]).toMatch(/,CONFLICTING_PROFILE$/);
    const kept = JSON.parse(await text(LOCAL_NAMES.archiveBucket, users.reports.summary)) as FinalSummary;
    expect(kept).toEqual(users);

    // Moves: nothing left in the landing bucket but the partner's reports (summary.json of every file, and the
    // failed-records files), in their reports/ folder; sources archived; the unknown file quarantined with its reason.
    const partnerReports = pipeline.completed.flatMap((summary) =>
      [summary.reports.summary, summary.reports.failedRecords]
        .filter((key): key is string => key !== undefined)
        .map((key) => key.replace(/^reports\/acme\//, 'incoming/acme/reports/')),
    );
    expect(partnerReports).toHaveLength(7);
    expect(await keys(LOCAL_NAMES.landingBucket)).toEqual(partnerReports.sort());
    expect(
      await text(
        LOCAL_NAMES.landingBucket,
        partnerReports.find((k) => k.endsWith('.failed.csv') && k.includes('users_'))!,
      ),
    ).toBe(await text(LOCAL_NAMES.archiveBucket, users.reports.failedRecords!));
    expect(pipeline.deliveries).toHaveLength(5);
    expect(pipeline.deliveryFailures).toEqual([]);
    const archived = await keys(LOCAL_NAMES.archiveBucket);
    expect(archived).toEqual(
      expect.arrayContaining([
        'users/acme/users_acme_20261124_001.csv',
        'transactions/acme/transactions_acme_20261124_001.csv',
        'duplicates/acme/users-copy.csv',
      ]),
    );
    const quarantined = await pipeline.s3
      .client()
      .send(new HeadObjectCommand({ Bucket: LOCAL_NAMES.failedBucket, Key: 'quarantine/acme/notes.txt' }));
    expect(quarantined.Metadata?.['failure-reason']).toMatch(/^File\.UnknownKind: /);

    // The ledger: each phase's batches all answered; the queue and its DLQ empty.
    const documents = DynamoDBDocumentClient.from(pipeline.db.client());
    for (const phase of ['ADD', 'UPD']) {
      const { Item } = await documents.send(
        new GetCommand({
          TableName: LOCAL_NAMES.ledgerTable,
          Key: { pk: `file#${users.sha256}`, sk: `phase#${phase}` },
        }),
      );
      expect(Item).toMatchObject({ batches: 1, answered: 1 });
    }
    for (const url of [pipeline.queueUrl, pipeline.deadLetterQueueUrl]) {
      const { Attributes } = await pipeline.sqs
        .client()
        .send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }));
      expect(Attributes?.ApproximateNumberOfMessages).toBe('0');
    }
    // The CRM saw each record applied once: never throttled, no transaction twice.
    expect(pipeline.simulator?.stats()).toMatchObject({
      throttled: 0,
      transactionsAppliedMoreThanOnce: 0,
      customersCreated: 3,
      customersUpdated: 1,
      transactionsCreated: 2,
    });
  }, 120_000);

  it('the same S3 event delivered twice processes the file once', async () => {
    const before = pipeline.completed.length;
    const created = pipeline.simulator!.stats().customersCreated;
    const file = [USERS_HEADER, 'C8,Hal,Hazel,hal@example.com,,US,2026-01-08T00:00:00Z'].join('\n');
    await pipeline.land('acme/users_acme_20261124_003.csv', file);
    // EventBridge delivers the same event again, at once and after the file was moved.
    await pipeline.startExecution(LOCAL_NAMES.landingBucket, 'incoming/acme/users_acme_20261124_003.csv');
    await pipeline.waitForFiles(before + 1);
    await pipeline.startExecution(LOCAL_NAMES.landingBucket, 'incoming/acme/users_acme_20261124_003.csv');
    await new Promise((r) => setTimeout(r, 1000));
    expect(pipeline.completed.slice(before).map((s) => [s.name, s.status])).toEqual([
      ['users_acme_20261124_003.csv', 'succeeded'],
    ]);
    expect(pipeline.failedExecutions).toEqual([]);
    expect(pipeline.simulator!.stats().customersCreated).toBe(created + 1);
  }, 60_000);

  it('the sweep picks up a file whose event was missed, once however often it runs', async () => {
    const before = pipeline.completed.length;
    // Its Object Created event goes missing, as one can on AWS.
    const file = [USERS_HEADER, 'C9,Ivy,Ironwood,ivy@example.com,,CA,2026-01-09T00:00:00Z'].join('\n');
    await pipeline.land('acme/users_acme_20261124_004.csv', file, { missEvent: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(pipeline.completed.length).toBe(before);

    const first = await pipeline.sweep();
    // Only the file: the partner reports waiting in incoming/acme/reports/ are not partner files.
    expect(first).toMatchObject({ started: 1, young: 0, alreadyStarted: 0 });
    // A second sweep before the file has moved starts nothing new.
    const again = await pipeline.sweep();
    expect(again.started).toBe(0);
    await pipeline.waitForFiles(before + 1);
    expect(pipeline.completed.at(-1)).toMatchObject({ name: 'users_acme_20261124_004.csv', status: 'succeeded' });
    expect(await pipeline.sweep()).toMatchObject({ started: 0, alreadyStarted: 0 });
  }, 60_000);
});
