import type { Template } from 'aws-cdk-lib/assertions';
import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { METRICS, METRICS_NAMESPACE, type MetricName } from '../../lambdas/contracts/telemetry';
import { SETTINGS, type SettingKey } from '../../lambdas/core/config';

/** A metric as an alarm or a dashboard widget names it: its name, and the dimension names it is read with. */
export interface MetricUse {
  readonly where: string;
  readonly metricName: string;
  readonly dimensions: readonly string[];
  /** The `service` it is read for, when the use names one (a SEARCH spans every value). */
  readonly service?: string;
}

/** A metric as an alarm names it (a single-metric alarm's properties, or a metric-math query's MetricStat). */
interface AlarmMetric {
  readonly Namespace?: unknown;
  readonly MetricName?: unknown;
  readonly Dimensions?: readonly { Name: string; Value: unknown }[];
}

/** CloudFormation's Fn::Join of a dashboard body, with every token written as a plain placeholder. */
const flatten = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join) return join[1].map(flatten).join(join[0]);
  return 'TOKEN';
};

/** Every use of the handlers' namespace by the alarms and dashboards of a template. */
export function metricUses(template: Template): MetricUse[] {
  const uses: MetricUse[] = [];
  for (const [id, alarm] of Object.entries(template.findResources('AWS::CloudWatch::Alarm'))) {
    const props = (alarm as { Properties: Record<string, unknown> }).Properties;
    // A single-metric alarm names its metric; a metric-math alarm, each metric its expression reads.
    const queries = (props.Metrics ?? []) as { Id: string; MetricStat?: { Metric: AlarmMetric } }[];
    const metrics: [string, AlarmMetric][] = props.Metrics
      ? queries.flatMap((query) => (query.MetricStat ? [[`alarm ${id} (${query.Id})`, query.MetricStat.Metric]] : []))
      : [[`alarm ${id}`, props as AlarmMetric]];
    for (const [where, metric] of metrics) {
      if (metric.Namespace !== METRICS_NAMESPACE) continue;
      const dimensions = metric.Dimensions ?? [];
      uses.push({
        where,
        metricName: String(metric.MetricName),
        dimensions: dimensions.map((d) => d.Name),
        service: String(dimensions.find((d) => d.Name === 'service')?.Value),
      });
    }
  }
  for (const [id, dashboard] of Object.entries(template.findResources('AWS::CloudWatch::Dashboard'))) {
    const body = JSON.parse(
      flatten((dashboard as { Properties: { DashboardBody: unknown } }).Properties.DashboardBody),
    ) as {
      widgets: { properties: { title?: string; metrics?: unknown[][] } }[];
    };
    for (const widget of body.widgets) {
      for (const entry of widget.properties.metrics ?? []) {
        const where = `dashboard ${id} widget "${widget.properties.title ?? ''}"`;
        const [first] = entry;
        if (typeof first === 'object' && first !== null) {
          const expression = String((first as { expression?: string }).expression ?? '');
          for (const match of expression.matchAll(/SEARCH\('\{([^}]*)\} MetricName="([^"]+)"/g)) {
            const [namespace, ...dimensions] = (match[1] ?? '').split(',');
            if (namespace === METRICS_NAMESPACE) uses.push({ where, metricName: match[2] ?? '', dimensions });
          }
        } else if (first === METRICS_NAMESPACE) {
          const [, metricName, ...rest] = entry.filter((part) => typeof part === 'string') as string[];
          const dimensions = rest.filter((_, index) => index % 2 === 0);
          const service = rest[rest.indexOf('service') + 1];
          uses.push({ where, metricName: metricName ?? '', dimensions, ...(service ? { service } : {}) });
        }
      }
    }
  }
  return uses;
}

/** What is wrong with a use: a metric no handler emits, with other dimensions, or for another service. */
export function metricUseProblem(use: MetricUse): string | undefined {
  const spec = METRICS[use.metricName as MetricName];
  if (!spec) return `${use.where}: ${use.metricName} is emitted by no handler`;
  const expected = ['service', ...spec.dimensions].sort().join(',');
  const actual = [...use.dimensions].sort().join(',');
  if (expected !== actual) return `${use.where}: ${use.metricName} is emitted with ${expected}, read with ${actual}`;
  if (use.service !== undefined && use.service !== spec.service) {
    return `${use.where}: ${use.metricName} is emitted by ${spec.service}, read for ${use.service}`;
  }
  if (!(FUNCTION_CONTRACTS[spec.service].metrics as readonly string[]).includes(use.metricName)) {
    return `${use.where}: ${use.metricName} is not in the contract of ${spec.service}`;
  }
  return undefined;
}

/** The environment names of every setting. */
export const SETTING_VARIABLES = new Map<string, SettingKey>(
  (Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]).map(([key, setting]) => [
    setting.env,
    key,
  ]),
);
