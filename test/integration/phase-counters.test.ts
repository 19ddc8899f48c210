import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import {
  checkPhase,
  resumeIfComplete,
  type PhaseResult,
  type TaskNotifier,
} from '../../lambdas/core/ledger/phase-counters';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';

describe('phase counters (dynalite)', () => {
  let db: LocalDynamoDb;
  let answers: DynamoDbCallAnswers;
  let phases: DynamoDbPhaseCounters;
  const sent: { token: string; result: PhaseResult }[] = [];
  const notifier: TaskNotifier = {
    succeed: async (token, result) => {
      sent.push({ token, result });
    },
  };
  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
    answers = new DynamoDbCallAnswers(db.client(), 'ledger');
    phases = new DynamoDbPhaseCounters(db.client(), 'ledger', answers);
  });
  afterAll(() => db.close());
  beforeEach(() => sent.splice(0));

  const answer = (
    fileId: string,
    phase: string,
    batchIndex: number,
    statuses: RecordOutcome['status'][],
  ): CallAnswer => ({
    fileId,
    phase,
    batchIndex,
    operation: 'ADD_CUST',
    attempts: 1,
    replayed: false,
    outcomes: statuses.map((status, i) => ({
      line: batchIndex * 10 + i + 2,
      status,
      code: status === 'update' ? 8006 : 200,
    })),
  });

  /** What the dispatcher does: store the answer; only the writer that stored it counts it. */
  async function answerBatch(a: CallAnswer) {
    if ((await answers.recordAnswer(a)) === 'recorded') await resumeIfComplete(await phases.countAnswer(a), notifier);
  }

  it('the last answer resumes the waiting execution, with the records each next phase takes', async () => {
    const file = 'a'.repeat(64);
    await resumeIfComplete(await phases.storeTaskToken(file, 'ADD', 'token-1'), notifier);
    await answerBatch(answer(file, 'ADD', 0, ['succeeded', 'update']));
    await resumeIfComplete(await phases.setBatchTotal(file, 'ADD', 2), notifier);
    expect(sent).toEqual([]);
    await answerBatch(answer(file, 'ADD', 1, ['update', 'update']));
    await answerBatch(answer(file, 'ADD', 1, ['update', 'update'])); // the same message again: not counted
    expect(sent).toEqual([
      { token: 'token-1', result: { phase: 'ADD', batches: 2, answered: 2, update: 3, retryLater: 0 } },
    ]);
  });

  it('whichever comes last resumes: the total after every answer, or the token after the total', async () => {
    const file = 'b'.repeat(64);
    await answerBatch(answer(file, 'ADD', 0, ['succeeded']));
    expect(await resumeIfComplete(await phases.setBatchTotal(file, 'ADD', 1), notifier)).toBe(false);
    expect(await resumeIfComplete(await phases.storeTaskToken(file, 'ADD', 'token-2'), notifier)).toBe(true);
    // A phase with no batches (every record failed validation) is complete as soon as its total is known.
    await phases.storeTaskToken(file, 'UPD', 'token-3');
    expect(await resumeIfComplete(await phases.setBatchTotal(file, 'UPD', 0), notifier)).toBe(true);
    expect(sent.map((s) => s.token)).toEqual(['token-2', 'token-3']);
  });

  it('RETRY1 and RETRY10 answers are kept apart', async () => {
    const file = 'c'.repeat(64);
    await answers.recordAnswer(answer(file, 'RETRY1', 0, ['succeeded']));
    await answers.recordAnswer(answer(file, 'RETRY10', 0, ['succeeded']));
    await answers.recordAnswer(answer(file, 'RETRY10', 1, ['succeeded']));
    const read = async (phase: string) => {
      const found: number[] = [];
      for await (const a of answers.answers(file, phase)) found.push(a.batchIndex);
      return found;
    };
    expect(await read('RETRY1')).toEqual([0]);
    expect(await read('RETRY10')).toEqual([0, 1]);
  });

  it('a count lost to a crash is healed by the check: stalled short of the total, the answers are counted again', async () => {
    const file = 'd'.repeat(64);
    await phases.setBatchTotal(file, 'ADD', 3);
    for (const i of [0, 1]) await answerBatch(answer(file, 'ADD', i, ['succeeded', 'update']));
    // The dispatcher stored batch 2's answer and died before counting it.
    await answers.recordAnswer(answer(file, 'ADD', 2, ['update']));

    const first = await checkPhase(phases, file, 'ADD');
    expect(first).toMatchObject({ complete: false, answered: 2, recounted: false });
    // Answers still arriving between checks: no recount.
    const moving = await checkPhase(phases, file, 'ADD', { phase: 'ADD', answered: 1 });
    expect(moving).toMatchObject({ complete: false, recounted: false });
    // No progress since the last check: count again.
    const healed = await checkPhase(phases, file, 'ADD', { phase: 'ADD', answered: 2 });
    expect(healed).toEqual({
      phase: 'ADD',
      batches: 3,
      answered: 3,
      update: 3,
      retryLater: 0,
      complete: true,
      recounted: true,
    });
    expect(await phases.read(file, 'ADD')).toMatchObject({ answered: 3, update: 3 });
  });

  /** An answer whose records end as given: `ok`, `8006`, `4404`, or any other text: failed for that reason. */
  const answerOf = (fileId: string, phase: string, batchIndex: number, results: string[]): CallAnswer => ({
    ...answer(fileId, phase, batchIndex, []),
    outcomes: results.map((result, i): RecordOutcome => {
      const line = batchIndex * 10 + i + 2;
      if (result === 'ok') return { line, status: 'succeeded', code: 200 };
      if (result === '8006') return { line, status: 'update', code: 8006, reason: '8006' };
      if (result === '4404') return { line, status: 'retry-later', code: 4404, reason: '4404' };
      return /^\d+$/.test(result)
        ? { line, status: 'failed', code: Number(result) }
        : { line, status: 'failed', code: 200, reason: result };
    }),
  });

  it('counts the records each answer ended, by reason, and lists every phase of the file in phase order', async () => {
    const file = 'f'.repeat(64);
    await answerBatch(answerOf(file, 'ADD', 0, ['ok', '3217', '8006', '4404', 'ok']));
    await answerBatch(answerOf(file, 'ADD', 1, ['3217', 'Crm.Odd error #1', '8006']));
    await answerBatch(answerOf(file, 'ADD', 1, ['3217', 'Crm.Odd error #1', '8006'])); // delivered twice: counted once
    await answerBatch(answerOf(file, 'UPD', 0, ['ok', 'CONFLICTING_PROFILE']));
    for (const phase of ['RETRY10', 'RETRY2', 'RETRY9', 'RETRY1'])
      await answerBatch(answerOf(file, phase, 0, ['4404']));
    await answerBatch(answerOf(file, 'RETRY10', 1, ['ok', '4404']));
    await phases.setBatchTotal(file, 'ADD', 2);

    const listed = await phases.phases(file);
    expect(listed.map((state) => state.phase)).toEqual(['ADD', 'UPD', 'RETRY1', 'RETRY2', 'RETRY9', 'RETRY10']);
    expect(listed[0]).toEqual({
      fileId: file,
      phase: 'ADD',
      batches: 2,
      answered: 2,
      update: 2,
      retryLater: 1,
      calls: 2,
      succeeded: 2,
      failed: 3,
      failures: { '3217': 2, 'Crm.Odd error #1': 1 },
    });
    expect(listed[1]).toMatchObject({ succeeded: 1, failed: 1, failures: { CONFLICTING_PROFILE: 1 } });
    // A 4404 is not failed while the file runs: the next RETRY phase takes it.
    expect(listed.slice(2).map(({ succeeded, failed, retryLater }) => ({ succeeded, failed, retryLater }))).toEqual([
      { succeeded: 0, failed: 0, retryLater: 1 },
      { succeeded: 0, failed: 0, retryLater: 1 },
      { succeeded: 0, failed: 0, retryLater: 1 },
      { succeeded: 1, failed: 0, retryLater: 2 },
    ]);
    expect(await phases.read(file, 'ADD')).toEqual(listed[0]);
    expect(await phases.phases('0'.repeat(64))).toEqual([]);
  });

  it('a recount sets the record tallies from the stored answers, and drops a reason no stored answer has', async () => {
    const file = '1'.repeat(64);
    await answerBatch(answerOf(file, 'ADD', 0, ['ok', '3217']));
    // Batch 1's answer stored, its count lost in a crash.
    await answers.recordAnswer(answerOf(file, 'ADD', 1, ['624', '8006']));
    // A count that no stored answer backs (say, a hand-edited counter): its reason must not survive.
    await phases.countAnswer(answerOf(file, 'ADD', 2, ['OLD_REASON']));
    expect(await phases.read(file, 'ADD')).toMatchObject({ answered: 2, failures: { '3217': 1, OLD_REASON: 1 } });

    const recounted = await phases.recount(file, 'ADD', 2);
    expect(recounted).toMatchObject({
      answered: 2,
      update: 1,
      succeeded: 1,
      failed: 2,
      failures: { '3217': 1, '624': 1 },
    });
    expect(await phases.read(file, 'ADD')).toEqual(recounted);
  });

  it('a recount does not overwrite a counter that moved meanwhile', async () => {
    const file = 'e'.repeat(64);
    await answerBatch(answer(file, 'ADD', 0, ['succeeded']));
    expect(await phases.recount(file, 'ADD', 0)).toBe('moved');
    expect(await phases.recount(file, 'ADD', 1)).toMatchObject({ answered: 1 });
  });
});
