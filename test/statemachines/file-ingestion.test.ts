import { z } from 'zod';
import {
  loadDefinition,
  localLambdaArn,
  runStateMachine,
  type EventLog,
  type LocalLambda,
} from '../../lambdas/local/integrations/state-machine-runner';
import { PhaseResultSchema } from '../../lambdas/await-phase/contract';
import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { fileIngestionSubstitutions, type WorkflowTaskFunction } from '../../lambdas/contracts/infrastructure';

/**
 * Every path of statemachines/file-ingestion.asl.json, run by aws-local-stepfunctions with the Lambdas
 * replaced by fakes that keep each handler's contract (input and output shapes) and record their calls.
 */
const SHA = 'e'.repeat(64);
const definition = () =>
  loadDefinition(
    'file-ingestion.asl.json',
    fileIngestionSubstitutions(localLambdaArn, {
      retryLaterAttempts: 3,
      retryLaterDelaySeconds: 60,
      phaseCheckSeconds: 1,
    }),
  );

/**
 * What a fake returns must parse with its function's output schema (the await task ends with what the
 * phase's resume sends): a fake cannot drift from the handler it stands for.
 */
const outputSchema = (name: string, action: string) => {
  const contract = FUNCTION_CONTRACTS[name as WorkflowTaskFunction];
  if (name === 'await-phase' && action === 'await') return PhaseResultSchema;
  // What a wake sends AwaitTurn (its result is dropped: ResultPath null).
  if (name === 'await-phase' && action === 'await-turn') return z.object({}).strict();
  const outputs = contract.outputs as Record<string, { parse(value: unknown): unknown }>;
  const schema = outputs[action];
  if (!schema) throw new Error(`${name} has no action ${action}`);
  return schema;
};
const summary = (status: string) => ({
  name: 'users_acme_20261124.csv',
  sha256: SHA,
  kind: 'users',
  status,
  received: 1,
  succeeded: status === 'succeeded' ? 1 : 0,
  failed: status === 'succeeded' ? 0 : 1,
  failures: {},
  reports: { bucket: 'archive', summary: 'reports/acme/users_acme_20261124.csv/eeee/summary.json' },
  archived: { bucket: 'archive', key: 'users_acme_20261124.csv' },
});

const event = (key: string) => ({
  'detail-type': 'Object Created',
  source: 'aws.s3',
  detail: { bucket: { name: 'landing' }, object: { key, size: 1234 } },
});

interface PhaseResult {
  batches: number;
  update?: number;
  retryLater?: number;
}

interface Scenario {
  kind: 'users' | 'transactions' | 'unknown';
  claim?: 'claimed' | 'duplicate' | 'redelivered';
  /** Slices the prepare step takes. */
  slices?: number;
  /** Slices the classify step takes. @default 1 */
  classifySlices?: number;
  /** Slices the finalise step takes. @default 1 */
  finaliseSlices?: number;
  /** What each phase's await returns, by phase. */
  phases?: Record<string, PhaseResult>;
  /** Errors thrown by an action, in turn (then it succeeds). */
  failures?: Record<string, Error[]>;
  /** Phases whose resume never comes (a count lost to a crash): only the periodic check sees them complete. */
  lost?: string[];
  /** Prepare slices of a phase the schedule holds (they return `waiting`) before one may send. */
  held?: Record<string, number>;
  /** The phase whose prepare finds the file cancelled. */
  cancelIn?: string;
  /** Lines a redo round's SelectRedo finds in results.csv. @default 2 */
  redoLines?: number;
}

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

