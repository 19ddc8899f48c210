import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  HorizontalAnnotation,
  MathExpression,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRICS, METRICS_NAMESPACE, type DimensionsOf, type MetricName } from '../../lambdas/contracts/telemetry';
import { CALL_RULES, CRM_OPERATIONS } from '../../lambdas/core/crm/response-policy';

export interface ObservabilityProps {
  readonly callsPerMinute: number;
  readonly callQueue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly stateMachine: IStateMachine;
  readonly key: IKey;
  /** How long calls may wait with none answered before the stalled-calls alarm. */
  readonly stalledCallsAfter: Duration;
  readonly alarmEmail?: string;
}

const PERIOD = Duration.minutes(1);

/**
 * A search over one of the handlers' metrics (lambdas/contracts/telemetry.ts) across the values of its
 * dimensions, summed per minute: one line per combination.
 */
const search = (metricName: MetricName, label = '', stat = 'Sum') =>
  new MathExpression({
    expression: `SEARCH('{${[METRICS_NAMESPACE, 'service', ...METRICS[metricName].dimensions].join(',')}} MetricName="${metricName}"', '${stat}', 60)`,
    label,
    period: PERIOD,
  });

/** One of the handlers' metrics (lambdas/contracts/telemetry.ts), with its service and these dimension values. */
export const handlerMetric = <K extends MetricName>(
  metricName: K,
  dimensions: DimensionsOf<K>,
  statistic = 'Sum',
  period = PERIOD,
) =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: METRICS[metricName].service, ...(dimensions as Record<string, string>) },
    statistic,
    period,
  });
/** The HTTP statuses that answer a call (its records get outcomes), from the response policy's table. */
const ANSWERING_STATUSES = Object.entries(CALL_RULES)
  .filter(([, action]) => action === 'per-record' || action === 'fail-all')
  .map(([status]) => status);

/** The dispatcher's metrics that have no dimension but `service`. */
const dispatchMetric = (
  metricName: 'CrmThrottled' | 'CrmAuthRejected' | 'CrmCallFailed' | 'CrmLatency' | 'CallsHeld' | 'CallsCancelled',
  statistic = 'Sum',
) => handlerMetric(metricName, {}, statistic);

/**
 * What operations watch: a dashboard (records per minute by outcome and by kind, CRM calls per minute against
 * the limit, CRM latency p50/p99, records by outcome and code, 429s and 5xx, queue depth and age, the DLQ,
 * executions) and alarms to an SNS topic: a message on the DLQ, a failed execution, any 429, credentials
 * rejected, and calls queued with none answered for the threshold (stalled).
 */
