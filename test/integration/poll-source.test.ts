import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { DynamoDbCollectionClaims } from '../../lambdas/adapters/aws/dynamodb-collection-claims';
import { S3LandingWriter } from '../../lambdas/adapters/aws/s3-landing-writer';
import { connectSftpSource, type SourceCredentials } from '../../lambdas/adapters/sftp/sftp-folder';
import { PollSourceSchema, pollSource, type PollSource } from '../../lambdas/core/polling/poll-source';
import { startFolderSftp } from '../../lambdas/local/services/folder-sftp';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { newPassword } from '../../lambdas/local/services/local-sftp';
import { newSshKeyPair } from '../../lambdas/local/services/sftp-server';
import { freePort, hasOpenSsh, startOpenSsh } from '../support/openssh';

/** A partner's SFTP server over a local folder `root`, and how the watcher reaches it. */
interface PartnerServer {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly hostKeyFingerprint: string;
  readonly credentials: SourceCredentials;
  /** The server path of a folder under root. */
  remote(folder: string): string;
  close(): Promise<void>;
}

const clientKey = newSshKeyPair();

const SERVERS: { kind: string; start: (root: string) => Promise<PartnerServer> }[] = [
  {
    kind: 'embedded ssh2 server',
    start: async (root) => {
      const password = newPassword();
      const server = await startFolderSftp({ root, users: [{ name: 'partner', password }] });
      return { ...server, username: 'partner', credentials: { password }, remote: (folder) => `/${folder}` };
    },
  },
  ...(hasOpenSsh
    ? [
        {
          kind: 'OpenSSH sshd',
          start: async (root: string): Promise<PartnerServer> => {
            const server = await startOpenSsh(clientKey.publicKey);
            return {
              ...server,
              credentials: { privateKey: clientKey.privateKey },
              remote: (folder) => join(root, folder),
            };
          },
        },
      ]
    : []),
];

if (!hasOpenSsh) console.warn('OpenSSH sshd tests not run: /usr/sbin/sshd is not installed (.ci/run installs it)');

let s3: LocalS3;
let db: LocalDynamoDb;
let ledger: DynamoDbCollectionClaims;
let landing: S3LandingWriter;
const created: string[] = [];

beforeAll(async () => {
  [s3, db] = await Promise.all([startLocalS3(['landing']), startLocalDynamoDb()]);
  await db.createTable('ledger', TABLES.ledger);
  ledger = new DynamoDbCollectionClaims(db.client(), 'ledger');
  landing = new S3LandingWriter(s3.client(), 'landing');
  s3.onObjectCreated((object) => created.push(object.key));
});
afterAll(async () => {
  await Promise.all([s3?.close(), db?.close()]);
});

const keysUnder = async (prefix: string) =>
  ((await s3.client().send(new ListObjectsV2Command({ Bucket: 'landing', Prefix: prefix }))).Contents ?? []).map(
    (object) => object.Key,
  );
const landedText = async (key: string) =>
  (await s3.client().send(new GetObjectCommand({ Bucket: 'landing', Key: key }))).Body!.transformToString();

