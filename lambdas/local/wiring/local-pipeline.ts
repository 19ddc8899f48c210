import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDbSchedule } from '../../adapters/aws/dynamodb-schedule';
import type { Schedule } from '../../core/schedule/schedule';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { PassThrough } from 'node:stream';
import { awsClients, type AwsClientOptions } from '../../adapters/aws/clients';
import type { TelemetryOptions } from '../../adapters/aws/telemetry';
import type { SourceCredentials } from '../../adapters/sftp/sftp-folder';
import {
  CALL_QUEUE,
  fileIngestionSubstitutions,
  TASK_TIMEOUT_MARGIN_SECONDS,
  visibilityTimeoutSeconds,
  WORKFLOW_TASK_FUNCTIONS,
} from '../../contracts/infrastructure';
import { loadConfig, type Config } from '../../core/config';
import type { PollSource } from '../../core/polling/poll-source';
import type { Delivery } from '../../core/workflow/deliver-reports';
import type { FinalSummary } from '../../core/workflow/finalise-file';
import { DEFAULT_LANDING_PREFIX } from '../../core/workflow/storage-keys';
import { objectCreatedEvent } from '../../core/workflow/sweep-landing-zone';
import type { PollOutcome } from '../../poll-source/contract';
import { startCrmSimulator, type CrmSimulator, type CrmSimulatorOptions } from '../crm-simulator/crm-simulator';
import { routeEvents } from '../integrations/eventbridge-rules';
import { routeObjectCreated } from '../integrations/s3-notifications';
import { everyMinutes } from '../integrations/schedules';
import { startSqsEventSource } from '../integrations/sqs-event-source';
import {
  loadDefinition,
  localLambdaArn,
  runStateMachine,
  type LocalLambda,
} from '../integrations/state-machine-runner';
import { startLocalAwsEndpoint } from '../services/local-aws-endpoint';
import { startLocalDynamoDb, TABLES } from '../services/local-dynamodb';
import { startLocalS3 } from '../services/local-s3';
import { startLocalSqs } from '../services/local-sqs';
import { localFunctions, localTimeoutSeconds, type LocalFunction } from './local-functions';
import { EmfStats } from '../api/emf-stats';
import type { OpsApiDeps } from '../../ops-api/make-handler';

/** How long close() waits for the work in hand (dispatchers, report deliveries) before it closes the services. */
const STOP_GRACE_MS = 3000;

export const LOCAL_NAMES = {
  landingBucket: 'landing',
  archiveBucket: 'archive',
  failedBucket: 'failed',
  ledgerTable: 'ledger',
  limiterTable: 'limiter',
  callQueue: 'crm-calls',
  deadLetterQueue: 'crm-calls-dlq',
} as const;

export interface LocalPipelineOptions {
  /** The settings, validated. @default those of `env`, else the defaults */
  readonly settings?: Config;
  /** Settings as environment variables (config.ts names), e.g. `{ CRM_CALLS_PER_MINUTE: '600' }`. */
  readonly env?: Readonly<Record<string, string>>;
  /** A real CRM instead of the simulator (then its token in the settings or `env`). */
  readonly crmUrl?: string;
  readonly simulator?: CrmSimulatorOptions;
  /** Dispatchers polling the call queue. @default the DISPATCH_CONCURRENCY setting */
  readonly concurrency?: number;
  /** Partner SFTP servers to collect from (poll()), with their credentials (served as their secrets). */
  readonly sources?: readonly { readonly source: PollSource; readonly credentials: SourceCredentials }[];
  /** Landed objects younger than this are left to their own event by the sweep. @default 30 */
  readonly sweepMinAgeSeconds?: number;
  /** The handlers' log level and where their logs and EMF metrics go. @default Powertools' level; discarded */
  readonly telemetry?: TelemetryOptions;
  /** Where the operations API shows a report (its key by default; `ingest` gives the report directory's path). */
  readonly reportPath?: (key: string) => string;
}

