import { z } from 'zod';
import { ConfigError } from './errors';

const GIB = 1024 ** 3;

const integer = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be a whole number from ${min} to ${max}` })
    .max(max, { error: `must be a whole number from ${min} to ${max}` });

/** The file encodings a deployment can accept; `gzip` applies on top of the other two. */
export const ENCODINGS = ['csv', 'jsonl', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] as const;

/**
 * Who reads a setting: `pipeline`, the functions (each gets only those its contract names, as environment);
 * `deployment`, the infrastructure (CDK, and the one-machine wiring in its place: state machine substitutions,
 * concurrency, schedules, lifecycle rules); `cli`, the one-machine command alone.
 */
export type SettingScope = 'pipeline' | 'deployment' | 'cli';

/**
 * Every setting: its environment variable, its command-line flag, who reads it, its rule (zod, with the
 * default of DESIGN.md), and whether its value may be echoed in an error. This one table drives the schema,
 * the error messages, the CLI options, the functions' environments and the configuration docs.
 */
export const SETTINGS = {
  crmBaseUrl: {
    env: 'CRM_BASE_URL',
    scope: 'pipeline',
    flag: 'crm-url',
    secret: false,
    schema: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    help: 'CRM base URL (default: the embedded CRM simulator locally)',
  },
  crmApiToken: {
    env: 'CRM_API_TOKEN',
    scope: 'pipeline',
    flag: 'crm-token',
    secret: true,
    schema: z.string().min(1, { error: 'must not be empty' }).optional(),
    help: 'CRM bearer token (Secrets Manager on AWS)',
  },
  callsPerMinute: {
    env: 'CRM_CALLS_PER_MINUTE',
    scope: 'pipeline',
    flag: 'calls-per-minute',
    secret: false,
    schema: integer(1, 1_000_000).default(1000),
    help: 'CRM calls allowed in any rolling 60 seconds, all dispatchers together',
  },
  limitWindowSeconds: {
    env: 'CRM_LIMIT_WINDOW_S',
    scope: 'pipeline',
    flag: 'limit-window',
    secret: false,
    schema: integer(1, 3600).default(60),
    help: 'the rolling window CRM_CALLS_PER_MINUTE counts in; change it only for a CRM with another window (scaled tests)',
  },
  batchSize: {
    env: 'CRM_BATCH_SIZE',
    scope: 'pipeline',
    flag: 'batch-size',
    secret: false,
    schema: integer(1, 100).default(100),
    help: 'records per CRM call (the CRM takes at most 100)',
  },
  batchMaxBytes: {
    env: 'BATCH_MAX_BYTES',
    scope: 'pipeline',
    flag: 'batch-max-bytes',
    secret: false,
    // A batch travels as one SQS message / state payload (256 KiB): 200 KiB of records leaves room for the envelope.
    schema: integer(4096, 240 * 1024).default(200 * 1024),
    help: 'bytes of one CRM call body (a batch travels as one message, capped at 256 KiB)',
  },
  limiterJitterMs: {
    env: 'CRM_LIMITER_JITTER_MS',
    scope: 'pipeline',
    flag: 'limiter-jitter-ms',
    secret: false,
    schema: integer(0, 10_000).default(500),
    help: 'how late a call may reach the CRM after its limiter slot; the pacing allows for it (utilisation = 60 s / (60 s + this))',
  },
  dispatchConcurrency: {
    env: 'DISPATCH_CONCURRENCY',
    scope: 'deployment',
    flag: 'concurrency',
    secret: false,
    schema: integer(1, 1000).default(8),
    help: 'concurrent CRM dispatchers',
  },
  crmTimeoutMs: {
    env: 'CRM_TIMEOUT_MS',
    scope: 'pipeline',
    flag: 'crm-timeout-ms',
    secret: false,
    schema: integer(100, 120_000).default(15_000),
    help: 'timeout of one CRM call',
  },
  crmRetryAttempts: {
    env: 'CRM_RETRY_ATTEMPTS',
    scope: 'pipeline',
    flag: 'crm-retry-attempts',
    secret: false,
    schema: integer(0, 20).default(6),
    help: 'retries of a transient CRM failure (5xx, timeout, reset) before the batch goes to the dead-letter path',
  },
  crmRetryBaseDelayMs: {
    env: 'CRM_RETRY_BASE_DELAY_MS',
    scope: 'pipeline',
    flag: 'crm-retry-base-delay-ms',
    secret: false,
    schema: integer(1, 60_000).default(500),
    help: 'first back-off of a transient failure (exponential, full jitter)',
  },
  crmRetryMaxDelayMs: {
    env: 'CRM_RETRY_MAX_DELAY_MS',
    scope: 'pipeline',
    flag: 'crm-retry-max-delay-ms',
    secret: false,
    schema: integer(1, 900_000).default(60_000),
    help: 'largest back-off of a transient failure',
  },
  retryLaterDelaySeconds: {
    env: 'RETRY_LATER_DELAY_S',
    scope: 'pipeline',
    flag: 'retry-later-delay',
    secret: false,
    schema: integer(0, 86_400).default(60),
    help: 'seconds before 4404 (customer not found) records are tried again',
  },
  retryLaterAttempts: {
    env: 'RETRY_LATER_ATTEMPTS',
    scope: 'deployment',
    flag: 'retry-later-attempts',
    secret: false,
    schema: integer(0, 20).default(3),
    help: 'how many times 4404 records are tried again before they fail',
  },
  phaseCheckSeconds: {
    env: 'PHASE_CHECK_INTERVAL_S',
    scope: 'pipeline',
    flag: 'phase-check-interval',
    secret: false,
    schema: integer(1, 86_400).default(900),
    help: 'how long a phase waits for its last answer before it recounts the ledger (heals a lost counter update)',
  },
  sendWindowBatches: {
    env: 'SEND_WINDOW_BATCHES',
    scope: 'pipeline',
    flag: 'send-window',
    secret: false,
    schema: integer(10, 100_000).default(100),
    help: "batches of one file queued and unanswered at most (times its partner's weight); refilled as answers come, so files share the CRM budget in proportion to their windows",
  },
  partnerWeights: {
    env: 'PARTNER_WEIGHTS',
    scope: 'pipeline',
    flag: 'partner-weights',
    secret: false,
    schema: z
      .preprocess(
        (value) =>
          typeof value === 'string'
            ? Object.fromEntries(
                value
                  .split(',')
                  .map((part) => part.trim())
                  .filter(Boolean)
                  .map((part) => {
                    const [name = '', weight = ''] = part.split('=');
                    return [name.trim(), weight.trim() === '' ? Number.NaN : Number(weight)];
                  }),
              )
            : value,
        z.record(
          z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'partner names are letters, digits, . _ -' }),
          z
            .number({ error: 'must be partner=weight pairs, comma-separated' })
            .int({ error: 'a weight is a whole number from 1 to 100' })
            .min(1, { error: 'a weight is a whole number from 1 to 100' })
            .max(100, { error: 'a weight is a whole number from 1 to 100' }),
          // zod reports a bad key as "Invalid key in record": say which rule it broke.
          { error: (issue) => (issue.code === 'invalid_key' ? 'partner names are letters, digits, . _ -' : undefined) },
        ),
      )
      .default({}),
    help: "a partner's share of the CRM budget against the others' (partner=weight, comma-separated, 1-100; default 1 each)",
  },
  orderingWindowSeconds: {
    env: 'ORDERING_WINDOW_S',
    scope: 'pipeline',
    flag: 'ordering-window',
    secret: false,
    schema: integer(0, 86_400).default(300),
    help: 'a transactions file waits for users files that landed before it or up to this many seconds after it; it holds its first call this long for them to land',
  },
  orderingScope: {
    env: 'ORDERING_SCOPE',
    scope: 'pipeline',
    flag: 'ordering-scope',
    secret: false,
    schema: z.enum(['partner', 'any'], { error: 'must be partner or any' }).default('partner'),
    help: "whose users files a transactions file waits for: its own partner's, or any partner's",
  },
  retryLaterMaxWaitSeconds: {
    env: 'RETRY_LATER_MAX_WAIT_S',
    scope: 'pipeline',
    flag: 'retry-later-max-wait',
    secret: false,
    schema: integer(0, 30 * 86_400).default(86_400),
    help: "longest 4404 records wait for their partner's users files in flight; past it they fail as 4404",
  },
  scheduleCheckSeconds: {
    env: 'SCHEDULE_CHECK_S',
    scope: 'pipeline',
    flag: 'schedule-check-interval',
    secret: false,
    schema: integer(1, 3600).default(300),
    help: 'a waiting or paused file is woken when what held it changes; it also asks again after this many seconds',
  },
  sweepIntervalMinutes: {
    env: 'SWEEP_INTERVAL_MINUTES',
    scope: 'deployment',
    flag: 'sweep-interval-minutes',
    secret: false,
    schema: integer(1, 1440).default(15),
    help: 'interval of the landing-zone sweep that picks up files an event missed',
  },
  acceptedEncodings: {
    env: 'ACCEPTED_ENCODINGS',
    scope: 'pipeline',
    flag: 'accepted-encodings',
    secret: false,
    schema: z
      .preprocess(
        (value) =>
          typeof value === 'string'
            ? value
                .split(',')
                .map((part) => part.trim().toLowerCase())
                .filter(Boolean)
            : value,
        z.array(z.enum(ENCODINGS, { error: `must be a comma-separated list of ${ENCODINGS.join(', ')}` })).min(1, {
          error: 'must name at least one encoding',
        }),
      )
      .default([...ENCODINGS]),
    help: 'accepted encodings, comma-separated',
  },
  maxFileSizeBytes: {
    env: 'MAX_FILE_SIZE_BYTES',
    scope: 'pipeline',
    flag: 'max-file-size-bytes',
    secret: false,
    schema: integer(1, 5 * 1024 * GIB).default(10 * GIB),
    help: 'largest accepted file; a larger one is quarantined',
  },
  maxDecompressedBytes: {
    env: 'MAX_DECOMPRESSED_BYTES',
    scope: 'pipeline',
    flag: 'max-decompressed-bytes',
    secret: false,
    // MAX_FILE_SIZE_BYTES counts bytes as uploaded: 1 GB of newlines gzips to 1 MB. 50 GiB is 5x the 10 GiB
    // upload limit (CSV gzips 4-10x) and several times the text of the largest files expected (tens of millions
    // of records); each function that reads a file stops the read once this much text has come out.
    schema: integer(1, 50 * 1024 * GIB).default(50 * GIB),
    help: 'largest text a file may hold once gunzipped (a plain file: its size), 5x MAX_FILE_SIZE_BYTES as CSV gzips 4-10x; a larger file (a gzip bomb) is quarantined as soon as its text passes this',
  },
  archiveTransitionDays: {
    env: 'ARCHIVE_TRANSITION_DAYS',
    scope: 'deployment',
    flag: 'archive-transition-days',
    secret: false,
    schema: integer(1, 3650).default(30),
    help: 'days before archived files move to Glacier (AWS: no effect on one machine)',
  },
  archiveNoncurrentExpiryDays: {
    env: 'ARCHIVE_NONCURRENT_EXPIRY_DAYS',
    scope: 'deployment',
    flag: 'archive-noncurrent-expiry-days',
    secret: false,
    schema: integer(1, 3650).default(90),
    help: 'days before noncurrent versions of archived files expire (AWS: no effect on one machine)',
  },
  ledgerRetentionDays: {
    env: 'LEDGER_RETENTION_DAYS',
    scope: 'pipeline',
    flag: 'ledger-retention-days',
    secret: false,
    schema: integer(1, 3650).default(30),
    help: "days a file's ledger items (claim, phase counters, answers) are kept after their last write; the claim and summary are written last when the file finishes, so a re-upload of the same bytes is a duplicate until then; keep it longer than a file takes (DynamoDB TTL; nothing expires on one machine)",
  },
  logLevel: {
    env: 'LOG_LEVEL',
    scope: 'pipeline',
    flag: 'log-level',
    secret: false,
    schema: z
      .preprocess(
        (value) => (typeof value === 'string' ? value.toUpperCase() : value),
        z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
      )
      .default('INFO'),
    help: 'log level',
  },
  reportDir: {
    env: 'REPORT_DIR',
    scope: 'cli',
    flag: 'report-dir',
    secret: false,
    schema: z.string().min(1, { error: 'must not be empty' }).default('./ingest-reports'),
    help: 'where the one-machine runner writes reports',
  },
  localFunctionTimeoutSeconds: {
    env: 'LOCAL_FUNCTION_TIMEOUT_S',
    scope: 'cli',
    flag: 'function-timeout',
    secret: false,
    schema: integer(1, 900).default(900),
    help: "one machine: every handler's timeout, as Lambda's (the smaller of this and the function's own); shorter forces a scaled run's steps to slice",
  },
} as const;

export type SettingKey = keyof typeof SETTINGS;
/** The settings functions may read. */
export type PipelineSettingKey = {
  [K in SettingKey]: (typeof SETTINGS)[K]['scope'] extends 'pipeline' ? K : never;
}[SettingKey];

type Shape = { [K in SettingKey]: (typeof SETTINGS)[K]['schema'] };
const shape = Object.fromEntries(Object.entries(SETTINGS).map(([key, setting]) => [key, setting.schema])) as Shape;

export const ConfigSchema = z.object(shape).superRefine((config, ctx) => {
  if (config.crmRetryBaseDelayMs > config.crmRetryMaxDelayMs) {
    ctx.addIssue({ code: 'custom', path: ['crmRetryBaseDelayMs'], message: 'must not exceed CRM_RETRY_MAX_DELAY_MS' });
  }
});

export type Config = z.infer<typeof ConfigSchema>;

export interface ConfigSources {
  /** Environment variables (on Lambda, the function's; in the CLI, the process's). */
  readonly env?: Record<string, string | undefined>;
  /** Values from command-line flags or props, by setting key; they win over the environment. */
  readonly flags?: Partial<Record<SettingKey, unknown>>;
}

/**
 * Reads the configuration once, at start: flags win over the environment, which wins over the defaults.
 * @throws ConfigError naming every bad setting (its variable and flag), the rule and, unless secret, the value.
 */
export function loadConfig({ env = {}, flags = {} }: ConfigSources = {}): Config {
  return parseSettings(ConfigSchema, Object.keys(SETTINGS) as SettingKey[], env, flags) as Config;
}

/**
 * Reads only `keys` from the environment, with their defaults: a function's settings, by its contract.
 * @throws ConfigError naming every bad one, as {@link loadConfig} does.
 */
export function loadSettings<K extends SettingKey>(
  keys: readonly K[],
  env: Record<string, string | undefined>,
): Pick<Config, K> {
  const shape = Object.fromEntries(keys.map((key) => [key, SETTINGS[key].schema]));
  const schema = z.object(shape).superRefine((config: Record<string, unknown>, ctx) => {
    const base = config.crmRetryBaseDelayMs as number | undefined;
    const max = config.crmRetryMaxDelayMs as number | undefined;
    if (base !== undefined && max !== undefined && base > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['crmRetryBaseDelayMs'],
        message: 'must not exceed CRM_RETRY_MAX_DELAY_MS',
      });
    }
  });
  return parseSettings(schema, keys, env, {}) as Pick<Config, K>;
}

function parseSettings(
  schema: z.ZodType,
  keys: readonly SettingKey[],
  env: Record<string, string | undefined>,
  flags: Partial<Record<SettingKey, unknown>>,
): unknown {
  const input: Record<string, unknown> = {};
  for (const key of keys) {
    const setting = SETTINGS[key];
    const fromFlag = flags[key];
    const fromEnv = env[setting.env];
    const value = fromFlag ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
    if (value !== undefined) input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const key = issue.path[0] as SettingKey;
    const setting = SETTINGS[key];
    const shown = setting.secret || input[key] === undefined ? '' : ` (got ${JSON.stringify(input[key])})`;
    return `  ${setting.env} (--${setting.flag}, context ${key}): ${issue.message}${shown}`;
  });
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

/**
 * The settings as environment variables, by their names: how the Lambdas (and the one-machine runtime's
 * handlers) receive the configuration. Unset optional settings are left out; `secrets: false` leaves out
 * the secret ones (on AWS the CRM token comes from Secrets Manager).
 */
export function configEnvironment(
  config: Partial<Config>,
  {
    secrets = true,
    keys = Object.keys(SETTINGS) as SettingKey[],
  }: { secrets?: boolean; keys?: readonly SettingKey[] } = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of keys) {
    const setting = SETTINGS[key];
    const value = config[key];
    if (value === undefined || (setting.secret && !secrets)) continue;
    env[setting.env] = Array.isArray(value)
      ? value.join(',')
      : typeof value === 'object'
        ? Object.entries(value as Record<string, unknown>)
            .map(([name, item]) => `${name}=${String(item)}`)
            .join(',')
        : String(value);
  }
  return env;
}
