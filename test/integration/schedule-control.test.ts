import { GetObjectCommand } from '@aws-sdk/client-s3';
import { controlFiles } from '../../lambdas/core/schedule/schedule';
import { LOCAL_NAMES } from '../../lambdas/local/wiring/local-pipeline';
import {
  callsFor,
  finished,
  hasPrefix,
  ids,
  scheduled,
  sleep,
  startScheduledPipeline,
  until,
  usersCsv,
  type ScheduledPipeline,
} from '../support/scheduled-pipeline';

/**
 * An operator's pause, resume and cancel of a file mid-phase (controlFiles, the use case `ingest pause|resume|
 * cancel` and the operations API call), on the embedded services at a scaled limit: which calls the CRM saw,
 * and what the file's summary and results say.
 */
describe('pause, resume and cancel a file mid-phase', () => {
  let run: ScheduledPipeline;
  beforeAll(async () => {
    run = await startScheduledPipeline({});
  }, 60_000);
  afterAll(() => run?.close());

  it('a paused file makes no more calls within seconds while another goes on; resumed, it finishes whole', async () => {
    const { pipeline, calls, notifier } = run;
    await pipeline.land('pa/users_pa_20261124_001.csv', usersCsv(ids('PA', 600)));
    await pipeline.land('qa/users_qa_20261124_001.csv', usersCsv(ids('QA', 600)));
    const paused = await scheduled(pipeline, 'users_pa_20261124_001.csv');
    await until('the file under way', () => callsFor(calls, 'PA').length >= 10);

    const changed = await controlFiles(pipeline.schedule, { fileId: paused.fileId }, 'pause', notifier);
    expect(changed.map((file) => file.control)).toEqual(['paused']);
    // The dispatchers read the schedule every 2 s: by then its queued calls are held back, not made.
    await sleep(3000);
    const pausedCalls = callsFor(calls, 'PA').length;
    const otherCalls = callsFor(calls, 'QA').length;
    await sleep(4000);
    expect(callsFor(calls, 'PA')).toHaveLength(pausedCalls);
    expect(callsFor(calls, 'QA').length).toBeGreaterThan(otherCalls + 10);
    expect(pausedCalls).toBeLessThan(60);
    const seen = (await pipeline.schedule.view()).files.find((file) => file.fileId === paused.fileId);
    expect(seen).toMatchObject({ control: 'paused', state: 'waiting', waitingRule: 'Paused' });

    await controlFiles(pipeline.schedule, { fileId: paused.fileId }, 'resume', notifier);
    const summary = await finished(pipeline, 'users_pa_20261124_001.csv');
    expect(summary).toMatchObject({ status: 'succeeded', received: 600, succeeded: 600, failed: 0 });
    expect(await finished(pipeline, 'users_qa_20261124_001.csv')).toMatchObject({
      status: 'succeeded',
      succeeded: 600,
    });
    // Every customer created once, none sent twice: the held calls went once, after the resume.
    const sent = callsFor(calls, 'PA').flatMap((call) => [...call.ids]);
    expect(sent).toHaveLength(600);
    expect(new Set(sent).size).toBe(600);
    expect(callsFor(calls, 'PA').length).toBeGreaterThan(pausedCalls);
    expect(summary.calls?.made).toBe(60);
  }, 60_000);

  it('a cancelled file sends nothing more, fails its unsent records as CANCELLED and finalises as cancelled', async () => {
    const { pipeline, calls, notifier } = run;
    await pipeline.land('ra/users_ra_20261124_001.csv', usersCsv(ids('RA', 800)));
    const cancelled = await scheduled(pipeline, 'users_ra_20261124_001.csv');
    await until('the file under way', () => callsFor(calls, 'RA').length >= 15);

    await controlFiles(pipeline.schedule, { fileId: cancelled.fileId }, 'cancel', notifier);
    const cancelledAt = Date.now();
    const summary = await finished(pipeline, 'users_ra_20261124_001.csv');

    expect(summary.status).toBe('cancelled');
    expect(summary.received).toBe(800);
    expect(summary.succeeded + summary.failed).toBe(800);
    expect(summary.failures.CANCELLED).toBeGreaterThan(0);
    expect(Object.keys(summary.failures)).toEqual(['CANCELLED']);
    // Nothing was sent once the cancel took effect (the dispatchers read the schedule every 2 s).
    const made = callsFor(calls, 'RA');
    expect(made.filter((call) => call.at > cancelledAt + 3000)).toEqual([]);
    expect(made.length).toBeLessThan(80);
    expect(summary.calls?.made).toBe(made.length);
    // The CRM holds exactly the records the summary counts as succeeded.
    const applied = new Set(made.flatMap((call) => call.ids.filter((_, i) => call.codes[i] === 200)));
    expect(applied.size).toBe(summary.succeeded);

    // results.csv: succeeded rows went with ADD_CUST; CANCELLED rows never reached the CRM and name no operation.
    const object = await pipeline.s3
      .client()
      .send(new GetObjectCommand({ Bucket: LOCAL_NAMES.archiveBucket, Key: summary.reports.results }));
    const rows = (await object.Body!.transformToString())
      .trim()
      .split('\n')
      .slice(1)
      .map((row) => row.split(','));
    expect(rows).toHaveLength(800);
    const sentIds = new Set(made.flatMap((call) => [...call.ids]));
    const cancelledRows = rows.filter((row) => row[5] === 'cancelled by an operator before it was sent');
    expect(cancelledRows).toHaveLength(summary.failures.CANCELLED as number);
    expect(cancelledRows.filter(([, id]) => sentIds.has(id as string)).map(([, id]) => id)).toEqual([]);
    for (const [, id, operations] of rows.filter((row) => row[3] === 'succeeded')) {
      expect({ id, operations, sent: sentIds.has(id as string) }).toEqual({ id, operations: 'ADD_CUST', sent: true });
    }
    expect(rows.every((row) => hasPrefix('RA')(row[1] as string))).toBe(true);
    // It left the schedule.
    expect((await pipeline.schedule.view()).files.map((file) => file.fileId)).not.toContain(cancelled.fileId);
    // Listed as never tried: no operation, 0 attempts (also those whose queued call the dispatcher dropped).
    const listedAsTried = cancelledRows
      .filter(([, , operations, , , , attempts]) => operations !== '' || attempts !== '0')
      .map(([line, id, operations, , , , attempts]) => `${line},${id},${operations},attempts ${attempts}`);
    expect({ listedAsTried: listedAsTried.length, first: listedAsTried.slice(0, 3) }).toEqual({
      listedAsTried: 0,
      first: [],
    });
  }, 60_000);
});
