import type { ObjectRef } from '../../../lambdas/core/files/object-store';
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
import { MemorySchedule } from '../../support/memory-schedule';

/** retryFile's rules over in-memory ports: what it refuses (400, 404, 409) and what it starts. */
const FILE = 'a'.repeat(64);
const RESULTS = [
  'line,record_id,operations,outcome,code,error,attempts',
  '2,T1,ADD_TRX,succeeded,200,,1',
  '3,T2,ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,2',
  '4,T3,,failed,,"VALIDATION: amount: must be a number",0',
  '5,T4,ADD_TRX,failed,624,DUPLICATE,1',
  '6,T5,ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,2',
  '7,T6,,failed,,cancelled by an operator,0',
].join('\n');

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

function world(
  entry: Partial<CatalogEntry> | undefined,
  options: { startFails?: boolean; markRefused?: boolean } = {},
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
  const objects = new Map<string, string>([[`archive/${summary().reports.results}`, `${RESULTS}\n`]]);
  const started: { name: string; input: RedoExecution }[] = [];
  const abandoned: number[] = [];
  const deps: RetryDeps = {
    catalog: {
      get: (fileId) => Promise.resolve(fileId === FILE ? stored : undefined),
      list: () => Promise.resolve({ entries: [] }),
      markRedo: (_fileId: string, mark: RedoMark) => {
        if (options.markRefused) return Promise.resolve(false);
        stored = stored && { ...stored, redo: mark };
        return Promise.resolve(true);
      },
      abandonRedo: (_fileId: string, round: number) => {
        abandoned.push(round);
        return Promise.resolve();
      },
    },
    schedule: new MemorySchedule(),
    phases: { phases: () => Promise.resolve([]) },
    rules: { partnerWeights: {} },
    callsPerMinute: 600,
    reports: {
      read: async function* (ref: ObjectRef) {
        const text = objects.get(`${ref.bucket}/${ref.key}`);
        if (text === undefined) throw new Error(`no ${ref.key}`);
        yield Buffer.from(text);
      },
      put: (ref, body) => {
        objects.set(`${ref.bucket}/${ref.key}`, body);
        return Promise.resolve();
      },
    },
    workflow: {
      start: (name, input) => {
        if (options.startFails) return Promise.reject(new Error('StartExecution refused'));
        started.push({ name, input: input as RedoExecution });
        return Promise.resolve('started');
      },
    },
    now: () => new Date('2026-11-25T09:00:00.000Z'),
  };
  return { deps, objects, started, abandoned };
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
  it('sends the failed records with those codes again: lines written, round taken, execution started', async () => {
    const { deps, objects, started } = world({ summary: summary() });
    const view = await retryFile(deps, FILE, { codes: ['4404', 'CANCELLED'] });
    expect(objects.get(`archive/${redoLinesKey(FILE, 1)}`)).toBe('3\n6\n7\n');
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

  it('a round that could not be started is given up, so the next request may go on', async () => {
    const { deps, abandoned } = world({ summary: summary() }, { startFails: true });
    await expect(retryFile(deps, FILE, { codes: ['4404'] })).rejects.toThrow('StartExecution refused');
    expect(abandoned).toEqual([1]);
  });
});
