import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { awsClients } from '../../adapters/aws/clients';
import { DynamoDbSchedule } from '../../adapters/aws/dynamodb-schedule';
import { SfnTaskNotifier } from '../../adapters/aws/sfn-task-notifier';
import {
  controlFiles,
  ControlRefused,
  etaSeconds,
  type ControlAction,
  type ScheduledFile,
  type ScheduleView,
} from '../../core/schedule/schedule';
import { embeddedServicesClients, LOCAL_NAMES } from '../wiring/local-pipeline';
import type { CommandIo } from './ingest-commands';
import { RunStopped } from './ingest-runtime';

/**
 * Where a running `ingest up` can be reached by the other `ingest` commands (`files`, `pause`, `resume`,
 * `cancel`): its embedded DynamoDB (the schedule) and Step Functions stand-in (to wake a waiting file), in
 * `<report dir>/ingest-up.json` while it runs. Loopback endpoints only; no credentials are needed for them.
 */
const UpStateSchema = z.object({
  pid: z.number().int(),
  dynamodb: z.url(),
  stepFunctions: z.url(),
  callsPerMinute: z.number().int().min(1),
  partnerWeights: z.record(z.string(), z.number()),
});
export type UpState = z.infer<typeof UpStateSchema>;

const upStatePath = (reportDir: string) => join(reportDir, 'ingest-up.json');

export function writeUpState(reportDir: string, state: UpState): () => void {
  const path = upStatePath(reportDir);
  writeFileSync(path, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  return () => rmSync(path, { force: true });
}

function readUpState(reportDir: string): UpState {
  const path = upStatePath(reportDir);
  if (!existsSync(path)) {
    throw new RunStopped(`no running \`ingest up\` found (no ${path}); start one with the same --report-dir`);
  }
  const parsed = UpStateSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new RunStopped(`${path} is not what \`ingest up\` writes`);
  try {
    process.kill(parsed.data.pid, 0);
  } catch {
    throw new RunStopped(`the \`ingest up\` that wrote ${path} (pid ${parsed.data.pid}) is no longer running`);
  }
  return parsed.data;
}

function connect(state: UpState) {
  const clients = awsClients(
    embeddedServicesClients({ dynamodb: state.dynamodb, stepFunctionsAndEvents: state.stepFunctions }),
  );
  return {
    schedule: new DynamoDbSchedule(clients.dynamodb, LOCAL_NAMES.ledgerTable),
    notifier: new SfnTaskNotifier(clients.sfn),
  };
}

/** A file named by its SHA-256, the start of it (8 hex digits or more), or its name; one file, or a clear error. */
export function findFile(view: ScheduleView, name: string): ScheduledFile {
  const matches = /^[0-9a-f]{8,64}$/.test(name)
    ? view.files.filter((file) => file.fileId.startsWith(name))
    : view.files.filter((file) => file.name === name);
  if (matches.length === 1) return matches[0] as ScheduledFile;
  if (matches.length === 0) throw new ControlRefused(`no file ${name} in flight (see \`ingest files\`)`);
  throw new ControlRefused(`${name} names ${matches.length} files in flight: give its SHA-256 (see \`ingest files\`)`);
}

/** One line a file: what it does now, for people (`ingest files`, and after a pause, resume or cancel). */
export function describeFile(
  file: ScheduledFile,
  view: ScheduleView,
  state: Pick<UpState, 'callsPerMinute' | 'partnerWeights'>,
) {
  const eta = etaSeconds(file, view, { partnerWeights: state.partnerWeights }, state.callsPerMinute);
  const progress =
    file.batchesEstimate !== undefined && file.answered !== undefined
      ? `${file.answered}/${file.batchesEstimate} calls`
      : file.sent !== undefined
        ? `${file.answered ?? 0}/${file.sent}+ calls`
        : '';
  return {
    fileId: file.fileId,
    name: file.name,
    partner: file.partner,
    kind: file.kind,
    state: file.control === 'paused' || file.waitingRule === 'Paused' ? 'paused' : file.state,
    phase: file.phase ?? null,
    waitingFor: file.state === 'waiting' ? (file.waitingFor ?? null) : null,
    progress,
    etaSeconds: eta ?? null,
    landedAt: file.landedAt,
    ...(file.control ? { control: file.control } : {}),
  };
}

function print(io: CommandIo, json: boolean, rows: ReturnType<typeof describeFile>[]) {
  if (json) {
    io.out(`${JSON.stringify({ files: rows })}\n`);
    return;
  }
  if (rows.length === 0) io.out('no files in flight\n');
  for (const row of rows) {
    const eta = row.etaSeconds === null ? '' : `  ETA ${row.etaSeconds} s`;
    const why = row.waitingFor ? `  waiting: ${row.waitingFor}` : '';
    io.out(
      `${row.fileId.slice(0, 12)}  ${row.name}  ${row.partner}  ${row.kind}  ${row.state}${row.phase ? ` ${row.phase}` : ''}` +
        `${row.progress ? `  ${row.progress}` : ''}${eta}${why}\n`,
    );
  }
}

/** `ingest files`: the files in flight in a running `ingest up`, what each does or waits for, and its ETA. */
export async function runFilesList(options: { reportDir: string; json: boolean }, io: CommandIo): Promise<number> {
  try {
    const state = readUpState(options.reportDir);
    const view = await connect(state).schedule.view();
    print(
      io,
      options.json,
      view.files.map((file) => describeFile(file, view, state)),
    );
    return 0;
  } catch (error) {
    return refused(error, io);
  }
}

/**
 * `ingest pause|resume|cancel <file>` or `--partner P`, against a running `ingest up`: the same use case the
 * operations API calls (lambdas/core/schedule/schedule.ts controlFiles).
 */
export async function runControl(
  action: ControlAction,
  target: { file?: string; partner?: string },
  options: { reportDir: string; json: boolean },
  io: CommandIo,
): Promise<number> {
  try {
    if (!target.file === !target.partner) throw new ControlRefused(`${action}: name one file, or --partner, not both`);
    const state = readUpState(options.reportDir);
    const { schedule, notifier } = connect(state);
    const where = target.file
      ? { fileId: findFile(await schedule.view(), target.file).fileId }
      : { partner: target.partner as string };
    const changed = await controlFiles(schedule, where, action, notifier);
    const view = await schedule.view();
    const now = changed.map((file) => view.files.find((entry) => entry.fileId === file.fileId) ?? file);
    if (!options.json) {
      const whom = target.partner ? `partner ${target.partner}` : (now[0]?.name ?? target.file);
      io.out(`${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'cancelled'}: ${whom}\n`);
    }
    print(
      io,
      options.json,
      now.map((file) => describeFile(file, view, state)),
    );
    return 0;
  } catch (error) {
    return refused(error, io);
  }
}

function refused(error: unknown, io: CommandIo): number {
  if (!(error instanceof ControlRefused || error instanceof RunStopped)) throw error;
  io.err(`ingest: ${error.message}\n`);
  return 1;
}
