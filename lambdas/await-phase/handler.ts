import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { asTransient, dynamoDbClient, sfnClient } from '../adapters/aws/clients';
import { DynamoDbCallLedger } from '../adapters/aws/dynamodb-call-ledger';
import { DynamoDbPhaseLedger } from '../adapters/aws/dynamodb-phase-ledger';
import { readEnvironment } from '../adapters/aws/environment';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { PHASE_PATTERN } from '../core/crm/call-message';
import { checkPhase, resumeIfComplete } from '../core/ledger/phase-ledger';

const Environment = z.object({ LEDGER_TABLE_NAME: z.string().min(1) });

const FileId = z.string().regex(/^[0-9a-f]{64}$/);
const Phase = z.string().regex(PHASE_PATTERN);
/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({ action: z.literal('await'), fileId: FileId, phase: Phase, taskToken: z.string().min(1) }),
  z.object({
    action: z.literal('check'),
    fileId: FileId,
    phase: Phase,
    previous: z.object({ phase: z.string(), answered: z.number().int() }).optional(),
  }),
]);

const environment = readEnvironment(Environment);
export const logger = new Logger({ serviceName: 'await-phase' });
const dynamodb = dynamoDbClient();
const phases = new DynamoDbPhaseLedger(
  dynamodb,
  environment.LEDGER_TABLE_NAME,
  new DynamoDbCallLedger(dynamodb, environment.LEDGER_TABLE_NAME),
);
const notifier = new SfnTaskNotifier(sfnClient());

/**
 * await: stores the waiting execution's task token on the phase, and resumes it at once if the phase is
 * already complete (the dispatcher resumes it otherwise). check: the periodic check when the wait times out.
 */
export const handler = middy(async (event: unknown) => {
  const input = Input.parse(event);
  try {
    if (input.action === 'await') {
      const state = await phases.storeTaskToken(input.fileId, input.phase, input.taskToken);
      const resumed = await resumeIfComplete(state, notifier);
      logger.info('phase awaited', {
        fileId: input.fileId,
        phase: input.phase,
        batches: state.batches,
        answered: state.answered,
        resumed,
      });
      return { resumed };
    }
    const check = await checkPhase(phases, input.fileId, input.phase, input.previous);
    logger.info('phase checked', { fileId: input.fileId, ...check });
    return check;
  } catch (error) {
    throw asTransient(error);
  }
}).use(injectLambdaContext(logger));
