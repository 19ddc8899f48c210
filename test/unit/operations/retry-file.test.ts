import type { RedoMark } from '../../../lambdas/core/ledger/file-claim';
import { ApiError } from '../../../lambdas/core/operations/api-error';
import type { CatalogEntry } from '../../../lambdas/core/operations/ports';
import {
  redoExecutionName,
  redoLinesKey,
  retryFile,
  type RedoExecution,
  type RetryDeps,
} from '../../../lambdas/core/operations/retry-file';
import type { FinalSummary } from '../../../lambdas/core/workflow/finalise-file';
import { WorkflowStartRefused } from '../../../lambdas/core/workflow/start-refused';
import { MemorySchedule } from '../../support/memory-schedule';

/**
 * retryFile's rules over in-memory ports: what it refuses (400, 404, 409) and what it starts. It reads no
 * report: the summary's counts decide, and the round's execution picks the lines (finalise's select-redo).
 */
const FILE = 'a'.repeat(64);

const summary = (changes: Partial<FinalSummary> = {}): FinalSummary => ({
  name: 'transactions_acme_20261124.csv',
  sha256: FILE,
  kind: 'transactions',
  status: 'partial',
  received: 6,
  succeeded: 1,
  failed: 5,
  failures: { '4404': 2, VALIDATION: 1, '624': 1, CANCELLED: 1 },
  landedAt: '2026-11-24T08:00:00.000Z',
  reports: {
    bucket: 'archive',
    summary: 'reports/acme/transactions_acme_20261124.csv/aaaaaaaaaaaa/summary.json',
    results: 'reports/acme/transactions_acme_20261124.csv/aaaaaaaaaaaa/results.csv',
    failedRecords: 'reports/acme/transactions_acme_20261124.csv/aaaaaaaaaaaa/transactions_acme_20261124.failed.csv',
  },
  archived: { bucket: 'archive', key: 'transactions/acme/transactions_acme_20261124.csv' },
  ...changes,
});

/** How each StartExecution call ends, in turn: an error, or the starter's answer. @default 'started' */
type StartOutcome = 'started' | 'already' | Error;

function world(
  entry: Partial<CatalogEntry> | undefined,
  options: { starts?: StartOutcome[]; markRefused?: boolean } = {},
) {
  let stored: CatalogEntry | undefined = entry && {
    fileId: FILE,
    name: 'transactions_acme_20261124.csv',
    partner: 'acme',
    kind: 'transactions',
    landedAt: '2026-11-24T08:00:00.000Z',
    file: { bucket: 'landing', key: 'incoming/acme/transactions_acme_20261124.csv' },
    ...entry,
  };
  const started: { name: string; input: RedoExecution }[] = [];
  const attempts: string[] = [];
  const abandoned: { round: number; reason?: string }[] = [];
  const starts = [...(options.starts ?? [])];
  const deps: RetryDeps = {
    catalog: {
      get: (fileId) => Promise.resolve(fileId === FILE ? stored : undefined),
      list: () => Promise.resolve({ entries: [] }),
      markRedo: (_fileId: string, mark: RedoMark) => {
        if (options.markRefused) return Promise.resolve(false);
        stored = stored && { ...stored, redo: mark };
        return Promise.resolve(true);
      },
      abandonRedo: (_fileId: string, round: number, reason?: string) => {
        abandoned.push({ round, ...(reason ? { reason } : {}) });
        stored = stored?.redo && { ...stored, redo: { ...stored.redo, done: true, abandoned: true } };
        return Promise.resolve(true);
      },
    },
    schedule: new MemorySchedule(),
    phases: { phases: () => Promise.resolve([]) },
    rules: { partnerWeights: {} },
    callsPerMinute: 600,
    workflow: {
      start: (name, input) => {
        attempts.push(name);
        const outcome = starts.shift() ?? 'started';
        if (outcome instanceof Error) return Promise.reject(outcome);
        if (outcome === 'started') started.push({ name, input: input as RedoExecution });
        return Promise.resolve(outcome);
      },
    },
    now: () => new Date('2026-11-25T09:00:00.000Z'),
  };
  return { deps, started, attempts, abandoned, stored: () => stored };
}

