import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Config } from '../../core/config';
import type { CrmSimulatorOptions } from '../crm-simulator/crm-simulator';
import { writeDemoLoad } from './demo-load';
import { parseFileName } from '../../core/files/classify-file';
import { sha256Of } from '../../core/files/file-identity';
import { writeUpState } from './control-commands';
import { RunStopped, startIngestRuntime, type IngestRuntime } from './ingest-runtime';
import type { OpsServer } from '../api/ops-server';
import type { PollSource } from '../../core/polling/poll-source';
import { connectSftpSource, type SourceCredentials } from '../../adapters/sftp/sftp-folder';
import { failuresText, runReport, summaryTable, type FileResult, type RunReport } from './run-report';

/** Where a command writes: its own output (stdout), progress and errors (stderr). */
export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Progress is shown only on a terminal. */
  readonly progress: boolean;
}

export interface CommandOptions {
  readonly settings: Config;
  readonly partners: readonly string[];
  readonly json: boolean;
  readonly sftpPassword?: string;
  readonly simulator?: CrmSimulatorOptions;
  /** Stops the command from outside (Ctrl-C). */
  readonly interrupted?: Promise<string>;
  /** `--poll`: a partner SFTP server to collect from instead of uploading. */
  readonly poll?: PollOption;
  /** Where the SFTP server's host key is kept (`--host-key`): its fingerprint stays the same across starts. */
  readonly hostKeyFile?: string;
  /** `--api-port`: where the operations API listens (0: a free port). `up` always serves it; run and demo when given. */
  readonly apiPort?: number;
}

/** `--poll sftp://user@host:port/dir`: the watcher's source, its credentials, and how often it looks. */
export interface PollOption {
  readonly url: string;
  readonly source: PollSource;
  readonly credentials: SourceCredentials;
  readonly intervalMs: number;
}

/** Users files first: the customers are in the CRM before the transactions that refer to them are sent. */
const uploadRank = (name: string) => (parseFileName(name)?.kind === 'users' ? 0 : 1);

/**
 * The files named on the command line: files as given; a directory's files (hidden ones skipped) with its users
 * files first, then the others, each in name order (`transactions_...` sorts before `users_...` by name alone).
 */
export function inputFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    let stats;
    try {
      stats = statSync(path);
    } catch {
      throw new RunStopped(`no such file or directory: ${path}`);
    }
    if (stats.isDirectory()) {
      const names = readdirSync(path, { withFileTypes: true })
        .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
        .map((entry) => entry.name)
        .sort((a, b) => uploadRank(a) - uploadRank(b) || (a < b ? -1 : a > b ? 1 : 0));
      files.push(...names.map((name) => join(path, name)));
    } else {
      files.push(path);
    }
  }
  if (files.length === 0) throw new RunStopped(`no files to ingest in ${paths.join(', ')}`);
  const seen = new Map<string, string>();
  for (const file of files) {
    const name = basename(file);
    const other = seen.get(name);
    if (other) throw new RunStopped(`two files are named ${name} (${other} and ${file}): a partner folder holds one`);
    seen.set(name, file);
  }
  return files.map((file) => resolve(file));
}

/** The runtime of a command: its settings, partners and simulator; the handlers log to `log`. */
const startRuntime = (options: CommandOptions, log: NodeJS.WritableStream, keepGoing = false, api = false) =>
  startIngestRuntime({
    keepGoing,
    ...(api || options.apiPort !== undefined ? { apiPort: options.apiPort ?? 0 } : {}),
    ...(options.hostKeyFile ? { hostKeyFile: options.hostKeyFile } : {}),
    settings: options.settings,
    telemetry: { logLevel: options.settings.logLevel, output: log },
    partners: options.partners,
    ...(options.sftpPassword ? { sftpPassword: options.sftpPassword } : {}),
    ...(options.simulator ? { simulator: options.simulator } : {}),
    ...(options.poll ? { sources: [{ source: options.poll.source, credentials: options.poll.credentials }] } : {}),
  });

/** Shows the progress line on stderr about once a second while `work` runs (terminals only). */
async function withProgress<T>(io: CommandIo, line: () => Promise<string>, work: Promise<T>): Promise<T> {
  if (!io.progress) return work;
  const ticker = setInterval(() => {
    void line().then(
      (text) => io.err(`\r\x1b[K${text}`),
      () => undefined,
    );
  }, 1000);
  try {
    return await work;
  } finally {
    clearInterval(ticker);
    io.err('\r\x1b[K');
  }
}

/** Waits until the call queue has stayed empty for two looks a second apart (the calls made so far are answered). */
async function drained(runtime: IngestRuntime): Promise<void> {
  let empty = 0;
  while (empty < 2) {
    await Promise.race([new Promise((r) => setTimeout(r, 1000)), runtime.stopped]);
    const { queued, inFlight } = await runtime.pipeline.progress();
    empty = queued + inFlight === 0 ? empty + 1 : 0;
  }
}

