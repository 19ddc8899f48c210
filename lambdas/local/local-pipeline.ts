import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadConfig } from '../core/config';
import type { FinalSummary } from '../core/workflow/finalise-file';
import type { Delivery } from '../core/workflow/deliver-reports';
import type { PollSource } from '../core/polling/poll-source';
import type { SourceCredentials } from '../adapters/sftp/sftp-folder';
import type { PollOutcome } from '../poll-source/handler';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';
import { objectCreatedEvent } from '../core/workflow/sweep-landing-zone';
import { startCrmSimulator, type CrmSimulator, type CrmSimulatorOptions } from './crm-simulator';
import { startLocalAwsEndpoint } from './local-aws-endpoint';
import { startLocalDynamoDb, TABLES } from './local-dynamodb';
import { startLocalS3 } from './local-s3';
import { startLocalSqs } from './local-sqs';
import { loadDefinition, localLambdaArn, runStateMachine, type LocalLambda } from './state-machine-runner';

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
  /** Settings as environment variables (config.ts names), e.g. `{ CRM_CALLS_PER_MINUTE: '600' }`. */
  readonly env?: Readonly<Record<string, string>>;
  /** A real CRM instead of the simulator (then `CRM_API_TOKEN` in `env`). */
  readonly crmUrl?: string;
  readonly simulator?: CrmSimulatorOptions;
  /** Dispatchers polling the call queue. @default the DISPATCH_CONCURRENCY setting */
  readonly concurrency?: number;
  /** Partner SFTP servers to collect from (poll()), with their credentials (served as their secrets). */
  readonly sources?: readonly { readonly source: PollSource; readonly credentials: SourceCredentials }[];
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
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  /** Object keys and report files: the embedded S3. */
  readonly s3: Awaited<ReturnType<typeof startLocalS3>>;
  readonly db: Awaited<ReturnType<typeof startLocalDynamoDb>>;
  readonly sqs: Awaited<ReturnType<typeof startLocalSqs>>;
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
 * The environment that points the handlers' own SDK clients at the embedded services: the SDK's endpoint
 * variables and the S3 settings s3rver needs (DESIGN.md). The handlers' code is the same as on AWS.
 */
