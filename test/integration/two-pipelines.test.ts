import { PassThrough } from 'node:stream';
import { METRICS, METRICS_NAMESPACE, type MetricName } from '../../lambdas/contracts/telemetry';
import { startLocalPipeline, type LocalPipeline } from '../../lambdas/local/wiring/local-pipeline';

const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  ...Array.from({ length: 6 }, (_, i) => `C${i},Ada,Alder,ada${i}@example.com,,GB,2026-01-01T00:00:00Z`),
].join('\n');

/** The EMF documents among a function's output lines: each metric with the dimensions it was emitted with. */
function emittedMetrics(text: string) {
  return text
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .flatMap((line) => {
      const document = JSON.parse(line) as {
        _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
        service: string;
      };
      return document._aws.CloudWatchMetrics.flatMap((set) =>
        set.Metrics.map((metric) => ({
          namespace: set.Namespace,
          name: metric.Name,
          dimensions: [...(set.Dimensions[0] ?? [])].sort(),
          service: document.service,
        })),
      );
    });
}

/**
 * Each pipeline is built from its own options and adapters (no process-wide environment): two run side by side
 * in one process, with different settings and their own services and CRM simulators.
 */
describe('two local pipelines in one process', () => {
  let small: LocalPipeline;
  let large: LocalPipeline;
  const output = new PassThrough();
  let emitted = '';
  output.on('data', (chunk: Buffer) => (emitted += chunk.toString()));

  beforeAll(async () => {
    [small, large] = await Promise.all([
      startLocalPipeline({ env: { CRM_BATCH_SIZE: '2' }, concurrency: 2, telemetry: { output } }),
      startLocalPipeline({ env: { CRM_BATCH_SIZE: '100' }, concurrency: 2 }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([small?.close(), large?.close()]);
  });

  it('process their own files with their own settings, each against its own CRM', async () => {
    await Promise.all([
      small.land('acme/users_acme_20261124_001.csv', USERS),
      large.land('globex/users_globex_20261124_001.csv', USERS),
    ]);
    const [[a], [b]] = await Promise.all([small.waitForFiles(1), large.waitForFiles(1)]);
    expect(a).toMatchObject({ name: 'users_acme_20261124_001.csv', status: 'succeeded', succeeded: 6 });
    expect(b).toMatchObject({ name: 'users_globex_20261124_001.csv', status: 'succeeded', succeeded: 6 });
    // Batches of 2 against batches of 100: three calls and one, each simulator seeing only its pipeline's.
    expect(small.simulator?.stats().callsAccepted).toBe(3);
    expect(large.simulator?.stats().callsAccepted).toBe(1);
    expect((await small.progress()).recordsDone).toBe(6);
    expect((await large.progress()).batchesDone).toBe(1);
  }, 60_000);

  it('emit only the metrics of the telemetry table, with its dimensions, to the output they were given', () => {
    const metrics = emittedMetrics(emitted);
    expect(metrics.map((metric) => metric.name)).toEqual(expect.arrayContaining(['CrmCalls', 'Records', 'Files']));
    for (const metric of metrics) {
      const spec = METRICS[metric.name as MetricName];
      expect({ metric, known: Boolean(spec) }).toEqual({ metric, known: true });
      expect(metric).toEqual({
        namespace: METRICS_NAMESPACE,
        name: metric.name,
        dimensions: ['service', ...spec.dimensions].sort(),
        service: spec.service,
      });
    }
  });
});
