import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import SftpClient from 'ssh2-sftp-client';
import type { Config } from '../../core/config';
import { DynamoDbFileRegistry } from '../../adapters/aws/dynamodb-file-registry';
import type { TelemetryOptions } from '../../adapters/aws/telemetry';
import { ErrorNames, PipelineError } from '../../core/errors';
import type { FinalSummary } from '../../core/workflow/finalise-file';
import type { PollSource } from '../../core/polling/poll-source';
import type { SourceCredentials } from '../../adapters/sftp/sftp-folder';
import { monitorCrmCalls, type CrmCallMonitor } from './crm-call-monitor';
import type { CrmSimulatorOptions } from '../crm-simulator/crm-simulator';
import { LOCAL_NAMES, startLocalPipeline, type LocalPipeline } from '../wiring/local-pipeline';
import { newPassword, startLocalSftp, type LocalSftp, type SftpUser } from '../services/local-sftp';
import type { AuthFailure } from '../services/sftp-server';
import { fileResult, type FileResult } from './run-report';
import { startOpsServer, type OpsServer } from '../api/ops-server';

/** The run cannot finish (credentials rejected, CRM unreachable, an execution failed): records stay pending. */
export class RunStopped extends PipelineError {
  constructor(message: string) {
    super(ErrorNames.runStopped, message);
  }
}

export interface IngestRuntimeOptions {
  /** The settings, already validated; each handler gets those its contract reads. */
  readonly settings: Config;
  /** The handlers' log level and where their logs and metrics go (the run's log file). */
  readonly telemetry?: TelemetryOptions;
  /** Partners with an SFTP user each. */
  readonly partners: readonly string[];
  readonly sftpPassword?: string;
  /** Seeds and faults of the embedded CRM simulator (when no CRM URL is set). */
  readonly simulator?: CrmSimulatorOptions;
  /** Partner SFTP servers the watcher collects from (`--poll`), with their credentials. */
  readonly sources?: readonly { readonly source: PollSource; readonly credentials: SourceCredentials }[];
  /**
   * A failed workflow is reported to `onFailure` listeners and the runtime goes on (`ingest up`: one partner's
   * file must not stop the landing zone for the others), instead of stopping the run. @default false
   */
  readonly keepGoing?: boolean;
  /** Where the SFTP server's host key is kept, so its fingerprint survives restarts. @default a new key each start */
  readonly hostKeyFile?: string;
  /** Serves the operations API and the dashboard on this port of 127.0.0.1 (0: a free one). @default not served */
  readonly apiPort?: number;
}

/** A file whose workflow failed (on AWS, an execution to redrive): its records are pending. */
export interface FailedFile {
  readonly name: string;
  readonly key: string;
  readonly error: string;
}

export interface IngestRuntime {
  readonly pipeline: LocalPipeline;
  readonly sftp: LocalSftp;
  readonly monitor: CrmCallMonitor;
  /** The operations API and dashboard, when asked for. */
  readonly api?: OpsServer;
  readonly crmUrl: string;
  readonly simulated: boolean;
  readonly users: readonly SftpUser[];
  /** Finished files by name, each with its reports already in the report directory. */
  readonly finished: ReadonlyMap<string, FileResult>;
  /** Called once a finished file's reports are written. */
  onFile(listener: (file: FileResult) => void): void;
  /** Called when a file's workflow fails (with `keepGoing`; otherwise the run stops). */
  onFailure(listener: (file: FailedFile) => void): void;
  /** Records a file the landing zone refused (never uploaded) as finished and failed, with the reason. */
  refuse(name: string, sha256: string, reason: string): void;
  /** Called at each failed SFTP login (never with the password). */
  onLoginFailure(listener: (failure: AuthFailure) => void): void;
  /** Rejects with RunStopped as soon as the run cannot finish. */
  readonly stopped: Promise<never>;
  /** Uploads a file over SFTP as `partner`, under its own name. */
  upload(path: string, partner: string): Promise<void>;
  /** Resolves when the file with this SHA-256 has been claimed (so a later copy of it is the duplicate). */
  waitForClaim(sha256: string): Promise<void>;
  /**
   * Once every named file is in the schedule or finished, tells the schedule nothing more lands: a transactions
   * file then stops holding (ORDERING_WINDOW_S) for users files that might land with it.
   */
  closeLandings(names: readonly string[]): Promise<void>;
  /** Resolves when every named file is finished and reported; rejects with RunStopped. */
  waitFor(names: readonly string[]): Promise<void>;
  /** One line: files, records, calls in the last window against the limit, queue, ETA. */
  progressLine(expectedFiles?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Where a report is in the report directory: its key `reports/<partner>/<name>/<id>/<report>` becomes
 * `<report dir>/<partner>/<name>/<report>` (the operations API shows paths on one machine).
 */
export function reportFilePath(reportDir: string, key: string): string {
  const [, partner = '', name = '', , report = ''] = key.split('/');
  return join(reportDir, partner, name, report);
}

/** Resolves when a TCP connection to the URL's host and port opens: no HTTP request, so no call is spent. */
async function reachable(url: string, timeoutMs = 3000): Promise<void> {
  const { hostname, port, protocol } = new URL(url);
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port || (protocol === 'https:' ? 443 : 80)) });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

