import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { CloudWatchStats } from '../adapters/aws/cloudwatch-stats';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../adapters/aws/dynamodb-file-registry';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { S3UploadSigner } from '../adapters/aws/s3-upload-signer';
import { DynamoDbRecordIndex } from '../adapters/aws/dynamodb-record-index';
import { lookupRecord } from '../core/operations/record-lookup';
import { retryFile } from '../core/operations/retry-file';
import { SfnWorkflowStarter } from '../adapters/aws/landing-zone-adapters';
import { presignedUpload } from '../core/operations/uploads';
import { validateFile } from '../core/operations/validate-file';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { SqsQueueDepth } from '../adapters/aws/sqs-queue-depth';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import type { FileKind } from '../core/files/record-schemas';
import { FILE_KINDS } from '../core/files/record-schemas';
import type { ObjectReader } from '../core/files/object-store';
import { ApiError } from '../core/operations/api-error';
import { fileRecords } from '../core/operations/file-records';
import { controlFile, getFile, listFiles, parseParams, type FileQueries } from '../core/operations/files';
import { stats, type StatsDeps } from '../core/operations/stats';
import { scheduleRules, type TurnNotifier } from '../core/schedule/schedule';
import { z } from 'zod';
import {
  MAX_VALIDATE_BYTES,
  VALIDATE_MAX_TEXT_BYTES,
  opsApiContract as contract,
  type OpsApiEnvironment,
  type RouteGroup,
  type UploadSchema,
  type ValidationSchema,
  type RecordLookupSchema,
} from './contract';
import { jsonBody, matchRoute, type ApiAnswer, type ApiRequest, type Route } from './router';

/** What the routes use; a function built for some groups only needs theirs (the others are never called). */
export interface OpsApiDeps {
  /** The route groups this function answers (OPS_ROUTES). */
  readonly routes: readonly RouteGroup[];
  readonly files: FileQueries & { readonly notifier?: TurnNotifier };
  /** The archive bucket's reports (results.csv). */
  readonly reports: ObjectReader;
  readonly lookup?: (query: {
    kind?: FileKind;
    recordId: string;
    partner?: string;
  }) => Promise<z.infer<typeof RecordLookupSchema>>;
  readonly validate?: (input: { name: string; body: Uint8Array }) => Promise<z.infer<typeof ValidationSchema>>;
  readonly upload?: (body: unknown) => Promise<z.infer<typeof UploadSchema>>;
  readonly retry?: (fileId: string, body: unknown) => Promise<unknown>;
  readonly stats?: StatsDeps;
  readonly telemetry: Telemetry<'ops-api'>;
}

const LookupQuery = z.object({
  kind: z.enum(FILE_KINDS, { error: `kind: one of ${FILE_KINDS.join(', ')}` }).optional(),
  partner: z.string().min(1).optional(),
});

const ValidateQuery = z.object({
  name: z.string({ error: 'name: the file name is required (?name=users_acme_20261124_001.csv)' }).min(1, {
    error: 'name: the file name is required (?name=users_acme_20261124_001.csv)',
  }),
});

const ok = (body: unknown, status = 200): ApiAnswer => ({ status, body });

/** Fails with 404 when the function was not given what a route needs (a group it does not serve). */
function needs<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ApiError('NotFound', `${what} is not served here`);
  return value;
}

