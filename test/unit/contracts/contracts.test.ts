import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FUNCTION_CONTRACTS } from '../../../lambdas/contracts/functions';
import { FUNCTION_NAMES, METRICS } from '../../../lambdas/contracts/telemetry';
import { loadConfig, SETTINGS } from '../../../lambdas/core/config';

const LAMBDAS = join(__dirname, '../../../lambdas');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
const sources = files(LAMBDAS).map((path) => ({ path: relative(LAMBDAS, path), text: readFileSync(path, 'utf8') }));

describe('the function contracts', () => {
  it('are one per function folder, each with its AWS entry, under the name its telemetry uses', () => {
    const folders = readdirSync(LAMBDAS).filter((name) => {
      try {
        return statSync(join(LAMBDAS, name, 'handler.ts')).isFile();
      } catch {
        return false;
      }
    });
    expect(folders.sort()).toEqual([...FUNCTION_NAMES].sort());
    expect(Object.keys(FUNCTION_CONTRACTS).sort()).toEqual([...FUNCTION_NAMES].sort());
    for (const [name, contract] of Object.entries(FUNCTION_CONTRACTS)) {
      expect(contract.name).toBe(name);
      // The metrics a contract lists are exactly the ones the telemetry table gives its function.
      expect([...contract.metrics].sort()).toEqual(
        Object.entries(METRICS)
          .filter(([, spec]) => spec.service === name)
          .map(([metric]) => metric)
          .sort(),
      );
    }
  });

  it('build the environment CDK sets with only the settings each function reads, and read it back', () => {
    const settings = loadConfig({ flags: { callsPerMinute: 600, crmApiToken: 'never-in-an-environment' } });
    const resources: Record<string, unknown> = {
      LEDGER_TABLE_NAME: 'ledger',
      LIMITER_TABLE_NAME: 'limiter',
      CALL_QUEUE_URL: 'https://sqs.example/calls',
      CRM_BASE_URL: 'https://crm.example',
      CRM_API_TOKEN_SECRET_ARN: 'arn:secret',
      ARCHIVE_BUCKET_NAME: 'archive',
      FAILED_BUCKET_NAME: 'failed',
      LANDING_BUCKET_NAME: 'landing',
      STATE_MACHINE_ARN: 'arn:states',
      POLL_SOURCES: [],
      OPS_ROUTES: ['read'],
    };
    const settingVariables = new Set<string>(Object.values(SETTINGS).map((setting) => setting.env));
    for (const contract of Object.values(FUNCTION_CONTRACTS)) {
      const { environment } = contract as unknown as {
        environment: {
          resources: { shape: object };
          settings: (keyof typeof SETTINGS)[];
          build(values: object, config: object): Record<string, string>;
          read(env: Record<string, string>): { settings: Record<string, unknown> };
        };
      };
      const own = Object.fromEntries(Object.entries(resources).filter(([name]) => name in environment.resources.shape));
      const env = environment.build(own, settings);
      const given = Object.keys(env).filter((name) => settingVariables.has(name) && !(name in own));
      expect({ name: contract.name, settings: given.sort() }).toEqual({
        name: contract.name,
        settings: environment.settings.map((key) => SETTINGS[key].env).sort(),
      });
      expect(JSON.stringify(env)).not.toContain('never-in-an-environment');
      const read = environment.read(env);
      for (const key of environment.settings) expect(read.settings[key]).toEqual(settings[key]);
    }
  });

  it('fail at start naming a bad variable or setting', () => {
    const { environment } = FUNCTION_CONTRACTS['prepare-file'];
    expect(() => environment.read({ CALL_QUEUE_URL: 'q' })).toThrow(/Invalid environment: LEDGER_TABLE_NAME/);
    expect(() => environment.read({ CALL_QUEUE_URL: 'q', LEDGER_TABLE_NAME: 't', CRM_BATCH_SIZE: '500' })).toThrow(
      /CRM_BATCH_SIZE \(--batch-size, context batchSize\): must be a whole number from 1 to 100/,
    );
  });
});

describe('the environment', () => {
  it('is read only by the AWS entry points (lambdaEntry), never at import elsewhere under lambdas/', () => {
    const readers = sources.filter(({ text }) => /process\.env\b/.test(text)).map(({ path }) => path);
    expect(readers).toEqual(['adapters/aws/lambda-entry.ts']);
    for (const name of FUNCTION_NAMES) {
      const entry = sources.find(({ path }) => path === `${name}/handler.ts`)?.text ?? '';
      expect(entry).toMatch(/export const handler = lambdaEntry\(\w+Contract, awsDependencies, makeHandler\);/);
    }
  });
});
