import { z } from 'zod';
import { CALL_QUEUE } from '../lambdas/contracts/infrastructure';
import { loadConfig, SETTINGS, type Config, type SettingKey } from '../lambdas/core/config';
import { ConfigError } from '../lambdas/core/errors';
import { PollSourceSchema } from '../lambdas/core/polling/poll-source';
import { dispatchCrmCallsContract, dispatchWorstCaseSeconds } from '../lambdas/dispatch-crm-calls/contract';

/** The log retentions CloudWatch accepts, in days. */
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const SSH_PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/;

/** A partner with a Transfer Family user: `name` is the user and the landing prefix `incoming/<name>/`. */
export const PartnerSchema = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{2,31}$/, { error: '3-32 of a-z, 0-9 and -, starting with a letter or digit' }),
  publicKeys: z
    .array(z.string().regex(SSH_PUBLIC_KEY, { error: 'an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)' }))
    .min(1, { error: 'at least one SSH public key' })
    .max(50),
});
export type Partner = z.infer<typeof PartnerSchema>;

/**
 * A partner's own SFTP server the pipeline collects from (lambdas/core/polling/poll-source.ts): on AWS its host key
 * must be pinned. Its credentials are in a secret: the stack makes one per source (filled after the first deploy),
 * or `secretArn` names one that exists (a complete ARN; its key must let the poller decrypt).
 */
export const DeployedPollSourceSchema = PollSourceSchema.extend({
  hostKeyFingerprint: PollSourceSchema.shape.hostKeyFingerprint.unwrap(),
  secretArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/, {
      error: 'a complete Secrets Manager secret ARN (ending in -XXXXXX)',
    })
    .optional(),
});
export type DeployedPollSource = z.infer<typeof DeployedPollSourceSchema>;

/** What only the deployment needs, beside the pipeline's settings (lambdas/core/config.ts). */
export const DeploymentSchema = z
  .object({
    partners: z.array(PartnerSchema).default([]),
    /** Transfer Family endpoint: public (default) or inside a VPC (then `sftpVpc`). */
    sftpEndpoint: z.enum(['public', 'vpc']).default('public'),
    sftpVpc: z
      .object({
        vpcId: z.string().regex(/^vpc-[0-9a-f]+$/),
        subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/)).min(1),
        securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/)).default([]),
      })
      .optional(),
    /** Where alarms are e-mailed (an SNS subscription); none: subscribe to the topic yourself. */
    alarmEmail: z.email().optional(),
    logRetentionDays: z.coerce
      .number()
      .refine((days) => RETENTION_DAYS.includes(days), { error: `one of ${RETENTION_DAYS.join(', ')}` })
      .default(90),
    /** Days a file may stay in the landing and failed buckets (GDPR: raw partner data does not linger). */
    rawRetentionDays: z.coerce.number().int().min(1).max(3650).default(30),
    /**
     * Minutes with calls queued and none answered that raise an alarm. Not the oldest call's age: a full load
     * keeps calls queued for hours by design.
     */
    stalledCallsAlarmMinutes: z.coerce.number().int().min(1).max(1440).default(30),
    /** Partner SFTP servers to collect from, each on its own schedule. */
    pollSources: z.array(DeployedPollSourceSchema).default([]),
    /**
     * Where the poller runs: none (default) is Lambda's own public egress; a VPC's private subnets route through
     * their NAT gateway, whose Elastic IPs are the address partners allow-list.
     */
    pollerVpc: z
      .object({
        vpcId: z.string().regex(/^vpc-[0-9a-f]+$/),
        subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/)).min(1),
        availabilityZones: z.array(z.string().min(1)).min(1),
      })
      .optional(),
    /** Polls of a source that fail in a row before its alarm. */
    pollFailuresBeforeAlarm: z.coerce.number().int().min(1).max(100).default(3),
  })
  .superRefine((deployment, ctx) => {
    if (deployment.sftpEndpoint === 'vpc' && !deployment.sftpVpc) {
      ctx.addIssue({ code: 'custom', path: ['sftpVpc'], message: 'required when sftpEndpoint is vpc' });
    }
    const names = deployment.partners.map((p) => p.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated) ctx.addIssue({ code: 'custom', path: ['partners'], message: `partner ${repeated} is listed twice` });
    const sources = deployment.pollSources.map((source) => source.name);
    const twice = sources.find((name, index) => sources.indexOf(name) !== index);
    if (twice) ctx.addIssue({ code: 'custom', path: ['pollSources'], message: `source ${twice} is listed twice` });
    if (
      deployment.pollerVpc &&
      deployment.pollerVpc.availabilityZones.length !== deployment.pollerVpc.subnetIds.length
    ) {
      ctx.addIssue({ code: 'custom', path: ['pollerVpc', 'availabilityZones'], message: 'one per subnet, in order' });
    }
  });
export type Deployment = z.infer<typeof DeploymentSchema>;

export interface AppConfig {
  /** The pipeline's settings, handed to the Lambdas as their environment. */
  readonly settings: Config;
  readonly deployment: Deployment;
}

/** Context keys that were renamed: naming the old one fails, rather than being silently ignored. */
const RENAMED_KEYS: Readonly<Record<string, string>> = {
  oldestCallAlarmMinutes: 'stalledCallsAlarmMinutes (minutes with calls queued and none answered)',
};

/** Invocations of the dispatcher at once: the SQS event source's maximum concurrency takes 2 at least. */
export const dispatchInvocationsAtOnce = (settings: Pick<Config, 'dispatchConcurrency'>) =>
  Math.max(2, settings.dispatchConcurrency);

/**
 * The deployment's configuration from CDK context (`cdk.json` or `-c key=value`): the pipeline's settings by
 * their keys (e.g. `callsPerMinute`) and the deployment's own (partners, endpoint, alarms, retention).
 * @throws ConfigError naming every bad key.
 */
export function loadAppConfig(context: (key: string) => unknown): AppConfig {
  const flags: Partial<Record<SettingKey, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const value = context(key);
    if (value !== undefined) flags[key] = value;
  }
  const settings = loadConfig({ flags });
  const input = Object.fromEntries(
    Object.keys(DeploymentSchema.shape)
      .map((key) => [key, context(key)])
      .filter(([, value]) => value !== undefined),
  );
  const parsed = DeploymentSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  context ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  if (!settings.crmBaseUrl) {
    throw new ConfigError('Invalid configuration:\n  context crmBaseUrl (CRM_BASE_URL): required for a deployment');
  }
  const renamed = Object.keys(RENAMED_KEYS).filter((key) => context(key) !== undefined);
  if (renamed.length > 0) {
    const lines = renamed.map((key) => `  context ${key}: renamed to ${RENAMED_KEYS[key]}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  // Every call an invocation holds must be able to finish within the dispatcher's timeout, or Lambda stops it.
  const callsInFlight = dispatchInvocationsAtOnce(settings) * CALL_QUEUE.eventSourceBatchSize;
  const worstCase = dispatchWorstCaseSeconds(settings, callsInFlight);
  if (worstCase > dispatchCrmCallsContract.timeoutSeconds) {
    throw new ConfigError(
      `Invalid configuration:\n  context crmRetryAttempts, crmTimeoutMs, dispatchConcurrency, callsPerMinute: one CRM ` +
        `call may take ${worstCase} s (limiter wait, retries, back-off), over the dispatcher's ` +
        `${dispatchCrmCallsContract.timeoutSeconds} s timeout; fewer retries or dispatchers, a shorter timeout, or more calls per minute`,
    );
  }
  return { settings, deployment: parsed.data };
}
