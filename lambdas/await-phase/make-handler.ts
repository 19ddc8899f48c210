import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { stateMachineErrors } from '../adapters/aws/task-errors';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { checkPhase, resumeIfComplete, type PhaseCounters, type TaskNotifier } from '../core/ledger/phase-counters';
import { awaitPhaseContract as contract, type AwaitPhaseEnvironment } from './contract';

export interface AwaitPhaseDeps {
  readonly phases: PhaseCounters;
  readonly notifier: TaskNotifier;
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
    const check = await checkPhase(deps.phases, input.fileId, input.phase, input.previous);
    logger.info('phase checked', { fileId: input.fileId, ...check });
    return check;
  })
    .use(injectLambdaContext(logger))
    .use(stateMachineErrors(contract));
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
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
