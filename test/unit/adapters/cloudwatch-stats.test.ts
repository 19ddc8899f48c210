import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchStats } from '../../../lambdas/adapters/aws/cloudwatch-stats';

const MINUTE = 60_000;

describe('CloudWatchStats (the stats route on AWS)', () => {
  const cloudWatch = mockClient(CloudWatchClient);
  afterEach(() => cloudWatch.reset());

  it('asks for the handlers metrics per minute and puts each value in its minute, oldest first', async () => {
    const now = new Date('2026-11-24T10:05:30Z');
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 24, 10, minute));
    cloudWatch
      .on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [
          { Id: 'callsSum', Timestamps: [at(3), at(5)], Values: [990, 400] },
          { Id: 'okSum', Timestamps: [at(3)], Values: [98_000] },
        ],
        NextToken: 'more',
      })
      .resolvesOnce({
        MetricDataResults: [
          { Id: 'failedSum', Timestamps: [at(4)], Values: [12] },
          { Id: 'errors', Label: 'CrmIngestion dispatch-crm-calls failed 3217', Timestamps: [at(4)], Values: [10] },
          { Id: 'errors', Label: 'CrmIngestion dispatch-crm-calls failed 4404', Timestamps: [at(4)], Values: [2] },
          { Id: 'p50', Timestamps: [at(1)], Values: [120] },
          { Id: 'p99', Timestamps: [at(1)], Values: [480] },
        ],
      });

    const stats = await new CloudWatchStats(new CloudWatchClient({ region: 'eu-west-1' })).stats(5, now);

    expect(stats).toEqual({
      callsPerMinute: [0, 0, 990, 0, 400],
      recordsPerMinute: { succeeded: [0, 0, 98_000, 0, 0], failed: [0, 0, 0, 12, 0] },
      latencyMs: { p50: 120, p99: 480 },
      errorsByCode: { '3217': 10, '4404': 2 },
    });
    const calls = cloudWatch.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(2);
    const input = calls[0]!.args[0].input;
    // The window ends after the minute under way: the last value is the current minute so far.
    expect(input.EndTime).toEqual(new Date(Date.UTC(2026, 10, 24, 10, 6)));
    expect((input.EndTime as Date).getTime() - (input.StartTime as Date).getTime()).toBe(5 * MINUTE);
    expect(calls[1]!.args[0].input.NextToken).toBe('more');
    const expressions = (input.MetricDataQueries ?? []).map((query) => query.Expression ?? query.MetricStat?.Stat);
    expect(expressions).toEqual(
      expect.arrayContaining([
        `SEARCH('{CrmIngestion,service,Operation,Status} MetricName="CrmCalls"', 'Sum', 60)`,
        `SEARCH('{CrmIngestion,service,Outcome,Code} MetricName="Records" Outcome="failed"', 'Sum', 60)`,
        'SUM(calls)',
        'p50',
        'p99',
      ]),
    );
  });
});
