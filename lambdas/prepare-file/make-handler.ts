import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { sliceDeadline } from '../adapters/aws/slice-deadline';
import { SqsCallQueue } from '../adapters/aws/sqs-call-queue';
import { stateMachineErrors } from '../adapters/aws/task-errors';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { ErrorNames, PipelineError } from '../core/errors';
import type { ObjectStore } from '../core/files/object-store';
import { partnerOf, scheduleRules } from '../core/schedule/schedule';
import { preparePhaseSlice, type PhaseDeps } from '../core/workflow/prepare-phase';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import { segregatedKey } from '../core/workflow/storage-keys';
import {
  prepareFileContract as contract,
  MAX_CHECKPOINT_CHARS,
  type PrepareFileEnvironment,
  type PrepareFileInput,
} from './contract';

export interface PrepareFileDeps extends PhaseDeps {
  readonly store: ObjectStore;
  readonly landingPrefix: string;
  readonly telemetry: Telemetry<'prepare-file'>;
}

/** segregate: the move under users/ or transactions/; prepare: one slice of a phase into the call queue. */
export function makeHandler(deps: PrepareFileDeps) {
  const { logger } = deps.telemetry;
  const run = async (input: PrepareFileInput, context: Context) => {
    if (input.action === 'segregate') {
      const to = {
        bucket: input.file.bucket,
        key: segregatedKey(input.file.key, input.classification.kind, deps.landingPrefix),
      };
      if (!(await deps.store.move(input.file, to))) {
        throw new PipelineError(ErrorNames.fileGone, `s3://${input.file.bucket}/${input.file.key} is no longer there`);
      }
      logger.info('file segregated', { from: input.file.key, to: to.key });
      return to;
    }
    const { resume, classification } = input;
    const started = Date.now();
    const result = await preparePhaseSlice(
      {
        file: input.file,
        kind: classification.kind,
        fileId: classification.sha256,
        phase: resume.phase,
        ...(resume.from ? { from: resume.from } : {}),
        ...(resume.lines ? { lines: resume.lines } : {}),
        firstBatch: resume.batches,
        ...(resume.checkpoint ? { checkpoint: resume.checkpoint } : {}),
        partner: partnerOf(input.file.key, deps.landingPrefix),
      },
      deps,
      sliceDeadline(context),
    );
    if (result.waited) deps.telemetry.emit('ScheduleWait', result.waited.seconds, { Rule: result.waited.rule });
    if (result.held) logger.info('file held', { fileId: classification.sha256, phase: resume.phase, ...result.held });
    logger.info('phase slice enqueued', {
      fileId: classification.sha256,
      phase: resume.phase,
      slice: resume.slices + 1,
      batches: result.nextBatch - resume.batches,
      complete: result.complete,
      resumedAt: resume.checkpoint?.position.bytes ?? 0,
      ms: Date.now() - started,
    });
    // Too large for the state payload (only a header of huge column names makes it so): the next slice then
    // re-reads from byte 0 and skips the batches below `batches`, as slices did before checkpoints.
    const checkpoint =
      result.checkpoint && JSON.stringify(result.checkpoint).length <= MAX_CHECKPOINT_CHARS
        ? result.checkpoint
        : undefined;
    const waiting =
      result.held && !result.complete
        ? { waiting: result.held.reason, recheckSeconds: result.held.recheckSeconds }
        : {};
    return {
      phase: resume.phase,
      from: resume.from ?? null,
      ...(resume.lines ? { lines: resume.lines } : {}),
      done: result.complete,
      ...waiting,
      ...(result.held?.state === 'cancelled' ? { cancelled: true as const } : {}),
      slices: resume.slices + 1,
      batches: result.nextBatch,
      ...(checkpoint ? { checkpoint } : {}),
    };
  };
  return middy(async (event: unknown, context: Context) => run(contract.input.parse(event), context))
    .use(injectLambdaContext(logger))
    .use(stateMachineErrors(contract));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: PrepareFileEnvironment, runtime: FunctionRuntime): PrepareFileDeps {
  const { clients } = runtime;
  const answers = new DynamoDbCallAnswers(clients.dynamodb, environment.LEDGER_TABLE_NAME);
  return {
    store: new S3ObjectStore(clients.s3),
    queue: new SqsCallQueue(clients.sqs, environment.CALL_QUEUE_URL),
    answers,
    phases: new DynamoDbPhaseCounters(clients.dynamodb, environment.LEDGER_TABLE_NAME, answers, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    notifier: new SfnTaskNotifier(clients.sfn),
    limits: { maxRecords: environment.settings.batchSize, maxBytes: environment.settings.batchMaxBytes },
    maxDecompressedBytes: environment.settings.maxDecompressedBytes,
    acceptedEncodings: environment.settings.acceptedEncodings,
    landingPrefix: environment.LANDING_PREFIX,
    turn: {
      schedule: new DynamoDbSchedule(clients.dynamodb, environment.LEDGER_TABLE_NAME, {
        retentionDays: environment.settings.ledgerRetentionDays,
      }),
      rules: scheduleRules(environment.settings),
      notifier: new SfnTaskNotifier(clients.sfn),
    },
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
