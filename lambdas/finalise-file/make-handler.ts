import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../adapters/aws/dynamodb-file-registry';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import { DynamoDbRecordIndex } from '../adapters/aws/dynamodb-record-index';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { EventBridgePublisher } from '../adapters/aws/eventbridge-publisher';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { stateMachineErrors } from '../adapters/aws/task-errors';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import {
  archiveFinished,
  finaliseDuplicate,
  finaliseFileSlice,
  quarantineFile,
  type FinaliseCheckpoint,
  type FinaliseDeps,
  type FinalSummary,
} from '../core/workflow/finalise-file';
import type { RedoMarks } from '../core/ledger/file-claim';
import { abandonRedoRound, selectRedoLines } from '../core/workflow/redo-round';
import { finaliseFileContract as contract, type FinaliseFileEnvironment, type FinaliseFileInput } from './contract';
import { sliceDeadline } from '../adapters/aws/slice-deadline';

export interface FinaliseFileDeps extends FinaliseDeps {
  readonly telemetry: Telemetry<'finalise-file'>;
  /** The claim's redo mark, which abandon-redo ends (DynamoDbFileRegistry). @default none: abandon-redo fails */
  readonly redoMarks?: Pick<RedoMarks, 'abandonRedo'>;
}

/** The actions that finalise or archive a file (the others end early with their own results). */
type FileAction = Exclude<FinaliseFileInput, { action: 'select-redo' | 'abandon-redo' }>;

/**
 * finalise: reconcile and report a processed file, in slices; archive: move it to the archive and emit
 * file.completed; duplicate and quarantine: the files not processed; select-redo: a redo round's lines, picked
 * from results.csv; abandon-redo: a redo round given up.
 */
export function makeHandler(deps: FinaliseFileDeps) {
  const { logger, metrics, emit } = deps.telemetry;

  /** Per-file metrics: files by status, records by outcome and failure reason, and the time from claim to finish. */
  const reportMetrics = async (summary: FinalSummary, fileId?: string) => {
    const { kind, status } = summary;
    emit('Files', 1, { Kind: kind, Status: status });
    emit('RecordsReceived', summary.received, { Kind: kind });
    emit('RecordsSucceeded', summary.succeeded, { Kind: kind });
    emit('RecordsFailed', summary.failed, { Kind: kind });
    for (const [reason, count] of Object.entries(summary.failures)) {
      emit('RecordsFailedByReason', count, { Kind: kind, Reason: reason });
    }
    const claimedAt = fileId ? (await deps.outcomes.read(fileId))?.claimedAt : undefined;
    if (claimedAt) emit('FileDuration', (Date.now() - Date.parse(claimedAt)) / 1000, {});
  };

  const run = async (
    input: FileAction,
    context: Context,
  ): Promise<{ summary: FinalSummary } | { checkpoint: FinaliseCheckpoint }> => {
    if (input.action === 'quarantine') return { summary: await quarantineFile(input, deps) };
    if (input.action === 'archive') return { summary: await archiveFinished(input.file, input.summary, deps) };
    const { kind, sha256, format } = input.classification;
    if (input.action === 'duplicate') {
      const duplicate = { file: input.file, kind, fileId: sha256, duplicateOf: input.claim.duplicateOf };
      return { summary: await finaliseDuplicate(duplicate, deps) };
    }
    const checkpoint = input.resume?.checkpoint as FinaliseCheckpoint | undefined;
    const slice = await finaliseFileSlice(
      {
        file: input.file,
        kind,
        fileId: sha256,
        format,
        retryPhases: input.retryAttempts,
        ...(input.redo ? { redo: { round: input.redo.round } } : {}),
      },
      deps,
      { ...(checkpoint ? { from: checkpoint } : {}), shouldStop: sliceDeadline(context) },
    );
    if (!slice.done) return { checkpoint: slice.checkpoint };
    // A definition without ArchiveFile (an execution older than it): archive here, as its last step did.
    return { summary: input.archiveStep ? slice.summary : await archiveFinished(input.file, slice.summary, deps) };
  };

  return middy(async (event: unknown, context: Context) => {
    const input = contract.input.parse(event);
    if (input.action === 'select-redo') {
      const lines = await selectRedoLines(deps.store, input);
      logger.info('redo lines selected', { fileId: input.fileId, round: input.round, lines });
      return { lines };
    }
    if (input.action === 'abandon-redo') {
      if (!deps.redoMarks) throw new Error('abandon-redo: no redo marks (the file registry) to end the round on');
      const abandoned = await abandonRedoRound({ ...deps, marks: deps.redoMarks }, input);
      // The error's name only: its cause may quote a record (it is kept on the claim, read through the API's IAM).
      logger.warn('redo round given up', {
        fileId: input.fileId,
        round: input.round,
        abandoned,
        error: input.error.Error,
      });
      return { abandoned };
    }
    const result = await run(input, context);
    if ('checkpoint' in result) {
      const { position, report } = result.checkpoint;
      logger.info('finalise slice written', { key: input.file.key, line: position.line, received: report.received });
      return { done: false as const, checkpoint: result.checkpoint };
    }
    const { summary } = result;
    // Counts and reasons only: no record data in logs.
    const { reports: _reports, archived: _archived, ...counts } = summary;
    // The file is finished unless ArchiveFile comes next (the state machine's FinaliseFile loops while done is false).
    const finished = input.action !== 'finalise' || !input.archiveStep;
    if (!finished) {
      logger.info('file reported', { key: input.file.key, ...counts });
      return { ...summary, done: true as const };
    }
    // A redo round's file was counted when it first finished: its records are not counted again.
    if (summary.redoRounds === undefined) {
      await reportMetrics(
        summary,
        input.action === 'duplicate' || input.action === 'quarantine' ? undefined : summary.sha256,
      );
    }
    logger.info('file finished', { action: input.action, key: input.file.key, ...counts });
    return input.action === 'finalise' ? { ...summary, done: true as const } : summary;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(stateMachineErrors(contract));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: FinaliseFileEnvironment, runtime: FunctionRuntime): FinaliseFileDeps {
  const { clients } = runtime;
  const answers = new DynamoDbCallAnswers(clients.dynamodb, environment.LEDGER_TABLE_NAME);
  const retention = { retentionDays: environment.settings.ledgerRetentionDays };
  const registry = new DynamoDbFileRegistry(clients.dynamodb, environment.LEDGER_TABLE_NAME, retention);
  return {
    store: new S3ObjectStore(clients.s3),
    answers,
    outcomes: registry,
    redoMarks: registry,
    events: new EventBridgePublisher(clients.eventBridge, environment.EVENT_BUS_NAME),
    archiveBucket: environment.ARCHIVE_BUCKET_NAME,
    failedBucket: environment.FAILED_BUCKET_NAME,
    landingPrefix: environment.LANDING_PREFIX,
    acceptedEncodings: environment.settings.acceptedEncodings,
    maxDecompressedBytes: environment.settings.maxDecompressedBytes,
    schedule: new DynamoDbSchedule(clients.dynamodb, environment.LEDGER_TABLE_NAME),
    phases: new DynamoDbPhaseCounters(clients.dynamodb, environment.LEDGER_TABLE_NAME, answers),
    turnNotifier: new SfnTaskNotifier(clients.sfn),
    // In the ledger table, kept as long as the file's other items.
    recordIndex: new DynamoDbRecordIndex(clients.dynamodb, environment.LEDGER_TABLE_NAME, retention),
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
