import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SFTP_CLIENT = '/usr/bin/sftp';
export const SSHPASS = '/usr/bin/sshpass';
/**
 * Debian's openssh-client, and sshpass to type the password (batch mode cannot): `.ci/run` installs both.
 * Empty when the tests against the real client can run.
 */
export const missingSftpClient = [SFTP_CLIENT, SSHPASS].filter((path) => !existsSync(path));

export interface SftpBatchRun {
  /** Exit status; null when it did not exit by itself and was killed after the timeout. */
  readonly status: number | null;
  readonly timedOut: boolean;
  readonly elapsedMs: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs OpenSSH's `sftp -b` with `commands` as the batch file (in `cwd`, for local file names), logging in with
 * a password through sshpass (from the environment, not the command line). Never trusts or records the host
 * key. Killed after `timeoutMs` if it has not exited by itself, which the result says.
 */
export async function runSftpBatch(options: {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly commands: readonly string[];
  readonly cwd: string;
  readonly timeoutMs: number;
}): Promise<SftpBatchRun> {
  const dir = mkdtempSync(join(tmpdir(), 'sftp-batch-'));
  const batch = join(dir, 'batch');
  writeFileSync(batch, `${options.commands.join('\n')}\n`);
  const args = [
    '-e',
    SFTP_CLIENT,
    '-oBatchMode=no',
    '-oStrictHostKeyChecking=no',
    '-oUserKnownHostsFile=/dev/null',
    '-oGlobalKnownHostsFile=/dev/null',
    // Only the password: keys in the runner's ~/.ssh must not change what is tested.
    '-oPreferredAuthentications=password',
    '-oPubkeyAuthentication=no',
    '-oLogLevel=ERROR',
    '-P',
    String(options.port),
    '-b',
    batch,
    `${options.user}@${options.host}`,
  ];
  const started = Date.now();
  const child = spawn(SSHPASS, args, {
    cwd: options.cwd,
    env: { ...process.env, SSHPASS: options.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += String(chunk)));
  child.stderr.on('data', (chunk) => (stderr += String(chunk)));
  let timedOut = false;
  // SIGTERM first: sshpass hands it on to sftp, which stops its ssh; a SIGKILL would orphan them.
  let killer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    killer = setTimeout(() => child.kill('SIGKILL'), 2000);
  }, options.timeoutMs);
  try {
    const status = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    return { status: timedOut ? null : status, timedOut, elapsedMs: Date.now() - started, stdout, stderr };
  } finally {
    clearTimeout(timer);
    clearTimeout(killer);
    rmSync(dir, { recursive: true, force: true });
  }
}