/** An execution that failed (a state's error after its retries): on AWS, a failed execution to redrive. */
export interface FailedExecution {
  readonly key: string;
  readonly error: string;
}

export interface PipelineProgress {
  /** Messages (batches) waiting in the call queue, and being handled. */
  readonly queued: number;
  readonly inFlight: number;
  /** Messages on the dead-letter queue: batches whose retries are spent. */
  readonly deadLetters: number;
  /** Batches and records the dispatchers have answered (messages deleted from the queue). */
  readonly batchesDone: number;
  readonly recordsDone: number;
}

export interface LocalPipeline {
  readonly simulator?: CrmSimulator;
  readonly settings: Config;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  /** Object keys and report files: the embedded S3. */
  readonly s3: Awaited<ReturnType<typeof startLocalS3>>;
  readonly db: Awaited<ReturnType<typeof startLocalDynamoDb>>;
  readonly sqs: Awaited<ReturnType<typeof startLocalSqs>>;
  /** The schedule the handlers share (files in flight, pauses, cancels), in the embedded ledger table. */
  readonly schedule: Schedule;
  /** The Step Functions stand-in's endpoint (SendTaskSuccess wakes a waiting file). */
  readonly stepFunctionsEndpoint: string;
  /** The operations API's handler (every route group), taking API Gateway proxy events as on AWS. */
  readonly opsApi: LocalFunction;
  /** The handlers' metrics per minute, from their EMF lines (CloudWatch's part on AWS). */
  readonly stats: EmfStats;
  /** Puts an object into the landing bucket, as Transfer Family does; its Object Created event starts the workflow. */
  land(key: string, body: Uint8Array | string, options?: { missEvent?: boolean }): Promise<void>;
  /** Starts an execution for an object, as the EventBridge rule (or the sweep) does. */
  startExecution(bucket: string, key: string, size?: number): Promise<void>;
  /** Runs the landing-zone sweep once, as its schedule does. */
  sweep(): Promise<{ listed: number; started: number; alreadyStarted: number; young: number }>;
  /** Summaries of every finished file (`file.completed` events), in order. */
  readonly completed: FinalSummary[];
  readonly failedExecutions: FailedExecution[];
  /** Resolves when `count` files have finished (or an execution failed). */
  waitForFiles(count: number): Promise<FinalSummary[]>;
  /** Calls `listener` with each finished file's summary, and with each failed execution. */
  onFinished(listener: (finished: { summary?: FinalSummary; failed?: FailedExecution }) => void): void;
  /** Runs the polling watcher once for a source, as its schedule does. */
  poll(source: string): Promise<PollOutcome>;
  /** Report deliveries to partners (after each file.completed), and the ones that failed. */
  readonly deliveries: Delivery[];
  readonly deliveryFailures: { name: string; error: string }[];
  /** The work in hand: the call queue, its dead-letter queue, and what the dispatchers have done. */
  progress(): Promise<PipelineProgress>;
  close(): Promise<void>;
}

/**
 * How the handlers' SDK clients reach the embedded services: endpoints, the one region, s3rver's key pair (the
 * other stand-ins take any) and the S3 settings s3rver needs (DESIGN.md). The handlers' code is that of AWS.
 */
export function embeddedServicesClients(endpoints: {
  s3?: string;
  dynamodb?: string;
  sqs?: string;
  stepFunctionsAndEvents?: string;
}): AwsClientOptions {
  const { stepFunctionsAndEvents: other } = endpoints;
  return {
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    endpoints: {
      ...(endpoints.s3 ? { s3: endpoints.s3 } : {}),
      ...(endpoints.dynamodb ? { dynamodb: endpoints.dynamodb } : {}),
      ...(endpoints.sqs ? { sqs: endpoints.sqs } : {}),
      ...(other ? { sfn: other, eventBridge: other, secretsManager: other } : {}),
    },
    s3ForcePathStyle: true,
    checksumsWhenRequired: true,
  };
}

/** The name a polled source's credentials are served under, in place of its Secrets Manager secret. */
const localSecretId = (source: string) => `local/sftp-source/${source}`;

