/**
 * The one-machine command (docs/one-machine.md): `demo`, `run`, `up` on the embedded runtime, and
 * `generate` for partner files. Settings come from flags, then the environment (lambdas/core/config.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { loadConfig, SETTINGS, type Config, type SettingKey } from '../lambdas/core/config';
import { ConfigError } from '../lambdas/core/errors';
import { generateFiles } from '../lambdas/local/cli/generate-files';
import { RunStopped } from '../lambdas/local/cli/ingest-runtime';
import {
  inputFiles,
  runDemo,
  runFiles,
  pinHostKey,
  runPolled,
  runUp,
  type CommandIo,
  type CommandOptions,
  type PollOption,
} from '../lambdas/local/cli/ingest-commands';
import { runControl, runFilesList } from '../lambdas/local/cli/control-commands';
import { PollSourceSchema } from '../lambdas/core/polling/poll-source';
import type { SourceCredentials } from '../lambdas/adapters/sftp/sftp-folder';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Captured before a command routes other stdout writes (the handlers' logs) to its log file.
const stdoutWrite = process.stdout.write.bind(process.stdout);
const stderrWrite = process.stderr.write.bind(process.stderr);

const GenerateArgs = z.object({
  users: z.coerce.number().int().min(0, { error: 'must be a whole number >= 0' }),
  transactions: z.coerce.number().int().min(0, { error: 'must be a whole number >= 0' }),
  out: z.string().min(1),
  gzip: z.boolean().default(false),
  format: z.enum(['csv', 'jsonl'], { error: 'must be csv or jsonl' }).default('csv'),
  badRate: z.coerce
    .number()
    .min(0, { error: 'must be from 0 to 1' })
    .max(1, { error: 'must be from 0 to 1' })
    .default(0),
  seed: z.string().default('1'),
  partner: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, { error: 'letters, digits and dashes only' })
    .default('demo'),
  date: z
    .string()
    .regex(/^\d{8}$/, { error: 'must be yyyymmdd' })
    .default('20261124'),
});

function parseArgs<T>(schema: z.ZodType<T>, options: unknown): T {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const flag = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const problems = parsed.error.issues.map((issue) => `--${flag(String(issue.path[0]))}: ${issue.message}`);
  throw new InvalidArgumentError(problems.join('; '));
}

/**
 * Every setting is a flag of demo/run/up, from the one table (SETTINGS) that docs/configuration.md documents:
 * the docs and the CLI cannot disagree. The archive's lifecycle settings are taken and have no effect on one
 * machine (the embedded S3 has no lifecycle rules), as their help says.
 */
