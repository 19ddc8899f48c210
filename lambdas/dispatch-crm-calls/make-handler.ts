import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { givenToken, secretToken, type CrmTokenSource } from '../adapters/aws/crm-token';
import { DynamoDbCallAnswers } from '../adapters/aws/dynamodb-call-answers';
import { DynamoDbLimiterStore } from '../adapters/aws/dynamodb-limiter-store';
import { DynamoDbPhaseCounters } from '../adapters/aws/dynamodb-phase-counters';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { SqsRedelivery } from '../adapters/aws/sqs-redelivery';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { redeliveryBackoffSeconds } from '../core/crm/backoff';
import {
  CallMessageSchema,
  MAY_HAVE_BEEN_SENT_ATTRIBUTE,
  type CallQueue,
  type MessageRedelivery,
} from '../core/crm/call-message';
import { CrmCallError, CrmClient, type AttemptReport, type CrmClientOptions } from '../core/crm/crm-client';
import { cancelledAnswer, dispatchCall, type CallAnswer, type CallAnswers } from '../core/crm/dispatch-call';
import { RateLimiter } from '../core/crm/rate-limiter';
import { ErrorNames } from '../core/errors';
import { countAnswer, type PhaseCounters, type TaskNotifier } from '../core/ledger/phase-counters';
import { ScheduleControls, type FileControl } from '../core/schedule/schedule';
import { DynamoDbSchedule } from '../adapters/aws/dynamodb-schedule';
import { SqsCallQueue } from '../adapters/aws/sqs-call-queue';
import { dispatchCrmCallsContract as contract, type DispatchCrmCallsEnvironment } from './contract';

export interface DispatchCrmCallsDeps {
  readonly answers: CallAnswers;
  readonly phases: PhaseCounters;
  readonly notifier: TaskNotifier;
  /** The CRM client's settings; its token is read on first use. */
  readonly crm: Omit<CrmClientOptions, 'token' | 'onAttempt'> & { readonly token: CrmTokenSource };
  /** Hides a transiently failed message for its back-off; none: the queue's visibility timeout applies. */
  readonly redelivery?: MessageRedelivery;
  /** An operator's pause or cancel of the calls' files; none: every call is made. */
  readonly controls?: Pick<ScheduleControls, 'of'>;
  /** Where a paused file's call goes back, hidden for `holdSeconds`. */
  readonly requeue?: CallQueue;
  /** @default 5 */
  readonly holdSeconds?: number;
  readonly telemetry: Telemetry<'dispatch-crm-calls'>;
}

/** A call stopped after its limiter slot: its file was paused or cancelled meanwhile. */
class HeldBack extends Error {
  constructor(readonly control: FileControl) {
    super(`file ${control}`);
  }
}