/**
 * The whole pipeline on one machine: the embedded S3, DynamoDB and SQS, the CRM simulator, and the same
 * handlers and state machine as on AWS, each function built in process from its contract (local-functions.ts).
 * Only the AWS integrations are emulated, one module each (integrations/): S3's Object Created rule, the SQS
 * event source, the file.completed rule, the sweep's schedule; the handlers' calls to Step Functions,
 * EventBridge and Secrets Manager are answered by the local AWS endpoint. Pipelines are independent: several
 * can run in one process.
 */
export async function startLocalPipeline(options: LocalPipelineOptions = {}): Promise<LocalPipeline> {
  const settings = options.settings ?? loadConfig({ env: options.env ?? {} });
  const [s3, db, sqs, aws] = await Promise.all([
    startLocalS3([LOCAL_NAMES.landingBucket, LOCAL_NAMES.archiveBucket, LOCAL_NAMES.failedBucket]),
    startLocalDynamoDb({ separateProcess: true }),
    startLocalSqs(),
    startLocalAwsEndpoint(),
  ]);
  const crmUrl = options.crmUrl ?? settings.crmBaseUrl;
  // The simulator stands in for a CRM whose limit is the one the pipeline is configured for.
  const simulator = crmUrl
    ? undefined
    : await startCrmSimulator({
        callsPerWindow: settings.callsPerMinute,
        windowMs: settings.limitWindowSeconds * 1000,
        ...options.simulator,
      });
  await db.createTable(LOCAL_NAMES.ledgerTable, TABLES.ledger);
  await db.createTable(LOCAL_NAMES.limiterTable, TABLES.limiter);
  for (const { source, credentials } of options.sources ?? []) {
    aws.putSecret(localSecretId(source.name), JSON.stringify(credentials));
  }
  const sqsClient = sqs.client();
  const { QueueUrl: deadLetterQueueUrl = '' } = await sqsClient.send(
    new CreateQueueCommand({ QueueName: LOCAL_NAMES.deadLetterQueue }),
  );
  const queueArn = async (url: string) =>
    (await sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes
      ?.QueueArn ?? '';
  const { QueueUrl: queueUrl = '' } = await sqsClient.send(
    new CreateQueueCommand({
      QueueName: LOCAL_NAMES.callQueue,
      Attributes: {
        // The rule AWS gives, on the dispatcher's local timeout: with a short --function-timeout, a batch whose
        // invocation was cut off comes back in minutes, not after the deployed queue's hour.
        VisibilityTimeout: String(visibilityTimeoutSeconds(localTimeoutSeconds('dispatch-crm-calls', settings))),
        MessageRetentionPeriod: String(CALL_QUEUE.retentionDays * 86_400),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: await queueArn(deadLetterQueueUrl),
          maxReceiveCount: CALL_QUEUE.maxReceiveCount,
        }),
      },
    }),
  );

  // The handlers' EMF lines are tallied on their way to the log, as CloudWatch takes them from Lambda's.
  const stats = new EmfStats(options.telemetry?.output ?? discarded());
  const opsApi = (deps: OpsApiDeps): OpsApiDeps => ({
    ...deps,
    ...(deps.stats ? { stats: { ...deps.stats, source: stats } } : {}),
    ...(options.reportPath ? { files: { ...deps.files, reportPath: options.reportPath } } : {}),
  });
  const functions = localFunctions(
    {
      landingBucket: LOCAL_NAMES.landingBucket,
      archiveBucket: LOCAL_NAMES.archiveBucket,
      failedBucket: LOCAL_NAMES.failedBucket,
      ledgerTable: LOCAL_NAMES.ledgerTable,
      limiterTable: LOCAL_NAMES.limiterTable,
      callQueueUrl: queueUrl,
      landingPrefix: DEFAULT_LANDING_PREFIX,
      stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:file-ingestion',
      crmUrl: crmUrl ?? simulator?.url ?? '',
      ...((simulator?.token ?? settings.crmApiToken) ? { crmToken: simulator?.token ?? settings.crmApiToken } : {}),
      sources: (options.sources ?? []).map(({ source }) => ({ ...source, secretId: localSecretId(source.name) })),
      sweepMinAgeSeconds: options.sweepMinAgeSeconds ?? 30,
      opsApi,
    },
    settings,
    {
      clients: awsClients(
        embeddedServicesClients({
          s3: s3.endpoint,
          dynamodb: db.endpoint,
          sqs: sqs.endpoint,
          stepFunctionsAndEvents: aws.endpoint,
        }),
      ),
      telemetry: { ...options.telemetry, output: stats },
    },
  );

  let tokens = 0;
  const lambdas: Record<string, LocalLambda> = { ...functions };
  // A .waitForTaskToken task: on AWS each attempt has a token of its own, and the callback ends the task.
  lambdas['await-phase'] = async (payload) => {
    const taskToken = `${(payload as { taskToken: string }).taskToken}:${++tokens}`;
    const resumed = aws.waitForToken(taskToken);
    await functions['await-phase']({ ...(payload as object), taskToken });
    return resumed;
  };
  const definition = withTaskTimeouts(
    loadDefinition('file-ingestion.asl.json', fileIngestionSubstitutions(localLambdaArn, settings)),
    settings,
  );

  const completed: FinalSummary[] = [];
  const failedExecutions: FailedExecution[] = [];
  const finishedListeners: Parameters<LocalPipeline['onFinished']>[0][] = [];
  const running = new Set<Promise<unknown>>();
  let changed: () => void = () => undefined;
  const deliveries: Delivery[] = [];
  const deliveryFailures: { name: string; error: string }[] = [];
  // The file.completed rule's target: the reports to the partner; the file counts as finished after it.
  const delivering = routeEvents(aws, 'file.completed', async (event) => {
    const summary = event.detail as FinalSummary;
    try {
      deliveries.push((await functions['deliver-reports'](event)) as Delivery);
    } catch (error) {
      deliveryFailures.push({ name: summary.name, error: (error as Error).message });
    }
    completed.push(summary);
    for (const listener of finishedListeners) listener({ summary });
    changed();
  });

  const run = (event: unknown, key: string) => {
    const execution = runStateMachine(definition, event, { lambdas });
    const done = execution.result.then(
      () => undefined,
      (error: unknown) => {
        const failure = error as Error & { cause?: unknown };
        const failed = { key, error: `${failure.message}${failure.cause ? ` (${String(failure.cause)})` : ''}` };
        failedExecutions.push(failed);
        for (const listener of finishedListeners) listener({ failed });
        changed();
      },
    );
    running.add(done);
    void done.finally(() => running.delete(done));
  };
  const startExecution = async (bucket: string, key: string, size = 0) =>
    run(objectCreatedEvent(bucket, key, size), key);
  // StartExecution (the sweep): execution names are unique, as on AWS.
  const names = new Set<string>();
  aws.onStartExecution((name, input) => {
    if (names.has(name)) return false;
    names.add(name);
    run(input, (input as { detail?: { object?: { key?: string } } }).detail?.object?.key ?? name);
    return true;
  });
  const sweep = async () => (await functions['sweep-landing-zone']({})) as Awaited<ReturnType<LocalPipeline['sweep']>>;
  const sweeping = everyMinutes(settings.sweepIntervalMinutes, sweep);
  const objectCreated = routeObjectCreated(s3, {
    bucket: LOCAL_NAMES.landingBucket,
    prefix: DEFAULT_LANDING_PREFIX,
    target: (object) => void startExecution(object.bucket, object.key, object.size),
  });
  const eventSource = startSqsEventSource({
    client: sqsClient,
    queueUrl,
    queueArn: await queueArn(queueUrl),
    batchSize: CALL_QUEUE.eventSourceBatchSize,
    concurrency: options.concurrency ?? settings.dispatchConcurrency,
    invoke: async (event: SQSEvent) => (await functions['dispatch-crm-calls'](event)) as SQSBatchResponse,
  });

  return {
    ...(simulator ? { simulator } : {}),
    settings,
    queueUrl,
    deadLetterQueueUrl,
    s3,
    db,
    sqs,
    schedule: new DynamoDbSchedule(db.client(), LOCAL_NAMES.ledgerTable),
    stepFunctionsEndpoint: aws.endpoint,
    opsApi: functions['ops-api'],
    stats,
    completed,
    failedExecutions,
    land: async (key, body, { missEvent = false } = {}) => {
      if (missEvent) objectCreated.miss(`${DEFAULT_LANDING_PREFIX}${key}`);
      await s3.client().send(
        new PutObjectCommand({
          Bucket: LOCAL_NAMES.landingBucket,
          Key: `${DEFAULT_LANDING_PREFIX}${key}`,
          Body: body,
        }),
      );
    },
    startExecution,
    sweep,
    poll: async (source) => (await functions['poll-source']({ source })) as PollOutcome,
    deliveries,
    deliveryFailures,
    onFinished: (listener) => void finishedListeners.push(listener),
    async progress() {
      const depth = async (url: string) =>
        (
          await sqsClient.send(
            new GetQueueAttributesCommand({
              QueueUrl: url,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          )
        ).Attributes ?? {};
      const [calls, dead] = await Promise.all([depth(queueUrl), depth(deadLetterQueueUrl)]);
      const handled = eventSource.handled();
      return {
        queued: Number(calls.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(calls.ApproximateNumberOfMessagesNotVisible ?? 0),
        deadLetters:
          Number(dead.ApproximateNumberOfMessages ?? 0) + Number(dead.ApproximateNumberOfMessagesNotVisible ?? 0),
        batchesDone: handled.batches,
        recordsDone: handled.records,
      };
    },
    waitForFiles: (count) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (failedExecutions.length > 0) reject(new Error(`execution failed: ${JSON.stringify(failedExecutions)}`));
          else if (completed.length >= count) resolve([...completed]);
        };
        const previous = changed;
        changed = () => {
          previous();
          check();
        };
        check();
      }),
    async close() {
      sweeping.stop();
      // A stop takes seconds, whatever is in flight: a dispatcher retrying an unreachable CRM is left as Lambda
      // leaves one cut off at its timeout (its batch comes back; the idempotency key makes the repeat safe).
      await Promise.race([
        Promise.allSettled([eventSource.stop(), delivering.settled()]),
        new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref()),
      ]);
      await Promise.all([s3.close(), db.close(), sqs.close(), aws.close(), simulator?.close()]);
    },
  };
}