const duration = (seconds: number) => {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/**
 * The pipeline on one machine behind its SFTP landing zone, for `ingest run`, `up` and `demo`: the embedded
 * services, handlers and state machine (local-pipeline.ts), the SFTP server with a user per partner, the
 * CRM simulator unless CRM_BASE_URL is set, a count of CRM calls, and the reports of each finished file
 * copied into the report directory (`<dir>/<partner>/<file name>/`, emptied first: a rerun leaves nothing stale).
 */
export async function startIngestRuntime(options: IngestRuntimeOptions): Promise<IngestRuntime> {
  const { settings } = options;
  if (settings.crmBaseUrl) {
    await reachable(settings.crmBaseUrl).catch((error: unknown) => {
      throw new RunStopped(`CRM unreachable at ${settings.crmBaseUrl}: ${(error as Error).message}`);
    });
  }
  const pipeline = await startLocalPipeline({
    settings,
    reportPath: (key) => reportFilePath(settings.reportDir, key),
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    ...(settings.crmBaseUrl ? { crmUrl: settings.crmBaseUrl } : {}),
    ...(options.simulator ? { simulator: options.simulator } : {}),
    concurrency: settings.dispatchConcurrency,
    ...(options.sources ? { sources: options.sources } : {}),
  });
  const crmUrl = settings.crmBaseUrl ?? pipeline.simulator?.url ?? '';
  const monitor = monitorCrmCalls(crmUrl);
  const users = options.partners.map((name) => ({ name, password: options.sftpPassword ?? newPassword() }));
  const loginListeners: ((failure: AuthFailure) => void)[] = [];
  const sftp = await startLocalSftp({
    s3: pipeline.s3.client(),
    bucket: LOCAL_NAMES.landingBucket,
    users,
    ...(options.hostKeyFile ? { hostKeyFile: options.hostKeyFile } : {}),
    onAuthFailure: (failure) => loginListeners.forEach((listener) => listener(failure)),
    // The client is sent the reason too, but some (OpenSSH's sftp) show only "Failure".
    onRefused: ({ path, reason }) => refuse(basename(path), '', `refused at upload: ${reason}`),
  });
  const api =
    options.apiPort === undefined
      ? undefined
      : await startOpsServer({ handle: pipeline.opsApi, port: options.apiPort }).catch(async (error: unknown) => {
          await Promise.allSettled([sftp.close(), pipeline.close()]);
          throw new RunStopped(
            `cannot serve the operations API on port ${options.apiPort}: ${(error as Error).message}`,
          );
        });
  const s3 = pipeline.s3.client();
  const registry = new DynamoDbFileRegistry(pipeline.db.client(), LOCAL_NAMES.ledgerTable);

  let stop: (error: RunStopped) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (stop = reject));
  stopped.catch(() => undefined);
  monitor.onAuthRejected((status) =>
    stop(new RunStopped(`CRM credentials rejected (HTTP ${status}): no more calls are made`)),
  );

  const finished = new Map<string, FileResult>();
  const reporting = new Map<string, Promise<void>>();
  const fileListeners: ((file: FileResult) => void)[] = [];
  const failureListeners: ((file: FailedFile) => void)[] = [];
  const finish = (result: FileResult) => {
    finished.set(result.name, result);
    for (const listener of fileListeners) listener(result);
  };
  function refuse(name: string, sha256: string, reason: string) {
    reporting.set(name, Promise.resolve());
    const failures = {};
    finish({ name, sha256, kind: 'unknown', status: 'failed', received: 0, succeeded: 0, failed: 0, failures, reason });
  }
  const writeReports = async (summary: FinalSummary) => {
    // The reports' own keys say whose file it is (reports/<partner>/<name>/<id>/): partners' files of the same
    // name get folders of their own.
    const partner = summary.reports.summary.split('/')[1] ?? '';
    const directory = join(settings.reportDir, partner, summary.name);
    rmSync(directory, { recursive: true, force: true });
    mkdirSync(directory, { recursive: true });
    const { bucket, summary: summaryKey, results, failedRecords } = summary.reports;
    // summary.json last: once it is there, so are the others (the API and partners' scripts wait for it).
    for (const key of [results, failedRecords, summaryKey]) {
      if (!key) continue;
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await streamPipeline(object.Body as Readable, createWriteStream(join(directory, basename(key))));
    }
    finish(fileResult(summary));
  };
  pipeline.onFinished(({ summary, failed }) => {
    if (failed && options.keepGoing) {
      const file = { name: basename(failed.key), key: failed.key, error: failed.error };
      for (const listener of failureListeners) listener(file);
    } else if (failed) {
      stop(new RunStopped(`the workflow of ${failed.key} failed: ${failed.error}`));
    }
    if (!summary) return;
    const written = writeReports(summary).catch((error: unknown) =>
      stop(new RunStopped(`could not write the reports of ${summary.name}: ${(error as Error).message}`)),
    );
    reporting.set(summary.name, written);
  });

  // Batches on the dead-letter queue will not be answered without a redrive: the run cannot finish.
  const watching = setInterval(() => {
    void pipeline.progress().then(
      ({ deadLetters }) => {
        if (deadLetters > 0) {
          stop(
            new RunStopped(
              `${deadLetters} CRM call(s) failed past the retry budget (CRM unreachable or failing) and went to the dead-letter queue`,
            ),
          );
        }
      },
      () => undefined,
    );
  }, 1000);
  watching.unref();

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const startedAt = Date.now();
  const windowMs = settings.limitWindowSeconds * 1000;

  return {
    pipeline,
    sftp,
    monitor,
    ...(api ? { api } : {}),
    crmUrl,
    simulated: !settings.crmBaseUrl,
    users,
    finished,
    stopped,
    onFile: (listener) => void fileListeners.push(listener),
    onFailure: (listener) => void failureListeners.push(listener),
    refuse,
    onLoginFailure: (listener) => void loginListeners.push(listener),
    async upload(path, partner) {
      const user = users.find((u) => u.name === partner);
      if (!user) throw new Error(`no SFTP user for partner ${partner}`);
      const client = new SftpClient('ingest', { error: () => undefined, end: () => undefined, close: () => undefined });
      await client.connect({ host: sftp.host, port: sftp.port, username: user.name, password: user.password });
      try {
        await client.fastPut(path, `/${basename(path)}`);
      } finally {
        await client.end();
      }
    },
    async waitForClaim(sha256) {
      for (;;) {
        if (await registry.read(sha256)) return;
        await Promise.race([sleep(100), stopped]);
      }
    },
    async closeLandings(names) {
      for (;;) {
        const known = new Set((await pipeline.schedule.view()).files.map((file) => file.name));
        if (names.every((name) => finished.has(name) || known.has(name))) break;
        await Promise.race([sleep(100), stopped]);
      }
      await pipeline.schedule.closeLandings(new Date().toISOString());
    },
    async waitFor(names) {
      const wanted = new Set(names);
      for (;;) {
        const done = [...wanted].filter((name) => reporting.has(name));
        await Promise.race([Promise.all(done.map((name) => reporting.get(name))), stopped]);
        if (done.length === wanted.size) return;
        await Promise.race([sleep(200), stopped]);
      }
    },
    async progressLine(expectedFiles) {
      const [progress, view] = await Promise.all([pipeline.progress(), pipeline.schedule.view()]);
      const held = view.files.filter((file) => file.state === 'waiting').length;
      const inWindow = monitor.callsInLast(windowMs);
      const limit = settings.callsPerMinute;
      const waiting = progress.queued + progress.inFlight;
      const eta = (waiting / limit) * settings.limitWindowSeconds;
      const window = settings.limitWindowSeconds === 60 ? 'min' : `${settings.limitWindowSeconds}s`;
      return [
        `files ${finished.size}${expectedFiles === undefined ? '' : `/${expectedFiles}`}`,
        `records ${progress.recordsDone.toLocaleString('en-US')}`,
        `CRM calls last ${window} ${inWindow}/${limit}`,
        `queue ${waiting}`,
        ...(held > 0 ? [`${held} file(s) waiting their turn`] : []),
        waiting > 0 ? `ETA ${duration(eta)}` : `elapsed ${duration((Date.now() - startedAt) / 1000)}`,
      ].join(' · ');
    },
    async close() {
      clearInterval(watching);
      await api?.close();
      monitor.close();
      await Promise.allSettled([...reporting.values()]);
      await sftp.close();
      await pipeline.close();
    },
  };
}
