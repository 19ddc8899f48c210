/**
 * The pipeline's telemetry, spelt once: the CloudWatch namespace of the handlers' EMF metrics, the functions'
 * service names (Powertools adds each as the `service` dimension, and as `service` in every log line), and
 * every metric with its unit and dimensions. Handlers emit only these (the recorder is typed by this table);
 * the alarms and the dashboard are built from it, and a test checks that every one of them names a metric here
 * with its dimensions, so renaming a metric cannot silently blind an alarm.
 */
export const METRICS_NAMESPACE = 'CrmIngestion';

/** One name per function: its folder under lambdas/, its Powertools service, its construct's purpose. */
export const FUNCTION_NAMES = [
  'classify-file',
  'prepare-file',
  'await-phase',
  'finalise-file',
  'dispatch-crm-calls',
  'sweep-landing-zone',
  'poll-source',
  'deliver-reports',
  'ops-api',
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

export type MetricUnitName = 'Count' | 'Milliseconds' | 'Seconds' | 'Bytes';

interface MetricSpec {
  readonly service: FunctionName;
  readonly unit: MetricUnitName;
  /** Dimensions besides `service`, in this order. */
  readonly dimensions: readonly string[];
  readonly description: string;
}

const metric = <const S extends FunctionName, const D extends readonly string[]>(
  service: S,
  unit: MetricUnitName,
  dimensions: D,
  description: string,
) => ({ service, unit, dimensions, description }) as MetricSpec & { readonly service: S; readonly dimensions: D };

export const METRICS = {
  CrmCalls: metric('dispatch-crm-calls', 'Count', ['Operation', 'Status'], 'CRM calls by operation and HTTP status'),
  CrmLatency: metric('dispatch-crm-calls', 'Milliseconds', [], 'time of one CRM call'),
  LimiterWait: metric('dispatch-crm-calls', 'Milliseconds', [], 'time a call waited for its limiter slot'),
  CrmThrottled: metric('dispatch-crm-calls', 'Count', [], 'calls the CRM answered 429'),
  CrmReplays: metric('dispatch-crm-calls', 'Count', [], 'answers the CRM replayed for a repeated idempotency key'),
  CrmAuthRejected: metric('dispatch-crm-calls', 'Count', [], 'batches stopped by rejected credentials'),
  CrmCallFailed: metric('dispatch-crm-calls', 'Count', [], 'batches whose call failed past the retries'),
  Records: metric('dispatch-crm-calls', 'Count', ['Outcome', 'Code'], 'records answered, by outcome and code'),
  PartnerCalls: metric('dispatch-crm-calls', 'Count', ['Partner', 'Kind'], 'CRM calls by partner and file kind'),
  CallsHeld: metric('dispatch-crm-calls', 'Count', [], 'queued calls of a paused file held back (sent again later)'),
  CallsCancelled: metric(
    'dispatch-crm-calls',
    'Count',
    [],
    'queued calls of a cancelled file answered CANCELLED unsent',
  ),
  ScheduleWait: metric(
    'prepare-file',
    'Seconds',
    ['Rule'],
    'time a file waited before sending, by the rule that held it (Ordering, Priority, RetryLater, Paused)',
  ),
  Files: metric('finalise-file', 'Count', ['Kind', 'Status'], 'finished files by kind and status'),
  RecordsReceived: metric('finalise-file', 'Count', ['Kind'], 'records of finished files'),
  RecordsSucceeded: metric('finalise-file', 'Count', ['Kind'], 'records that succeeded, of finished files'),
  RecordsFailed: metric('finalise-file', 'Count', ['Kind'], 'records that failed, of finished files'),
  RecordsFailedByReason: metric('finalise-file', 'Count', ['Kind', 'Reason'], 'failed records by reason'),
  FileDuration: metric('finalise-file', 'Seconds', [], 'time from a file claim to its report'),
  SweepStarted: metric('sweep-landing-zone', 'Count', [], 'workflows the sweep started for missed events'),
  PollSucceeded: metric('poll-source', 'Count', ['Source'], 'polls that listed the source'),
  PollFailed: metric('poll-source', 'Count', ['Source'], '1 for a failed poll, 0 for a good one'),
  PollFailedByReason: metric('poll-source', 'Count', ['Source', 'Reason'], 'failed polls by reason'),
  FilesCollected: metric('poll-source', 'Count', ['Source'], 'files landed by a poll'),
  BytesCollected: metric('poll-source', 'Bytes', ['Source'], 'bytes landed by a poll'),
  FilesWaiting: metric('poll-source', 'Count', ['Source'], 'files seen but not yet complete'),
  MoveFailures: metric('poll-source', 'Count', ['Source'], 'collected files not yet moved to processed/'),
  ReportsDelivered: metric('deliver-reports', 'Count', ['Destination'], 'reports put back to a partner'),
  ApiRequests: metric('ops-api', 'Count', ['Route', 'Status'], 'operations API requests by route and HTTP status'),
  ApiLatency: metric('ops-api', 'Milliseconds', ['Route'], 'time to answer an operations API request'),
} as const;

export type MetricName = keyof typeof METRICS;
/** The metrics a function emits. */
export type MetricOf<S extends FunctionName> = {
  [K in MetricName]: (typeof METRICS)[K]['service'] extends S ? K : never;
}[MetricName];
/** The dimension values a metric is emitted with (besides `service`). */
export type DimensionsOf<K extends MetricName> = Record<(typeof METRICS)[K]['dimensions'][number], string>;

/** The metrics of one function, for its contract. */
export const metricsOf = <S extends FunctionName>(service: S): MetricOf<S>[] =>
  (Object.keys(METRICS) as MetricName[]).filter((name) => METRICS[name].service === service) as MetricOf<S>[];