const refusal = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, message: error.message };
    throw error;
  }
  throw new Error('not refused');
};

describe('retryFile (POST /v1/files/{fileId}/retry)', () => {
  it('sends the failed records with those codes again: round taken, execution started to pick and send them', async () => {
    const { deps, started, stored } = world({ summary: summary() });
    const view = await retryFile(deps, FILE, { codes: ['4404', 'CANCELLED'] });
    // Counted from the summary's failures: results.csv is not read in the request.
    expect(stored()?.redo).toEqual({
      round: 1,
      codes: ['4404', 'CANCELLED'],
      lines: 3,
      requestedAt: '2026-11-25T09:00:00.000Z',
    });
    expect(started).toEqual([
      {
        name: redoExecutionName(FILE, 1),
        input: {
          redo: {
            fileId: FILE,
            round: 1,
            kind: 'transactions',
            format: 'csv',
            file: summary().archived,
            name: 'transactions_acme_20261124.csv',
            partner: 'acme',
            landedAt: '2026-11-24T08:00:00.000Z',
            results: { bucket: 'archive', key: summary().reports.results },
            lines: { bucket: 'archive', key: redoLinesKey(FILE, 1) },
            codes: ['4404', 'CANCELLED'],
          },
        },
      },
    ]);
    expect(started[0]?.name).toBe(`redo-${'a'.repeat(12)}-1`);
    // The view of the round in flight: its records pending, the rest as the summary had them.
    expect(view).toMatchObject({
      status: 'queued',
      phase: 'REDO1',
      received: 6,
      succeeded: 1,
      failed: 2,
      pending: 3,
      failures: { VALIDATION: 1, '624': 1 },
      finishedAt: null,
    });
  });

  it('the next round after one that finished', async () => {
    const { deps, started } = world({
      summary: summary({ redoRounds: 2 }),
      redo: { round: 2, codes: ['4404'], lines: 2, requestedAt: '2026-11-25T08:00:00.000Z', done: true },
    });
    await retryFile(deps, FILE, { codes: ['624'] });
    expect(started.map((s) => [s.name, s.input.redo.round])).toEqual([[redoExecutionName(FILE, 3), 3]]);
  });

  it('400: VALIDATION (a fixed file is needed), and a body that is not {"codes": [1-50 codes]}', async () => {
    const { deps, started } = world({ summary: summary() });
    expect(await refusal(retryFile(deps, FILE, { codes: ['4404', 'VALIDATION'] }))).toEqual({
      status: 400,
      message: expect.stringMatching(/^codes: VALIDATION cannot be retried/),
    });
    for (const body of [{}, { codes: [] }, { codes: 'x' }, { codes: [''] }, null, { codes: Array(51).fill('4404') }]) {
      expect(await refusal(retryFile(deps, FILE, body))).toMatchObject({ status: 400 });
    }
    expect(started).toEqual([]);
  });

  it('404: no such file; 400: not a file id', async () => {
    const { deps } = world(undefined);
    expect(await refusal(retryFile(deps, FILE, { codes: ['4404'] }))).toEqual({
      status: 404,
      message: `no file ${FILE}`,
    });
    expect(await refusal(retryFile(deps, 'nope', { codes: ['4404'] }))).toMatchObject({ status: 400 });
  });

  it('409: a file still running, or in a redo round', async () => {
    expect(await refusal(retryFile(world({}).deps, FILE, { codes: ['4404'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('still running'),
    });
    const inFlight = world({
      summary: summary(),
      redo: { round: 1, codes: ['4404'], lines: 2, requestedAt: '2026-11-25T08:00:00.000Z' },
    });
    expect(await refusal(retryFile(inFlight.deps, FILE, { codes: ['4404'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('being retried (round 1)'),
    });
    // Two requests at once: the conditional mark refuses the second.
    const race = world({ summary: summary() }, { markRefused: true });
    expect(await refusal(retryFile(race.deps, FILE, { codes: ['4404'] }))).toMatchObject({ status: 409 });
    expect(race.started).toEqual([]);
  });

  it('409: a duplicate or refused file has no records', async () => {
    const duplicate = summary({ status: 'duplicate', reports: { bucket: 'archive', summary: 's.json' } });
    expect(await refusal(retryFile(world({ summary: duplicate }).deps, FILE, { codes: ['4404'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('no records to retry (duplicate'),
    });
    const refused = summary({ status: 'failed', reports: { bucket: 'archive', summary: 's.json' } });
    expect(await refusal(retryFile(world({ summary: refused }).deps, FILE, { codes: ['4404'] }))).toMatchObject({
      status: 409,
    });
  });

  it('409: no failed record has those codes: the message lists the codes the file has', async () => {
    expect(await refusal(retryFile(world({ summary: summary() }).deps, FILE, { codes: ['3217'] }))).toEqual({
      status: 409,
      message:
        'transactions_acme_20261124.csv has no failed record with 3217: its failures are 624 (1), 4404 (2), VALIDATION (1), CANCELLED (1)',
    });
  });

  it('a start the service refused is given up at once, with the reason, so the next request may go on', async () => {
    const refused = new WorkflowStartRefused('StateMachineDoesNotExist: no such state machine');
    const { deps, abandoned, attempts } = world({ summary: summary() }, { starts: [refused] });
    await expect(retryFile(deps, FILE, { codes: ['4404'] })).rejects.toThrow('StateMachineDoesNotExist');
    expect(attempts).toEqual([redoExecutionName(FILE, 1)]);
    expect(abandoned).toEqual([{ round: 1, reason: 'StateMachineDoesNotExist: no such state machine' }]);
  });

  it.each([
    ['already: the lost answer had started it', 'already' as const],
    ['started: it had not started (an idempotent start of the same input answers so too)', 'started' as const],
  ])('a start without an answer is made again by the same name: %s, the round runs', async (_case, second) => {
    const lost = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const { deps, abandoned, attempts, stored } = world({ summary: summary() }, { starts: [lost, second] });
    const view = await retryFile(deps, FILE, { codes: ['4404'] });
    expect(attempts).toEqual([redoExecutionName(FILE, 1), redoExecutionName(FILE, 1)]);
    expect(abandoned).toEqual([]);
    expect(stored()?.redo).toMatchObject({ round: 1 });
    expect(stored()?.redo?.done).toBeUndefined();
    expect(view).toMatchObject({ status: 'queued', pending: 2 });
  });

  it('a start refused on the second try is given up; one still unanswered leaves the round taken (never a round n+1 over the same lines)', async () => {
    const lost = () => Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const refused = world(
      { summary: summary() },
      { starts: [lost(), new WorkflowStartRefused('ExecutionLimitExceeded: too many')] },
    );
    await expect(retryFile(refused.deps, FILE, { codes: ['4404'] })).rejects.toThrow('ExecutionLimitExceeded');
    expect(refused.abandoned).toEqual([{ round: 1, reason: 'ExecutionLimitExceeded: too many' }]);

    const unknown = world({ summary: summary() }, { starts: [lost(), lost()] });
    await expect(retryFile(unknown.deps, FILE, { codes: ['4404'] })).rejects.toThrow('socket hang up');
    expect(unknown.abandoned).toEqual([]);
    // The next request finds the round in flight: 409, and it starts the round by its name, with the same input
    // (nothing if it runs; the execution it had never got, if it does not).
    expect(await refusal(retryFile(unknown.deps, FILE, { codes: ['624'] }))).toMatchObject({
      status: 409,
      message: expect.stringContaining('being retried (round 1)'),
    });
    expect(unknown.attempts).toEqual(Array(3).fill(redoExecutionName(FILE, 1)));
    expect(unknown.started).toHaveLength(1);
    expect(unknown.started[0]?.input.redo).toMatchObject({ round: 1, codes: ['4404'] });
  });
});
