import { join } from 'node:path';
import type { Config } from '../core/config';
import { dispatchCrmCallsContract } from '../dispatch-crm-calls/contract';
import type { FunctionName } from './telemetry';

/**
 * The facts the infrastructure shares with the code, in one place: CDK deploys from them, the one-machine
 * runtime builds its stand-ins from them, and the tests run the state machine with them.
 */

/** The state machine file CDK deploys: the same file the local runner and the state machine tests execute. */
export const FILE_INGESTION_ASL = join(__dirname, '../../statemachines/file-ingestion.asl.json');

/** The functions the file workflow's tasks invoke, by the substitution that holds each one's ARN. */
export const WORKFLOW_TASK_FUNCTIONS = {
  ClassifyFileFunctionArn: 'classify-file',
  PrepareFileFunctionArn: 'prepare-file',
  AwaitPhaseFunctionArn: 'await-phase',
  FinaliseFileFunctionArn: 'finalise-file',
} as const satisfies Record<string, FunctionName>;

export type WorkflowTaskFunction = (typeof WORKFLOW_TASK_FUNCTIONS)[keyof typeof WORKFLOW_TASK_FUNCTIONS];

/**
 * Each Task state that invokes a function times out this long after the function's own timeout
 * (file-ingestion.asl.json's `TimeoutSeconds`, checked against the contracts by a test): on AWS the function's
 * own timeout error comes first and the state's is a backstop; on one machine, where nothing else stops a
 * function, it is the limit (aws-local-stepfunctions would otherwise give every Task 60 s, AWS none).
 */
export const TASK_TIMEOUT_MARGIN_SECONDS = 30;

/**
 * Memory of the steps that read a whole file (classify, prepare, finalise): 1,769 MB, the size at which Lambda
 * gives a function one full vCPU. Their work is one thread parsing (CPU-bound) and their peak RSS stays under
 * 140 MB at any size (`npm run bench:scale`), so memory buys only CPU: from 1,024 MB (0.58 vCPU) they run 1.73x
 * faster for the same GB-seconds a record, and a 10 GiB gzip file needs fewer slices, each of which inflates the
 * text before its checkpoint again. More than 1,769 MB adds a second vCPU that one thread does not use.
 */
export const WHOLE_FILE_MEMORY_MB = 1769;

/**
 * The errors of a function cut off by its runtime rather than thrown by its code: a timeout (middy's TimeoutError
 * just before the end, Lambda's Sandbox.Timedout, the state's own States.Timeout), memory exhausted or the
 * process gone (Runtime.OutOfMemory, Runtime.ExitError, or Lambda.Unknown when Lambda names none). Each Task of
 * the workflow retries them twice from the input it was given (for a prepare slice, its checkpoint), then fails
 * under that name, for a redrive to resume there (file-ingestion.asl.json; a test keeps the two in step).
 */
export const CUT_OFF_ERRORS = [
  'States.Timeout',
  'Lambda.Unknown',
  'Sandbox.Timedout',
  'Runtime.ExitError',
  'Runtime.OutOfMemory',
  'TimeoutError',
] as const;

/** The settings the workflow's definition carries. */
export type WorkflowSettings = Pick<Config, 'retryLaterAttempts' | 'retryLaterDelaySeconds' | 'phaseCheckSeconds'>;

/** Every `${...}` substitution of file-ingestion.asl.json: the task functions' ARNs and the workflow's settings. */
export function fileIngestionSubstitutions(
  functionArn: (name: WorkflowTaskFunction) => string,
  settings: WorkflowSettings,
): Record<string, string> {
  return {
    ...Object.fromEntries(Object.entries(WORKFLOW_TASK_FUNCTIONS).map(([key, name]) => [key, functionArn(name)])),
    RetryLaterAttempts: String(settings.retryLaterAttempts),
    RetryLaterDelaySeconds: String(settings.retryLaterDelaySeconds),
    PhaseCheckSeconds: String(settings.phaseCheckSeconds),
  };
}

/** The CRM call queue and its event source, on AWS and on one machine. */
/** A message stays hidden six times the dispatcher's timeout, as AWS advises for an SQS event source. */
export const visibilityTimeoutSeconds = (dispatcherTimeoutSeconds: number) => 6 * dispatcherTimeoutSeconds;

export const CALL_QUEUE = {
  visibilityTimeoutSeconds: visibilityTimeoutSeconds(dispatchCrmCallsContract.timeoutSeconds),
  /** Deliveries of a message before it goes to the dead-letter queue. */
  maxReceiveCount: 10,
  /** Messages are kept 14 days (SQS's most), so a long CRM outage loses nothing. */
  retentionDays: 14,
  /** Messages per dispatcher invocation: the SQS event source's default. */
  eventSourceBatchSize: 10,
} as const;
