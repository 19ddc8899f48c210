import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { asTransient, dynamoDbClient, s3Client } from '../adapters/aws/clients';
import { DynamoDbFileRegistry } from '../adapters/aws/dynamodb-file-registry';
import { readEnvironment } from '../adapters/aws/environment';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { loadConfig } from '../core/config';
import { ErrorNames, FileRejectedError, PipelineError } from '../core/errors';
import { identifyFile } from '../core/files/identify-file';
import { FILE_KINDS } from '../core/files/record-schemas';

const Environment = z.object({ LEDGER_TABLE_NAME: z.string().min(1) });

const FileRef = z.object({ bucket: z.string().min(1), key: z.string().min(1) });
/** The state machine's two calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({ action: z.literal('classify'), file: FileRef }),
  z.object({
    action: z.literal('claim'),
    file: FileRef,
    classification: z.object({
      kind: z.enum(FILE_KINDS),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      versionId: z.string().optional(),
    }),
  }),
]);

const environment = readEnvironment(Environment);
const settings = loadConfig({ env: process.env });
export const logger = new Logger({ serviceName: 'classify-file' });
const store = new S3ObjectStore(s3Client());
const registry = new DynamoDbFileRegistry(dynamoDbClient(), environment.LEDGER_TABLE_NAME);

/** classify: kind and SHA-256 of a landed file; claim: its claim in the registry. */
export const handler = middy(async (event: unknown) => {
  const input = Input.parse(event);
  try {
    if (input.action === 'classify') {
      const identified = await identifyFile(store, input.file, settings);
      logger.info('file classified', { key: input.file.key, kind: identified.kind, size: identified.size });
      return identified;
    }
    const { kind, sha256, versionId } = input.classification;
    const claim = await registry.claim({ fileId: sha256, ...input.file, kind, ...(versionId ? { versionId } : {}) });
    logger.info('file claim', { key: input.file.key, fileId: sha256, ...claim });
    return claim;
  } catch (error) {
    // File rejections keep their names (the state machine quarantines on them); AWS hiccups become retryable.
    if (error instanceof FileRejectedError) throw error;
    const name = (error as Error).name;
    if (name === 'NotFound' || name === 'NoSuchKey') {
      // Typically the same event delivered again after the first execution moved the file.
      throw new PipelineError(ErrorNames.fileGone, `s3://${input.file.bucket}/${input.file.key} is no longer there`);
    }
    throw asTransient(error);
  }
}).use(injectLambdaContext(logger));
