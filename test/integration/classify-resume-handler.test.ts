import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import { createTelemetry } from '../../lambdas/adapters/aws/telemetry';
import { classifyFileContract } from '../../lambdas/classify-file/contract';
import { makeHandler } from '../../lambdas/classify-file/make-handler';
import type { FileRegistry } from '../../lambdas/core/ledger/file-claim';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { countingReads } from '../support/counting-reads';
import { sliceContext } from '../support/slice-context';

function usersCsv(records: number, last = ''): Buffer {
  const rows = ['customer_id,first_name,last_name,email,country,created_at,note'];
  for (let i = 0; i < records; i++) {
    const note = i % 9 === 0 ? `"two\nlines ${i}"` : `n${i}`;
    rows.push(`C${i},Åsa,Lee,u${i}@example.com,GB,2026-01-02T03:04:05Z,${note}`);
  }
  return Buffer.from(`${rows.join('\n')}\n${last}`);
}

const contextOf = (short: boolean) => sliceContext('classify-file', short);

const noRegistry: FileRegistry = {
  claim: () => Promise.reject(new Error('no claim here')),
} as unknown as FileRegistry;

describe('classify-file handler: slices resume from the checkpoint they return (embedded S3)', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3(['landing']);
  });
  afterAll(() => s3.close());

  let lastSlices = 0;
  /** Loops the handler as the state machine does: StartClassify's `{done: false}`, then each slice's result. */
  async function classify(key: string, short: boolean) {
    const store = countingReads(new S3ObjectStore(s3.client()));
    const handler = makeHandler({
      store,
      registry: noRegistry,
      schedule: { register: () => Promise.resolve() },
      landingPrefix: 'incoming/',
      settings: { maxFileSizeBytes: 100 * 1024 * 1024, acceptedEncodings: ['csv', 'jsonl', 'gzip'] },
      telemetry: createTelemetry('classify-file', { output: new PassThrough() }),
    });
    let resume: unknown = { done: false };
    for (let slices = 1; ; slices++) {
      lastSlices = slices;
      const output = (await handler(
        { action: 'classify', file: { bucket: 'landing', key }, resume },
        contextOf(short),
      )) as Record<string, unknown>;
      classifyFileContract.outputs.classify.parse(output);
      // Through the state machine's JSON, as `$.classification`.
      resume = JSON.parse(JSON.stringify(output));
      if (output.done) return { output, store, slices };
    }
  }

  it.each([
    ['users/acme/users.csv', usersCsv(30_000)],
    ['users/acme/users.csv.gz', gzipSync(usersCsv(30_000))],
  ])('%s: the same classification in many slices as in one; a plain file is read about once', async (key, bytes) => {
    await s3.client().send(new PutObjectCommand({ Bucket: 'landing', Key: key, Body: bytes }));
    const whole = await classify(key, false);
    const sliced = await classify(key, true);
    expect(whole.slices).toBe(1);
    expect(sliced.slices).toBeGreaterThan(5);
    expect(sliced.output).toEqual(whole.output);
    expect(whole.output).toMatchObject({
      kind: 'users',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
      format: 'csv',
      done: true,
    });
    if (!key.endsWith('.gz')) {
      // The head once, then each slice from its checkpoint to the end.
      expect(sliced.store.ranges.slice(2).every((range) => range && range.end === bytes.length - 1)).toBe(true);
      expect(sliced.store.bytesRead).toBeLessThan(bytes.length * 1.1);
    }
  });

  it('a file broken near its end is refused (File.Unreadable) by the slice that meets it', async () => {
    const key = 'users/acme/broken.csv';
    await s3
      .client()
      .send(new PutObjectCommand({ Bucket: 'landing', Key: key, Body: usersCsv(30_000, 'C9,"never closed,x\n') }));
    await expect(classify(key, true)).rejects.toMatchObject({ name: 'File.Unreadable' });
    expect(lastSlices).toBeGreaterThan(5);
  });
});
