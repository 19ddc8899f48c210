import { awsClients } from '../../lambdas/adapters/aws/clients';
import { SfnTaskNotifier } from '../../lambdas/adapters/aws/sfn-task-notifier';
import type { TelemetryOptions } from '../../lambdas/adapters/aws/telemetry';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import type { ScheduledFile, TurnNotifier } from '../../lambdas/core/schedule/schedule';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { startCrmSimulator, type CrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import { loadConfig } from '../../lambdas/core/config';
import {
  embeddedServicesClients,
  startLocalPipeline,
  type LocalPipeline,
} from '../../lambdas/local/wiring/local-pipeline';
import { startRecordingCrm, type RecordedCall, type RecordingCrm } from './recording-crm';

/**
 * The scaled settings of the scheduling tests: about 9 calls a second (30 in any rolling 3 s), 10 records a call
 * and windows of 10 batches, so a file of a few hundred records makes tens of calls and files overlap in time.
 * Each test overrides what its rule needs.
 */
export const SCALED_ENV: Readonly<Record<string, string>> = {
  CRM_CALLS_PER_MINUTE: '30',
  CRM_LIMIT_WINDOW_S: '3',
  CRM_LIMITER_JITTER_MS: '300',
  CRM_BATCH_SIZE: '10',
  SEND_WINDOW_BATCHES: '10',
  RETRY_LATER_DELAY_S: '1',
  RETRY_LATER_ATTEMPTS: '2',
  SCHEDULE_CHECK_S: '1',
  ORDERING_WINDOW_S: '0',
  CRM_RETRY_BASE_DELAY_MS: '50',
};

export interface ScheduledPipeline {
  readonly pipeline: LocalPipeline;
  readonly simulator: CrmSimulator;
  /** Every call the CRM accepted, in the order answered. */
  readonly calls: RecordedCall[];
  /** Wakes waiting executions, as `ingest pause|resume|cancel` does against a running `ingest up`. */
  readonly notifier: TurnNotifier;
  close(): Promise<void>;
}

/**
 * The one-machine pipeline with its CRM simulator behind a {@link startRecordingCrm} pass-through, so a test can
 * read the order of the calls and the records each carried.
 */
export async function startScheduledPipeline(
  env: Readonly<Record<string, string>>,
  options: { customers?: readonly CrmCustomer[]; concurrency?: number; telemetry?: TelemetryOptions } = {},
): Promise<ScheduledPipeline> {
  const merged = { ...SCALED_ENV, ...env };
  const settings = loadConfig({ env: merged });
  const simulator = await startCrmSimulator({
    callsPerWindow: settings.callsPerMinute,
    windowMs: settings.limitWindowSeconds * 1000,
    customers: options.customers ?? [],
  });
  let crm: RecordingCrm | undefined;
  try {
    crm = await startRecordingCrm(simulator.url);
    const pipeline = await startLocalPipeline({
      sweepMinAgeSeconds: 0,
      crmUrl: crm.url,
      env: { ...merged, CRM_API_TOKEN: simulator.token },
      concurrency: options.concurrency ?? 4,
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    });
    const clients = awsClients(embeddedServicesClients({ stepFunctionsAndEvents: pipeline.stepFunctionsEndpoint }));
    const recording = crm;
    return {
      pipeline,
      simulator,
      calls: recording.calls,
      notifier: new SfnTaskNotifier(clients.sfn),
      async close() {
        await pipeline.close();
        await recording.close();
        await simulator.close();
      },
    };
  } catch (error) {
    await crm?.close();
    await simulator.close();
    throw error;
  }
}

const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const TRANSACTIONS_HEADER = 'transaction_id,customer_id,amount,currency,occurred_at,type,merchant';

/** `${prefix}1` .. `${prefix}<count>`. */
export const ids = (prefix: string, count: number, first = 1) =>
  Array.from({ length: count }, (_, n) => `${prefix}${first + n}`);

/** A users file of new customers with these ids (synthetic names, example.com addresses). */
export const usersCsv = (customerIds: readonly string[]) =>
  [
    USERS_HEADER,
    ...customerIds.map((id) => `${id},Ada,Alder,${id.toLowerCase()}@example.com,,GB,2026-11-24T03:00:00Z`),
  ].join('\n');

/** A transactions file: `${prefix}<n>` for the n-th customer id given. */
export const transactionsCsv = (prefix: string, customerIds: readonly string[]) =>
  [
    TRANSACTIONS_HEADER,
    ...customerIds.map((customer, n) => `${prefix}${n + 1},${customer},12.50,EUR,2026-11-24T03:00:00Z,purchase,Shop`),
  ].join('\n');

/** Whether a record id is `${prefix}<digits>`: the tests give each file its own prefix. */
export const hasPrefix = (prefix: string) => (id: string) =>
  id.startsWith(prefix) && /^\d+$/.test(id.slice(prefix.length));

/** The calls that carried records of the file whose ids have `prefix`. */
export const callsFor = (calls: readonly RecordedCall[], prefix: string) =>
  calls.filter((call) => call.ids.some(hasPrefix(prefix)));

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something (not undefined/false), or fails naming `what`. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The schedule entry of the file named `name`, once it is in flight. */
export const scheduled = (pipeline: LocalPipeline, name: string, timeoutMs = 30_000): Promise<ScheduledFile> =>
  until(
    `${name} in the schedule`,
    async () => (await pipeline.schedule.view()).files.find((file) => file.name === name),
    timeoutMs,
  );

/** The summary of the finished file named `name`, once it is finished. */
export const finished = (pipeline: LocalPipeline, name: string, timeoutMs = 50_000): Promise<FinalSummary> =>
  until(
    `${name} to finish`,
    () => {
      if (pipeline.failedExecutions.length > 0) {
        throw new Error(`execution failed: ${JSON.stringify(pipeline.failedExecutions)}`);
      }
      return pipeline.completed.find((summary) => summary.name === name);
    },
    timeoutMs,
    200,
  );
