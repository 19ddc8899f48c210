import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { METRICS_NAMESPACE } from '../../contracts/telemetry';
import type { MinuteStats, StatsSource } from '../../core/operations/ports';

const MINUTE_MS = 60_000;

/** A SEARCH of the pipeline's metric across the values of its dimensions, summed per minute. */
const search = (id: string, metric: string, dimensions: string, filter = '', stat = 'Sum'): MetricDataQuery => ({
  Id: id,
  Expression: `SEARCH('{${METRICS_NAMESPACE},${dimensions}} MetricName="${metric}"${filter}', '${stat}', 60)`,
  ReturnData: false,
});

/**
 * The stats from the CloudWatch metrics the handlers already emit (EMF): CrmCalls summed over operations and
 * statuses, Records by outcome, CrmLatency's p50 and p99 over the window, failed Records by Code. One
 * GetMetricData call a request.
 */
export class CloudWatchStats implements StatsSource {
  constructor(private readonly client: CloudWatchClient) {}

  async stats(minutes: number, now: Date): Promise<MinuteStats> {
    const end = new Date(Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS + MINUTE_MS);
    const start = new Date(end.getTime() - minutes * MINUTE_MS);
    const window = minutes * 60;
    const queries: MetricDataQuery[] = [
      search('calls', 'CrmCalls', 'service,Operation,Status'),
      { Id: 'callsSum', Expression: 'SUM(calls)', ReturnData: true },
      search('ok', 'Records', 'service,Outcome,Code', ' Outcome="succeeded"'),
      { Id: 'okSum', Expression: 'SUM(ok)', ReturnData: true },
      search('failed', 'Records', 'service,Outcome,Code', ' Outcome="failed"'),
      { Id: 'failedSum', Expression: 'SUM(failed)', ReturnData: true },
      { ...search('errors', 'Records', 'service,Outcome,Code', ' Outcome="failed"', 'Sum'), ReturnData: true },
      ...(['p50', 'p99'] as const).map((stat) => ({
        Id: stat,
        MetricStat: {
          Metric: {
            Namespace: METRICS_NAMESPACE,
            MetricName: 'CrmLatency',
            Dimensions: [{ Name: 'service', Value: 'dispatch-crm-calls' }],
          },
          Period: window,
          Stat: stat,
        },
        ReturnData: true,
      })),
    ];
    const results = new Map<string, { timestamps: number[]; values: number[]; label?: string }[]>();
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new GetMetricDataCommand({
          StartTime: start,
          EndTime: end,
          MetricDataQueries: queries,
          ScanBy: 'TimestampAscending',
          ...(token ? { NextToken: token } : {}),
        }),
      );
      for (const result of page.MetricDataResults ?? []) {
        const id = result.Id ?? '';
        const list = results.get(id) ?? [];
        list.push({
          timestamps: (result.Timestamps ?? []).map((t) => t.getTime()),
          values: result.Values ?? [],
          ...(result.Label ? { label: result.Label } : {}),
        });
        results.set(id, list);
      }
      token = page.NextToken;
    } while (token);
    const perMinute = (id: string) => {
      const series = Array.from({ length: minutes }, () => 0);
      for (const { timestamps, values } of results.get(id) ?? []) {
        timestamps.forEach((t, i) => {
          const slot = Math.floor((t - start.getTime()) / MINUTE_MS);
          if (slot >= 0 && slot < minutes) series[slot] = (series[slot] ?? 0) + (values[i] ?? 0);
        });
      }
      return series;
    };
    const single = (id: string) => results.get(id)?.[0]?.values[0] ?? null;
    const errorsByCode: Record<string, number> = {};
    for (const { values, label } of results.get('errors') ?? []) {
      const total = values.reduce((a, b) => a + b, 0);
      // A SEARCH series is labelled by the dimension values that differ: the code.
      const code = (label ?? 'none').split(' ').pop() ?? 'none';
      if (total > 0) errorsByCode[code] = (errorsByCode[code] ?? 0) + total;
    }
    return {
      callsPerMinute: perMinute('callsSum'),
      recordsPerMinute: { succeeded: perMinute('okSum'), failed: perMinute('failedSum') },
      latencyMs: { p50: single('p50'), p99: single('p99') },
      errorsByCode,
    };
  }
}
