import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { awsClients } from '../../lambdas/adapters/aws/clients';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import { SfnWorkflowStarter } from '../../lambdas/adapters/aws/landing-zone-adapters';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import { ApiError } from '../../lambdas/core/operations/api-error';
import { getFile } from '../../lambdas/core/operations/files';
import { retryFile, type RetryDeps } from '../../lambdas/core/operations/retry-file';
import { scheduleRules } from '../../lambdas/core/schedule/schedule';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { embeddedServicesClients, LOCAL_NAMES } from '../../lambdas/local/wiring/local-pipeline';
import {
  callsFor,
  finished,
  ids,
  startScheduledPipeline,
  transactionsCsv,
  until,
  usersCsv,
  type ScheduledPipeline,
} from '../support/scheduled-pipeline';

/**
 * Retry by code (POST /v1/files/{fileId}/retry, issue 16's acceptance) on the embedded services: a finished
 * file's failed records go again as a redo round, REDO<n>, through the same state machine, and its reports,
 * summary and counts are rewritten; nothing that succeeded is sent again.
 */
const customer = (customerId: string): CrmCustomer => ({
  customerId,
  firstName: 'Ada',
  lastName: 'Alder',
  email: `${customerId.toLowerCase()}@example.com`,
  country: 'GB',
  createdAt: '2025-01-01T00:00:00Z',
});