/**
 * Starts the runtime, lets `work` bring the files in (adding their names to `names` as it knows them: those not
 * finished are reported pending if the run stops), waits until every one of them
 * is finished and reported, prints the report, stops everything. Returns the exit status: 0 when every file is
 * terminal; 1, with the reason, when the run could not finish (the unfinished files are listed as pending).
 */
async function runToReport(
  options: CommandOptions,
  io: CommandIo,
  intro: (runtime: IngestRuntime) => string,
  work: (runtime: IngestRuntime, names: string[]) => Promise<void>,
): Promise<number> {
  const started = Date.now();
  let runtime: IngestRuntime | undefined;
  const names: string[] = [];
  const printReport = (report: RunReport) =>
    io.out(options.json ? `${JSON.stringify(report)}\n` : `${summaryTable(report)}\n`);
  const logFile = openLog(options.settings.reportDir);
  try {
    runtime = await startRuntime(options, logFile.stream);
    const active = runtime;
    if (io.progress) {
      io.err(`CRM: ${active.crmUrl}${active.simulated ? ' (the embedded simulator)' : ''}\n`);
      io.err(intro(active));
    }
    // Said even without a terminal: whoever asked for --api-port watches the run through it.
    if (active.api) io.err(apiText(active.api));
    const interrupted = (options.interrupted ?? new Promise<string>(() => undefined)).then((reason) => {
      throw new RunStopped(reason);
    });
    interrupted.catch(() => undefined);
    const finishing = (async () => {
      await work(active, names);
      await active.waitFor(names);
    })();
    finishing.catch(() => undefined);
    await withProgress(
      io,
      () => active.progressLine(names.length || undefined),
      Promise.race([finishing, active.stopped, interrupted]),
    );
    const files = names.map((name) => active.finished.get(name) as FileResult);
    printReport(runReport(files, active.monitor.counts()));
    if (!options.json) {
      io.out(`Reports: ${options.settings.reportDir}  (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof RunStopped)) throw error;
    const done = names.filter((name) => runtime?.finished.has(name));
    const files = done.map((name) => runtime?.finished.get(name) as FileResult);
    const pending = names.filter((name) => !runtime?.finished.has(name));
    printReport(
      runReport(files, runtime?.monitor.counts() ?? { calls: 0, throttled: 0 }, { pending, error: error.message }),
    );
    io.err(`ingest: ${error.message}\n`);
    if (pending.length > 0) io.err(`ingest: ${pending.length} file(s) not finished; their records are pending\n`);
    return 1;
  } finally {
    await runtime?.close();
    logFile.close();
  }
}

/**
 * `ingest run`: uploads the files over SFTP as the first partner, in order and in waves (a wave starts once the
 * one before has been answered), waits for every file to finish, writes the reports, prints the summary.
 * A file whose bytes repeat an earlier one is uploaded once that one is claimed, so the later copy is the
 * duplicate. Returns the exit status.
 */
export async function runFiles(
  waves: readonly (readonly string[])[],
  options: CommandOptions,
  io: CommandIo,
): Promise<number> {
  const partner = options.partners[0] ?? 'demo';
  const all = waves.flat();
  return runToReport(
    options,
    io,
    (runtime) =>
      `Uploading ${all.length} file(s) over SFTP as ${partner} to ${runtime.sftp.host}:${runtime.sftp.port}\n`,
    async (runtime, names) => {
      names.push(...all.map((file) => basename(file)));
      // Only files of equal size can hold the same bytes: the others are not read twice.
      const sizeOf = new Map(all.map((file) => [file, statSync(file).size]));
      const sizes = [...sizeOf.values()];
      const mayRepeat = (file: string) => sizes.filter((size) => size === sizeOf.get(file)).length > 1;
      const uploaded = new Set<string>();
      for (const [index, wave] of waves.entries()) {
        if (index > 0) await drained(runtime);
        for (const file of wave) {
          if (mayRepeat(file)) {
            const sha256 = await sha256Of(createReadStream(file));
            if (uploaded.has(sha256)) await runtime.waitForClaim(sha256);
            uploaded.add(sha256);
          }
          await Promise.race([uploadOrRefuse(runtime, file, partner), runtime.stopped]);
        }
        // Every file of the wave has landed: none of them need hold for more users files.
        await Promise.race([runtime.closeLandings(wave.map((file) => basename(file))), runtime.stopped]);
      }
    },
  );
}

/**
 * Uploads one file; a file that cannot be uploaded (the landing zone refuses its name, the file cannot be read)
 * is reported failed with the reason, and the run goes on with the others.
 */
async function uploadOrRefuse(runtime: IngestRuntime, file: string, partner: string): Promise<void> {
  try {
    await runtime.upload(file, partner);
  } catch (error) {
    if (error instanceof RunStopped) throw error;
    // Refused by the landing zone: the runtime has it already, with the server's own reason.
    if (runtime.finished.has(basename(file))) return;
    const sha256 = await sha256Of(createReadStream(file)).catch(() => '');
    runtime.refuse(basename(file), sha256, `not uploaded: ${(error as Error).message}`);
  }
}

/**
 * With no `--poll-host-key`, the server's key is learnt from a first connection, shown, and pinned for the rest
 * of the run (trust on first use, as `ssh` asks); a server that cannot be reached stops the command.
 */
export async function pinHostKey(poll: PollOption, io: CommandIo): Promise<PollOption> {
  if (poll.source.hostKeyFingerprint) return poll;
  let shown = '';
  try {
    const folder = await connectSftpSource(poll.source, poll.credentials, { onHostKey: (key) => (shown = key) });
    await folder.close();
  } catch (error) {
    throw new RunStopped(`cannot collect from ${poll.url}: ${(error as Error).message}`);
  }
  io.err(
    `ingest: ${poll.url} shows host key ${shown}; not pinned, trusted for this run (pin it: --poll-host-key ${shown})\n`,
  );
  return { ...poll, source: { ...poll.source, hostKeyFingerprint: shown } };
}

/** One poll of the `--poll` source; a source that cannot be polled stops the run (RunStopped). */
async function pollOnce(runtime: IngestRuntime, poll: PollOption) {
  const outcome = await runtime.pipeline.poll(poll.source.name);
  if (outcome.status === 'failed') throw new RunStopped(`cannot collect from ${poll.url}: ${outcome.message}`);
  return outcome;
}

/**
 * `ingest run --poll URL`: collects what is in the partner's SFTP folder with the polling watcher (a file is
 * taken once it is complete: unchanged across two listings), processes it, and exits. Returns the exit status.
 */
export async function runPolled(poll: PollOption, options: CommandOptions, io: CommandIo): Promise<number> {
  return runToReport(
    options,
    io,
    () =>
      `Collecting from ${poll.url} as partner ${poll.source.partner} (files move to ${poll.source.processedDir}/)\n`,
    async (runtime, names) => {
      for (;;) {
        const outcome = await Promise.race([pollOnce(runtime, poll), runtime.stopped]);
        names.push(...outcome.collected.map((file) => basename(file.key)));
        // Every file listed is collected (or was): nothing is still being written.
        if (outcome.waiting === 0) {
          await Promise.race([runtime.closeLandings(names), runtime.stopped]);
          return;
        }
        await Promise.race([new Promise((resolve) => setTimeout(resolve, poll.intervalMs)), runtime.stopped]);
      }
    },
  );
}

/** `ingest demo` (`npm start`): the sample load, on the embedded CRM simulator unless a CRM URL is given. */
export async function runDemo(options: CommandOptions, io: CommandIo): Promise<number> {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-demo-'));
  try {
    const load = await writeDemoLoad(directory);
    if (!options.json) {
      io.out(
        `Demo: ${load.waves.flat().length} partner files (users, transactions, a late gzip JSONL users file, a duplicate ` +
          `and an unknown file) through SFTP, the workflow and the CRM${options.settings.crmBaseUrl ? '' : ' simulator'}.\n`,
      );
    }
    return await runFiles(
      load.waves,
      { ...options, simulator: { ...options.simulator, customers: load.customers } },
      io,
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * `ingest up --poll`: the watcher runs every interval, as its schedule does on AWS; a poll that fails is reported
 * on stderr (once until the source answers again) and tried again at the next interval.
 */
function keepPolling(runtime: IngestRuntime, poll: PollOption, io: CommandIo, json: boolean) {
  let failing = '';
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      const outcome = await runtime.pipeline.poll(poll.source.name);
      if (outcome.status === 'failed') {
        if (outcome.message !== failing) io.err(`ingest: poll of ${poll.url} failed: ${outcome.message}\n`);
        failing = outcome.message;
      } else {
        if (failing) io.err(`ingest: ${poll.url} answers again\n`);
        failing = '';
        for (const file of outcome.collected) {
          if (json) io.out(`${JSON.stringify({ collected: basename(file.key), from: poll.url, size: file.size })}\n`);
          else io.out(`collected ${basename(file.key)} (${file.size} bytes) from ${poll.url}\n`);
        }
      }
    } catch (error) {
      if (!stopped) io.err(`ingest: poll of ${poll.url} failed: ${(error as Error).message}\n`);
    }
    if (!stopped) timer = setTimeout(() => void tick(), poll.intervalMs);
  };
  void tick();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * `ingest up`: the services stay up; prints how to connect over SFTP, and one line per finished file
 * (one JSON line with `--json`), until interrupted. Returns the exit status.
 */
export async function runUp(options: CommandOptions, io: CommandIo): Promise<number> {
  const logFile = openLog(options.settings.reportDir);
  let runtime: IngestRuntime | undefined;
  let removeUpState = () => undefined as void;
  try {
    runtime = await startRuntime(options, logFile.stream, true, true);
    const { sftp } = runtime;
    const api = runtime.api as OpsServer;
    const connection = {
      sftp: { host: sftp.host, port: sftp.port, hostKeyFingerprint: sftp.hostKeyFingerprint },
      users: runtime.users.map((user) => ({ user: user.name, password: user.password })),
      api: { url: api.url, token: api.token },
      crm: runtime.crmUrl,
      reportDir: options.settings.reportDir,
    };
    if (options.json) {
      io.out(`${JSON.stringify(connection)}\n`);
    } else {
      io.out(`SFTP server: host ${sftp.host} port ${sftp.port} (host key ${sftp.hostKeyFingerprint})\n`);
      for (const user of connection.users) io.out(`  user ${user.user} password ${user.password}\n`);
      io.out(`  e.g. sftp -P ${sftp.port} ${connection.users[0]?.user ?? 'demo'}@${sftp.host}\n`);
      io.out(`CRM: ${runtime.crmUrl}${runtime.simulated ? ' (the embedded simulator)' : ''}\n`);
      io.out(apiText(api));
      if (options.poll) {
        io.out(
          `Collecting from ${options.poll.url} every ${options.poll.intervalMs / 1000} s as partner ${options.poll.source.partner}\n`,
        );
      }
      io.out(`Reports: ${options.settings.reportDir}\nWaiting for uploads; Ctrl-C stops.\n`);
    }
    runtime.onFile((file: FileResult) => {
      if (options.json) io.out(`${JSON.stringify(file)}\n`);
      else {
        const details = [failuresText(file.failures), file.reason ?? ''].filter(Boolean).join('  ');
        io.out(
          `${file.name}: ${file.kind}, ${file.status}, ${file.received} received, ${file.succeeded} succeeded, ` +
            `${file.failed} failed${details ? ` (${details})` : ''}\n`,
        );
      }
    });
    // Failed logins are said (never the password tried): a partner with a wrong password, or someone guessing.
    runtime.onLoginFailure(({ user, method, remote }) =>
      io.err(`ingest: failed SFTP login as ${user} (${method}) from ${remote}\n`),
    );
    // A file whose workflow failed is said, and the landing zone stays up for every other file and partner.
    runtime.onFailure((file) => {
      if (options.json) io.out(`${JSON.stringify({ name: file.name, status: 'pending', error: file.error })}\n`);
      else io.out(`${file.name}: pending, its workflow failed (${file.error}); redrive it or upload it again\n`);
    });
    const active = runtime;
    // Found there by `ingest files`, `ingest pause`, `ingest resume` and `ingest cancel`.
    removeUpState = writeUpState(options.settings.reportDir, {
      pid: process.pid,
      dynamodb: runtime.pipeline.db.endpoint,
      stepFunctions: runtime.pipeline.stepFunctionsEndpoint,
      callsPerMinute: options.settings.callsPerMinute,
      partnerWeights: options.settings.partnerWeights,
    });
    const polling = options.poll ? keepPolling(active, options.poll, io, options.json) : undefined;
    const reason = await withProgress(
      io,
      () => active.progressLine(),
      Promise.race([options.interrupted ?? new Promise<string>(() => undefined), active.stopped]),
    );
    polling?.stop();
    io.err(`ingest: ${reason}; stopping\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof RunStopped)) throw error;
    io.err(`ingest: ${error.message}\n`);
    return 1;
  } finally {
    removeUpState();
    await runtime?.close();
    logFile.close();
  }
}

/** How to reach the operations API and the dashboard (the token is the run's own, fresh each start). */
const apiText = (api: OpsServer) =>
  `Operations API: ${api.url} (paths /v1/..., Authorization: Bearer ${api.token})\nDashboard: ${api.url}/#token=${api.token}\n`;

/**
 * The handlers' JSON logs and EMF metrics (as on Lambda) go to `<report dir>/ingest.log` while the command
 * runs, so stdout holds only the command's own output.
 */
function openLog(reportDir: string) {
  mkdirSync(reportDir, { recursive: true });
  const stream = createWriteStream(join(reportDir, 'ingest.log'), { flags: 'a' });
  return { stream, close: () => stream.end() };
}