/** SQS -> CRM: each message is one call; failed messages are reported back (partial batch response). */
export function makeHandler(deps: DispatchCrmCallsDeps) {
  const { logger, metrics, emit } = deps.telemetry;
  const processor = new BatchProcessor(EventType.SQS);

  /** One attempt's metrics: calls by operation and status, latency, limiter wait, throttles. No record data. */
  const reportAttempt = (report: AttemptReport) => {
    emit('CrmCalls', 1, { Operation: report.operation, Status: String(report.status) });
    emit('CrmLatency', report.latencyMs, {});
    emit('LimiterWait', report.limiterWaitMs, {});
    if (report.status === 429) emit('CrmThrottled', 1, {});
    if (report.replayed) emit('CrmReplays', 1, {});
  };
  const reportAnswer = (answer: CallAnswer) => {
    const counts = new Map<string, { outcome: string; code: string; count: number }>();
    for (const { status, reason } of answer.outcomes) {
      const key = `${status}|${reason ?? ''}`;
      const entry = counts.get(key) ?? { outcome: status, code: reason || 'none', count: 0 };
      entry.count++;
      counts.set(key, entry);
    }
    for (const { outcome, code, count } of counts.values()) emit('Records', count, { Outcome: outcome, Code: code });
  };

  // Created on first use (the token may have to be read from Secrets Manager); a failed read is tried again.
  let client: Promise<CrmClient> | undefined;
  const crmClient = () =>
    (client ??= deps.crm
      .token()
      .then((token) => new CrmClient({ ...deps.crm, token, onAttempt: reportAttempt }))
      .catch((error: unknown) => {
        client = undefined;
        throw error;
      }));

  const delayRedelivery = async (record: SQSRecord) => {
    if (!deps.redelivery) return;
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
    const seconds = redeliveryBackoffSeconds(receiveCount, deps.crm.retryBaseDelayMs);
    await deps.redelivery
      .delay(record.receiptHandle, seconds)
      .catch((error: unknown) => logger.warn('could not delay the redelivery', { error: (error as Error).message }));
  };

  const handleRecord = async (record: SQSRecord) => {
    const parsed = CallMessageSchema.safeParse(JSON.parse(record.body));
    if (!parsed.success) {
      // A malformed message is a pipeline bug: fail it so it reaches the DLQ, where support can see it.
      throw new Error(`invalid call message ${record.messageId}: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
    }
    const message = parsed.data;
    const where = {
      fileId: message.fileId,
      phase: message.phase,
      batchIndex: message.batchIndex,
      operation: message.operation,
    };
    // A redelivery, or a held-back copy of one, may have reached the CRM before: a cancel must not claim it unsent.
    const mayHaveBeenSent =
      record.attributes?.ApproximateReceiveCount !== '1' ||
      record.messageAttributes?.[MAY_HAVE_BEEN_SENT_ATTRIBUTE]?.stringValue === 'true';
    /** What stops this call: a pause always; a cancel only while the call was surely never sent. */
    const stopping = (control: FileControl | undefined) =>
      control === 'paused' || (control === 'cancelled' && !mayHaveBeenSent) ? control : undefined;
    const holdBack = async (control: FileControl) => {
      if (control === 'paused') {
        // Held back: sent again, hidden a few seconds, and this delivery deleted (a fresh message, so a long pause
        // never counts towards the dead-letter queue's receive limit). A duplicate is answered once, as ever.
        if (!deps.requeue) throw new Error(`batch ${message.batchIndex} of a paused file: no queue to hold it on`);
        await deps.requeue.send([
          {
            body: record.body,
            records: message.records.length,
            delaySeconds: deps.holdSeconds ?? 5,
            ...(mayHaveBeenSent ? { mayHaveBeenSent: true } : {}),
          },
        ]);
        emit('CallsHeld', 1, {});
        return;
      }
      const answer = cancelledAnswer(message);
      const recorded = await deps.answers.recordAnswer(answer);
      if (recorded === 'recorded') await countAnswer(answer, deps.phases, deps.notifier);
      emit('CallsCancelled', 1, {});
      reportAnswer(answer);
      logger.info('batch cancelled unsent', { ...where, recorded });
    };
    const { controls } = deps;
    const control = controls ? await controls.of(message.fileId) : {};
    const stop = stopping(control.control);
    if (stop) return holdBack(stop);
    // Asked again once the limiter gives the call its slot: calls wait there for seconds at full pace.
    const beforeSend = controls
      ? async () => {
          const now = stopping((await controls.of(message.fileId)).control);
          if (now) throw new HeldBack(now);
        }
      : undefined;
    try {
      // ApproximateReceiveCount 1: a first delivery (absent: treat as a possible redelivery).
      const firstDelivery = record.attributes?.ApproximateReceiveCount === '1';
      const result = await dispatchCall(
        message,
        { client: await crmClient(), answers: deps.answers, ...(beforeSend ? { beforeSend } : {}) },
        { firstDelivery },
      );
      if (result.status === 'already-answered') {
        logger.info('batch already answered; redelivery skipped', where);
        return;
      }
      reportAnswer(result.answer);
      emit('PartnerCalls', result.answer.attempts, {
        Partner: control.partner || 'unknown',
        Kind: message.operation === 'ADD_TRX' ? 'transactions' : 'users',
      });
      // Only the delivery that stored the answer counts it, so a batch is never counted twice.
      const resumed = result.recorded === 'recorded' && (await countAnswer(result.answer, deps.phases, deps.notifier));
      logger.info('batch answered', {
        ...where,
        attempts: result.answer.attempts,
        replayed: result.answer.replayed,
        recorded: result.recorded,
        phaseComplete: resumed,
      });
    } catch (error) {
      if (error instanceof HeldBack) return holdBack(error.control);
      if (error instanceof CrmCallError) {
        emit(error.name === ErrorNames.crmAuthRejected ? 'CrmAuthRejected' : 'CrmCallFailed', 1, {});
        logger.error('CRM call failed; the batch stays queued and its records pending', {
          ...where,
          error: error.name,
          reason: error.message,
        });
        if (error.name === ErrorNames.crmUnavailable || error.name === ErrorNames.crmThrottled) {
          await delayRedelivery(record);
        }
      }
      throw error;
    }
  };

  return middy(async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    contract.input.parse(event);
    // Every failure is reported per message (ReportBatchItemFailures), also when all of them failed.
    return processPartialResponse(event, handleRecord, processor, { context, throwOnFullBatchFailure: false });
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(
  environment: DispatchCrmCallsEnvironment,
  runtime: FunctionRuntime,
): DispatchCrmCallsDeps {
  const { clients } = runtime;
  const { settings } = environment;
  const answers = new DynamoDbCallAnswers(clients.dynamodb, environment.LEDGER_TABLE_NAME, {
    retentionDays: environment.settings.ledgerRetentionDays,
  });
  const limiter = new RateLimiter(new DynamoDbLimiterStore(clients.dynamodb, environment.LIMITER_TABLE_NAME), {
    callsPerWindow: settings.callsPerMinute,
    windowMs: settings.limitWindowSeconds * 1000,
    arrivalJitterMs: settings.limiterJitterMs,
  });
  return {
    answers,
    phases: new DynamoDbPhaseCounters(clients.dynamodb, environment.LEDGER_TABLE_NAME, answers, {
      retentionDays: environment.settings.ledgerRetentionDays,
    }),
    notifier: new SfnTaskNotifier(clients.sfn),
    crm: {
      baseUrl: environment.CRM_BASE_URL,
      token: environment.CRM_API_TOKEN
        ? givenToken(environment.CRM_API_TOKEN)
        : secretToken(clients.secretsManager, environment.CRM_API_TOKEN_SECRET_ARN ?? ''),
      timeoutMs: settings.crmTimeoutMs,
      retryAttempts: settings.crmRetryAttempts,
      retryBaseDelayMs: settings.crmRetryBaseDelayMs,
      retryMaxDelayMs: settings.crmRetryMaxDelayMs,
      acquire: () => limiter.acquire(),
    },
    ...(environment.CALL_QUEUE_URL
      ? {
          redelivery: new SqsRedelivery(clients.sqs, environment.CALL_QUEUE_URL),
          requeue: new SqsCallQueue(clients.sqs, environment.CALL_QUEUE_URL),
        }
      : {}),
    controls: new ScheduleControls(new DynamoDbSchedule(clients.dynamodb, environment.LEDGER_TABLE_NAME)),
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
