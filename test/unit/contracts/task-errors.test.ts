import type { Context } from 'aws-lambda';
import { PassThrough } from 'node:stream';
import { InvocationOver } from '../../../lambdas/adapters/aws/slice-deadline';
import { createTelemetry } from '../../../lambdas/adapters/aws/telemetry';
import * as awaitPhase from '../../../lambdas/await-phase/make-handler';
import * as classifyFile from '../../../lambdas/classify-file/make-handler';
import { FUNCTION_CONTRACTS } from '../../../lambdas/contracts/functions';
import { CUT_OFF_ERRORS, type WorkflowTaskFunction } from '../../../lambdas/contracts/infrastructure';
import { ErrorNames, FileRejectedError } from '../../../lambdas/core/errors';
import * as finaliseFile from '../../../lambdas/finalise-file/make-handler';
import * as prepareFile from '../../../lambdas/prepare-file/make-handler';

/**
 * The task handlers throw only the names their contracts list, whatever their adapters throw: the pipeline's
 * own errors keep their names, a missing object is File.Gone, an AWS hiccup Pipeline.Transient, anything else
 * (a bug, an input the contract refuses) Pipeline.Failed.
 */
const SHA = 'a'.repeat(64);
const file = { bucket: 'landing', key: 'incoming/acme/users_acme_20261124.csv' };
const awsError = (name: string, status: number) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });
const FAILURES: [string, Error, string][] = [
  ['an AWS 5xx', awsError('InternalError', 500), ErrorNames.transient],
  ['throttling', awsError('ThrottlingException', 400), ErrorNames.transient],
  ['a missing object', awsError('NoSuchKey', 404), ErrorNames.fileGone],
  ['access denied', awsError('AccessDenied', 403), ErrorNames.failed],
  ['a bug', new TypeError('x is undefined'), ErrorNames.failed],
  // An SDK call that timed out (not the invocation): an AWS hiccup.
  ['an AWS SDK timeout', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), ErrorNames.transient],
];

/** Given as the error: the adapters' calls wait for ever instead of failing. */
const HANG = new Error('hang');

/** An adapter every call of which fails with `error` (or, for HANG, never answers). */
const failing = (error: Error) =>
  new Proxy(
    {},
    {
      get: () => () => {
        if (error === HANG) return new Promise(() => undefined);
        throw error;
      },
    },
  );
const telemetry = <S extends WorkflowTaskFunction>(name: S) => {
  const output = new PassThrough();
  output.resume();
  return createTelemetry(name, { output });
};
const context = { getRemainingTimeInMillis: () => 600_000, awsRequestId: 'r' } as unknown as Context;

type Invoke = (event: unknown, context: Context) => Promise<unknown>;
const handlers: Record<WorkflowTaskFunction, { build: (error: Error) => Invoke; events: unknown[] }> = {
  'classify-file': {
    build: (error) =>
      classifyFile.makeHandler({
        store: failing(error) as never,
        registry: failing(error) as never,
        schedule: failing(error) as never,
        landingPrefix: 'incoming/',
        settings: { maxFileSizeBytes: 1000, acceptedEncodings: ['csv'] },
        telemetry: telemetry('classify-file'),
      }) as Invoke,
    events: [
      { action: 'classify', file },
      { action: 'claim', file, classification: { kind: 'users', sha256: SHA } },
    ],
  },
  'prepare-file': {
    build: (error) =>
      prepareFile.makeHandler({
        store: failing(error) as never,
        queue: failing(error) as never,
        answers: failing(error) as never,
        phases: failing(error) as never,
        notifier: failing(error) as never,
        limits: { maxRecords: 100, maxBytes: 200_000 },
        acceptedEncodings: ['csv'],
        landingPrefix: 'incoming/',
        telemetry: telemetry('prepare-file'),
      }) as Invoke,
    events: [
      { action: 'segregate', file, classification: { kind: 'users' } },
      {
        action: 'prepare',
        file,
        classification: { kind: 'users', sha256: SHA },
        resume: { phase: 'ADD', slices: 0, batches: 0 },
      },
    ],
  },
  'await-phase': {
    build: (error) =>
      awaitPhase.makeHandler({
        phases: failing(error) as never,
        notifier: failing(error) as never,
        schedule: failing(error) as never,
        rules: failing(error) as never,
        telemetry: telemetry('await-phase'),
      }) as Invoke,
    events: [
      { action: 'await', fileId: SHA, phase: 'ADD', taskToken: 't' },
      { action: 'check', fileId: SHA, phase: 'ADD' },
    ],
  },
  'finalise-file': {
    build: (error) =>
      finaliseFile.makeHandler({
        store: failing(error) as never,
        answers: failing(error) as never,
        outcomes: failing(error) as never,
        events: failing(error) as never,
        archiveBucket: 'archive',
        failedBucket: 'failed',
        landingPrefix: 'incoming/',
        acceptedEncodings: ['csv'],
        telemetry: telemetry('finalise-file'),
      }) as Invoke,
    events: [
      { action: 'finalise', file, classification: { kind: 'users', sha256: SHA, format: 'csv' }, retryAttempts: 3 },
      {
        action: 'duplicate',
        file,
        classification: { kind: 'users', sha256: SHA, format: 'csv' },
        claim: { duplicateOf: 'x' },
      },
      { action: 'quarantine', file, error: { Error: 'File.Unreadable', Cause: 'not text' } },
    ],
  },
};

const thrown = async (invoke: Invoke, event: unknown) =>
  invoke(event, context).then(
    () => undefined,
    (error: unknown) => error as Error,
  );

describe.each(Object.entries(handlers))('the %s task handler', (name, { build, events }) => {
  const { errors } = FUNCTION_CONTRACTS[name as WorkflowTaskFunction];

  it.each(FAILURES)('maps %s to a name its contract lists', async (_case, failure, expected) => {
    // A name the contract does not list (File.Gone from a function that reads no file) is Pipeline.Failed.
    const name = (errors as readonly string[]).includes(expected) ? expected : ErrorNames.failed;
    for (const event of events) {
      const error = await thrown(build(failure), event);
      expect({ event, name: error?.name }).toEqual({ event, name });
    }
  });

  it('leaves middy’s end of an invocation just before its timeout as TimeoutError, the cut-off the workflow retries', async () => {
    const started = Date.now();
    const shortContext = {
      getRemainingTimeInMillis: () => 100 - (Date.now() - started),
      awsRequestId: 'r',
    } as unknown as Context;
    const error = await build(HANG)(events[0], shortContext).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.name).toBe('TimeoutError');
    expect(CUT_OFF_ERRORS).toContain(error?.name);
  });

  it('names a slice asked to go on past its invocation’s end TimeoutError too, should it get there before middy', async () => {
    const error = await thrown(build(new InvocationOver('over')), events[0]);
    if (error) expect(error.name).toBe('TimeoutError');
  });

  it('keeps the name of a pipeline error, and names an input the contract refuses Pipeline.Failed', async () => {
    const rejected = new FileRejectedError(ErrorNames.fileUnreadable, 'not text');
    for (const event of events) {
      const error = await thrown(build(rejected), event);
      const expected = (errors as readonly string[]).includes(rejected.name) ? rejected.name : ErrorNames.failed;
      if (error) expect({ event, name: error.name }).toEqual({ event, name: expected });
    }
    const refused = await thrown(build(new Error('unused')), { action: 'nonsense' });
    expect(refused?.name).toBe(ErrorNames.failed);
    expect(refused?.message).toMatch(/ZodError/);
  });
});