/** Every route of ops-api.md, by group. */
export function routesOf(deps: OpsApiDeps): Route[] {
  const { files } = deps;
  const control = (action: 'pause' | 'resume' | 'cancel'): Route => ({
    method: 'POST',
    template: `/v1/files/{fileId}/${action}`,
    group: 'control',
    handle: async (_request, params) => ok(await controlFile(files, params.fileId ?? '', action), 202),
  });
  return [
    {
      method: 'GET',
      template: '/v1/files',
      group: 'read',
      handle: async (request) => ok(await listFiles(files, request.query)),
    },
    {
      method: 'GET',
      template: '/v1/files/{fileId}',
      group: 'read',
      handle: async (_request, params) => ok(await getFile(files, params.fileId ?? '')),
    },
    {
      method: 'GET',
      template: '/v1/files/{fileId}/records',
      group: 'read',
      handle: async (request, params) =>
        ok(await fileRecords({ catalog: files.catalog, reports: deps.reports }, params.fileId ?? '', request.query)),
    },
    {
      method: 'GET',
      template: '/v1/records/{recordId}',
      group: 'read',
      handle: async (request, params) => {
        const lookup = needs(deps.lookup, 'record lookup');
        const query = parseParams(LookupQuery, request.query);
        const recordId = params.recordId ?? '';
        if (!recordId || recordId.length > 256) throw new ApiError('BadRequest', 'recordId: 1-256 characters');
        // Without a kind, both are asked by one lookup, which orders every hit newest first.
        return ok(
          await lookup({
            recordId,
            ...(query.kind ? { kind: query.kind } : {}),
            ...(query.partner ? { partner: query.partner } : {}),
          }),
        );
      },
    },
    control('pause'),
    control('resume'),
    control('cancel'),
    {
      method: 'POST',
      template: '/v1/files/{fileId}/retry',
      group: 'retry',
      handle: async (request, params) =>
        ok(await needs(deps.retry, 'retry')(params.fileId ?? '', jsonBody(request)), 202),
    },
    {
      method: 'POST',
      template: '/v1/validate',
      group: 'validate',
      handle: async (request) => {
        const { name } = parseParams(ValidateQuery, request.query);
        if (request.body.length > MAX_VALIDATE_BYTES) {
          throw new ApiError(
            'PayloadTooLarge',
            `body: ${request.body.length} bytes; validate takes at most ${MAX_VALIDATE_BYTES} (upload larger files)`,
          );
        }
        return ok(await needs(deps.validate, 'validate')({ name, body: request.body }));
      },
    },
    {
      method: 'POST',
      template: '/v1/uploads',
      group: 'uploads',
      handle: async (request) => ok(await needs(deps.upload, 'uploads')(jsonBody(request))),
    },
    {
      method: 'GET',
      template: '/v1/stats',
      group: 'stats',
      handle: async (request) => ok(await stats(needs(deps.stats, 'stats'), request.query)),
    },
  ];
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

const answer = (status: number, body: unknown): APIGatewayProxyResult => ({
  statusCode: status,
  headers: JSON_HEADERS,
  body: JSON.stringify(body),
});

/** API Gateway's proxy event as a request: the body decoded (binary bodies come base64-encoded). */
export function requestOf(event: z.infer<typeof contract.input>): ApiRequest {
  const body = event.body ?? '';
  return {
    method: event.httpMethod.toUpperCase(),
    path: event.path,
    query: Object.fromEntries(
      Object.entries(event.queryStringParameters ?? {}).filter((entry): entry is [string, string] => !!entry[1]),
    ),
    body: Buffer.from(body, event.isBase64Encoded ? 'base64' : 'utf8'),
  };
}

/**
 * The operations API over API Gateway proxy events (the local server sends the same events): the route, its
 * answer as JSON, and every refusal as `{"error": {"code", "message"}}` with its status. An unexpected failure
 * is a 500 with no detail (the log has it). Each request emits its route, status and latency.
 */
export function makeHandler(deps: OpsApiDeps) {
  const { logger, emit } = deps.telemetry;
  const served = routesOf(deps).filter((route) => deps.routes.includes(route.group));
  return middy(async (event: unknown): Promise<APIGatewayProxyResult> => {
    const started = Date.now();
    let template = 'unmatched';
    let result: APIGatewayProxyResult;
    try {
      const request = requestOf(contract.input.parse(event));
      const { route, params } = matchRoute(served, request);
      template = `${route.method} ${route.template}`;
      const { status, body } = await route.handle(request, params);
      result = answer(status, body);
    } catch (error) {
      if (error instanceof ApiError) {
        result = answer(error.status, { error: { code: error.code, message: error.message } });
      } else {
        logger.error('request failed', { route: template, error: error as Error });
        result = answer(500, { error: { code: 'Internal', message: 'the request failed; see the logs' } });
      }
    }
    emit('ApiRequests', 1, { Route: template, Status: String(result.statusCode) });
    emit('ApiLatency', Date.now() - started, { Route: template });
    logger.info('request', { route: template, status: result.statusCode, ms: Date.now() - started });
    return result;
  }).use(injectLambdaContext(logger));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: OpsApiEnvironment, runtime: FunctionRuntime): OpsApiDeps {
  const { dynamodb, s3, sfn, sqs, cloudWatch } = runtime.clients;
  const table = environment.LEDGER_TABLE_NAME;
  const retention = { retentionDays: environment.settings.ledgerRetentionDays };
  const schedule = new DynamoDbSchedule(dynamodb, table, retention);
  const catalog = new DynamoDbFileRegistry(dynamodb, table, retention);
  const phases = new DynamoDbPhaseCounters(dynamodb, table, new DynamoDbCallAnswers(dynamodb, table), retention);
  const { settings } = environment;
  const files: OpsApiDeps['files'] = {
    catalog,
    schedule,
    phases,
    rules: scheduleRules(settings),
    callsPerMinute: settings.callsPerMinute,
    notifier: new SfnTaskNotifier(sfn),
  };
  const store = new S3ObjectStore(s3);
  const stateMachine = environment.STATE_MACHINE_ARN;
  // Built once per function, as the other adapters: each request only calls them.
  const workflow = stateMachine ? new SfnWorkflowStarter(sfn, stateMachine) : undefined;
  const index = new DynamoDbRecordIndex(dynamodb, table, retention);
  const finishedAt = async (fileId: string) => (await catalog.get(fileId))?.summary?.finishedAt;
  const uploads = {
    signer: new S3UploadSigner(s3),
    landingBucket: environment.LANDING_BUCKET_NAME,
    landingPrefix: environment.LANDING_PREFIX,
  };
  return {
    routes: environment.OPS_ROUTES,
    files,
    reports: store,
    ...(workflow
      ? { retry: (fileId: string, body: unknown) => retryFile({ ...files, catalog, workflow }, fileId, body) }
      : {}),
    lookup: (query) => lookupRecord({ index, finishedAt }, query),
    // A 5 MB body may be a gzip that inflates far more: validate reads at most VALIDATE_MAX_TEXT_BYTES of text.
    validate: (input) =>
      validateFile(input, {
        ...settings,
        maxDecompressedBytes: Math.min(settings.maxDecompressedBytes ?? Infinity, VALIDATE_MAX_TEXT_BYTES),
      }),
    upload: (body) => presignedUpload(uploads, body),
    ...(environment.CALL_QUEUE_URL
      ? {
          stats: {
            source: new CloudWatchStats(cloudWatch),
            queue: new SqsQueueDepth(sqs, environment.CALL_QUEUE_URL),
            schedule,
            callsPerMinute: settings.callsPerMinute,
          },
        }
      : {}),
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
