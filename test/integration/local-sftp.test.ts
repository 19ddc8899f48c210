import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, utils, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { DynamoDbCollectionClaims } from '../../lambdas/adapters/aws/dynamodb-collection-claims';
import { S3LandingWriter } from '../../lambdas/adapters/aws/s3-landing-writer';
import { keyFingerprint } from '../../lambdas/adapters/sftp/host-key';
import { connectSftpSource } from '../../lambdas/adapters/sftp/sftp-folder';
import { PollSourceSchema, pollSource } from '../../lambdas/core/polling/poll-source';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { MAX_FILE_NAME_BYTES } from '../../lambdas/core/files/classify-file';
import {
  EMBEDDED_S3_NAME_MAX_BYTES,
  LANDING_NAME_MAX_BYTES,
  newPassword,
  startLocalSftp,
  type LocalSftp,
} from '../../lambdas/local/services/local-sftp';
import { newSshKeyPair } from '../../lambdas/local/services/sftp-server';

const { STATUS_CODE } = utils.sftp;
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50));

/** Opens a bare ssh2 connection (for what ssh2-sftp-client hides: handles, fstat, dropped connections). */
async function connectRaw(config: ConnectConfig): Promise<{ connection: Client; sftp: SFTPWrapper }> {
  const connection = new Client();
  await new Promise<void>((resolve, reject) => {
    connection.once('ready', resolve).once('error', reject);
    connection.connect(config);
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    connection.sftp((error, wrapper) => (error ? reject(error) : resolve(wrapper))),
  );
  return { connection, sftp };
}

/** The embedded SFTP server, with a real SFTP client, storing into the embedded S3. */
describe('the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  let sftp: LocalSftp;
  const created: string[] = [];
  const uploaded: string[] = [];
  const acme = { name: 'acme', password: newPassword() };
  const other = { name: 'globex', password: newPassword() };

  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
    s3.onObjectCreated((object) => created.push(object.key));
    sftp = await startLocalSftp({
      s3: s3.client(),
      bucket: 'landing',
      users: [acme, other],
      onUpload: ({ key }) => uploaded.push(key),
    });
  });
  afterAll(async () => {
    await sftp?.close();
    await s3?.close();
  });

  const connect = async (user: { name: string; password: string }) => {
    const client = new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
    await client.connect({ host: sftp.host, port: sftp.port, username: user.name, password: user.password });
    return client;
  };
  const objectText = async (key: string) =>
    (await s3.client().send(new GetObjectCommand({ Bucket: 'landing', Key: key }))).Body!.transformToString();

  it('stores an upload under the partner prefix when it is closed, and lists, reads and renames it', async () => {
    const client = await connect(acme);
    try {
      const body = 'customer_id,first_name\nC1,Ada\n';
      await client.put(Buffer.from(body), '/users_acme_20261124.csv');
      expect(await objectText('incoming/acme/users_acme_20261124.csv')).toBe(body);
      expect(uploaded).toContain('incoming/acme/users_acme_20261124.csv');
      expect(created).toContain('incoming/acme/users_acme_20261124.csv');

      const listing = await client.list('/');
      expect(listing).toEqual([
        expect.objectContaining({ name: 'users_acme_20261124.csv', type: '-', size: body.length }),
      ]);
      expect(await client.exists('/users_acme_20261124.csv')).toBe('-');
      expect(((await client.get('/users_acme_20261124.csv')) as Buffer).toString()).toBe(body);

      await client.rename('/users_acme_20261124.csv', '/users_acme_20261124_002.csv');
      expect((await client.list('/')).map((e) => e.name)).toEqual(['users_acme_20261124_002.csv']);
      await client.delete('/users_acme_20261124_002.csv');
      expect(await client.list('/')).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('confines each partner to their own home, even through ..', async () => {
    const client = await connect(other);
    try {
      await client.put(Buffer.from('x\n'), '../acme/escape.csv');
      await client.mkdir('/sub');
      await client.put(Buffer.from('y\n'), '/sub/file.csv');
      const keys = ((await s3.client().send(new ListObjectsV2Command({ Bucket: 'landing' }))).Contents ?? []).map(
        (o) => o.Key,
      );
      expect(keys).toEqual(expect.arrayContaining(['incoming/globex/acme/escape.csv', 'incoming/globex/sub/file.csv']));
      expect(keys).not.toContain('incoming/acme/escape.csv');
      expect((await client.list('/')).map((e) => `${e.type}${e.name}`).sort()).toEqual(['dacme', 'dsub']);
    } finally {
      await client.end();
    }
  });

  it('refuses a wrong password, after a delay of 1 s by default', async () => {
    const started = Date.now();
    await expect(connect({ name: 'acme', password: 'wrong' })).rejects.toThrow(/authentication/i);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('reports the host key fingerprint as ssh prints it', () => {
    expect(sftp.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('names in the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  let sftp: LocalSftp;
  const created: string[] = [];
  const acme = { name: 'acme', password: newPassword() };

  beforeAll(async () => {
    s3 = await startLocalS3(['landing', 'probe']);
    s3.onObjectCreated((object) => created.push(object.key));
    sftp = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme] });
  });
  afterAll(async () => {
    await sftp?.close();
    await s3?.close();
  });

  const connect = async () => {
    const client = new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
    await client.connect({ host: sftp.host, port: sftp.port, username: acme.name, password: acme.password });
    return client;
  };
  const keys = async (prefix: string) =>
    ((await s3.client().send(new ListObjectsV2Command({ Bucket: 'landing', Prefix: prefix }))).Contents ?? []).map(
      (object) => object.Key,
    );
  const objectText = async (key: string) =>
    (await s3.client().send(new GetObjectCommand({ Bucket: 'landing', Key: key }))).Body!.transformToString();

  it('the embedded S3 stores names up to 233 bytes under incoming/<partner>/; the landing zone takes 200', async () => {
    // s3rver keeps `<name>._S3rver_metadata.json` beside each object: that file name must fit in 255 bytes.
    const put = (name: string) =>
      s3.client().send(new PutObjectCommand({ Bucket: 'probe', Key: `incoming/acme/${name}`, Body: 'x' }));
    const longest = 'n'.repeat(EMBEDDED_S3_NAME_MAX_BYTES);
    await put(longest);
    const stored = await s3.client().send(new GetObjectCommand({ Bucket: 'probe', Key: `incoming/acme/${longest}` }));
    expect(await stored.Body!.transformToString()).toBe('x');
    await expect(put(`${longest}n`)).rejects.toMatchObject({ name: 'InternalError' });
    expect(EMBEDDED_S3_NAME_MAX_BYTES).toBe(233);
    // What the pipeline takes, which the embedded S3 can store.
    expect(LANDING_NAME_MAX_BYTES).toBe(MAX_FILE_NAME_BYTES);
    expect(LANDING_NAME_MAX_BYTES).toBe(200);
  });

  it('refuses a name too long at upload with an SFTP failure naming both lengths; nothing stored or left', async () => {
    const client = await connect();
    try {
      const longest = 'l'.repeat(LANDING_NAME_MAX_BYTES);
      await client.put(Buffer.from('fits\n'), `/${longest}`);
      expect(await objectText(`incoming/acme/${longest}`)).toBe('fits\n');

      for (const [name, bytes] of [
        ['l'.repeat(LANDING_NAME_MAX_BYTES + 1), 201],
        ['é'.repeat(120), 240],
        ['x'.repeat(300), 300],
      ] as const) {
        await expect(client.put(Buffer.from('data\n'), `/${name}`)).rejects.toMatchObject({
          code: STATUS_CODE.FAILURE,
          message: expect.stringContaining(`file name too long: ${bytes} bytes, at most 200`),
        });
      }
      await expect(client.rename(`/${longest}`, `/${longest}.csv`)).rejects.toMatchObject({
        code: STATUS_CODE.FAILURE,
        message: expect.stringContaining('file name too long: 204 bytes, at most 200'),
      });

      expect(await keys('incoming/acme/')).toEqual([`incoming/acme/${longest}`]);
      expect(readdirSync(sftp.scratchDirectory)).toEqual([]);
      expect((await client.list('/')).map((e) => e.name)).toEqual([longest]);
      await client.delete(`/${longest}`);
    } finally {
      await client.end();
    }
  });

  it('stores names with ; , : # & ? @ = $ + %, spaces and UTF-8 under exactly that key, and renames them', async () => {
    const names = [
      'users; acme, 2026.csv',
      'a:b#c&d?e@f=g$h.csv',
      '100% + 50%.csv',
      '%41%2F%zz.csv',
      'données été 日本語 ü.csv',
      ' leading and trailing .csv ',
    ];
    const client = await connect();
    try {
      for (const [index, name] of names.entries()) {
        await client.put(Buffer.from(`body ${index}\n`), `/${name}`);
      }
      expect((await keys('incoming/acme/')).sort()).toEqual(names.map((name) => `incoming/acme/${name}`).sort());
      for (const [index, name] of names.entries()) {
        expect(await objectText(`incoming/acme/${name}`)).toBe(`body ${index}\n`);
        expect(((await client.get(`/${name}`)) as Buffer).toString()).toBe(`body ${index}\n`);
      }
      expect(created).toEqual(expect.arrayContaining(names.map((name) => `incoming/acme/${name}`)));
      expect((await client.list('/')).map((e) => e.name).sort()).toEqual([...names].sort());

      await client.mkdir('/done');
      for (const name of names) await client.rename(`/${name}`, `/done/${name} + 1`);
      expect((await keys('incoming/acme/')).sort()).toEqual(
        names.map((name) => `incoming/acme/done/${name} + 1`).sort(),
      );
      for (const [index, name] of names.entries()) {
        expect(await objectText(`incoming/acme/done/${name} + 1`)).toBe(`body ${index}\n`);
      }
    } finally {
      await client.end();
    }
  });
});

describe('scratch files of the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  const acme = { name: 'acme', password: newPassword() };
  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
  });
  afterAll(async () => {
    await s3?.close();
  });

  const waitUntilEmpty = async (directory: string) => {
    for (let deadline = Date.now() + 5000; Date.now() < deadline;) {
      if (readdirSync(directory).length === 0) return [];
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return readdirSync(directory);
  };

  it('removes the scratch file when storing the upload fails, and the client sees the failure', async () => {
    const sftp = await startLocalSftp({ s3: s3.client(), bucket: 'no-such-bucket', users: [acme] });
    const client = new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
    try {
      await client.connect({ host: sftp.host, port: sftp.port, username: acme.name, password: acme.password });
      await expect(client.put(Buffer.from('customer_id\nC1\n'), '/users.csv')).rejects.toMatchObject({
        code: STATUS_CODE.FAILURE,
        message: expect.stringContaining('NoSuchBucket'),
      });
      expect(readdirSync(sftp.scratchDirectory)).toEqual([]);
    } finally {
      await client.end();
      await sftp.close();
    }
  });

  it('removes the scratch file of an upload whose connection drops, and stores nothing', async () => {
    const sftp = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme] });
    try {
      const { connection, sftp: wire } = await connectRaw({
        host: sftp.host,
        port: sftp.port,
        username: acme.name,
        password: acme.password,
      });
      const handle = await new Promise<Buffer>((resolve, reject) =>
        wire.open('/dropped.csv', 'w', (error, opened) => (error ? reject(error) : resolve(opened))),
      );
      await new Promise<void>((resolve, reject) =>
        wire.write(handle, Buffer.from('customer_id\nC1\n'), 0, 15, 0, (error) => (error ? reject(error) : resolve())),
      );
      expect(readdirSync(sftp.scratchDirectory)).toHaveLength(1);
      connection.destroy();

      expect(await waitUntilEmpty(sftp.scratchDirectory)).toEqual([]);
      const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: 'landing', Prefix: 'incoming/' }));
      expect(listed.Contents ?? []).toEqual([]);
    } finally {
      await sftp.close();
    }
  });
});

