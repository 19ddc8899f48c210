import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createGzip } from 'node:zlib';
import { awsClients } from '../../../lambdas/adapters/aws/clients';
import * as classifyFile from '../../../lambdas/classify-file/make-handler';
import { classifyFileContract } from '../../../lambdas/classify-file/contract';
import { decodeText } from '../../../lambdas/core/files/file-encoding';
import { readRecords } from '../../../lambdas/core/files/read-records';
import { preparePhaseSlice } from '../../../lambdas/core/workflow/prepare-phase';
import * as finaliseFile from '../../../lambdas/finalise-file/make-handler';
import { finaliseFileContract } from '../../../lambdas/finalise-file/contract';
import * as prepareFile from '../../../lambdas/prepare-file/make-handler';
import { prepareFileContract } from '../../../lambdas/prepare-file/contract';
import { chunksOf } from '../helpers';
import { MemoryStore, runThroughPipeline } from './in-memory-pipeline';

/** `megabytes` MB of newlines, gzipped as it streams (about 1 KB a MB): never held uncompressed. */
const gzipBomb = (megabytes: number) => {
  const newlines = Buffer.alloc(1024 * 1024, '\n');
  return buffer(Readable.from(Array.from({ length: megabytes }, () => newlines)).pipe(createGzip({ level: 9 })));
};

/** The chunks of `bytes`, counting what the reader pulled. */
function counted(bytes: Uint8Array, chunkSize = 1024) {
  const source = { pulled: 0, chunks: chunksOf(bytes, chunkSize) };
  return {
    source,
    bytes: (async function* () {
      for await (const chunk of source.chunks) {
        source.pulled += chunk.length;
        yield chunk;
      }
    })(),
  };
}

const drain = async (text: AsyncIterable<unknown>) => {
  for await (const _ of text) void _;
};

describe('MAX_DECOMPRESSED_BYTES', () => {
  let bomb: Buffer;
  beforeAll(async () => {
    bomb = await gzipBomb(200);
  });

  it('stops a gzip bomb as soon as the text out of gunzip passes the limit, not at the end', async () => {
    const { source, bytes } = counted(bomb);
    await expect(drain(decodeText(bytes, { maxBytes: 1_000_000 }))).rejects.toMatchObject({
      name: 'File.TooLarge',
      message: 'decompresses to more than 1000000 bytes (MAX_DECOMPRESSED_BYTES)',
    });
    // About 1 KB of the 200 KB is needed for 1 MB of text; the streams read a little ahead.
    expect(source.pulled).toBeLessThan(bomb.length / 4);
  });

  it('counts a plain file by its size: up to the limit it is read, one byte more is refused', async () => {
    const csv = 'customer_id,email\nC1,a@example.com\n';
    const limit = Buffer.byteLength(csv);
    const read = (maxDecompressedBytes: number) =>
      drain(readRecords(chunksOf(csv, 7), { name: 'u.csv', maxDecompressedBytes }));
    await expect(read(limit)).resolves.toBeUndefined();
    await expect(read(limit - 1)).rejects.toMatchObject({
      name: 'File.TooLarge',
      message: `is more than ${limit - 1} bytes of text (MAX_DECOMPRESSED_BYTES)`,
    });
  });

  it('is read by classify, prepare and finalise from their environment', () => {
    const runtime = { clients: awsClients({ region: 'eu-west-1' }), telemetry: { output: new PassThrough() } };
    const env = {
      LEDGER_TABLE_NAME: 't',
      CALL_QUEUE_URL: 'q',
      ARCHIVE_BUCKET_NAME: 'a',
      FAILED_BUCKET_NAME: 'f',
      MAX_DECOMPRESSED_BYTES: '1234',
    };
    expect(classifyFile.awsDependencies(classifyFileContract.environment.read(env), runtime).settings).toMatchObject({
      maxDecompressedBytes: 1234,
    });
    expect(prepareFile.awsDependencies(prepareFileContract.environment.read(env), runtime)).toMatchObject({
      maxDecompressedBytes: 1234,
    });
    expect(finaliseFile.awsDependencies(finaliseFileContract.environment.read(env), runtime)).toMatchObject({
      maxDecompressedBytes: 1234,
    });
  });

  it('reaches the reader of a prepare slice', async () => {
    const store = new MemoryStore(1024);
    const file = { bucket: 'landing', key: 'incoming/users/acme/users_acme_20261124.csv.gz' };
    await store.put(file, bomb);
    const never = () => {
      throw new Error('nothing of a refused file is sent');
    };
    const slice = preparePhaseSlice(
      { file, kind: 'users', fileId: 'f'.repeat(64), phase: 'ADD', firstBatch: 0 },
      {
        store,
        queue: { send: never },
        phases: { setBatchTotal: never } as never,
        answers: { answers: never },
        notifier: {} as never,
        limits: { maxRecords: 100, maxBytes: 200 * 1024 },
        maxDecompressedBytes: 1_000_000,
        acceptedEncodings: ['csv', 'jsonl', 'gzip'],
      },
      () => false,
    );
    await expect(slice).rejects.toMatchObject({ name: 'File.TooLarge' });
  });

  it('is applied by finalise when it reads the file again', async () => {
    const jsonl = '{"customer_id":"C1"}\n'.repeat(100);
    await expect(
      runThroughPipeline('users_acme_20261124.jsonl', 'users', jsonl, { finalise: { maxDecompressedBytes: 100 } }),
    ).rejects.toMatchObject({ name: 'File.TooLarge' });
  });
});