describe.each(SERVERS)('collecting from a partner SFTP server: $kind', ({ start }) => {
  let root: string;
  let server: PartnerServer;
  let tests = 0;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'partner-sftp-'));
    server = await start(root);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A folder of its own on the server, and a source (and partner) of its own, per test. */
  function setUp(overrides: Partial<PollSource> = {}) {
    const id = `t${++tests}-${randomUUID().slice(0, 8)}`;
    const folder = join(root, id);
    mkdirSync(folder);
    const source = PollSourceSchema.parse({
      name: id,
      partner: `p-${id}`,
      host: server.host,
      port: server.port,
      username: server.username,
      hostKeyFingerprint: server.hostKeyFingerprint,
      remoteDir: server.remote(id),
      pattern: '*.{csv,jsonl,gz}',
      ...overrides,
    });
    const poll = (changes: Partial<PollSource> = {}, credentials = server.credentials) =>
      pollSource(
        { ...source, ...changes },
        {
          connect: (s) => connectSftpSource(s, credentials, { readyTimeoutMs: 5000 }),
          claims: ledger,
          landing,
          owner: randomUUID(),
          leaseMs: 60_000,
        },
      );
    return { source, folder, poll, prefix: `incoming/${source.partner}/` };
  }

  it('collects each new complete file once, into the partner folder, and moves it to processed/', async () => {
    const { source, folder, poll, prefix } = setUp();
    const users = 'customer_id,first_name\nC1,Ada\n';
    writeFileSync(join(folder, 'users_acme_20261124.csv'), users);
    writeFileSync(join(folder, 'transactions_acme_20261124.csv'), 'transaction_id\nT1\n');
    writeFileSync(join(folder, 'notes.txt'), 'not matching the pattern\n');
    writeFileSync(join(folder, '.hidden.csv'), 'hidden\n');

    const first = await poll();
    expect(first).toMatchObject({ listed: 2, waiting: 2, collected: [] });
    expect(await keysUnder(prefix)).toEqual([]);

    const second = await poll();
    expect(second.collected.map((file) => file.key).sort()).toEqual([
      `${prefix}transactions_acme_20261124.csv`,
      `${prefix}users_acme_20261124.csv`,
    ]);
    expect(await landedText(`${prefix}users_acme_20261124.csv`)).toBe(users);
    const head = await s3
      .client()
      .send(new HeadObjectCommand({ Bucket: 'landing', Key: `${prefix}users_acme_20261124.csv` }));
    expect(head.Metadata).toMatchObject({
      'collected-from': source.name,
      'remote-path': posix.join(source.remoteDir, 'users_acme_20261124.csv'),
    });
    expect(readdirSync(folder).sort()).toEqual(['.hidden.csv', 'notes.txt', 'processed']);
    expect(readdirSync(join(folder, 'processed')).sort()).toEqual([
      'transactions_acme_20261124.csv',
      'users_acme_20261124.csv',
    ]);

    const third = await poll();
    expect(third).toMatchObject({ listed: 0, collected: [] });
    expect(created.filter((key) => key.startsWith(prefix))).toHaveLength(2);
  });

  it('does not collect a file still being written until size and time hold across two listings', async () => {
    const { folder, poll, prefix } = setUp();
    const path = join(folder, 'users_acme_20261124.csv');
    writeFileSync(path, 'customer_id,first_name\n');
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    appendFileSync(path, 'C1,Ada\n');
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    appendFileSync(path, 'C2,Grace\n');
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    expect(await keysUnder(prefix)).toEqual([]);
    const stable = await poll();
    expect(stable.collected).toHaveLength(1);
    expect(await landedText(`${prefix}users_acme_20261124.csv`)).toBe('customer_id,first_name\nC1,Ada\nC2,Grace\n');
  });

  it('with a .done marker, collects as soon as the marker is there, and moves both', async () => {
    const { folder, poll, prefix } = setUp({ completeWhen: 'marker' });
    writeFileSync(join(folder, 'users_acme_20261124.csv'), 'customer_id\nC1\n');
    expect(await poll()).toMatchObject({ listed: 1, waiting: 1, collected: [] });
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    writeFileSync(join(folder, 'users_acme_20261124.csv.done'), '');
    expect((await poll()).collected).toHaveLength(1);
    expect(await keysUnder(prefix)).toEqual([`${prefix}users_acme_20261124.csv`]);
    expect(readdirSync(join(folder, 'processed')).sort()).toEqual([
      'users_acme_20261124.csv',
      'users_acme_20261124.csv.done',
    ]);
  });

  it('overlapping polls and repeated listings collect a file once; left in place, it is remembered', async () => {
    const { folder, poll, prefix } = setUp({ afterCollect: 'leave' });
    writeFileSync(join(folder, 'users_acme_20261124.csv'), 'customer_id\nC1\n');
    await poll();
    const overlapping = await Promise.all([poll(), poll(), poll()]);
    expect(overlapping.flatMap((result) => result.collected)).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(await poll()).toMatchObject({ listed: 1, alreadyCollected: 1, collected: [] });
    expect(readdirSync(folder)).toEqual(['users_acme_20261124.csv']);
    expect(created.filter((key) => key.startsWith(prefix))).toEqual([`${prefix}users_acme_20261124.csv`]);

    // The same name with new contents is a new file.
    writeFileSync(join(folder, 'users_acme_20261124.csv'), 'customer_id\nC1\nC2\n');
    await poll();
    expect((await poll()).collected).toHaveLength(1);
    expect(await landedText(`${prefix}users_acme_20261124.csv`)).toBe('customer_id\nC1\nC2\n');
  });

  it('a file whose move fails is not collected again; the move is tried again until it works', async () => {
    const { folder, poll, prefix } = setUp({ processedDir: 'done' });
    writeFileSync(join(folder, 'done'), 'a file where the processed folder should be\n');
    writeFileSync(join(folder, 'users_acme_20261124.csv'), 'customer_id\nC1\n');
    await poll();
    expect(await poll()).toMatchObject({ moveFailures: 1, collected: [expect.anything()] });
    expect(await poll()).toMatchObject({ alreadyCollected: 1, moveFailures: 1, collected: [] });
    rmSync(join(folder, 'done'));
    expect(await poll()).toMatchObject({ alreadyCollected: 1, moveFailures: 0, collected: [] });
    expect(readdirSync(join(folder, 'done'))).toEqual(['users_acme_20261124.csv']);
    expect(created.filter((key) => key.startsWith(prefix))).toHaveLength(1);
  });

  it('refuses a server whose host key is not the pinned one, naming both keys; nothing is read', async () => {
    const { folder, poll, prefix } = setUp();
    writeFileSync(join(folder, 'users_acme_20261124.csv'), 'customer_id\nC1\n');
    const pinned = newSshKeyPair().fingerprint;
    for (let i = 0; i < 2; i++) {
      const refused = poll({ hostKeyFingerprint: pinned });
      await expect(refused).rejects.toMatchObject({ name: 'Source.HostKeyRejected' });
      await expect(refused).rejects.toThrow(`is ${server.hostKeyFingerprint}, not the pinned ${pinned}`);
    }
    expect(await keysUnder(prefix)).toEqual([]);
    expect(existsSync(join(folder, 'users_acme_20261124.csv'))).toBe(true);
  });

  it('reads a file in order with many requests in flight, and refuses one that changed since its listing', async () => {
    const { source, folder } = setUp();
    const bytes = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(join(folder, 'big.csv'), bytes);
    const remote = await connectSftpSource(source, server.credentials);
    try {
      const [listed] = await remote.list(source.remoteDir);
      const path = posix.join(source.remoteDir, 'big.csv');
      const chunks: Buffer[] = [];
      for await (const chunk of remote.read(path, listed!)) chunks.push(Buffer.from(chunk));
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);

      appendFileSync(join(folder, 'big.csv'), 'more\n');
      const reading = (async () => {
        for await (const _chunk of remote.read(path, listed!)) {
          // drained
        }
      })();
      await expect(reading).rejects.toThrow('changed while it was read');
    } finally {
      await remote.close();
    }
  });

  it('a file that grows while it is read is not landed: it waits, and is collected whole later', async () => {
    const { source, folder, prefix } = setUp();
    const path = join(folder, 'users_acme_20261124.csv');
    writeFileSync(path, 'customer_id\nC1\n');
    let appended = false;
    const poll = () =>
      pollSource(source, {
        connect: async (s) => {
          const remote = await connectSftpSource(s, server.credentials);
          return {
            ...remote,
            // The partner appends while the first read is under way.
            read: (file, listed) =>
              (async function* () {
                for await (const chunk of remote.read(file, listed)) {
                  if (!appended) appendFileSync(path, 'C2\n');
                  appended = true;
                  yield chunk;
                }
              })(),
          };
        },
        claims: ledger,
        landing,
        owner: randomUUID(),
        leaseMs: 60_000,
      });
    await poll();
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    expect(appended).toBe(true);
    expect(await keysUnder(prefix)).toEqual([]);
    expect(await poll()).toMatchObject({ waiting: 1, collected: [] });
    expect((await poll()).collected).toHaveLength(1);
    expect(await landedText(`${prefix}users_acme_20261124.csv`)).toBe('customer_id\nC1\nC2\n');
  });

  it('names an unreachable server and refused credentials', async () => {
    const { poll } = setUp();
    await expect(poll({ port: await freePort() })).rejects.toMatchObject({
      name: 'Source.Unreachable',
      message: expect.stringContaining('tried again next poll'),
    });
    const wrong: SourceCredentials =
      'password' in server.credentials ? { password: 'not-the-password' } : { privateKey: newSshKeyPair().privateKey };
    await expect(poll({}, wrong)).rejects.toMatchObject({ name: 'Source.AuthRejected' });
  });
});

describe('S3LandingWriter', () => {
  async function* chunks(parts: string[], failAfter?: number) {
    for (const [index, part] of parts.entries()) {
      if (index === failAfter) throw new Error('connection lost');
      yield Buffer.from(part);
    }
  }

  it('stores nothing (and no Object Created event) unless exactly the listed bytes arrive', async () => {
    await expect(landing.land('incoming/w/short.csv', chunks(['abc']), 10, {})).rejects.toThrow('3 of the 10 bytes');
    await expect(landing.land('incoming/w/long.csv', chunks(['abcdef', 'ghijkl']), 8, {})).rejects.toThrow('more than');
    await expect(landing.land('incoming/w/cut.csv', chunks(['abc', 'def'], 1), 6, {})).rejects.toThrow(
      'connection lost',
    );
    expect(await keysUnder('incoming/w/')).toEqual([]);
    expect(created.filter((key) => key.startsWith('incoming/w/'))).toEqual([]);
    await landing.land('incoming/w/whole.csv', chunks(['abc', 'def']), 6, {});
    expect(await landedText('incoming/w/whole.csv')).toBe('abcdef');
  });
});
