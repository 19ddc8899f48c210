/**
 * The one-machine command (../shared/local-run.md). `generate` writes partner files; `demo`, `run` and
 * `up` come with the embedded runtime.
 */
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { generateFiles } from '../lambdas/local/generate-files';

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

export function buildProgram(): Command {
  const program = new Command('ingest')
    .description('Partner files over SFTP into the CRM: the pipeline on one machine')
    .showHelpAfterError()
    // Set before the subcommands are added: they copy it, and then throw instead of calling process.exit.
    .exitOverride();

  program
    .command('generate')
    .description('write synthetic partner files that follow file-formats.md')
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

  return program;
}

/** Runs the command line; failures print one clear line on stderr and set the exit status (2: bad usage). */
export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error: unknown) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return;
    // Commander has already printed its own usage errors; ours (bad values) and failures are printed here.
    if (!code?.startsWith('commander.') || error instanceof InvalidArgumentError) {
      process.stderr.write(`ingest: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    process.exitCode = code?.startsWith('commander.') ? 2 : 1;
  }
}

if (require.main === module) void runCli(process.argv);
