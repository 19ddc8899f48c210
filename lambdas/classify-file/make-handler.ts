import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { DynamoDbFileRegistry } from '../adapters/aws/dynamodb-file-registry';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { stateMachineErrors } from '../adapters/aws/task-errors';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { identifyFile, isStopped, type IdentifyOptions } from '../core/files/identify-file';
import type { ObjectReader } from '../core/files/object-store';
import type { FileRegistry } from '../core/ledger/file-claim';
import { partnerOf, type Schedule } from '../core/schedule/schedule';
import { fileNameOf } from '../core/workflow/storage-keys';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import { classifyFileContract as contract, type ClassifyFileEnvironment } from './contract';
import { sliceDeadline } from '../adapters/aws/slice-deadline';

export interface ClassifyFileDeps {
  readonly store: ObjectReader;
  readonly registry: FileRegistry;
  readonly settings: IdentifyOptions;
  readonly schedule: Pick<Schedule, 'register'>;
  readonly landingPrefix: string;
  readonly telemetry: Telemetry<'classify-file'>;
}

/**
 * classify: kind and SHA-256 of a landed file, in slices resumed from a checkpoint; claim: its claim in the registry;
 * register: a finished file back in the schedule for a redo round.
 */
export function makeHandler(deps: ClassifyFileDeps) {
  const { logger } = deps.telemetry;
  return middy(async (event: unknown, context: Context) => {
    const input = contract.input.parse(event);
    if (input.action === 'classify') {
      const from = input.resume?.checkpoint;
      const started = Date.now();
      const result = await identifyFile(deps.store, input.file, deps.settings, {
        ...(from ? { from } : {}),
        shouldStop: sliceDeadline(context),
      });
      if (isStopped(result)) {
        logger.info('classify slice read', {
          key: input.file.key,
          resumedAt: from?.position.bytes ?? 0,
          stoppedAt: result.checkpoint.position.bytes,
          ms: Date.now() - started,
        });
        return result;
      }
      logger.info('file classified', { key: input.file.key, kind: result.kind, size: result.size });
      return { ...result, done: true as const };
    }
    if (input.action === 'register') {
      const { fileId, kind, name, partner, landedAt } = input.redo;
      await deps.schedule.register({ fileId, kind, name, partner, landedAt: new Date(landedAt).toISOString() });
      logger.info('file registered for a redo round', { fileId });
      return { registered: true as const };
    }
    const { kind, sha256, versionId } = input.classification;
    const name = fileNameOf(input.file.key);
    const partner = partnerOf(input.file.key, deps.landingPrefix);
    const landedAt = input.landedAt ? new Date(input.landedAt).toISOString() : new Date().toISOString();
    const claim = await deps.registry.claim({
      fileId: sha256,
      ...input.file,
      kind,
      ...(versionId ? { versionId } : {}),
      name,
      partner,
      landedAt,
    });
    if (claim.outcome === 'claimed') {
      // In the schedule from now: a transactions file landing with it waits for it if it is a users file.
      await deps.schedule.register({ fileId: sha256, name, partner, kind, landedAt });
    }
    logger.info('file claim', { key: input.file.key, fileId: sha256, ...claim });
    return claim;
  })
    .use(injectLambdaContext(logger))
    .use(stateMachineErrors(contract));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: ClassifyFileEnvironment, runtime: FunctionRuntime): ClassifyFileDeps {
  return {
    store: new S3ObjectStore(runtime.clients.s3),
    registry: new DynamoDbFileRegistry(runtime.clients.dynamodb, environment.LEDGER_TABLE_NAME, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    settings: environment.settings,
    schedule: new DynamoDbSchedule(runtime.clients.dynamodb, environment.LEDGER_TABLE_NAME, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    landingPrefix: environment.LANDING_PREFIX,
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