/**
 * Each Task that invokes a function times out `TASK_TIMEOUT_MARGIN_SECONDS` after that function's local timeout,
 * as the deployed definition does after its Lambda timeout: with a short `LOCAL_FUNCTION_TIMEOUT_S`, the states
 * keep the same relation to their functions as on AWS.
 */
export function withTaskTimeouts<
  D extends { States: Record<string, { Type: string; TimeoutSeconds?: number; Resource?: string }> },
>(definition: D, settings: Config): D {
  const byArn = new Map(
    Object.values(WORKFLOW_TASK_FUNCTIONS).map((name) => [localLambdaArn(name), localTimeoutSeconds(name, settings)]),
  );
  const states = Object.fromEntries(
    Object.entries(definition.States).map(([name, state]) => {
      const timeout = state.Resource ? byArn.get(state.Resource) : undefined;
      if (state.Type !== 'Task' || state.TimeoutSeconds === undefined || timeout === undefined) return [name, state];
      return [name, { ...state, TimeoutSeconds: timeout + TASK_TIMEOUT_MARGIN_SECONDS }];
    }),
  );
  return { ...definition, States: states };
}

/** A sink for the handlers' logs and metrics nobody asked for. */
function discarded(): NodeJS.WritableStream {
  const sink = new PassThrough();
  sink.resume();
  return sink;
}