function world(scenario: Scenario) {
  const calls: { lambda: string; payload: Record<string, unknown> }[] = [];
  const failures = Object.fromEntries(Object.entries(scenario.failures ?? {}).map(([k, v]) => [k, [...v]]));
  const held = { ...scenario.held };
  const lambda =
    (name: string, act: (payload: Record<string, unknown>) => unknown): LocalLambda =>
    (payload) => {
      const p = payload as Record<string, unknown>;
      calls.push({ lambda: name, payload: p });
      // And what the definition sends it must parse with its input schema: the ASL cannot drift from the contract.
      FUNCTION_CONTRACTS[name as WorkflowTaskFunction].input.parse(p);
      const action = String(p.action ?? name);
      const failure = failures[action]?.shift();
      if (failure) throw failure;
      const result = act(p);
      if (result instanceof Promise) return result;
      outputSchema(name, action)?.parse(result);
      return result;
    };
  // Classify's slices: each but the last returns where the next goes on (a checkpoint as the real function's).
  let classifySlices = 0;
  const classifySlice = (resume: { done: false; checkpoint?: { position: { line: number } } }) => {
    classifySlices++;
    if (classifySlices < (scenario.classifySlices ?? 1)) {
      return { done: false, checkpoint: classifyCheckpointAt(classifySlices, resume.checkpoint?.position.line ?? 1) };
    }
    return scenario.kind === 'unknown'
      ? { kind: 'unknown', reason: 'unknown file kind: ...', size: 1234, done: true }
      : { kind: scenario.kind, by: 'name', sha256: SHA, size: 1234, format: 'csv', done: true };
  };
  const lambdas: Record<string, LocalLambda> = {
    'classify-file': lambda('classify-file', (p) =>
      p.action === 'register'
        ? { registered: true }
        : p.action === 'classify'
          ? classifySlice(p.resume as { done: false; checkpoint?: { position: { line: number } } })
          : {
              outcome: scenario.claim ?? 'claimed',
              ...(scenario.claim === 'duplicate' ? { duplicateOf: 'users_x_20261124.csv' } : {}),
            },
    ),
    'prepare-file': lambda('prepare-file', (p) => {
      if (p.action === 'segregate')
        return { ...(p.file as object), key: `${scenario.kind}/${String((p.file as { key: string }).key)}` };
      const resume = p.resume as {
        phase: string;
        from: string | null;
        lines?: { bucket: string; key: string };
        slices: number;
        batches: number;
      };
      const slices = resume.phase === 'ADD' || resume.lines ? (scenario.slices ?? 1) : 1;
      const result = scenario.phases?.[resume.phase] ?? { batches: 1 };
      if ((held[resume.phase] ?? 0) > 0) {
        held[resume.phase]!--;
        const waiting = 'customers first: users_acme_20261124.csv still sending';
        return { ...resume, slices: resume.slices + 1, done: false, waiting, recheckSeconds: 30 };
      }
      if (scenario.cancelIn === resume.phase) {
        return { ...resume, slices: resume.slices + 1, done: true, cancelled: true };
      }
      const done = resume.slices + 1 >= slices;
      return {
        phase: resume.phase,
        from: resume.from,
        ...(resume.lines ? { lines: resume.lines } : {}),
        done,
        slices: resume.slices + 1,
        batches: done ? result.batches : resume.slices + 1,
        // Where the next slice reads on: what the real function returns while not done.
        ...(done ? {} : { checkpoint: checkpointAt(resume.slices + 1) }),
      };
    }),
    'await-phase': lambda('await-phase', (p) => {
      if (p.action === 'await-turn') return {};
      const phase = String(p.phase);
      const result = scenario.phases?.[phase] ?? { batches: 1 };
      const answer = {
        phase,
        batches: result.batches,
        answered: result.batches,
        update: result.update ?? 0,
        retryLater: result.retryLater ?? 0,
      };
      if (p.action === 'check') return { ...answer, complete: true, recounted: true };
      // What the resume would send; a lost one never comes, and the wait times out.
      return scenario.lost?.includes(phase) ? new Promise(() => undefined) : answer;
    }),
    'finalise-file': lambda('finalise-file', (p) => {
      if (p.action === 'select-redo') return { lines: scenario.redoLines ?? 2 };
      if (p.action === 'abandon-redo') return { abandoned: true };
      if (p.action === 'quarantine') return { ...summary('failed'), reason: 'quarantined' };
      if (p.action === 'duplicate') return summary('duplicate');
      if (p.action === 'archive') {
        const { done: _done, ...finished } = p.summary as Record<string, unknown>;
        return finished;
      }
      // As the real function: done false with where the next slice goes on, until the last returns the summary.
      const resume = p.resume as { checkpoint?: ReturnType<typeof finaliseCheckpointAt> } | null;
      const slice = (resume?.checkpoint?.report.received ?? 0) / 1000 + 1;
      return slice < (scenario.finaliseSlices ?? 1)
        ? { done: false, checkpoint: finaliseCheckpointAt(slice) }
        : { ...summary('succeeded'), done: true };
    }),
  };
  return { calls, lambdas };
}

/** The Task states of a redo round's path, each of which gives the round up when it fails. */
const REDO_TASKS = [
  'SelectRedo',
  'RegisterRedo',
  'RedoPrepareSlice',
  'RedoAwaitTurn',
  'RedoAwaitPhase',
  'RedoCheckPhase',
  'RedoFinaliseFile',
  'RedoArchiveFile',
  'GiveUpRedo',
];

