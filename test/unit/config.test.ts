import { loadConfig, SETTINGS } from '../../lambdas/core/config';

describe('loadConfig', () => {
  it('gives the defaults of DESIGN.md when nothing is set', () => {
    expect(loadConfig()).toMatchObject({
      callsPerMinute: 1000,
      batchSize: 100,
      retryLaterDelaySeconds: 60,
      retryLaterAttempts: 3,
      maxFileSizeBytes: 10 * 1024 ** 3,
      acceptedEncodings: ['csv', 'jsonl', 'gzip'],
      logLevel: 'INFO',
      reportDir: './ingest-reports',
    });
  });

  it('reads the environment, and flags win over it', () => {
    const env = {
      CRM_CALLS_PER_MINUTE: '600',
      CRM_BATCH_SIZE: '50',
      ACCEPTED_ENCODINGS: 'CSV, gzip',
      LOG_LEVEL: 'debug',
      CRM_BASE_URL: 'https://crm.example.com',
    };
    expect(loadConfig({ env, flags: { batchSize: '20' } })).toMatchObject({
      callsPerMinute: 600,
      batchSize: 20,
      acceptedEncodings: ['csv', 'gzip'],
      logLevel: 'DEBUG',
      crmBaseUrl: 'https://crm.example.com',
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ env: { CRM_CALLS_PER_MINUTE: '' } }).callsPerMinute).toBe(1000);
  });

  it('fails at start naming every bad field, its flag, the rule and the value', () => {
    const load = () =>
      loadConfig({
        env: {
          CRM_CALLS_PER_MINUTE: 'lots',
          CRM_BATCH_SIZE: '101',
          ACCEPTED_ENCODINGS: 'csv,xml',
          CRM_BASE_URL: 'ftp://x',
        },
      });
    expect(load).toThrow(
      expect.objectContaining({
        name: 'Config.Invalid',
        message: [
          'Invalid configuration:',
          '  CRM_BASE_URL (--crm-url, context crmBaseUrl): must be an http(s) URL (got "ftp://x")',
          '  CRM_CALLS_PER_MINUTE (--calls-per-minute, context callsPerMinute): must be a whole number from 1 to 1000000 (got "lots")',
          '  CRM_BATCH_SIZE (--batch-size, context batchSize): must be a whole number from 1 to 100 (got "101")',
          '  ACCEPTED_ENCODINGS (--accepted-encodings, context acceptedEncodings): must be a comma-separated list of csv, jsonl, gzip (got "csv,xml")',
        ].join('\n'),
      }),
    );
  });

  it('never echoes a secret in an error', () => {
    expect(() => loadConfig({ flags: { crmApiToken: '' } })).toThrow(
      /CRM_API_TOKEN \(--crm-token, context crmApiToken\): must not be empty$/,
    );
  });

  it('checks settings against each other', () => {
    expect(() => loadConfig({ env: { CRM_RETRY_BASE_DELAY_MS: '5000', CRM_RETRY_MAX_DELAY_MS: '1000' } })).toThrow(
      /CRM_RETRY_BASE_DELAY_MS \(--crm-retry-base-delay-ms, context crmRetryBaseDelayMs\): must not exceed CRM_RETRY_MAX_DELAY_MS/,
    );
  });

  it('keeps ledger items 30 days by default, 1 to 3650 days as set', () => {
    expect(loadConfig().ledgerRetentionDays).toBe(30);
    expect(loadConfig({ env: { LEDGER_RETENTION_DAYS: '7' } }).ledgerRetentionDays).toBe(7);
    expect(SETTINGS.ledgerRetentionDays).toMatchObject({ scope: 'pipeline', flag: 'ledger-retention-days' });
    for (const bad of ['0', '3651', '1.5']) {
      expect(() => loadConfig({ env: { LEDGER_RETENTION_DAYS: bad } })).toThrow(
        /LEDGER_RETENTION_DAYS \(--ledger-retention-days, context ledgerRetentionDays\): must be a whole number from 1 to 3650/,
      );
    }
  });

  it('reads partner weights as partner=weight pairs, and names what is wrong with a bad one', () => {
    expect(loadConfig({ env: { PARTNER_WEIGHTS: ' acme=3, beta.co=2 ' } }).partnerWeights).toEqual({
      acme: 3,
      'beta.co': 2,
    });
    for (const [bad, rule] of [
      ['acme', 'must be partner=weight pairs, comma-separated'],
      ['acme=0', 'a weight is a whole number from 1 to 100'],
      ['acme=2.5', 'a weight is a whole number from 1 to 100'],
      ['acme=101', 'a weight is a whole number from 1 to 100'],
      ['ac me=2', 'partner names are letters, digits, . _ -'],
    ] as const) {
      expect(() => loadConfig({ env: { PARTNER_WEIGHTS: bad } })).toThrow(
        `PARTNER_WEIGHTS (--partner-weights, context partnerWeights): ${rule} (got "${bad}")`,
      );
    }
  });

  it('has an environment variable and a flag for every setting, each once', () => {
    const envs = Object.values(SETTINGS).map((s) => s.env);
    const flags = Object.values(SETTINGS).map((s) => s.flag);
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(flags).size).toBe(flags.length);
  });
});