export function embeddedServicesEnv(endpoints: {
  s3?: string;
  dynamodb?: string;
  sqs?: string;
  stepFunctionsAndEvents?: string;
}): Record<string, string> {
  return {
    ...(endpoints.s3 ? { AWS_ENDPOINT_URL_S3: endpoints.s3 } : {}),
    ...(endpoints.dynamodb ? { AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb } : {}),
    ...(endpoints.sqs ? { AWS_ENDPOINT_URL_SQS: endpoints.sqs } : {}),
    ...(endpoints.stepFunctionsAndEvents
      ? {
          AWS_ENDPOINT_URL_SFN: endpoints.stepFunctionsAndEvents,
          AWS_ENDPOINT_URL_EVENTBRIDGE: endpoints.stepFunctionsAndEvents,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.stepFunctionsAndEvents,
        }
      : {}),
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: 'us-east-1',
    // s3rver takes only its own key pair; the other stand-ins take any.
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
}

/** The name a polled source's credentials are served under, in place of its Secrets Manager secret. */
const localSecretId = (source: string) => `local/sftp-source/${source}`;

const LAMBDA_TIMEOUT_MS = 15 * 60 * 1000;
/** Messages per dispatcher invocation: the SQS event source's default batch size. */
const EVENT_SOURCE_BATCH_SIZE = 10;

function lambdaContext(functionName: string): Context {
  const started = Date.now();
  return {
    functionName,
    functionVersion: '$LATEST',
    awsRequestId: `local-${started}-${Math.random().toString(36).slice(2)}`,
    invokedFunctionArn: localLambdaArn(functionName),
    memoryLimitInMB: '1024',
    getRemainingTimeInMillis: () => LAMBDA_TIMEOUT_MS - (Date.now() - started),
  } as unknown as Context;
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * The whole pipeline on one machine: the embedded S3, DynamoDB and SQS, the CRM simulator, and the same
 * handlers and state machine as on AWS. Only the wiring is local: S3's Object Created starts executions,
 * a poller feeds the call queue to the dispatcher as the SQS event source would, and the handlers' calls to
 * Step Functions (SendTaskSuccess) and EventBridge (PutEvents) are answered in-process.
 * The handlers read their environment when first loaded: one pipeline per process.
 */
export async function startLocalPipeline(options: LocalPipelineOptions = {}): Promise<LocalPipeline> {
  const settings = loadConfig({ env: { ...process.env, ...options.env } });
  const [s3, db, sqs, aws] = await Promise.all([
    startLocalS3([LOCAL_NAMES.landingBucket, LOCAL_NAMES.archiveBucket, LOCAL_NAMES.failedBucket]),
    startLocalDynamoDb({ separateProcess: true }),
    startLocalSqs(),
    startLocalAwsEndpoint(),
  ]);
  const simulator = options.crmUrl ? undefined : await startCrmSimulator(options.simulator);
  await db.createTable(LOCAL_NAMES.ledgerTable, TABLES.ledger);
  await db.createTable(LOCAL_NAMES.limiterTable, TABLES.limiter);
  for (const { source, credentials } of options.sources ?? []) {
    aws.putSecret(localSecretId(source.name), JSON.stringify(credentials));
  }
  const sqsClient = sqs.client();
  const { QueueUrl: deadLetterQueueUrl = '' } = await sqsClient.send(
    new CreateQueueCommand({ QueueName: LOCAL_NAMES.deadLetterQueue }),
  );
  const { Attributes } = await sqsClient.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const { QueueUrl: queueUrl = '' } = await sqsClient.send(
    new CreateQueueCommand({
      QueueName: LOCAL_NAMES.callQueue,
      Attributes: {
        VisibilityTimeout: '60',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: 10 }),
      },
    }),
  );

  Object.assign(process.env, {
    ...options.env,
    ...embeddedServicesEnv({
      s3: s3.endpoint,
      dynamodb: db.endpoint,
      sqs: sqs.endpoint,
      stepFunctionsAndEvents: aws.endpoint,
    }),
    LEDGER_TABLE_NAME: LOCAL_NAMES.ledgerTable,
    LIMITER_TABLE_NAME: LOCAL_NAMES.limiterTable,
    CALL_QUEUE_URL: queueUrl,
    ARCHIVE_BUCKET_NAME: LOCAL_NAMES.archiveBucket,
    FAILED_BUCKET_NAME: LOCAL_NAMES.failedBucket,
    LANDING_PREFIX: DEFAULT_LANDING_PREFIX,
    LANDING_BUCKET_NAME: LOCAL_NAMES.landingBucket,
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:file-ingestion',
    // Locally, a file's own event is handled within seconds.
    SWEEP_MIN_AGE_S: options.env?.SWEEP_MIN_AGE_S ?? '30',
    POLL_SOURCES: JSON.stringify(
      (options.sources ?? []).map(({ source }) => ({ ...source, secretId: localSecretId(source.name) })),
    ),
    CRM_BASE_URL: options.crmUrl ?? simulator?.url,
    ...(simulator ? { CRM_API_TOKEN: simulator.token } : {}),
  });
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded after the environment is set, as Lambda does */
  const handlers: Record<string, Handler> = {
    'classify-file': (require('../classify-file/handler') as { handler: Handler }).handler,
    'prepare-file': (require('../prepare-file/handler') as { handler: Handler }).handler,
    'await-phase': (require('../await-phase/handler') as { handler: Handler }).handler,
    'finalise-file': (require('../finalise-file/handler') as { handler: Handler }).handler,
    'dispatch-crm-calls': (require('../dispatch-crm-calls/handler') as { handler: Handler }).handler,
    'sweep-landing-zone': (require('../sweep-landing-zone/handler') as { handler: Handler }).handler,
    'poll-source': (require('../poll-source/handler') as { handler: Handler }).handler,
    'deliver-reports': (require('../deliver-reports/handler') as { handler: Handler }).handler,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */

  let tokens = 0;
  const lambdas: Record<string, LocalLambda> = Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (payload: unknown) => handler(payload, lambdaContext(name)),
    ]),
  );
  // A .waitForTaskToken task: on AWS each attempt has a token of its own, and the callback ends the task.
  lambdas['await-phase'] = async (payload) => {
    const taskToken = `${(payload as { taskToken: string }).taskToken}:${++tokens}`;
    const resumed = aws.waitForToken(taskToken);
    await handlers['await-phase']?.({ ...(payload as object), taskToken }, lambdaContext('await-phase'));
    return resumed;
  };

  const definition = loadDefinition('file-ingestion.asl.json', {
    ClassifyFileFunctionArn: localLambdaArn('classify-file'),
    PrepareFileFunctionArn: localLambdaArn('prepare-file'),
    AwaitPhaseFunctionArn: localLambdaArn('await-phase'),
    FinaliseFileFunctionArn: localLambdaArn('finalise-file'),
    RetryLaterAttempts: String(settings.retryLaterAttempts),
    RetryLaterDelaySeconds: String(settings.retryLaterDelaySeconds),
    PhaseCheckSeconds: String(settings.phaseCheckSeconds),
  });

  const completed: FinalSummary[] = [];
  const failedExecutions: FailedExecution[] = [];
  const finishedListeners: Parameters<LocalPipeline['onFinished']>[0][] = [];
  const running = new Set<Promise<unknown>>();
  let changed: () => void = () => undefined;
  const deliveries: Delivery[] = [];
  const delivering = new Set<Promise<void>>();
  const deliveryFailures: { name: string; error: string }[] = [];
  aws.onEvent((event) => {
    if (event.detailType !== 'file.completed') return;
    const summary = event.detail as FinalSummary;
    // The EventBridge rule's target: the reports to the partner; the file counts as finished after it.
    const delivered = (async () => {
      try {
        const payload = { 'detail-type': event.detailType, source: event.source, detail: summary };
        deliveries.push((await handlers['deliver-reports']?.(payload, lambdaContext('deliver-reports'))) as Delivery);
      } catch (error) {
        deliveryFailures.push({ name: summary.name, error: (error as Error).message });
      }
      completed.push(summary);
      for (const listener of finishedListeners) listener({ summary });
      changed();
    })();
    delivering.add(delivered);
    void delivered.finally(() => delivering.delete(delivered));
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
  const sweep = async () =>
    (await handlers['sweep-landing-zone']?.({}, lambdaContext('sweep-landing-zone'))) as Awaited<
      ReturnType<LocalPipeline['sweep']>
    >;
  const sweeping = setInterval(() => void sweep().catch(() => undefined), settings.sweepIntervalMinutes * 60_000);
  sweeping.unref();
  // Objects whose Object Created event is to go missing (tests of the sweep).
  const missed = new Set<string>();
  s3.onObjectCreated((object) => {
    if (missed.delete(object.key)) return;
    if (object.bucket === LOCAL_NAMES.landingBucket && object.key.startsWith(DEFAULT_LANDING_PREFIX)) {
      void startExecution(object.bucket, object.key, object.size);
    }
  });

  // The SQS event source: each poller hands a batch of messages to the dispatcher and deletes what succeeded.
  let stopping = false;
  let batchesDone = 0;
  let recordsDone = 0;
  // Records of a call message, from its `"lines":[...]` list, without parsing the whole body again.
  const recordsIn = (body = '') => {
    const start = body.indexOf('"lines":[');
    const end = body.indexOf(']', start);
    if (start === -1 || end === -1) return 0;
    const list = body.slice(start + 9, end);
    return list.length === 0 ? 0 : list.split(',').length;
  };
  // Receive counts, as the event source passes them (the embedded SQS keeps none): a first delivery skips
  // the ledger read, and the back-off of a failing batch grows with each delivery.
  const receives = new Map<string, number>();
  const poll = async () => {
    while (!stopping) {
      const { Messages = [] } = await sqsClient
        .send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: EVENT_SOURCE_BATCH_SIZE,
            WaitTimeSeconds: 1,
          }),
        )
        .catch(() => ({ Messages: [] }));
      if (Messages.length === 0 || stopping) continue;
      const event: SQSEvent = {
        Records: Messages.map((m) => {
          const count = (receives.get(m.MessageId ?? '') ?? 0) + 1;
          receives.set(m.MessageId ?? '', count);
          return {
            messageId: m.MessageId ?? '',
            receiptHandle: m.ReceiptHandle ?? '',
            body: m.Body ?? '',
            attributes: { ApproximateReceiveCount: String(count) } as never,
            messageAttributes: {},
            md5OfBody: m.MD5OfBody ?? '',
            eventSource: 'aws:sqs',
            eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${LOCAL_NAMES.callQueue}`,
            awsRegion: 'us-east-1',
          };
        }),
      };
      const response = (await handlers['dispatch-crm-calls']?.(event, lambdaContext('dispatch-crm-calls')).catch(
        () => ({ batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) }),
      )) as SQSBatchResponse;
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const answered = Messages.filter((message) => !failed.has(message.MessageId ?? ''));
      if (answered.length === 0) continue;
      await sqsClient.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: answered.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
      for (const message of answered) {
        receives.delete(message.MessageId ?? '');
        batchesDone++;
        recordsDone += recordsIn(message.Body);
      }
    }
  };
  const pollers = Array.from({ length: options.concurrency ?? settings.dispatchConcurrency }, poll);

  return {
    ...(simulator ? { simulator } : {}),
    queueUrl,
    deadLetterQueueUrl,
    s3,
    db,
    sqs,
    completed,
    failedExecutions,
    land: async (key, body, { missEvent = false } = {}) => {
      if (missEvent) missed.add(`${DEFAULT_LANDING_PREFIX}${key}`);
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
    poll: async (source) => (await handlers['poll-source']?.({ source }, lambdaContext('poll-source'))) as PollOutcome,
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
      return {
        queued: Number(calls.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(calls.ApproximateNumberOfMessagesNotVisible ?? 0),
        deadLetters:
          Number(dead.ApproximateNumberOfMessages ?? 0) + Number(dead.ApproximateNumberOfMessagesNotVisible ?? 0),
        batchesDone,
        recordsDone,
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
      stopping = true;
      clearInterval(sweeping);
      await Promise.allSettled([...pollers, ...delivering]);
      await Promise.all([s3.close(), db.close(), sqs.close(), aws.close(), simulator?.close()]);
    },
  };
}
