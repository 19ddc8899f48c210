import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ResumableSha256 } from '../../../lambdas/core/files/file-identity';
import { chunksOf } from '../helpers';

async function drain(source: AsyncIterable<Uint8Array>) {
  for await (const chunk of source) void chunk;
}

describe('ResumableSha256', () => {
  const bytes = Buffer.from('customer_id,email\n'.repeat(5000));
  const expected = createHash('sha256').update(bytes).digest('hex');

  it('saved at a point inside what was read, loaded by another instance reading on from there: the whole hash', async () => {
    const first = await ResumableSha256.resume();
    // Reads past the points it saves at, as a reader running ahead of its records does.
    await drain(first.pass(chunksOf(bytes.subarray(0, 40_000), 4096)));
    const state = first.saveAt(33_333);
    const second = await ResumableSha256.resume(33_333, state);
    await drain(second.pass(chunksOf(bytes.subarray(33_333), 1000)));
    const saved = second.saveAt(70_001);
    const third = await ResumableSha256.resume(70_001, saved);
    await drain(third.pass(chunksOf(bytes.subarray(70_001), 777)));
    expect(third.sha256()).toBe(expected);
    expect(third.size()).toBe(bytes.length);
  });

  it('a gzip file is hashed as it is read (its positions are in inflated text); a limit still holds', async () => {
    const gz = gzipSync(bytes);
    const hash = await ResumableSha256.resume();
    await drain(hash.pass(chunksOf(gz, 100)));
    expect(hash.sha256()).toBe(createHash('sha256').update(gz).digest('hex'));
    const limited = await ResumableSha256.resume(0, undefined, 1000);
    await expect(drain(limited.pass(chunksOf(bytes, 100)))).rejects.toMatchObject({ name: 'File.TooLarge' });
    await expect(ResumableSha256.resume(10)).rejects.toThrow('needs the state');
  });
});