describe('reading from the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  let db: LocalDynamoDb;
  let sftp: LocalSftp;
  const acme = { name: 'acme', password: newPassword() };
  const globex = { name: 'globex', password: newPassword() };
  beforeAll(async () => {
    [s3, db] = await Promise.all([startLocalS3(['landing', 'collected']), startLocalDynamoDb()]);
    await db.createTable('ledger', TABLES.ledger);
    sftp = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme, globex] });
  });
  afterAll(async () => {
    await sftp?.close();
    await Promise.all([s3?.close(), db?.close()]);
  });

  it('fstat of an open file reports the size and time the listing and stat show', async () => {
    const body = 'customer_id,first_name\nC1,Ada\nC2,Grace\n';
    await s3.client().send(new PutObjectCommand({ Bucket: 'landing', Key: 'incoming/acme/fstat.csv', Body: body }));
    // The scratch copy made at open is a second younger than the object.
    await nextSecond();
    const { connection, sftp: wire } = await connectRaw({
      host: sftp.host,
      port: sftp.port,
      username: acme.name,
      password: acme.password,
    });
    try {
      const listing = await new Promise<{ filename: string; attrs: Stats }[]>((resolve, reject) =>
        wire.readdir('/', (error, entries) => (error ? reject(error) : resolve(entries))),
      );
      const listed = listing.find((entry) => entry.filename === 'fstat.csv')!.attrs;
      const stat = await new Promise<Stats>((resolve, reject) =>
        wire.stat('/fstat.csv', (error, stats) => (error ? reject(error) : resolve(stats))),
      );
      const handle = await new Promise<Buffer>((resolve, reject) =>
        wire.open('/fstat.csv', 'r', (error, opened) => (error ? reject(error) : resolve(opened))),
      );
      const fstat = await new Promise<Stats>((resolve, reject) =>
        wire.fstat(handle, (error, stats) => (error ? reject(error) : resolve(stats))),
      );
      await new Promise<void>((resolve) => wire.close(handle, () => resolve()));

      expect({ size: listed.size, mtime: listed.mtime }).toEqual({ size: body.length, mtime: stat.mtime });
      expect({ size: fstat.size, mtime: fstat.mtime }).toEqual({ size: listed.size, mtime: listed.mtime });
    } finally {
      connection.end();
    }
  });

  it("the polling watcher collects a file from the landing zone's own server", async () => {
    const body = 'customer_id,first_name\nC1,Ada\n';
    const client = new SftpClient('test', { error: () => undefined, end: () => undefined, close: () => undefined });
    await client.connect({ host: sftp.host, port: sftp.port, username: globex.name, password: globex.password });
    await client.put(Buffer.from(body), '/users_globex_20261124.csv');
    await client.end();
    await nextSecond();

    const source = PollSourceSchema.parse({
      name: 'landing-zone',
      partner: 'globex-collected',
      host: sftp.host,
      port: sftp.port,
      username: globex.name,
      hostKeyFingerprint: sftp.hostKeyFingerprint,
      pattern: 'users_*.csv',
    });
    const poll = () =>
      pollSource(source, {
        connect: (s) => connectSftpSource(s, { password: globex.password }, { readyTimeoutMs: 5000 }),
        claims: new DynamoDbCollectionClaims(db.client(), 'ledger'),
        landing: new S3LandingWriter(s3.client(), 'collected'),
        owner: randomUUID(),
        leaseMs: 60_000,
      });

    expect(await poll()).toMatchObject({ listed: 1, waiting: 1, collected: [] });
    expect(await poll()).toMatchObject({
      waiting: 0,
      moveFailures: 0,
      collected: [{ key: 'incoming/globex-collected/users_globex_20261124.csv', size: body.length }],
    });
    const landed = await s3
      .client()
      .send(new GetObjectCommand({ Bucket: 'collected', Key: 'incoming/globex-collected/users_globex_20261124.csv' }));
    expect(await landed.Body!.transformToString()).toBe(body);
    const remaining = await s3
      .client()
      .send(new ListObjectsV2Command({ Bucket: 'landing', Prefix: 'incoming/globex/' }));
    expect((remaining.Contents ?? []).map((object) => object.Key)).toEqual([
      'incoming/globex/processed/users_globex_20261124.csv',
    ]);
  });
});

