import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { awsClients } from '../../lambdas/adapters/aws/clients';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import { SfnWorkflowStarter } from '../../lambdas/adapters/aws/landing-zone-adapters';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import { ApiError } from '../../lambdas/core/operations/api-error';
import { controlFile, getFile } from '../../lambdas/core/operations/files';
import { retryFile, type RetryDeps } from '../../lambdas/core/operations/retry-file';
import { controlFiles, scheduleRules } from '../../lambdas/core/schedule/schedule';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { embeddedServicesClients, LOCAL_NAMES } from '../../lambdas/local/wiring/local-pipeline';
import {
  callsFor,
  finished,
  ids,
  startScheduledPipeline,
  scheduled,
  sleep,
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
  /** Executions a test made fail on purpose (a round given up): the others must not. */
  let expectedFailures = 0;
  /** The file's summary once its redo round `round` is kept on the claim. */
  const redone = (fileId: string, round: number) =>
    until(
      `round ${round} of ${fileId.slice(0, 12)} to finish`,
      async () => {
        if (run.pipeline.failedExecutions.length > expectedFailures) {
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

  /** A users file of `count` new customers whose first record fails 3217 (an address the CRM refuses). */
  const usersWith3217 = (prefix: string, count: number) =>
    [
      usersCsv(ids(prefix, count)).split('\n')[0],
      `${prefix}BAD,Bo,Birch,${prefix.toLowerCase()}bad@invalid.example,,SE,2026-11-24T03:00:00Z`,
      ...usersCsv(ids(prefix, count)).split('\n').slice(1),
    ].join('\n');
  /** Lands the file and cancels it once it is under way: its unsent records fail as CANCELLED. */
  const landAndCancel = async (prefix: string, name: string) => {
    const { pipeline, calls, notifier } = run;
    await pipeline.land(`${prefix.toLowerCase()}/${name}`, usersWith3217(prefix, 600));
    const entry = await scheduled(pipeline, name);
    await until('the file under way', () => callsFor(calls, prefix).length >= 10);
    await controlFiles(pipeline.schedule, { fileId: entry.fileId }, 'cancel', notifier);
    const first = await finished(pipeline, name);
    expect(first).toMatchObject({ status: 'cancelled', received: 601, failures: { '3217': 1 } });
    expect(first.failures.CANCELLED).toBeGreaterThan(100);
    return first;
  };

  it('a cancelled file retried twice: CANCELLED, then another code; both rounds finish (the cancel is remembered)', async () => {
    const { calls } = run;
    const name = 'users_rtryk_20261124_001.csv';
    const first = await landAndCancel('RK', name);
    const fileId = first.sha256;

    await retryFile(deps, fileId, { codes: ['CANCELLED'] });
    const one = (await redone(fileId, 1)) as FinalSummary;
    expect(one).toMatchObject({ status: 'partial', received: 601, succeeded: 600, failed: 1, failures: { '3217': 1 } });
    // No CANCELLED failure is left: the summary keeps that the file was cancelled once.
    expect(one.cancelled).toBe(true);

    // The second round's report merges ADD (cut short by the cancel), REDO1 and REDO2: no ReconciliationError.
    await retryFile(deps, fileId, { codes: ['3217'] });
    const two = (await redone(fileId, 2)) as FinalSummary;
    expect(two).toMatchObject({
      status: 'partial',
      received: 601,
      succeeded: 600,
      failed: 1,
      failures: { '3217': 1 },
      redoRounds: 2,
      cancelled: true,
    });
    // Every customer created once; the refused one sent in ADD and in each round that asked for it.
    const sent = new Map<string, number>();
    for (const call of callsFor(calls, 'RK')) for (const id of call.ids) sent.set(id, (sent.get(id) ?? 0) + 1);
    expect([...sent.entries()].filter(([id, n]) => id !== 'RKBAD' && n !== 1)).toEqual([]);
    expect(sent.size).toBe(601);
    const bad = calls.filter((call) => call.ids.includes('RKBAD')).length;
    expect(bad).toBe(2);
  }, 120_000);

  it('a round paused in flight: the view says paused and no call is made; resumed, it finishes', async () => {
    const { pipeline, calls, notifier } = run;
    const name = 'users_rtryp_20261124_001.csv';
    const first = await landAndCancel('RP', name);
    const fileId = first.sha256;
    const before = callsFor(calls, 'RP').length;
    const control = { ...deps, notifier };

    await retryFile(deps, fileId, { codes: ['CANCELLED'] });
    await until('the round under way', () => callsFor(calls, 'RP').length >= before + 5);
    const paused = await controlFile(control, fileId, 'pause');
    expect(paused).toMatchObject({ fileId, status: 'paused' });
    // The dispatchers read the schedule every 2 s: by then the round's queued calls are held back.
    await sleep(3000);
    const heldAt = callsFor(calls, 'RP').length;
    await sleep(3000);
    expect(callsFor(calls, 'RP')).toHaveLength(heldAt);
    expect(await getFile(deps, fileId)).toMatchObject({ status: 'paused', phase: 'REDO1' });
    expect((await deps.catalog.get(fileId))?.redo?.done).toBeUndefined();

    expect(await controlFile(control, fileId, 'resume')).toMatchObject({ fileId });
    const summary = (await redone(fileId, 1)) as FinalSummary;
    expect(summary).toMatchObject({ status: 'partial', succeeded: 600, failed: 1, failures: { '3217': 1 } });
    expect((await pipeline.schedule.view()).files.find((file) => file.fileId === fileId)).toBeUndefined();
    // Finished again: no control is taken.
    expect(await refusal(controlFile(control, fileId, 'pause'))).toMatchObject({ status: 409 });
  }, 120_000);

  // Last: its execution fails on purpose.
  it('a round whose execution fails is given up: the file as it was (not quarantined), and a new retry may run', async () => {
    const { pipeline } = run;
    const s3 = pipeline.s3.client();
    const name = 'users_rtryf_20261124_001.csv';
    await pipeline.land(`rtryf/${name}`, usersWith3217('RF', 3));
    const first = await finished(pipeline, name);
    const fileId = first.sha256;
    const source = { Bucket: first.archived!.bucket, Key: first.archived!.key };
    const bytes = await (await s3.send(new GetObjectCommand(source))).Body!.transformToByteArray();
    const failedObjects = async () =>
      (await s3.send(new ListObjectsV2Command({ Bucket: LOCAL_NAMES.failedBucket }))).KeyCount ?? 0;
    const quarantinedBefore = await failedObjects();

    // The archived source is gone: the round's prepare step fails (File.Gone), after SelectRedo and RegisterRedo.
    await s3.send(new DeleteObjectCommand(source));
    expectedFailures++;
    await retryFile(deps, fileId, { codes: ['3217'] });
    const mark = await until(
      'the round given up',
      async () => {
        const redo = (await deps.catalog.get(fileId))?.redo;
        return redo?.done ? redo : undefined;
      },
      30_000,
      200,
    );
    expect(mark).toMatchObject({ round: 1, done: true, abandoned: true, reason: expect.stringContaining('File.Gone') });
    await until('the execution failed', () => pipeline.failedExecutions.length === expectedFailures);
    expect(pipeline.failedExecutions.at(-1)?.error).toMatch(/File\.Gone/);
    // Nothing quarantined, the summary and its reports as they were, out of the schedule, no longer in flight.
    expect(await failedObjects()).toBe(quarantinedBefore);
    const entry = await deps.catalog.get(fileId);
    const unchanged = { status: first.status, finishedAt: first.finishedAt, failures: first.failures };
    expect(entry?.summary).toMatchObject(unchanged);
    expect(entry?.summary?.redoRounds).toBeUndefined();
    expect(JSON.parse(await text(first.reports.summary))).toMatchObject(unchanged);
    expect((await pipeline.schedule.view()).files.find((file) => file.fileId === fileId)).toBeUndefined();
    expect(await getFile(deps, fileId)).toMatchObject({ status: 'partial', pending: 0, failures: { '3217': 1 } });

    // Put back: the next retry takes round 2 and runs it.
    await s3.send(new PutObjectCommand({ ...source, Body: bytes }));
    await retryFile(deps, fileId, { codes: ['3217'] });
    expect(await redone(fileId, 2)).toMatchObject({ status: 'partial', failures: { '3217': 1 }, redoRounds: 2 });
    expect(await exists(first.archived!.key)).toBe(true);
  }, 120_000);
});
