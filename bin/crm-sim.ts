/**
 * `npm run crm-sim -- [options]`: the CRM simulator as a standalone server on 127.0.0.1, for local runs and
 * for trying the pipeline against faults. Ctrl-C stops it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { startCrmSimulator } from '../lambdas/local/crm-simulator/crm-simulator';

const number = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new InvalidArgumentError(`must be a number from ${min} to ${max}`);
  return n;
};

const program = new Command('crm-sim')
  .description('the CRM simulator (crm-api.md), with fault switches and GET /_sim/stats')
  .option('--port <n>', 'port (0: a free one)', number(0, 65535), 0)
  .option('--token <t>', 'bearer token it accepts', 'sim-token')
  .option('--calls-per-window <n>', 'calls allowed in any rolling window', number(1, 1e7), 1000)
  .option('--window-ms <ms>', 'length of the rolling window', number(1, 3_600_000), 60_000)
  .option('--latency-ms <ms>', 'added latency per call', number(0, 60_000), 0)
  .option('--server-error-rate <r>', 'share of calls answered 5xx', number(0, 1), 0)
  .option('--drop-rate <r>', 'share of calls applied but not answered', number(0, 1), 0)
  .option('--seed <s>', 'seed of the fault dice', '1')
  .action(async (options: Record<string, number | string>) => {
    const sim = await startCrmSimulator({
      port: options.port as number,
      token: options.token as string,
      callsPerWindow: options.callsPerWindow as number,
      windowMs: options.windowMs as number,
      seed: options.seed as string,
      faults: {
        latencyMs: options.latencyMs as number,
        serverErrorRate: options.serverErrorRate as number,
        dropRate: options.dropRate as number,
      },
    });
    process.stdout.write(`CRM simulator on ${sim.url} (token ${sim.token}); stats: ${sim.url}/_sim/stats\n`);
    const stop = () => void sim.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

void program.parseAsync(process.argv);
