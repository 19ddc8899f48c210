import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createGzip, gzipSync } from 'node:zlib';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import { identifyFile } from '../../lambdas/core/files/identify-file';
import type { ObjectRef } from '../../lambdas/core/files/object-store';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { tempDir } from '../unit/helpers';

describe('identifyFile over S3 (s3rver)', () => {
  let s3: LocalS3;
  let client: S3Client;
  let store: S3ObjectStore;
  const dir = tempDir();
  const options = {
    maxFileSizeBytes: 10 * 1024 ** 3,
    acceptedEncodings: ['csv', 'jsonl', 'gzip'] as ('csv' | 'jsonl' | 'gzip')[],
  };
  const put = (key: string, body: Uint8Array | string, metadata?: Record<string, string>) =>
    client.send(
      new PutObjectCommand({ Bucket: 'landing', Key: key, Body: body, ...(metadata ? { Metadata: metadata } : {}) }),
    );
  const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
    client = s3.client();
    store = new S3ObjectStore(client);
  });
  afterAll(async () => {
    await s3.close();
    dir.remove();
  });

  it('classifies a partner file by name and identifies it by the SHA-256 of all its bytes', async () => {
    const [users] = await generateFiles({ users: 3000, transactions: 0, outDir: dir.path, seed: 'identify' });
    const bytes = readFileSync(users!.path);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    await put('demo/users_demo_20261124_001.csv', bytes);
    expect(await identifyFile(store, { bucket: 'landing', key: 'demo/users_demo_20261124_001.csv' }, options)).toEqual({
      kind: 'users',
      by: 'name',
      sha256: sha(bytes),
      size: bytes.length,
      format: 'csv',
    });
  });

  it('classifies a gzip file with no telling name by its header, read from the head of the object only', async () => {
    const [trx] = await generateFiles({
      users: 0,
      transactions: 4000,
      outDir: dir.path,
      seed: 'identify',
      format: 'jsonl',
    });
    const gz = gzipSync(readFileSync(trx!.path));
    await put('demo/upload-7', gz);
    expect(await identifyFile(store, { bucket: 'landing', key: 'demo/upload-7' }, options)).toMatchObject({
      kind: 'transactions',
      by: 'header',
      format: 'jsonl',
      sha256: sha(gz),
    });
  });

  it('metadata wins over the name', async () => {
    await put('demo/users_demo_20261124_002.csv', 'transaction_id,customer_id,amount,currency,occurred_at\n', {
      'file-type': 'transactions',
    });
    expect(
      await identifyFile(store, { bucket: 'landing', key: 'demo/users_demo_20261124_002.csv' }, options),
    ).toMatchObject({
      kind: 'transactions',
      by: 'metadata',
    });
  });

  it('an unknown file gets the reason, and is not read past its head', async () => {
    await put('demo/notes.txt', 'hello\n');
    const reads: (string | undefined)[] = [];
    const watched = {
      head: store.head.bind(store),
      tags: store.tags.bind(store),
      read: (ref: ObjectRef, range?: { start: number; end: number }) => {
        reads.push(range ? `${range.start}-${range.end}` : undefined);
        return store.read(ref, range);
      },
    };
    expect(await identifyFile(watched, { bucket: 'landing', key: 'demo/notes.txt' }, options)).toEqual({
      kind: 'unknown',
      reason: expect.stringContaining('unknown file kind'),
      size: 6,
    });
    expect(reads).toEqual(['0-5']);
  });

  it('refuses a file over the size limit, and an encoding not accepted, by name', async () => {
    await put('demo/users_demo_20261124_003.csv', 'customer_id,email\nC1,a@b.c\n');
    await expect(
      identifyFile(
        store,
        { bucket: 'landing', key: 'demo/users_demo_20261124_003.csv' },
        { ...options, maxFileSizeBytes: 10 },
      ),
    ).rejects.toMatchObject({
      name: 'File.TooLarge',
    });
    await put('demo/users_demo_20261124_004.jsonl', '{"customer_id":"C1"}\n');
    await expect(
      identifyFile(
        store,
        { bucket: 'landing', key: 'demo/users_demo_20261124_004.jsonl' },
        { ...options, acceptedEncodings: ['csv', 'gzip'] },
      ),
    ).rejects.toMatchObject({ name: 'File.EncodingNotAccepted' });
  });
  it('refuses as a whole a file that breaks further down than its head (NUL at 100 KiB, truncated gzip, a missing column)', async () => {
    const [users] = await generateFiles({ users: 3000, transactions: 0, outDir: dir.path, seed: 'unreadable' });
    const good = readFileSync(users!.path);
    const binary = Buffer.concat([good.subarray(0, 100 * 1024), Buffer.from([0]), good.subarray(100 * 1024)]);
    await put('demo/users_demo_20261124_005.csv', binary);
    await expect(
      identifyFile(store, { bucket: 'landing', key: 'demo/users_demo_20261124_005.csv' }, options),
    ).rejects.toMatchObject({ name: 'File.Unreadable' });
    const gz = gzipSync(good);
    await put('demo/users_demo_20261124_006.csv.gz', gz.subarray(0, gz.length - 100));
    await expect(
      identifyFile(store, { bucket: 'landing', key: 'demo/users_demo_20261124_006.csv.gz' }, options),
    ).rejects.toMatchObject({ name: 'File.Unreadable' });
    await put('demo/users_demo_20261124_007.csv', 'customer_id,email\nC1,a@b.c\n');
    await expect(
      identifyFile(store, { bucket: 'landing', key: 'demo/users_demo_20261124_007.csv' }, options),
    ).rejects.toMatchObject({ name: 'File.Unreadable', message: expect.stringMatching(/first_name/) });
  });

  it('refuses a gzip bomb (200 MB of newlines in 200 KB) as File.TooLarge as soon as its text passes the limit', async () => {
    const newlines = Buffer.alloc(1024 * 1024, '\n');
    const bomb = await buffer(
      Readable.from(Array.from({ length: 200 }, () => newlines)).pipe(createGzip({ level: 9 })),
    );
    expect(bomb.length).toBeLessThan(options.maxFileSizeBytes / 1000);
    await put('demo/users_demo_20261124_008.csv.gz', bomb);
    const started = Date.now();
    await expect(
      identifyFile(
        store,
        { bucket: 'landing', key: 'demo/users_demo_20261124_008.csv.gz' },
        { ...options, maxDecompressedBytes: 1_000_000 },
      ),
    ).rejects.toMatchObject({
      name: 'File.TooLarge',
      message: 'decompresses to more than 1000000 bytes (MAX_DECOMPRESSED_BYTES)',
    });
    // Read to the end, these 200 MB of blank CSV rows take about 30 s.
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
