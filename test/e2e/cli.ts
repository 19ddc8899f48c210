import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import SftpClient from 'ssh2-sftp-client';

const BIN = join(__dirname, '../../bin/ingest.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a child `ingest`: this one's, without the test setup's silencing. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base.POWERTOOLS_LOG_LEVEL;
  delete base.POWERTOOLS_DEV;
  return { ...base, ...env };
}

/** Starts `ingest <args>` as its own process, as a user would (`npx ingest`). */
export function startIngest(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Collects a child's output and waits for its exit. */
export function finished(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `ingest <args>` to the end. */
export const runIngest = (args: readonly string[], env: Record<string, string> = {}) =>
  finished(startIngest(args, env));

/** Resolves with the stdout lines that come from now on, once `done` says enough; rejects after `timeoutMs`. */
export function readLines(
  child: ChildProcess,
  done: (lines: string[]) => boolean,
  timeoutMs = 60_000,
): Promise<string[]> {
  const lines: string[] = [];
  let rest = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.stdout?.off('data', onData);
      reject(new Error(`ingest printed only: ${lines.join('\n')}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
      if (done(lines)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(lines);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`ingest exited (${code}) after: ${lines.join('\n')}`)));
  });
}

/** Whether a process still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes of `pids` still alive after up to `withinMs`: helpers that watch their parent (dynalite's IPC
 * channel, esbuild's stdin under tsx) follow it within moments, longer on a loaded machine.
 */
export async function survivors(pids: readonly number[], withinMs = 5000): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  return pids.filter(alive);
}

/** Pids of a process's descendants (children, their children, ...). */
export function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const [child, ppid] of table) {
      if (ppid === parent) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** Whether something listens on a loopback port. */
export const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** What `ingest up --json` prints first (local-run.md): how to reach its SFTP server and its API. */
export interface UpConnection {
  readonly sftp: { readonly host: string; readonly port: number; readonly hostKeyFingerprint: string };
  readonly users: readonly { readonly user: string; readonly password: string }[];
  readonly api: { readonly url: string; readonly token: string };
  readonly crm: string;
  readonly reportDir: string;
}

/** Reads a started `ingest up --json`'s first line. */
export async function upConnection(child: ChildProcess): Promise<UpConnection> {
  const [first] = await readLines(child, (lines) => lines.length >= 1);
  return JSON.parse(first as string) as UpConnection;
}

/** Uploads `body` as `/<name>` over SFTP as one of a running `ingest up`'s partners, as a partner would. */
export async function sftpPut(connection: UpConnection, partner: string, name: string, body: string): Promise<void> {
  const user = connection.users.find((candidate) => candidate.user === partner);
  if (!user) throw new Error(`ingest up has no SFTP user ${partner}`);
  const client = new SftpClient('partner', { error: () => undefined });
  await client.connect({
    host: connection.sftp.host,
    port: connection.sftp.port,
    username: user.user,
    password: user.password,
  });
  try {
    await client.put(Buffer.from(body), `/${name}`);
  } finally {
    await client.end();
  }
}
