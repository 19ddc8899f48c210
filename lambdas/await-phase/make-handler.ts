import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { stateMachineErrors } from '../adapters/aws/task-errors';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { checkPhase, resumeIfComplete, type PhaseCounters, type TaskNotifier } from '../core/ledger/phase-counters';
import { scheduleRules, turnOf, type Schedule, type ScheduleRules, type TurnNotifier } from '../core/schedule/schedule';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import { awaitPhaseContract as contract, type AwaitPhaseEnvironment } from './contract';

export interface AwaitPhaseDeps {
  readonly phases: PhaseCounters;
  readonly notifier: TaskNotifier & TurnNotifier;
  readonly schedule: Schedule;
  readonly rules: ScheduleRules;
  readonly telemetry: Telemetry<'await-phase'>;
}

/**
 * await: stores the waiting execution's task token on the phase, and resumes it at once if the phase is
 * already complete (the dispatcher resumes it otherwise). check: the periodic check when the wait times out.
 */
export function makeHandler(deps: AwaitPhaseDeps) {
  const { logger } = deps.telemetry;
  return middy(async (event: unknown) => {
    const input = contract.input.parse(event);
    if (input.action === 'await') {
      const state = await deps.phases.storeTaskToken(input.fileId, input.phase, input.taskToken);
      const resumed = await resumeIfComplete(state, deps.notifier);
      logger.info('phase awaited', {
        fileId: input.fileId,
        phase: input.phase,
        batches: state.batches,
        answered: state.answered,
        resumed,
      });
      return { resumed };
    }
    if (input.action === 'await-turn') {
      const woken = await awaitTurn(deps, input.fileId, input.phase, input.taskToken);
      logger.info('turn awaited', { fileId: input.fileId, phase: input.phase, woken });
      return { woken };
    }
    // Every phase check refreshes the file's schedule entry: a file in flight is not taken for a stopped one.
    await deps.schedule.update(input.fileId, {});
    const check = await checkPhase(deps.phases, input.fileId, input.phase, input.previous);
    logger.info('phase checked', { fileId: input.fileId, ...check });
    return check;
  })
    .use(injectLambdaContext(logger))
    .use(stateMachineErrors(contract));
}

/**
 * Stores the token of an execution held by the schedule (AwaitTurn) on its entry, where a wake finds it; then
 * asks the rules once more, so a change between the slice that was held and this store is not missed: if the
 * file may go on now (or is cancelled, or gave up), the token is sent back at once.
 */
async function awaitTurn(deps: AwaitPhaseDeps, fileId: string, phase: string, taskToken: string): Promise<boolean> {
  await deps.schedule.update(fileId, { turnToken: taskToken });
  const view = await deps.schedule.view();
  const file = view.files.find((entry) => entry.fileId === fileId);
  const turn = file ? turnOf(file, phase, view, deps.rules, Date.now()) : undefined;
  if (turn && !turn.send && turn.state !== 'cancelled' && !turn.giveUp) return false;
  // Unless a wake took it meanwhile (and sent it).
  if (!(await deps.schedule.takeTurnToken(fileId, taskToken))) return true;
  await deps.notifier.wake(taskToken);
  return true;
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: AwaitPhaseEnvironment, runtime: FunctionRuntime): AwaitPhaseDeps {
  const { dynamodb, sfn } = runtime.clients;
  const answers = new DynamoDbCallAnswers(dynamodb, environment.LEDGER_TABLE_NAME);
  return {
    phases: new DynamoDbPhaseCounters(dynamodb, environment.LEDGER_TABLE_NAME, answers, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    notifier: new SfnTaskNotifier(sfn),
    schedule: new DynamoDbSchedule(dynamodb, environment.LEDGER_TABLE_NAME, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    rules: scheduleRules(environment.settings),
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
