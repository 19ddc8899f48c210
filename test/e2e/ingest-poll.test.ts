import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { startFolderSftp } from '../../lambdas/local/services/folder-sftp';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { newPassword } from '../../lambdas/local/services/local-sftp';
import type { RunReport } from '../../lambdas/local/cli/run-report';
import { newSshKeyPair, type EmbeddedSftpServer } from '../../lambdas/local/services/sftp-server';
import { hasOpenSsh, startOpenSsh, type OpenSshServer } from '../support/openssh';
import { finished, readLines, runIngest, startIngest } from './cli';

/**
 * `ingest run --poll`: the polling watcher collects what is in a partner's SFTP folder, the pipeline processes
 * it, the reports go back to the partner's `reports/` folder there, and the command exits.
 */
describe('ingest run --poll', () => {
  const temporary: string[] = [];
  const password = newPassword();
  let root: string;
  let server: EmbeddedSftpServer;

  const folder = () => {
    const directory = mkdtempSync(join(tmpdir(), 'ingest-poll-'));
    temporary.push(directory);
    return directory;
  };
  /** A partner outbox holding a users and a transactions file; their names. */
  const outbox = async (path: string) => {
    mkdirSync(path, { recursive: true });
    const files = await generateFiles({ users: 6, transactions: 12, outDir: path, partner: 'acme', badRate: 0.2 });
    return files.map((file) => basename(file.path)).sort();
  };
  const pollArgs = (url: string, ...more: string[]) => pollCommand('run', url, ...more);
  const pollCommand = (command: 'run' | 'up', url: string, ...more: string[]) => [
    command,
    '--poll',
    url,
    '--poll-interval',
    '1',
    '--partner',
    'acme',
    '--json',
    // Transactions of a refused user are 4404: tried again after 1 s, once.
    '--retry-later-delay',
    '1',
    '--retry-later-attempts',
    '1',
    '--report-dir',
    folder(),
    ...more,
  ];

  beforeAll(async () => {
    root = folder();
    server = await startFolderSftp({ root, users: [{ name: 'collector', password }] });
  });
  afterAll(async () => {
    await server?.close();
    for (const directory of temporary) rmSync(directory, { recursive: true, force: true });
  });

  it('collects the files, processes them, puts the reports back in the folder, and exits 0', async () => {
    const names = await outbox(join(root, 'outbox'));
    const url = `sftp://collector@${server.host}:${server.port}/outbox`;
    const result = await runIngest(pollArgs(url, '--poll-host-key', server.hostKeyFingerprint), {
      SFTP_PASSWORD: password,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as RunReport;
    expect(report.files.map((file) => file.name).sort()).toEqual(names);
    expect(report.files.every((file) => file.status === 'partial' || file.status === 'succeeded')).toBe(true);
    expect(report.totals.received).toBe(18);

    expect(readdirSync(join(root, 'outbox')).sort()).toEqual(['processed', 'reports']);
    expect(readdirSync(join(root, 'outbox', 'processed')).sort()).toEqual(names);
    for (const file of report.files) {
      const reports = join(root, 'outbox', 'reports', file.name, file.sha256.slice(0, 12));
      const summary = JSON.parse(readFileSync(join(reports, 'summary.json'), 'utf8')) as { received: number };
      expect(summary.received).toBe(file.received);
      expect(existsSync(join(reports, file.name.replace('.csv', '.failed.csv')))).toBe(file.failed > 0);
    }
  }, 90_000);

  it('refuses a server whose host key is not the pinned one, and names both keys; nothing is collected', async () => {
    const names = await outbox(join(root, 'pinned'));
    const pinned = newSshKeyPair().fingerprint;
    const result = await runIngest(
      pollArgs(`sftp://collector@${server.host}:${server.port}/pinned`, '--poll-host-key', pinned),
      { SFTP_PASSWORD: password },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`is ${server.hostKeyFingerprint}, not the pinned ${pinned}`);
    expect(readdirSync(join(root, 'pinned')).sort()).toEqual(names);
  }, 60_000);

  it('ingest up --poll collects files as they become complete, retrying a failing server each interval', async () => {
    const child = startIngest(
      pollCommand(
        'up',
        `sftp://collector@${server.host}:${server.port}/later`,
        '--poll-host-key',
        server.hostKeyFingerprint,
      ),
      { SFTP_PASSWORD: password },
    );
    let errors = '';
    const failedOnce = new Promise<void>((resolve) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        errors += chunk.toString();
        if (errors.includes('/later failed')) resolve();
      });
    });
    try {
      const [connection] = await readLines(child, (lines) => lines.length >= 1);
      expect(JSON.parse(connection!)).toMatchObject({ sftp: { host: '127.0.0.1' } });
      // The folder is not there yet: each poll fails (said once), and the one after it is made collects.
      await failedOnce;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const names = await outbox(join(root, 'later'));
      const lines = await readLines(child, (seen) => seen.filter((line) => line.includes('"status"')).length >= 2);
      const collected = lines.filter((line) => line.includes('"collected"')).map((line) => JSON.parse(line).collected);
      expect(collected.sort()).toEqual(names);
      const finishedFiles = lines.filter((line) => line.includes('"status"')).map((line) => JSON.parse(line).name);
      expect(finishedFiles.sort()).toEqual(names);
    } finally {
      child.kill('SIGINT');
    }
    const result = await finished(child);
    expect(result.code).toBe(0);
    expect(errors.match(/poll of sftp:\/\/collector@[^ ]+\/later failed/g)).toHaveLength(1);
    expect(readdirSync(join(root, 'later', 'processed')).sort()).toHaveLength(2);
  }, 90_000);

  it('names what is missing or wrong: the password, the URL, the host key (exit 2)', async () => {
    const noPassword = await runIngest(pollArgs(`sftp://collector@${server.host}:${server.port}/outbox`));
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('SFTP_PASSWORD');
    const badUrl = await runIngest(pollArgs('ftp://collector@example.com/outbox'), { SFTP_PASSWORD: password });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('expected sftp://user@host:port/dir');
    const badKey = await runIngest(
      pollArgs(`sftp://collector@${server.host}:${server.port}/outbox`, '--poll-host-key', 'MD5:ab:cd'),
      { SFTP_PASSWORD: password },
    );
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--poll-host-key: must be a SHA-256 fingerprint');
  });

  if (!hasOpenSsh) console.warn('OpenSSH --poll test not run: /usr/sbin/sshd is not installed (.ci/run installs it)');
  if (hasOpenSsh)
    describe('against OpenSSH, with a key', () => {
      let sshd: OpenSshServer;
      const key = newSshKeyPair();
      beforeAll(async () => {
        sshd = await startOpenSsh(key.publicKey);
      });
      afterAll(() => sshd?.close());

      it('learns and shows the host key when none is pinned, and collects with the private key', async () => {
        const directory = join(folder(), 'outbox');
        const names = await outbox(directory);
        const keyFile = join(folder(), 'id_ecdsa');
        writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
        const result = await runIngest(
          pollArgs(`sftp://${sshd.username}@${sshd.host}:${sshd.port}${directory}`, '--poll-key', keyFile),
        );
        expect(result.code).toBe(0);
        expect(result.stderr).toContain(`shows host key ${sshd.hostKeyFingerprint}; not pinned`);
        const report = JSON.parse(result.stdout) as RunReport;
        expect(report.files.map((file) => file.name).sort()).toEqual(names);
        expect(readdirSync(directory).sort()).toEqual(['processed', 'reports']);
      }, 90_000);
    });
});