const FLAG_SETTINGS = Object.keys(SETTINGS) as SettingKey[];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** demo, run and up share the settings' flags and the runtime's own. */
function withRuntimeOptions(command: Command): Command {
  for (const key of FLAG_SETTINGS) {
    const setting = SETTINGS[key];
    command.addOption(new Option(`--${setting.flag} <value>`, setting.help).env(setting.env));
  }
  return command
    .option(
      '--partner <name>',
      'partner (SFTP user) the files are uploaded as; repeat for more users (default: demo)',
      collect,
    )
    .option('--json', 'print one JSON document instead of the table (up: one JSON line, then one per finished file)')
    .option('--sftp-password <password>', 'password of the SFTP users (default: a random one, printed by `up`)')
    .option(
      '--host-key <file>',
      'the SFTP server host key (PEM), made there if missing, so clients see the same key each start (default: <report-dir>/.ingest/ssh_host_key)',
    )
    .option('--poll <url>', 'collect from an SFTP server instead of uploading (sftp://user@host:port/dir)')
    .option('--poll-key <file>', 'private key for --poll (else the password in SFTP_PASSWORD)')
    .option(
      '--poll-host-key <fingerprint>',
      "the --poll server's host key, pinned (SHA256:...; else shown and trusted)",
    )
    .option('--poll-interval <seconds>', 'seconds between two looks at the --poll folder', '5')
    .option(
      '--api-port <port>',
      'where the operations API and the live dashboard listen on 127.0.0.1 (up: default a free port; run and demo: only when given)',
    );
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const PARTNER = /^[A-Za-z0-9-]+$/;

/** Flags and environment into validated settings and the runtime's options; bad ones throw ConfigError. */
function commandOptions(raw: Record<string, unknown>, interrupted: Promise<string>): CommandOptions {
  const flags: Partial<Record<SettingKey, unknown>> = {};
  for (const key of FLAG_SETTINGS) {
    const value = raw[camel(SETTINGS[key].flag)];
    if (value !== undefined) flags[key] = value;
  }
  const settings: Config = loadConfig({ env: process.env, flags });
  if (settings.crmBaseUrl && !settings.crmApiToken) {
    throw new ConfigError('CRM_API_TOKEN (--crm-token): required with --crm-url (CRM_BASE_URL)');
  }
  const partners = (raw.partner as string[] | undefined) ?? ['demo'];
  const apiPort = raw.apiPort === undefined ? undefined : Number(raw.apiPort);
  if (apiPort !== undefined && !(Number.isInteger(apiPort) && apiPort >= 0 && apiPort <= 65535)) {
    throw new ConfigError(`--api-port: ${String(raw.apiPort)}: a port number from 0 to 65535`);
  }
  const badPartner = partners.find((partner) => !PARTNER.test(partner));
  if (badPartner) throw new ConfigError(`--partner: ${badPartner}: letters, digits and dashes only`);
  return {
    settings,
    partners,
    json: raw.json === true,
    ...(apiPort === undefined ? {} : { apiPort }),
    ...(typeof raw.sftpPassword === 'string' ? { sftpPassword: raw.sftpPassword } : {}),
    hostKeyFile: typeof raw.hostKey === 'string' ? raw.hostKey : join(settings.reportDir, '.ingest', 'ssh_host_key'),
    ...(settings.crmApiToken && !settings.crmBaseUrl ? { simulator: { token: settings.crmApiToken } } : {}),
    ...(typeof raw.poll === 'string' ? { poll: pollOption(raw, partners[0] ?? 'demo') } : {}),
    interrupted,
  };
}

/** `--poll sftp://user@host:port/dir` with its key file or SFTP_PASSWORD: the watcher's one source. */
function pollOption(raw: Record<string, unknown>, partner: string): PollOption {
  const url = String(raw.poll);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--poll: ${url}: not a URL; expected sftp://user@host:port/dir`);
  }
  if (parsed.protocol !== 'sftp:' || !parsed.hostname || !parsed.username) {
    throw new ConfigError(`--poll: ${url}: expected sftp://user@host:port/dir`);
  }
  if (parsed.password) throw new ConfigError('--poll: put the password in SFTP_PASSWORD, not in the URL');
  let credentials: SourceCredentials;
  if (typeof raw.pollKey === 'string') {
    try {
      credentials = {
        privateKey: readFileSync(raw.pollKey, 'utf8'),
        ...(process.env.SFTP_KEY_PASSPHRASE ? { passphrase: process.env.SFTP_KEY_PASSPHRASE } : {}),
      };
    } catch (error) {
      throw new ConfigError(`--poll-key: cannot read ${raw.pollKey}: ${(error as Error).message}`);
    }
  } else if (process.env.SFTP_PASSWORD) {
    credentials = { password: process.env.SFTP_PASSWORD };
  } else {
    throw new ConfigError('--poll: needs SFTP_PASSWORD (the password) or --poll-key FILE (a private key)');
  }
  const interval = Number(raw.pollInterval);
  if (!Number.isFinite(interval) || interval < 1 || interval > 3600) {
    throw new ConfigError('--poll-interval: must be a number of seconds from 1 to 3600');
  }
  const source = PollSourceSchema.safeParse({
    name: 'poll',
    partner,
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 22,
    username: decodeURIComponent(parsed.username),
    remoteDir: decodeURIComponent(parsed.pathname) || '/',
    resultsDir: 'reports',
    ...(typeof raw.pollHostKey === 'string' ? { hostKeyFingerprint: raw.pollHostKey } : {}),
  });
  if (!source.success) {
    const flagOf: Record<string, string> = { hostKeyFingerprint: '--poll-host-key', partner: '--partner' };
    const problems = source.error.issues.map((issue) => {
      const field = String(issue.path[0]);
      return `${flagOf[field] ?? `--poll (${field})`}: ${issue.message}`;
    });
    throw new ConfigError(problems.join('; '));
  }
  return {
    url: `sftp://${parsed.username}@${parsed.host}${parsed.pathname}`,
    source: source.data,
    credentials,
    intervalMs: interval * 1000,
  };
}