describe('retry a finished file by code', () => {
  let run: ScheduledPipeline;
  let deps: RetryDeps;
  beforeAll(async () => {
    run = await startScheduledPipeline(
      { ORDERING_WINDOW_S: '0', RETRY_LATER_ATTEMPTS: '1', RETRY_LATER_DELAY_S: '1', RETRY_LATER_MAX_WAIT_S: '2' },
      { customers: ids('RS', 3).map(customer) },
    );
    const { pipeline } = run;
    const dynamodb = pipeline.db.client();
    const catalog = new DynamoDbFileRegistry(dynamodb, LOCAL_NAMES.ledgerTable);
    const clients = awsClients(embeddedServicesClients({ stepFunctionsAndEvents: pipeline.stepFunctionsEndpoint }));
    deps = {
      catalog,
      schedule: pipeline.schedule,
      phases: new DynamoDbPhaseCounters(
        dynamodb,
        LOCAL_NAMES.ledgerTable,
        new DynamoDbCallAnswers(dynamodb, LOCAL_NAMES.ledgerTable),
      ),
      rules: scheduleRules(pipeline.settings),
      callsPerMinute: pipeline.settings.callsPerMinute,
      reports: new S3ObjectStore(pipeline.s3.client()),
      workflow: new SfnWorkflowStarter(
        clients.sfn,
        'arn:aws:states:us-east-1:000000000000:stateMachine:file-ingestion',
      ),
    };
  }, 60_000);
  afterAll(() => run?.close());

  const text = async (key: string) =>
    (
      await run.pipeline.s3.client().send(new GetObjectCommand({ Bucket: LOCAL_NAMES.archiveBucket, Key: key }))
    ).Body!.transformToString();
  const exists = (key: string) =>
    run.pipeline.s3
      .client()
      .send(new HeadObjectCommand({ Bucket: LOCAL_NAMES.archiveBucket, Key: key }))
      .then(
        () => true,
        () => false,
      );
  /** The file's summary once its redo round `round` is kept on the claim. */
  const redone = (fileId: string, round: number) =>
    until(
      `round ${round} of ${fileId.slice(0, 12)} to finish`,
      async () => {
        if (run.pipeline.failedExecutions.length > 0) {
          throw new Error(`execution failed: ${JSON.stringify(run.pipeline.failedExecutions)}`);
        }
        const entry = await deps.catalog.get(fileId);
        return entry?.redo?.round === round && entry.redo.done && entry.summary?.redoRounds === round
          ? entry.summary
          : undefined;
      },
      60_000,
      200,
    );
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => (error instanceof ApiError ? { status: error.status, message: error.message } : error),
    );

  it('4404 transactions succeed once their customers exist; the reports and counts are rewritten, nothing sent twice', async () => {
    const { pipeline, calls, simulator } = run;
    const name = 'transactions_rtry_20261124_001.csv';
    await pipeline.land(`rtry/${name}`, transactionsCsv('RT', ['RS1', 'RS2', 'RX1', 'RS3', 'RX2']));
    const first = await finished(pipeline, name);
    expect(first).toMatchObject({ status: 'partial', received: 5, succeeded: 3, failed: 2, failures: { '4404': 2 } });
    const fileId = first.sha256;
    expect(first.reports.failedRecords).toBeDefined();

    // Refused: a validation failure needs a fixed file; a code the file does not have names those it has.
    expect(await refusal(retryFile(deps, fileId, { codes: ['VALIDATION'] }))).toMatchObject({
      status: 400,
      message: expect.stringContaining('VALIDATION'),
    });
    expect(await refusal(retryFile(deps, fileId, { codes: ['3217'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('4404 (2)'),
    });

    // The customers arrive.
    await pipeline.land('rtry/users_rtry_20261124_001.csv', usersCsv(['RX1', 'RX2']));
    await finished(pipeline, 'users_rtry_20261124_001.csv');
    const before = callsFor(calls, 'RT').length;

    const view = await retryFile(deps, fileId, { codes: ['4404'] });
    expect(view).toMatchObject({ fileId, received: 5, succeeded: 3, failed: 0, pending: 2, failures: {} });
    expect(['queued', 'waiting', 'running']).toContain(view.status);
    // One round at a time.
    expect(await refusal(retryFile(deps, fileId, { codes: ['4404'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('being retried'),
    });
    expect((await deps.catalog.get(fileId))?.redo).toMatchObject({ round: 1, codes: ['4404'], lines: 2 });

    const summary = (await redone(fileId, 1)) as FinalSummary;
    expect(summary).toMatchObject({
      status: 'succeeded',
      received: 5,
      succeeded: 5,
      failed: 0,
      failures: {},
      redoRounds: 1,
      landedAt: first.landedAt,
      startedAt: first.startedAt,
    });
    expect(summary.reports.failedRecords).toBeUndefined();
    expect(await exists(first.reports.failedRecords as string)).toBe(false);
    expect(JSON.parse(await text(first.reports.summary))).toMatchObject({ status: 'succeeded', redoRounds: 1 });
    // Each record once in the CRM: the redo sent only the two 4404 transactions (ADD, RETRY1, then REDO1).
    const rows = (await text(first.reports.results as string)).trim().split('\n').slice(1);
    expect(rows.map((row) => row.split(',').slice(0, 5).join(','))).toEqual([
      '2,RT1,ADD_TRX,succeeded,200',
      '3,RT2,ADD_TRX,succeeded,200',
      '4,RT3,ADD_TRX+ADD_TRX+ADD_TRX,succeeded,200',
      '5,RT4,ADD_TRX,succeeded,200',
      '6,RT5,ADD_TRX+ADD_TRX+ADD_TRX,succeeded,200',
    ]);
    const redoCalls = callsFor(calls, 'RT').slice(before);
    expect(redoCalls.flatMap((call) => call.ids).sort()).toEqual(['RT3', 'RT5']);
    const sent = new Map<string, number>();
    for (const call of callsFor(calls, 'RT')) for (const id of call.ids) sent.set(id, (sent.get(id) ?? 0) + 1);
    expect(Object.fromEntries(sent)).toEqual({ RT1: 1, RT2: 1, RT3: 3, RT4: 1, RT5: 3 });
    expect(simulator.stats().transactionsAppliedMoreThanOnce).toBe(0);
    // The view is the new summary's; the file is out of the schedule; the partner got the reports again.
    const detail = await getFile(deps, fileId);
    expect(detail).toMatchObject({ status: 'succeeded', succeeded: 5, failed: 0, pending: 0 });
    expect(detail.phases.map((phase) => phase.phase)).toEqual(['ADD', 'RETRY1', 'REDO1']);
    expect((await pipeline.schedule.view()).files.find((file) => file.fileId === fileId)).toBeUndefined();
    expect(pipeline.completed.filter((done) => done.name === name)).toHaveLength(2);
    // Nothing left to retry with that code now.
    expect(await refusal(retryFile(deps, fileId, { codes: ['4404'] }))).toMatchObject({ status: 409 });
  }, 120_000);

  it('a users round that changes nothing (3217 again) still rewrites the reports with the same failures', async () => {
    const { pipeline, calls } = run;
    const name = 'users_rtry_20261124_002.csv';
    const csv = [
      'customer_id,first_name,last_name,email,phone,country,created_at',
      'RU1,Ada,Alder,ru1@example.com,,GB,2026-11-24T03:00:00Z',
      'RU2,Bo,Birch,ru2@invalid.example,,SE,2026-11-24T03:00:00Z',
    ].join('\n');
    await pipeline.land(`rtry/${name}`, csv);
    const first = await finished(pipeline, name);
    expect(first).toMatchObject({ status: 'partial', succeeded: 1, failed: 1, failures: { '3217': 1 } });
    await retryFile(deps, first.sha256, { codes: ['3217'] });
    const summary = (await redone(first.sha256, 1)) as FinalSummary;
    expect(summary).toMatchObject({
      status: 'partial',
      succeeded: 1,
      failed: 1,
      failures: { '3217': 1 },
      redoRounds: 1,
    });
    expect(summary.finishedAt! > first.finishedAt!).toBe(true);
    const rows = (await text(first.reports.results as string)).trim().split('\n').slice(1);
    expect(rows.map((row) => row.split(',').slice(0, 5).join(','))).toEqual([
      '2,RU1,ADD_CUST,succeeded,200',
      '3,RU2,ADD_CUST+ADD_CUST,failed,3217',
    ]);
    expect(await text(summary.reports.failedRecords as string)).toContain('RU2');
    expect(callsFor(calls, 'RU').flatMap((call) => call.ids)).toEqual(['RU1', 'RU2', 'RU2'].sort());
  }, 120_000);
});