async function run(scenario: Scenario, key: string | object = 'users_acme_20261124.csv') {
  const { calls, lambdas } = world(scenario);
  const execution = runStateMachine(definition(), typeof key === 'string' ? event(key) : key, {
    lambdas,
    waitTimeOverrides: { WaitBeforeRetry: 0 },
    retryIntervalOverrides: Object.fromEntries(
      [
        'ClassifyFile',
        'ClaimFile',
        'SegregateFile',
        'PrepareSlice',
        'EnqueueUpdate',
        'EnqueueRetry',
        'FinaliseFile',
        'ArchiveFile',
        'FinaliseDuplicate',
        'Quarantine',
        ...REDO_TASKS,
      ].map((s) => [s, 0]),
    ),
  });
  const events: EventLog[] = [];
  const collecting = (async () => {
    for await (const e of execution.eventLogs) events.push(e);
  })();
  const output = (await execution.result) as Record<string, unknown>;
  await collecting;
  const entered = events
    .filter((e) => e.type === 'StateEntered')
    .map((e) => (e as { state: { name: string } }).state.name);
  const actions = calls.map((c) => {
    const phase = c.payload.phase ?? (c.payload.resume as { phase?: string } | undefined)?.phase;
    return [c.lambda, c.payload.action, ...(phase ? [phase] : [])].join(':');
  });
  return { output, entered, actions, calls, events };
}

/** A prepare checkpoint as the real function returns it (lambdas/prepare-file/contract.ts CheckpointSchema). */
const checkpointAt = (batch: number) => ({
  position: { bytes: batch * 10_000, line: batch * 100 + 2, gzip: false, format: 'csv', columns: ['customer_id'] },
  nextBatch: batch,
  sha256State: 'AAAA',
});

/** A classify checkpoint as the real function returns it (lambdas/classify-file/contract.ts IdentifyCheckpointSchema). */
const classifyCheckpointAt = (slice: number, lineBefore: number) => ({
  kind: 'users',
  by: 'name',
  format: 'csv',
  position: {
    bytes: slice * 40_000,
    line: lineBefore + 400,
    gzip: false,
    format: 'csv',
    columns: ['customer_id', 'email'],
  },
  sha256State: 'AAAA',
});

/** A finalise checkpoint as the real function returns it (lambdas/finalise-file/contract.ts FinaliseCheckpointSchema). */
const finaliseCheckpointAt = (slice: number) => ({
  position: { bytes: slice * 50_000, line: slice * 1000 + 2, gzip: false, format: 'csv', columns: ['customer_id'] },
  report: {
    received: slice * 1000,
    succeeded: slice * 1000,
    failed: 0,
    failures: {},
    add: { batch: slice * 10, at: 0 },
    later: [],
  },
  results: {
    uploadId: 'upload-1',
    etags: Array.from({ length: slice }, (_, i) => `"etag-${i + 1}"`),
    carry: `finalise/${SHA}/results.csv.${slice * 1000 + 2}.carry`,
  },
});

