import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { newSshKeyPair } from '../../lambdas/local/services/sftp-server';

export const SSHD = '/usr/sbin/sshd';
/** Debian's openssh-server (`.ci/run` installs it): tests against the real server run when it is there. */
export const hasOpenSsh = existsSync(SSHD);

export interface OpenSshServer {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly hostKeyFingerprint: string;
  close(): Promise<void>;
}

/** A port nothing listens on now (a server can be started on it, or a connection to it refused). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function accepting(port: number, deadline: number, child: ChildProcess): Promise<void> {
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on ${port}`);
}

/**
 * A real OpenSSH server from a private config, on a free loopback port, for the current user with the given
 * public key (internal-sftp; no password, no PAM). Stopped by close().
 */
export async function startOpenSsh(authorizedKey: string): Promise<OpenSshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sshd-'));
  const hostKey = newSshKeyPair();
  writeFileSync(join(dir, 'host_key'), hostKey.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKey}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${dir}/host_key`,
    `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
  ];
  writeFileSync(join(dir, 'sshd_config'), `${config.join('\n')}\n`);
  // Privilege separation needs its directory when sshd runs as root (Debian makes it at boot).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr?.on('data', (chunk) => (errors += String(chunk)));
  try {
    await accepting(port, Date.now() + 10_000, child);
  } catch (error) {
    child.kill();
    throw new Error(`${(error as Error).message}: ${errors}`);
  }
  return {
    host: '127.0.0.1',
    port,
    username: userInfo().username,
    hostKeyFingerprint: hostKey.fingerprint,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