/** Runs `command` with the --poll server's host key pinned (learnt first when not given); exit 1 if unreachable. */
async function withPinnedHostKey(
  options: CommandOptions,
  command: (options: CommandOptions) => Promise<number>,
): Promise<number> {
  if (!options.poll) return command(options);
  try {
    return await command({ ...options, poll: await pinHostKey(options.poll, io()) });
  } catch (error) {
    if (!(error instanceof RunStopped)) throw error;
    process.stderr.write(`ingest: ${error.message}\n`);
    return 1;
  }
}

/** Resolves with a reason on the first Ctrl-C (or SIGTERM); a second one exits at once. */
function interruption(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      resolve(`interrupted (${signal})`);
      process.once(signal, () => process.exit(130));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

const io = (): CommandIo => ({
  out: (text) => void stdoutWrite(text),
  err: (text) => void stderrWrite(text),
  progress: process.stderr.isTTY === true,
});

export function buildProgram(): Command {
  const program = new Command('ingest')
    .description('Partner files over SFTP into the CRM: the pipeline on one machine')
    .showHelpAfterError()
    // Set before the subcommands are added: they copy it, and then throw instead of calling process.exit.
    .exitOverride();

  program
    .command('generate')
    .description('write synthetic partner files that follow docs/partner-files.md')
    .requiredOption('--users <n>', 'users to write')
    .requiredOption('--transactions <n>', 'transactions to write')
    .requiredOption('--out <dir>', 'output directory')
    .option('--gzip', 'gzip-compress the files')
    .option('--format <format>', 'csv or jsonl', 'csv')
    .option('--bad-rate <r>', 'share of rows with one bad value (0..1)', '0')
    .option('--seed <s>', 'seed: the same seed writes the same bytes', '1')
    .option('--partner <name>', 'partner name in the file names', 'demo')
    .option('--date <yyyymmdd>', 'date in the file names', '20261124')
    .action(async (options: unknown) => {
      const args = parseArgs(GenerateArgs, options);
      const files = await generateFiles({ ...args, outDir: args.out });
      for (const file of files) {
        const bad = Object.values(file.bad).reduce((sum, n) => sum + n, 0);
        process.stdout.write(`${file.path}\t${file.kind}\t${file.records} records\t${bad} bad\n`);
      }
    });

  withRuntimeOptions(
    program
      .command('run')
      .description('process files end to end on one machine: SFTP upload, workflow, CRM calls, reports')
      .argument(
        '[file-or-dir...]',
        'partner files, or directories of them (users files first, then by name); none with --poll',
      ),
  ).action(async (paths: string[], raw: Record<string, unknown>) => {
    const options = commandOptions(raw, interruption());
    if (options.poll && paths.length > 0) throw new ConfigError('run: give files to upload, or --poll, not both');
    if (options.poll)
      process.exitCode = await withPinnedHostKey(options, (pinned) => runPolled(pinned.poll!, pinned, io()));
    else if (paths.length === 0) throw new ConfigError('run: name the files or folders to ingest, or --poll URL');
    else process.exitCode = await runFiles([inputFiles(paths)], options, io());
  });

  withRuntimeOptions(
    program.command('up').description('start the pipeline and its SFTP server, and process every upload until Ctrl-C'),
  ).action(async (raw: Record<string, unknown>) => {
    process.exitCode = await withPinnedHostKey(commandOptions(raw, interruption()), (options) => runUp(options, io()));
  });

  withRuntimeOptions(
    program
      .command('demo')
      .description('a small sample load showing every outcome (npm start); 4404 retries every 10 s unless set'),
  ).action(async (raw: Record<string, unknown>) => {
    if (raw.poll !== undefined) throw new ConfigError('demo: --poll is for run and up');
    const demoDefaults = process.env.RETRY_LATER_DELAY_S ? {} : { retryLaterDelay: '10' };
    process.exitCode = await runDemo(commandOptions({ ...demoDefaults, ...raw }, interruption()), io());
  });

  // Against a running `ingest up` (found through its report directory): what is in flight, and an operator's hold.
  const controlled = (command: Command) =>
    command
      .addOption(
        new Option('--report-dir <dir>', 'the report directory of the running `ingest up`')
          .env(SETTINGS.reportDir.env)
          .default('./ingest-reports'),
      )
      .option('--json', 'print one JSON document');
  controlled(
    program
      .command('files')
      .description('the files in flight in a running `ingest up`: state, what each waits for, ETA'),
  ).action(async (raw: { reportDir: string; json?: boolean }) => {
    process.exitCode = await runFilesList({ reportDir: raw.reportDir, json: raw.json === true }, io());
  });
  const actions = {
    pause: 'stop new CRM calls for a file (or every file of --partner) in a running `ingest up`, within seconds',
    resume: 'let a paused file (or partner) send again',
    cancel: 'send nothing more for a file (or every file of --partner): unsent records fail as CANCELLED',
  } as const;
  for (const [action, description] of Object.entries(actions) as [keyof typeof actions, string][]) {
    controlled(
      program
        .command(action)
        .description(description)
        .argument('[file]', "the file's SHA-256, its first 8+ hex digits, or its name (see `ingest files`)")
        .option('--partner <name>', 'every file of this partner'),
    ).action(async (file: string | undefined, raw: { reportDir: string; json?: boolean; partner?: string }) => {
      const target = { ...(file ? { file } : {}), ...(raw.partner ? { partner: raw.partner } : {}) };
      process.exitCode = await runControl(action, target, { reportDir: raw.reportDir, json: raw.json === true }, io());
    });
  }

  return program;
}

/** Runs the command line; failures print one clear line on stderr and set the exit status (2: bad usage). */
export async function runCli(argv: readonly string[], program: Command = buildProgram()): Promise<void> {
  try {
    await program.parseAsync([...argv]);
  } catch (error: unknown) {
    // Only commander's own codes are strings starting with `commander.`; others (an SFTP status, errno) may be numbers.
    const code: unknown = (error as { code?: unknown }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return;
    const usage = typeof code === 'string' && code.startsWith('commander.');
    // Commander has already printed its own usage errors; ours (bad values) and failures are printed here.
    if (!usage || error instanceof InvalidArgumentError) {
      process.stderr.write(`ingest: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    process.exitCode = usage || error instanceof ConfigError ? 2 : 1;
  }
}

/** Runs the command line, then exits: a keep-alive socket or timer a handler leaves must not hold the process. */
export async function main(argv: readonly string[]): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // A crash is shown on the terminal, not only in ingest.log (where the handlers' output goes during a run).
  // The embedded DynamoDB's process exits with this one (it watches its IPC channel).
  const crash = (error: unknown) => {
    stderrWrite(
      `ingest: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  await runCli(argv);
  process.exit();
}

if (require.main === module) void main(process.argv);