export class Observability extends Construct {
  public readonly topic: Topic;
  public readonly dashboard: Dashboard;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Alarms', {
      masterKey: props.key,
      enforceSSL: true,
      displayName: 'CRM ingestion alarms',
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);

    const alarm = (name: string, description: string, metric: IMetric, threshold: number) => {
      const created = new Alarm(this, name, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
      return created;
    };
    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: PERIOD,
      statistic: 'Maximum',
    });
    const oldest = props.callQueue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' });
    const failed = props.stateMachine.metricFailed({ period: PERIOD, statistic: 'Sum' });
    alarm('DeadLettersAlarm', 'CRM calls spent their retries: redrive the DLQ once the cause is fixed', dlqDepth, 1);
    alarm('ExecutionsFailedAlarm', 'A file workflow failed: redrive it from the Step Functions console', failed, 1);
    alarm(
      'ThrottledAlarm',
      'The CRM answered 429: the pacing let a call through over the limit',
      dispatchMetric('CrmThrottled'),
      1,
    );
    alarm(
      'AuthRejectedAlarm',
      'The CRM rejected the token: calls stopped, records pending; fix the secret',
      dispatchMetric('CrmAuthRejected'),
      1,
    );

    // Stalled: every minute of the threshold had calls in the queue (waiting or in flight) and no call answered.
    // A full load keeps calls queued for 20 hours, so the oldest message's age says nothing; a minute without
    // answers while calls wait does (at full pace about 1000 calls are answered a minute). Answers are the
    // dispatcher's CRM calls with an answering status, per operation (an alarm cannot SEARCH); a minute with no
    // such metric at all counts as 0 answers, and a minute without queue data (an idle queue) does not breach.
    const answered = Object.fromEntries(
      CRM_OPERATIONS.flatMap((operation) =>
        ANSWERING_STATUSES.map((status) => [
          `${operation.toLowerCase()}${status}`,
          handlerMetric('CrmCalls', { Operation: operation, Status: status }),
        ]),
      ),
    );
    const queued = {
      waiting: props.callQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Minimum' }),
      inFlight: props.callQueue.metricApproximateNumberOfMessagesNotVisible({ period: PERIOD, statistic: 'Minimum' }),
    };
    const answers = Object.keys(answered)
      .map((id) => `FILL(${id}, 0)`)
      .join(' + ');
    const stalledMinutes = props.stalledCallsAfter.toMinutes();
    const stalled = new Alarm(this, 'StalledCallsAlarm', {
      alarmDescription: `CRM calls have waited ${stalledMinutes} minutes with none answered: the CRM or the dispatcher is stuck`,
      metric: new MathExpression({
        expression: `IF((FILL(waiting, 0) + FILL(inFlight, 0)) > 0 AND (${answers}) == 0, 1, 0)`,
        usingMetrics: { ...queued, ...answered },
        label: 'stalled (calls queued, none answered)',
        period: PERIOD,
      }),
      threshold: 1,
      evaluationPeriods: stalledMinutes,
      datapointsToAlarm: stalledMinutes,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    stalled.addAlarmAction(action);
    this.alarms.push(stalled);

    const calls = search('CrmCalls', 'calls');
    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new GraphWidget({
            title: 'Records per minute by outcome (dispatcher)',
            left: [search('Records')],
            width: 12,
          }),
          new GraphWidget({
            title: 'Records per minute by kind (finished files)',
            left: [search('RecordsReceived')],
            width: 12,
          }),
        ],
        [
          new GraphWidget({
            title: 'CRM calls per minute against the limit',
            left: [
              new MathExpression({ expression: 'SUM(calls)', usingMetrics: { calls }, label: 'calls', period: PERIOD }),
            ],
            leftAnnotations: [{ value: props.callsPerMinute, label: 'limit' } satisfies HorizontalAnnotation],
            width: 12,
          }),
          new GraphWidget({
            title: 'CRM latency (ms)',
            left: [dispatchMetric('CrmLatency', 'p50'), dispatchMetric('CrmLatency', 'p99')],
            width: 12,
          }),
        ],
        [
          new GraphWidget({
            title: 'Calls by operation and status (429, 5xx)',
            left: [search('CrmCalls')],
            right: [dispatchMetric('CrmThrottled'), dispatchMetric('CrmAuthRejected'), dispatchMetric('CrmCallFailed')],
            width: 12,
          }),
          new GraphWidget({
            title: 'Failed records by reason (finished files)',
            left: [search('RecordsFailedByReason')],
            width: 12,
          }),
        ],
        [
          new GraphWidget({
            title: 'Call queue: depth and oldest message (s)',
            left: [
              props.callQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD }),
              props.callQueue.metricApproximateNumberOfMessagesNotVisible({ period: PERIOD }),
            ],
            right: [oldest],
            width: 8,
          }),
          new GraphWidget({ title: 'Dead-letter queue', left: [dlqDepth], width: 8 }),
          new GraphWidget({
            title: 'File executions',
            left: [
              props.stateMachine.metricStarted({ period: PERIOD }),
              props.stateMachine.metricSucceeded({ period: PERIOD }),
              failed,
            ],
            width: 8,
          }),
        ],
        [
          new GraphWidget({
            title: 'CRM calls by partner and file kind',
            left: [search('PartnerCalls')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Time files waited for their turn (s), by rule',
            left: [search('ScheduleWait')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Calls held back (paused files) and cancelled unsent',
            left: [dispatchMetric('CallsHeld'), dispatchMetric('CallsCancelled')],
            width: 8,
          }),
        ],
        [
          new GraphWidget({
            title: 'Partner sources: failed polls by reason',
            left: [search('PollFailedByReason')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Partner sources: files collected and waiting',
            left: [search('FilesCollected'), search('FilesWaiting')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Reports delivered to partners',
            left: [search('ReportsDelivered')],
            width: 8,
          }),
        ],
      ],
    });
  }
}
