import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import type { FileResult } from '../../lambdas/local/cli/run-report';
import { missingSftpClient, runSftpBatch } from '../support/openssh-client';
import { alive, descendants, finished, portOpen, readLines, startIngest, survivors, upConnection } from './cli';

const HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const row = (n: number) => `W${n},Ada,Alder,ada${n}@example.com,,GB,2026-01-01T00:00:00Z`;

/** Names a careless or hostile partner gives their files: every one is processed under its own name. */
const AWKWARD = [';', ',', ':', '#', '&', '?', '@', '=', '$', '+', '%', '%2B', ' ', 'é'].map(
  (text, n) => `users_acme_20261124_${String(n).padStart(3, '0')}${text}x.csv`,
);
/** Longer than the pipeline takes (200 bytes): refused at upload, with the reason. */
const TOO_LONG = `users_acme_20261124_${'n'.repeat(226)}.csv`;

const describeWithClient = missingSftpClient.length === 0 ? describe : describe.skip;
if (missingSftpClient.length > 0) {
  // Said, not silently skipped: `.ci/run` installs Debian's openssh-client and sshpass.
  process.stderr.write(`OpenSSH client tests not run: ${missingSftpClient.join(', ')} missing\n`);
}

/**
 * `ingest up` as a partner's cron job uses it: OpenSSH's `sftp -b` uploads files with every awkward name; the
 * batch ends by itself, each file is processed (or refused with the reason), the landing zone stays up, and
 * Ctrl-C then stops it within seconds with nothing left behind.
 */
describeWithClient('ingest up with the OpenSSH client', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-up-openssh-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('takes a batch of awkwardly named files, stays up, and stops in seconds', async () => {
    for (const [n, name] of AWKWARD.entries()) writeFileSync(join(directory, name), `${HEADER}\n${row(n)}\n`);
    writeFileSync(join(directory, TOO_LONG), `${HEADER}\n${row(99)}\n`);
    const child = startIngest(['up', '--json', '--partner', 'acme', '--report-dir', join(directory, 'reports')]);
    const exited = finished(child);
    try {
      const { sftp, users } = await upConnection(child);
      // Every line from now on: the refusal is said while the batch still runs.
      const reported = readLines(child, (seen) => seen.length >= AWKWARD.length + 1, 90_000);
      reported.catch(() => undefined);
      const quoted = (name: string) => `"${name}"`;
      const batch = await runSftpBatch({
        host: sftp.host,
        port: sftp.port,
        user: users[0]!.user,
        password: users[0]!.password,
        // `-put`: go on after a refused file, as a partner's script would want.
        commands: [...AWKWARD.map((name) => `put ${quoted(name)}`), `-put ${quoted(TOO_LONG)}`, 'ls -1'],
        cwd: directory,
        timeoutMs: 30_000,
      });
      expect({ timedOut: batch.timedOut, status: batch.status }).toEqual({ timedOut: false, status: 0 });
      // OpenSSH's sftp shows only "Failure" for a refused upload: the reason is ingest up's to tell.
      expect(batch.stderr).toContain('Failure');

      const lines = await reported;
      const results = new Map(lines.map((line) => JSON.parse(line) as FileResult).map((file) => [file.name, file]));
      expect(results.get(TOO_LONG)).toMatchObject({
        status: 'failed',
        reason: `refused at upload: file name too long: ${Buffer.byteLength(TOO_LONG)} bytes, at most 200`,
      });
      for (const name of AWKWARD) {
        expect({ name, status: results.get(name)?.status }).toEqual({ name, status: 'succeeded' });
      }
      expect(alive(child.pid!)).toBe(true);
      expect(await portOpen(sftp.port)).toBe(true);

      // A wrong password: refused (after the failure delay) and said on stderr, without the password.
      const guesser = new SftpClient('guesser', {
        error: () => undefined,
        end: () => undefined,
        close: () => undefined,
      });
      await expect(
        guesser.connect({ host: sftp.host, port: sftp.port, username: 'acme', password: 'not-the-password' }),
      ).rejects.toThrow();

      const helpers = descendants(child.pid!);
      const signalled = Date.now();
      child.kill('SIGINT');
      const result = await exited;
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain('failed SFTP login as acme (password) from 127.0.0.1:');
      expect(result.stderr).not.toContain('not-the-password');
      expect(await survivors(helpers)).toEqual([]);
      expect(await portOpen(sftp.port)).toBe(false);

      // Started again on the same report folder, the server shows the same host key: clients keep trusting it.
      const again = startIngest(['up', '--json', '--partner', 'acme', '--report-dir', join(directory, 'reports')]);
      expect((await upConnection(again)).sftp.hostKeyFingerprint).toBe(sftp.hostKeyFingerprint);
      again.kill('SIGINT');
      expect((await finished(again)).code).toBe(0);
    } finally {
      if (alive(child.pid!)) child.kill('SIGKILL');
    }
  }, 180_000);
});