describe('failed logins to the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  let sftp: LocalSftp;
  const failures: { user: string; method: string; remote: string }[] = [];
  const acme = { name: 'acme', password: newPassword() };
  const delayMs = 300;
  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
    sftp = await startLocalSftp({
      s3: s3.client(),
      bucket: 'landing',
      users: [acme],
      authFailureDelayMs: delayMs,
      onAuthFailure: (event) => failures.push(event),
    });
  });
  afterAll(async () => {
    await sftp?.close();
    await s3?.close();
  });
  beforeEach(() => void failures.splice(0));

  /** Each password in turn on one connection: when each was answered, ms after the connection was ready to log in. */
  async function tryPasswords(user: string, passwords: string[]) {
    const answeredAtMs: number[] = [];
    let asked = 0;
    let started = 0;
    const connection = new Client();
    const outcome = await new Promise<'accepted' | 'refused'>((resolve) => {
      connection.once('ready', () => resolve('accepted')).once('error', () => resolve('refused'));
      connection.connect({
        host: sftp.host,
        port: sftp.port,
        username: user,
        authHandler: (_methodsLeft, _partial, next) => {
          if (asked > 0) answeredAtMs.push(Date.now() - started);
          else started = Date.now();
          const password = passwords[asked++];
          // false: no more attempts (ssh2 takes it, though its types do not say so).
          if (password === undefined) return next(false as never);
          return next({ type: 'password', username: user, password });
        },
      });
    });
    connection.end();
    if (outcome === 'accepted') answeredAtMs.push(Date.now() - started);
    return { outcome, answeredAtMs };
  }

  it('rejects a wrong password late, later at each attempt, and reports each without the password', async () => {
    const { outcome, answeredAtMs } = await tryPasswords('acme', ['wrong-1', 'wrong-2']);
    expect(outcome).toBe('refused');
    const [first = 0, second = 0] = answeredAtMs;
    expect(first).toBeGreaterThanOrEqual(delayMs - 20);
    expect(second - first).toBeGreaterThanOrEqual(2 * delayMs - 20);
    expect(failures).toEqual([
      { user: 'acme', method: 'password', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
      { user: 'acme', method: 'password', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
    ]);
    expect(JSON.stringify(failures)).not.toContain('wrong-');
  });

  it('delays and reports an unknown user the same way', async () => {
    const { outcome, answeredAtMs } = await tryPasswords('nobody', [acme.password]);
    expect(outcome).toBe('refused');
    expect(answeredAtMs[0]).toBeGreaterThanOrEqual(delayMs - 20);
    expect(failures).toEqual([expect.objectContaining({ user: 'nobody', method: 'password' })]);
  });

  it('lets the right password in at once, and reports nothing', async () => {
    const { outcome, answeredAtMs } = await tryPasswords('acme', [acme.password]);
    expect(outcome).toBe('accepted');
    expect(answeredAtMs[0]).toBeLessThan(delayMs);
    expect(failures).toEqual([]);
  });
});

