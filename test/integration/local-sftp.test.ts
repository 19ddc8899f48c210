import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import SftpClient from 'ssh2-sftp-client';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { newPassword, startLocalSftp, type LocalSftp } from '../../lambdas/local/services/local-sftp';

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

  it('refuses a wrong password', async () => {
    await expect(connect({ name: 'acme', password: 'wrong' })).rejects.toThrow(/authentication/i);
  });

  it('reports the host key fingerprint as ssh prints it', () => {
    expect(sftp.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
