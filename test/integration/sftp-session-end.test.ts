import { GetObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { startFolderSftp } from '../../lambdas/local/services/folder-sftp';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { newPassword, startLocalSftp } from '../../lambdas/local/services/local-sftp';
import { missingSftpClient, runSftpBatch } from '../support/openssh-client';

/** Where a client's uploads end up, behind one of the embedded SFTP servers. */
interface Storage {
  readonly host: string;
  readonly port: number;
  readonly user: { name: string; password: string };
  stored(name: string): Promise<string>;
  close(): Promise<void>;
}

const STORAGES: { kind: string; start: () => Promise<Storage> }[] = [
  {
    kind: 'landing zone (embedded S3)',
    start: async () => {
      const user = { name: 'acme', password: newPassword() };
      const s3: LocalS3 = await startLocalS3(['landing']);
      const server = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [user] });
      return {
        ...server,
        user,
        stored: async (name) =>
          (
            await s3.client().send(new GetObjectCommand({ Bucket: 'landing', Key: `incoming/acme/${name}` }))
          ).Body!.transformToString(),
        close: async () => {
          await server.close();
          await s3.close();
        },
      };
    },
  },
  {
    kind: 'plain folder',
    start: async () => {
      const user = { name: 'partner', password: newPassword() };
      const root = mkdtempSync(join(tmpdir(), 'folder-sftp-'));
      const server = await startFolderSftp({ root, users: [user] });
      return {
        ...server,
        user,
        stored: async (name) => readFileSync(join(root, name), 'utf8'),
        close: async () => {
          await server.close();
          rmSync(root, { recursive: true, force: true });
        },
      };
    },
  },
];

if (missingSftpClient.length > 0) {
  console.warn(
    `OpenSSH sftp client tests not run: ${missingSftpClient.join(' and ')} not installed (.ci/run installs them)`,
  );
}

describe.each(STORAGES)('the end of an SFTP session: $kind', ({ start }) => {
  let storage: Storage;
  let local: string;
  beforeAll(async () => {
    storage = await start();
    local = mkdtempSync(join(tmpdir(), 'sftp-local-'));
  });
  afterAll(async () => {
    await storage?.close();
    rmSync(local, { recursive: true, force: true });
  });

  it("answers a client's channel close, so the client's SFTP session closes", async () => {
    const connection = new Client();
    await new Promise<void>((resolve, reject) => {
      connection.once('ready', resolve).once('error', reject);
      connection.connect({
        host: storage.host,
        port: storage.port,
        username: storage.user.name,
        password: storage.user.password,
      });
    });
    try {
      const sftp = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) =>
        connection.sftp((error, wrapper) => (error ? reject(error) : resolve(wrapper))),
      );
      const closed = new Promise<'closed'>((resolve) => sftp.once('close', () => resolve('closed')));
      const waited = new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 3000).unref());
      sftp.end();
      expect(await Promise.race([closed, waited])).toBe('closed');
    } finally {
      connection.end();
    }
  });

  // The client cannot run here: the warning above says so; the test above still does.
  const batchEndings = missingSftpClient.length === 0 ? ['the batch ends', 'the batch says bye'] : [];
  for (const ending of batchEndings) {
    it(`OpenSSH's sftp -b puts a file, lists it, and exits by itself with 0 when ${ending}`, async () => {
      const name = `users_acme_${ending.endsWith('bye') ? 'bye' : 'eof'}.csv`;
      const body = 'customer_id,first_name\nC1,Ada\n';
      writeFileSync(join(local, name), body);
      const commands = [`put ${name}`, 'ls -l', ...(ending.endsWith('bye') ? ['bye'] : [])];

      const run = await runSftpBatch({
        host: storage.host,
        port: storage.port,
        user: storage.user.name,
        password: storage.user.password,
        commands,
        cwd: local,
        timeoutMs: 10_000,
      });

      expect({ timedOut: run.timedOut, status: run.status, stderr: run.stderr }).toEqual({
        timedOut: false,
        status: 0,
        stderr: '',
      });
      expect(run.elapsedMs).toBeLessThan(5000);
      expect(run.stdout).toContain(name);
      expect(await storage.stored(name)).toBe(body);
    });
  }
});

if (missingSftpClient.length === 0) {
  describe('a refused upload in an OpenSSH batch', () => {
    let storage: Storage;
    let local: string;
    beforeAll(async () => {
      storage = await STORAGES[0]!.start();
      local = mkdtempSync(join(tmpdir(), 'sftp-local-'));
    });
    afterAll(async () => {
      await storage?.close();
      rmSync(local, { recursive: true, force: true });
    });

    it("OpenSSH's sftp -b goes on past a name the landing zone refuses, with -put, and still exits by itself", async () => {
      const refused = `users_acme_${'n'.repeat(235)}.csv`;
      writeFileSync(join(local, refused), 'refused\n');
      writeFileSync(join(local, 'after.csv'), 'after\n');

      const run = await runSftpBatch({
        host: storage.host,
        port: storage.port,
        user: storage.user.name,
        password: storage.user.password,
        commands: [`-put ${refused}`, 'put after.csv'],
        cwd: local,
        timeoutMs: 10_000,
      });

      expect({ timedOut: run.timedOut, status: run.status }).toEqual({ timedOut: false, status: 0 });
      // OpenSSH prints the status code's text, never the server's message (other clients show it).
      expect(run.stderr).toMatch(/dest open .*: Failure/);
      expect(await storage.stored('after.csv')).toBe('after\n');
    });
  });
}