describe('the host key of the embedded SFTP landing zone', () => {
  let s3: LocalS3;
  let directory: string;
  const acme = { name: 'acme', password: newPassword() };
  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
    directory = mkdtempSync(join(tmpdir(), 'host-key-'));
  });
  afterAll(async () => {
    await s3?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** The fingerprint of the key the server shows a client. */
  async function shownFingerprint(sftp: LocalSftp) {
    let shown = '';
    const { connection } = await connectRaw({
      host: sftp.host,
      port: sftp.port,
      username: acme.name,
      password: acme.password,
      hostVerifier: (key: Buffer) => ((shown = keyFingerprint(key)), true),
    });
    connection.end();
    return shown;
  }

  it('keeps the same host key across restarts with a host key file, written 0600 in a new folder', async () => {
    const hostKeyFile = join(directory, 'new-folder', 'ssh_host_key');
    const first = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme], hostKeyFile });
    const firstShown = await shownFingerprint(first);
    await first.close();
    expect(existsSync(hostKeyFile)).toBe(true);
    expect(statSync(hostKeyFile).mode & 0o777).toBe(0o600);

    const second = await startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme], hostKeyFile });
    try {
      expect(second.hostKeyFingerprint).toBe(first.hostKeyFingerprint);
      expect(await shownFingerprint(second)).toBe(firstShown);
      expect(firstShown).toBe(first.hostKeyFingerprint);
    } finally {
      await second.close();
    }
  });

  it('refuses a host key file that holds no private key, naming the file', async () => {
    const garbage = join(directory, 'garbage_key');
    writeFileSync(garbage, 'not a key\n', { mode: 0o600 });
    const publicOnly = join(directory, 'public_key');
    writeFileSync(publicOnly, `${newSshKeyPair().publicKey}\n`, { mode: 0o600 });
    for (const hostKeyFile of [garbage, publicOnly]) {
      await expect(
        startLocalSftp({ s3: s3.client(), bucket: 'landing', users: [acme], hostKeyFile }),
      ).rejects.toMatchObject({ name: 'Sftp.HostKeyFileInvalid', message: expect.stringContaining(hostKeyFile) });
    }
  });
});