describe('file-ingestion state machine', () => {
  it("a report delivered into a partner's reports/ folder is not a partner file: nothing runs", async () => {
    const report = 'incoming/acme/reports/users_acme_20261124.csv/0123456789ab/summary.json';
    const { entered, actions } = await run({ kind: 'users' }, report);
    expect(entered).toEqual(['IsRedo', 'Describe', 'IsPartnerReport', 'NotAPartnerFile']);
    expect(actions).toEqual([]);
    expect((await run({ kind: 'users' }, 'incoming/reports/users_reports_20261124.csv')).actions).toContain(
      'classify-file:classify',
    );
  });

  it('a slice the schedule holds parks in AwaitTurn with its token, then asks again from where it was', async () => {
    const { entered, actions, calls } = await run(
      { kind: 'transactions', slices: 2, held: { ADD: 2 } },
      'transactions_acme_20261124.csv',
    );
    const prepares = calls.filter((c) => c.payload.action === 'prepare').map((c) => c.payload.resume);
    expect(prepares).toHaveLength(3);
    expect(actions.filter((a) => a.startsWith('await-phase:await-turn'))).toEqual([
      'await-phase:await-turn:ADD',
      'await-phase:await-turn:ADD',
    ]);
    const turn = calls.find((c) => c.payload.action === 'await-turn')!.payload;
    expect(turn).toMatchObject({ fileId: SHA, phase: 'ADD', taskToken: expect.any(String) });
    // Held slices change nothing the next slice goes on from but the count of slices.
    expect(prepares[1]).toMatchObject({ phase: 'ADD', batches: 0 });
    expect(entered).toEqual(expect.arrayContaining(['AwaitTurn', 'AwaitPhase', 'FinaliseFile', 'Finalised']));
  });

  it('a cancelled file goes from its phase to finalise: no UPD for its 8006 records, no RETRY for its 4404', async () => {
    const users = await run({ kind: 'users', cancelIn: 'ADD', phases: { ADD: { batches: 3, update: 40 } } });
    expect(users.entered).not.toContain('StartUpdate');
    expect(users.entered).toEqual(expect.arrayContaining(['AwaitPhase', 'NextPhase', 'StartFinalise', 'Finalised']));
    const transactions = await run(
      { kind: 'transactions', cancelIn: 'ADD', phases: { ADD: { batches: 3, retryLater: 7 } } },
      'transactions_acme_20261124.csv',
    );
    expect(transactions.entered).not.toContain('WaitBeforeRetry');
    expect(transactions.entered).toContain('Finalised');
  });

  it('all succeed: classify, claim, segregate, prepare in slices, await ADD, finalise', async () => {
    const { output, actions, calls } = await run({ kind: 'users', slices: 3 });
    expect(actions).toEqual([
      'classify-file:classify',
      'classify-file:claim',
      'prepare-file:segregate',
      'prepare-file:prepare:ADD',
      'prepare-file:prepare:ADD',
      'prepare-file:prepare:ADD',
      'await-phase:await:ADD',
      'finalise-file:finalise',
      'finalise-file:archive',
    ]);
    // Each slice resumes from what the last one returned.
    expect(calls[3]?.payload.resume).toEqual({ phase: 'ADD', from: null, done: false, slices: 0, batches: 0 });
    expect(calls[4]?.payload.resume).toEqual({
      phase: 'ADD',
      from: null,
      done: false,
      slices: 1,
      batches: 1,
      checkpoint: checkpointAt(1),
    });
    expect(calls[5]?.payload.resume).toMatchObject({ slices: 2, batches: 2, checkpoint: checkpointAt(2) });
    // The await step gets the file, the phase and the task token; prepare works on the segregated key.
    expect(calls[6]?.payload).toEqual({ action: 'await', fileId: SHA, phase: 'ADD', taskToken: 'local-task-token' });
    expect(calls[3]?.payload.file).toMatchObject({ bucket: 'landing', key: 'users/users_acme_20261124.csv' });
    // The archive step moves the file finalise reported on, with the summary it returned.
    expect(calls[8]?.payload).toEqual({
      action: 'archive',
      file: calls[7]?.payload.file,
      summary: { ...summary('succeeded'), done: true },
    });
    expect(output.summary).toEqual(summary('succeeded'));
  });

  it('finalise in 3 slices: each goes on from the checkpoint the one before returned', async () => {
    const { output, actions, calls, entered } = await run({ kind: 'users', finaliseSlices: 3 });
    expect(actions.slice(-5)).toEqual([
      'await-phase:await:ADD',
      'finalise-file:finalise',
      'finalise-file:finalise',
      'finalise-file:finalise',
      'finalise-file:archive',
    ]);
    const finalises = calls.filter((c) => c.payload.action === 'finalise').map((c) => c.payload.resume);
    expect(finalises).toEqual([
      { done: false },
      { done: false, checkpoint: finaliseCheckpointAt(1) },
      { done: false, checkpoint: finaliseCheckpointAt(2) },
    ]);
    expect(entered.slice(-9)).toEqual([
      'StartFinalise',
      'FinaliseFile',
      'IsFinalised',
      'FinaliseFile',
      'IsFinalised',
      'FinaliseFile',
      'IsFinalised',
      'ArchiveFile',
      'Finalised',
    ]);
    expect(output.summary).toEqual(summary('succeeded'));
  });

  it('classify in 3 slices: each goes on from the checkpoint the one before returned, then the claim', async () => {
    const { actions, calls, entered, output } = await run({ kind: 'users', classifySlices: 3 });
    expect(actions.slice(0, 4)).toEqual([
      'classify-file:classify',
      'classify-file:classify',
      'classify-file:classify',
      'classify-file:claim',
    ]);
    const classifies = calls.filter((c) => c.payload.action === 'classify').map((c) => c.payload.resume);
    const first = classifyCheckpointAt(1, 1);
    expect(classifies).toEqual([
      { done: false },
      { done: false, checkpoint: first },
      { done: false, checkpoint: classifyCheckpointAt(2, first.position.line) },
    ]);
    expect(entered.slice(3, 11)).toEqual([
      'StartClassify',
      'ClassifyFile',
      'IsClassified',
      'ClassifyFile',
      'IsClassified',
      'ClassifyFile',
      'IsClassified',
      'IsKnownKind',
    ]);
    const claim = calls.find((c) => c.payload.action === 'claim')?.payload;
    expect(claim?.classification).toMatchObject({ kind: 'users', sha256: SHA, format: 'csv', done: true });
    expect(output.summary).toMatchObject({ status: 'succeeded' });
  });

  it('classify in 3 slices of an unknown kind: quarantined with the same input as in one', async () => {
    const { actions, calls } = await run({ kind: 'unknown', classifySlices: 3 }, 'report.pdf');
    expect(actions).toEqual([
      'classify-file:classify',
      'classify-file:classify',
      'classify-file:classify',
      'finalise-file:quarantine',
    ]);
    expect(calls.at(-1)?.payload).toEqual({
      action: 'quarantine',
      file: { bucket: 'landing', key: 'report.pdf', size: 1234 },
      error: { Error: 'File.UnknownKind', Cause: 'unknown file kind: ...' },
    });
  });

  it('8006 -> the UPD phase re-batches those records, then finalise', async () => {
    const { actions, calls } = await run({ kind: 'users', phases: { ADD: { batches: 10, update: 7 } } });
    expect(actions.slice(-5)).toEqual([
      'await-phase:await:ADD',
      'prepare-file:prepare:UPD',
      'await-phase:await:UPD',
      'finalise-file:finalise',
      'finalise-file:archive',
    ]);
    expect(calls.at(-4)?.payload.resume).toEqual({ phase: 'UPD', from: 'ADD', done: false, slices: 0, batches: 0 });
  });

  it('CONFLICTING_PROFILE in the UPD phase is final: no further phase, finalise reports it', async () => {
    const { actions } = await run({
      kind: 'users',
      phases: { ADD: { batches: 2, update: 2 }, UPD: { batches: 1, update: 0 } },
    });
    expect(actions.filter((a) => a.startsWith('await-phase'))).toEqual([
      'await-phase:await:ADD',
      'await-phase:await:UPD',
    ]);
    expect(actions.slice(-2)).toEqual(['finalise-file:finalise', 'finalise-file:archive']);
  });

  it.each([
    ['3217 (users)', 'users' as const],
    ['624 (transactions)', 'transactions' as const],
  ])('%s fails records without another phase', async (_case, kind) => {
    const { actions } = await run({ kind, phases: { ADD: { batches: 3 } } }, `${kind}_acme_20261124.csv`);
    expect(actions.filter((a) => a.startsWith('prepare-file:prepare')).every((a) => a.endsWith(':ADD'))).toBe(true);
    expect(actions.slice(-2)).toEqual(['finalise-file:finalise', 'finalise-file:archive']);
  });

  it('4404 then created: one RETRY phase after the wait, then finalise', async () => {
    const { actions, entered, calls } = await run(
      { kind: 'transactions', phases: { ADD: { batches: 5, retryLater: 4 }, RETRY1: { batches: 1, retryLater: 0 } } },
      'trx_acme_20261124.csv',
    );
    expect(entered).toContain('WaitBeforeRetry');
    expect(actions.slice(-5)).toEqual([
      'await-phase:await:ADD',
      'prepare-file:prepare:RETRY1',
      'await-phase:await:RETRY1',
      'finalise-file:finalise',
      'finalise-file:archive',
    ]);
    expect(calls.at(-4)?.payload.resume).toMatchObject({ phase: 'RETRY1', from: 'ADD' });
    expect(calls.at(-2)?.payload).toMatchObject({ action: 'finalise', retryAttempts: 1 });
  });

  it('4404 past the attempts: three RETRY phases, then finalise (the rest fail as 4404)', async () => {
    const { actions, calls } = await run(
      {
        kind: 'transactions',
        phases: {
          ADD: { batches: 5, retryLater: 4 },
          RETRY1: { batches: 1, retryLater: 4 },
          RETRY2: { batches: 1, retryLater: 3 },
          RETRY3: { batches: 1, retryLater: 2 },
        },
      },
      'trx_acme_20261124.csv',
    );
    expect(actions.filter((a) => a.startsWith('await-phase'))).toEqual([
      'await-phase:await:ADD',
      'await-phase:await:RETRY1',
      'await-phase:await:RETRY2',
      'await-phase:await:RETRY3',
    ]);
    expect(
      calls
        .filter((c) => c.payload.action === 'prepare')
        .map((c) => c.payload.resume as { phase: string; from: string | null })
        .filter((r) => r.phase !== 'ADD')
        .map((r) => [r.phase, r.from]),
    ).toEqual([
      ['RETRY1', 'ADD'],
      ['RETRY2', 'RETRY1'],
      ['RETRY3', 'RETRY2'],
    ]);
    expect(calls.at(-2)?.payload).toMatchObject({ action: 'finalise', retryAttempts: 3 });
  });

  it('a resume that never comes (a count lost to a crash): the wait times out, the check recounts, the file goes on', async () => {
    const { actions, entered, calls } = await run({
      kind: 'users',
      lost: ['ADD'],
      phases: { ADD: { batches: 4, update: 2 } },
    });
    expect(entered).toEqual(expect.arrayContaining(['AwaitPhase', 'CheckPhase', 'IsPhaseComplete', 'PhaseComplete']));
    expect(actions.slice(-6)).toEqual([
      'await-phase:await:ADD',
      'await-phase:check:ADD',
      'prepare-file:prepare:UPD',
      'await-phase:await:UPD',
      'finalise-file:finalise',
      'finalise-file:archive',
    ]);
    // The first check knows of no earlier one.
    expect(calls.find((c) => c.payload.action === 'check')?.payload).toEqual({
      action: 'check',
      fileId: SHA,
      phase: 'ADD',
      previous: { phase: '', answered: -1 },
    });
  });

  it('transient errors are retried at the state that met them', async () => {
    const { actions, events, output } = await run({
      kind: 'users',
      failures: {
        classify: [named('Lambda.ServiceException', 'service error')],
        prepare: [named('Pipeline.Transient', 'S3 throttled'), named('Lambda.TooManyRequestsException', 'throttled')],
      },
    });
    expect(actions.filter((a) => a === 'classify-file:classify')).toHaveLength(2);
    expect(actions.filter((a) => a === 'prepare-file:prepare:ADD')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'StateRetried')).toHaveLength(3);
    expect(output.summary).toMatchObject({ status: 'succeeded' });
  });

  it('a function cut off (timeout, memory) is run again from the same input, twice at most, then fails its state', async () => {
    const cutOff = (name: string) => named(name, 'Task timed out after 900.00 seconds');
    const { actions, output } = await run({
      kind: 'users',
      failures: {
        prepare: [cutOff('TimeoutError'), cutOff('Sandbox.Timedout')],
        finalise: [cutOff('Runtime.OutOfMemory')],
        archive: [cutOff('Sandbox.Timedout')],
      },
    });
    expect(actions.filter((a) => a === 'prepare-file:prepare:ADD')).toHaveLength(3);
    expect(actions.filter((a) => a === 'finalise-file:finalise')).toHaveLength(2);
    expect(actions.filter((a) => a === 'finalise-file:archive')).toHaveLength(2);
    expect(output.summary).toMatchObject({ status: 'succeeded' });
    const failure = (await run({
      kind: 'users',
      failures: { classify: [cutOff('TimeoutError'), cutOff('TimeoutError'), cutOff('TimeoutError')] },
    }).catch((error: unknown) => error)) as Error & { cause?: unknown };
    expect(`${failure.message} ${String(failure.cause)}`).toMatch(/TimeoutError|timed out/);
  });

  it('an error that is not transient or a file rejection fails the execution at its state (for a console redrive)', async () => {
    const failure = await run({
      kind: 'users',
      failures: { segregate: [named('Crm.AuthRejected', 'credentials rejected')] },
    }).catch((error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    expect(
      String((failure as Error & { cause?: unknown }).message) + String((failure as Error & { cause?: unknown }).cause),
    ).toMatch(/Crm\.AuthRejected|credentials rejected/);
  });

  it('duplicate: archived with that mark, nothing prepared or sent', async () => {
    const { actions, calls } = await run({ kind: 'users', claim: 'duplicate' });
    expect(actions).toEqual(['classify-file:classify', 'classify-file:claim', 'finalise-file:duplicate']);
    expect(calls.at(-1)?.payload.claim).toEqual({ outcome: 'duplicate', duplicateOf: 'users_x_20261124.csv' });
  });

  it('the same event delivered twice: the second execution stops after the claim', async () => {
    const { actions, entered } = await run({ kind: 'users', claim: 'redelivered' });
    expect(actions).toEqual(['classify-file:classify', 'classify-file:claim']);
    expect(entered.at(-1)).toBe('AlreadyClaimed');
  });

  it('an object no longer there (the event came again after the file was moved) ends quietly', async () => {
    const { actions, entered } = await run({
      kind: 'users',
      failures: { classify: [named('File.Gone', 'no longer there')] },
    });
    expect(actions).toEqual(['classify-file:classify']);
    expect(entered.at(-1)).toBe('ObjectGone');
  });

  it('unknown file: quarantined with the reason, nothing claimed or sent', async () => {
    const { actions, calls } = await run({ kind: 'unknown' }, 'report.pdf');
    expect(actions).toEqual(['classify-file:classify', 'finalise-file:quarantine']);
    expect(calls.at(-1)?.payload).toEqual({
      action: 'quarantine',
      file: { bucket: 'landing', key: 'report.pdf', size: 1234 },
      error: { Error: 'File.UnknownKind', Cause: 'unknown file kind: ...' },
    });
  });

  it('unreadable file: the prepare step fails the file, which is quarantined with the reason', async () => {
    const { actions, calls, output } = await run({
      kind: 'users',
      failures: { prepare: [named('File.Unreadable', 'line 1: missing required column email')] },
    });
    expect(actions.slice(-2)).toEqual(['prepare-file:prepare:ADD', 'finalise-file:quarantine']);
    expect(calls.at(-1)?.payload.error).toMatchObject({
      Error: 'File.Unreadable',
      Cause: expect.stringContaining('missing required column email'),
    });
    expect(output.summary).toMatchObject({ status: 'failed', reason: 'quarantined' });
  });
  describe('a redo round (POST /v1/files/{fileId}/retry)', () => {
    const archived = { bucket: 'archive', key: 'transactions/acme/transactions_acme_20261124.csv' };
    const redoInput = (kind: 'users' | 'transactions', round = 2) => ({
      redo: {
        fileId: SHA,
        round,
        kind,
        format: 'csv',
        file: archived,
        name: 'transactions_acme_20261124.csv',
        partner: 'acme',
        landedAt: '2026-11-24T08:00:00.000Z',
        results: { bucket: 'archive', key: 'reports/acme/transactions_acme_20261124.csv/eeee/results.csv' },
        lines: { bucket: 'archive', key: `redo/${SHA}/${round}.lines` },
        codes: ['4404'],
      },
    });
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => {
          throw new Error('the execution succeeded');
        },
        (error: unknown) => error as Error & { cause?: unknown },
      );

    it('selects its lines, registers the file again, sends REDO<round> from them in slices, finalises every phase, archives nothing new', async () => {
      const { actions, calls, entered } = await run({ kind: 'transactions', slices: 2 }, redoInput('transactions'));
      expect(entered.slice(0, 5)).toEqual(['IsRedo', 'DescribeRedo', 'SelectRedo', 'HasRedoLines', 'RegisterRedo']);
      expect(entered.at(-1)).toBe('RedoFinalised');
      expect(actions).toEqual([
        'finalise-file:select-redo',
        'classify-file:register',
        'prepare-file:prepare:REDO2',
        'prepare-file:prepare:REDO2',
        'await-phase:await:REDO2',
        'finalise-file:finalise',
        'finalise-file:archive',
      ]);
      // The lines are picked from results.csv by the workflow, not by the API request.
      expect(calls[0]?.payload).toEqual({
        action: 'select-redo',
        fileId: SHA,
        round: 2,
        codes: ['4404'],
        results: redoInput('transactions').redo.results,
        lines: redoInput('transactions').redo.lines,
      });
      // Back in the schedule with the time it first landed.
      expect(calls[1]?.payload).toEqual({
        action: 'register',
        redo: {
          fileId: SHA,
          kind: 'transactions',
          name: 'transactions_acme_20261124.csv',
          partner: 'acme',
          landedAt: '2026-11-24T08:00:00.000Z',
        },
      });
      // The archived file is read; the lines come from the round's object, on every slice.
      expect(calls[2]?.payload).toMatchObject({
        file: archived,
        classification: { kind: 'transactions', sha256: SHA, format: 'csv' },
        resume: { phase: 'REDO2', from: null, lines: redoInput('transactions').redo.lines, slices: 0, batches: 0 },
      });
      expect(calls[3]?.payload.resume).toMatchObject({ lines: redoInput('transactions').redo.lines, slices: 1 });
      const finalise = calls.find((c) => c.payload.action === 'finalise')!.payload;
      expect(finalise).toMatchObject({ file: archived, retryAttempts: 0, redo: { round: 2 } });
      expect(calls.at(-1)?.payload).toMatchObject({ action: 'archive', file: archived });
    });

    it("a first execution passes no redo to finalise, and enters none of a round's states", async () => {
      const { calls, entered } = await run({ kind: 'users' });
      expect(calls.find((c) => c.payload.action === 'finalise')!.payload).not.toHaveProperty('redo');
      expect(entered.filter((state) => /Redo/.test(state))).toEqual(['IsRedo']);
    });

    it('transactions: a 4404 in a redo round is final (no RETRY wait)', async () => {
      const { actions, entered } = await run(
        { kind: 'transactions', phases: { REDO2: { batches: 2, retryLater: 5 } } },
        redoInput('transactions'),
      );
      expect(entered).not.toContain('WaitBeforeRetry');
      expect(actions.filter((a) => a.startsWith('prepare-file'))).toEqual(['prepare-file:prepare:REDO2']);
      expect(entered).toContain('RedoFinalised');
    });

    it("users: the round's 8006 records go again as REDO<n>UPD, from REDO<n>'s answers; no REDO<n>UPDUPD", async () => {
      const { actions, calls } = await run(
        { kind: 'users', phases: { REDO1: { batches: 2, update: 3 }, REDO1UPD: { batches: 1, update: 1 } } },
        redoInput('users', 1),
      );
      expect(actions).toEqual([
        'finalise-file:select-redo',
        'classify-file:register',
        'prepare-file:prepare:REDO1',
        'await-phase:await:REDO1',
        'prepare-file:prepare:REDO1UPD',
        'await-phase:await:REDO1UPD',
        'finalise-file:finalise',
        'finalise-file:archive',
      ]);
      const update = calls.filter((c) => c.payload.action === 'prepare')[1]!.payload.resume;
      expect(update).toEqual({ phase: 'REDO1UPD', from: 'REDO1', done: false, slices: 0, batches: 0 });
    });

    it('a redo round cancelled goes from its phase to finalise', async () => {
      const { actions } = await run(
        { kind: 'users', cancelIn: 'REDO1', phases: { REDO1: { batches: 2, update: 3 } } },
        redoInput('users', 1),
      );
      expect(actions.filter((a) => a.startsWith('prepare-file'))).toEqual(['prepare-file:prepare:REDO1']);
      expect(actions.at(-1)).toBe('finalise-file:archive');
    });

    it('no line of results.csv has those codes: the round is given up cleanly, nothing registered or sent', async () => {
      const { actions, calls, entered } = await run({ kind: 'users', redoLines: 0 }, redoInput('users', 1));
      expect(actions).toEqual(['finalise-file:select-redo', 'finalise-file:abandon-redo']);
      expect(calls[1]?.payload).toEqual({
        action: 'abandon-redo',
        fileId: SHA,
        round: 1,
        error: { Error: 'Redo.NothingToSend', Cause: expect.stringContaining('codes asked for') },
      });
      expect(entered.at(-1)).toBe('NothingToRedo');
    });

    it('an unreadable archived file gives the round up and fails the execution: never quarantined (no move)', async () => {
      const unreadable = named('File.Unreadable', 'line 1: missing required column email');
      const { calls, lambdas } = world({ kind: 'users', failures: { prepare: [unreadable] } });
      const error = await failure(
        runStateMachine(definition(), redoInput('users', 1), { lambdas, retryIntervalOverrides: {} }).result,
      );
      expect(`${error.message} ${String(error.cause)}`).toMatch(/File\.Unreadable|missing required column/);
      const actions = calls.map((c) => String(c.payload.action));
      expect(actions).toEqual(['select-redo', 'register', 'prepare', 'abandon-redo']);
      expect(actions).not.toContain('quarantine');
      expect(calls.at(-1)?.payload).toEqual({
        action: 'abandon-redo',
        fileId: SHA,
        round: 1,
        error: { Error: 'File.Unreadable', Cause: expect.stringContaining('missing required column email') },
      });
    });

    it.each([
      ['select-redo', 'finalise-file:select-redo'],
      ['register', 'classify-file:register'],
      ['prepare', 'prepare-file:prepare:REDO2'],
      ['await', 'await-phase:await:REDO2'],
      ['finalise', 'finalise-file:finalise'],
      ['archive', 'finalise-file:archive'],
    ])(
      '%s failing past its retries gives the round up, then the execution fails with its error',
      async (action, last) => {
        // Transient errors are retried first (6 attempts): the round is given up only once they are spent.
        const transient = Array.from({ length: 7 }, () => named('Pipeline.Transient', `${action}: S3 throttled`));
        const { calls, lambdas } = world({ kind: 'transactions', failures: { [action]: transient } });
        const error = await failure(
          runStateMachine(definition(), redoInput('transactions'), {
            lambdas,
            retryIntervalOverrides: Object.fromEntries(REDO_TASKS.map((s) => [s, 0])),
          }).result,
        );
        expect(`${error.message} ${String(error.cause)}`).toMatch(/Pipeline\.Transient|S3 throttled/);
        const actions = calls.map((c) => {
          const phase = (c.payload.phase ?? (c.payload.resume as { phase?: string } | undefined)?.phase) as string;
          return [c.lambda, c.payload.action, ...(phase ? [phase] : [])].join(':');
        });
        expect(actions.filter((a) => a === last)).toHaveLength(7);
        expect(actions.at(-1)).toBe('finalise-file:abandon-redo');
        expect(calls.at(-1)?.payload).toMatchObject({
          round: 2,
          error: { Error: 'Pipeline.Transient', Cause: expect.stringContaining('S3 throttled') },
        });
        expect(actions).not.toContain('finalise-file:quarantine');
      },
    );

    it("every Task of a round's path gives the round up on any error; none goes to Quarantine", () => {
      const states = definition().States as Record<
        string,
        { Type: string; Catch?: { ErrorEquals: string[]; Next: string }[] }
      >;
      for (const name of REDO_TASKS.filter((task) => task !== 'GiveUpRedo')) {
        const state = states[name];
        expect({ name, type: state?.Type }).toEqual({ name, type: 'Task' });
        expect({ name, last: state?.Catch?.at(-1) }).toEqual({
          name,
          last: { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'GiveUpRedo' },
        });
        expect(state?.Catch?.map((rule) => rule.Next)).not.toContain('Quarantine');
      }
      // The give-up itself fails the execution at its state when it cannot be done (a redrive runs it again).
      expect(states.GiveUpRedo?.Catch).toBeUndefined();
    });
  });
});
