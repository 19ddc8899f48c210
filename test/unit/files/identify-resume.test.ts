import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  identifyFile,
  isStopped,
  type IdentifyCheckpoint,
  type IdentifyOptions,
} from '../../../lambdas/core/files/identify-file';
import type { ObjectRef } from '../../../lambdas/core/files/object-store';
import { MemoryStore } from './in-memory-pipeline';
import { countingReads } from '../../support/counting-reads';

const options: IdentifyOptions = {
  maxFileSizeBytes: 100 * 1024 * 1024,
  acceptedEncodings: ['csv', 'jsonl', 'gzip'],
};

function usersCsv(records: number, last = ''): Buffer {
  const rows = ['customer_id,first_name,last_name,email,country,created_at,note'];
  for (let i = 0; i < records; i++) {
    const note = i % 9 === 0 ? `"two\nlines, ${i}"` : `n${i}`;
    rows.push(`C${i},Åsa,Lee,u${i}@example.com,GB,2026-01-02T03:04:05Z,${note}`);
  }
  return Buffer.from(`${rows.join('\n')}\n${last}`);
}

function usersJsonl(records: number): Buffer {
  const rows: string[] = [];
  for (let i = 0; i < records; i++) {
    rows.push(
      JSON.stringify({
        customer_id: `C${i}`,
        first_name: 'Åsa',
        last_name: 'Lee',
        email: `u${i}@example.com`,
        country: 'GB',
        created_at: '2026-01-02T03:04:05Z',
        note: i % 7 === 0 ? 'line\nbreak' : `n${i}`,
      }),
    );
  }
  return Buffer.from(`${rows.join('\n')}\n`);
}

/** Identifies `bytes` in slices that stop after every chunk, each from the checkpoint the one before returned. */
async function inSlices(store: MemoryStore, ref: ObjectRef) {
  let from: IdentifyCheckpoint | undefined;
  for (let slices = 1; ; slices++) {
    const result = await identifyFile(store, ref, options, { ...(from ? { from } : {}), shouldStop: () => true });
    if (!isStopped(result)) return { result, slices };
    // Each slice makes progress and the checkpoint carries what the head decided.
    if (from) expect(result.checkpoint.position.line).toBeGreaterThan(from.position.line);
    expect(JSON.parse(JSON.stringify(result.checkpoint))).toEqual(result.checkpoint);
    from = result.checkpoint;
  }
}

describe('identifyFile in slices (resumed from checkpoints)', () => {
  const cases: [string, string, Buffer][] = [
    ['plain CSV', 'users_acme_20261124.csv', usersCsv(20_000)],
    ['gzip CSV', 'users_acme_20261124.csv.gz', gzipSync(usersCsv(20_000))],
    ['JSON Lines', 'users_acme_20261124.jsonl', usersJsonl(15_000)],
  ];

  it.each(cases)('%s: the same classification as in one invocation', async (_name, key, bytes) => {
    const store = countingReads(new MemoryStore());
    const ref = { bucket: 'landing', key };
    await store.put(ref, bytes);
    const whole = await identifyFile(store, ref, options);
    expect(whole).toMatchObject({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
    const { result, slices } = await inSlices(store, ref);
    expect(slices).toBeGreaterThan(5);
    expect(result).toEqual(whole);
  });

  it("a plain file's slices read it about once in all", async () => {
    const store = countingReads(new MemoryStore());
    const ref = { bucket: 'landing', key: 'users_acme_20261124.csv' };
    const bytes = usersCsv(30_000);
    await store.put(ref, bytes);
    const { slices } = await inSlices(store, ref);
    expect(slices).toBeGreaterThan(10);
    // The head (64 KiB, once) and every byte about once (a slice re-reads only the part of a row it read past
    // its checkpoint); nothing read again from byte 0.
    expect(store.bytesRead).toBeGreaterThanOrEqual(bytes.length);
    expect(store.bytesRead).toBeLessThanOrEqual(bytes.length * 1.02 + 64 * 1024);
  });

  it.each([
    [
      'binary bytes near the end',
      'users_acme_20261124.csv',
      usersCsv(20_000, 'C9,\u0000\u0001\u0002\u0003,x,y,GB,z,\n'),
    ],
    ['a broken quote near the end', 'users_acme_20261124.csv', usersCsv(20_000, 'C9,"never closed,x\n')],
    ['a broken gzip tail', 'users_acme_20261124.csv.gz', gzipSync(usersCsv(20_000)).subarray(0, -20)],
  ])('a file with %s is refused as a whole by the slice that meets it', async (_name, key, bytes) => {
    const store = new MemoryStore();
    const ref = { bucket: 'landing', key };
    await store.put(ref, bytes);
    await expect(identifyFile(store, ref, options)).rejects.toMatchObject({ name: 'File.Unreadable' });
    let from: IdentifyCheckpoint | undefined;
    let slices = 0;
    const refused = await (async () => {
      for (;;) {
        slices++;
        const result = await identifyFile(store, ref, options, { ...(from ? { from } : {}), shouldStop: () => true });
        if (!isStopped(result)) return result;
        from = result.checkpoint;
      }
    })().catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'File.Unreadable' });
    expect(slices).toBeGreaterThan(5);
  });
});
