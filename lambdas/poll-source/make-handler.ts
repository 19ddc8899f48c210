import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DynamoDbCollectionClaims } from '../adapters/aws/dynamodb-collection-claims';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { S3LandingWriter } from '../adapters/aws/s3-landing-writer';
import { sourceCredentials, type DeployedSource } from '../adapters/aws/source-config';
import { connectSftpSource, type SourceCredentials } from '../adapters/sftp/sftp-folder';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { PipelineError } from '../core/errors';
import { pollSource, type CollectionClaims, type LandingWriter, type RemoteFolder } from '../core/polling/poll-source';
import { pollSourceContract as contract, type PollOutcome, type PollSourceEnvironment } from './contract';

export interface PollSourceDeps {
  readonly sources: readonly DeployedSource[];
  readonly credentials: (source: DeployedSource) => Promise<SourceCredentials>;
  readonly connect: (source: DeployedSource, credentials: SourceCredentials) => Promise<RemoteFolder>;
  readonly claims: CollectionClaims;
  readonly landing: LandingWriter;
  readonly landingPrefix: string;
  readonly telemetry: Telemetry<'poll-source'>;
}

/** Past the function's own timeout: a claim outlives the poll that took it. */
const LEASE_MARGIN_MS = 60_000;

/**
 * One poll of one source (its schedule's input names it). A source that cannot be reached, trusted or read
 * is not an invocation error: it is logged and counted (PollFailed, by Source; alarmed), and the next
 * scheduled poll tries again. What was collected is counted too.
 */
export function makeHandler(deps: PollSourceDeps) {
  const { logger, metrics, emit } = deps.telemetry;
  return middy(async (event: unknown, context: Context): Promise<PollOutcome> => {
    const { source: name } = contract.input.parse(event);
    const source = deps.sources.find((candidate) => candidate.name === name);
    if (!source) throw new Error(`no source named ${name} in POLL_SOURCES`);
    const Source = source.name;
    try {
      const credentials = await deps.credentials(source);
      const result = await pollSource(source, {
        connect: (s) => deps.connect(s as DeployedSource, credentials),
        claims: deps.claims,
        landing: deps.landing,
        owner: context.awsRequestId,
        leaseMs: context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
        landingPrefix: deps.landingPrefix,
        log: (message, details) => logger.info(message, { source: Source, ...details }),
      });
      emit('PollSucceeded', 1, { Source });
      emit('PollFailed', 0, { Source });
      emit('FilesCollected', result.collected.length, { Source });
      emit(
        'BytesCollected',
        result.collected.reduce((sum, file) => sum + file.size, 0),
        { Source },
      );
      emit('FilesWaiting', result.waiting, { Source });
      emit('MoveFailures', result.moveFailures, { Source });
      logger.info('source polled', { ...result, collected: result.collected.length });
      return { status: 'polled', ...result, collected: [...result.collected] };
    } catch (error) {
      const reason = error instanceof PipelineError ? error.name : 'Source.Error';
      const message = (error as Error).message;
      emit('PollFailed', 1, { Source });
      emit('PollFailedByReason', 1, { Source, Reason: reason });
      // `detail`, not `message`: Powertools' logger keeps `message` for the log line's own text and drops ours.
      logger.error('source not polled; tried again at the next poll', { source: Source, reason, detail: message });
      return { status: 'failed', source: Source, reason, message };
    }
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: PollSourceEnvironment, runtime: FunctionRuntime): PollSourceDeps {
  const { clients } = runtime;
  return {
    sources: environment.POLL_SOURCES,
    credentials: (source) => sourceCredentials(clients.secretsManager, source),
    connect: (source, credentials) => connectSftpSource(source, credentials),
    claims: new DynamoDbCollectionClaims(clients.dynamodb, environment.LEDGER_TABLE_NAME),
    landing: new S3LandingWriter(clients.s3, environment.LANDING_BUCKET_NAME),
    landingPrefix: environment.LANDING_PREFIX,
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
