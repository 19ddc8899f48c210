import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from '../../bin/ingestion-app';

describe('CDK app configuration', () => {
  it('reads settings from context with the defaults for the rest', () => {
    const {
      config: { settings: config },
    } = buildApp(
      { crmBaseUrl: 'https://crm.example.com', callsPerMinute: 600, sweepIntervalMinutes: '5' },
      { nag: false },
    );
    expect(config).toMatchObject({ callsPerMinute: 600, sweepIntervalMinutes: 5, batchSize: 100 });
  });

  it('fails synthesis on a bad context value, naming it', () => {
    expect(() => buildApp({ crmBaseUrl: 'https://crm.example.com', batchSize: 500 }, { nag: false })).toThrow(
      /CRM_BATCH_SIZE \(--batch-size, context batchSize\): must be a whole number from 1 to 100 \(got 500\)/,
    );
  });

  it("synthesises, in tests, into the test file's own folder, which the test setup removes", () => {
    const { app } = buildApp({ crmBaseUrl: 'https://crm.example.com' }, { nag: false });
    app.synth();
    expect(app.outdir).toBe(process.env.CDK_OUTDIR);
    expect(existsSync(join(app.outdir, 'CrmIngestion.template.json'))).toBe(true);
  });
});
