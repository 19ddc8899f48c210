import { createHash } from 'node:crypto';
import { hashWhileStreaming, sha256Of } from '../../../lambdas/core/files/file-identity';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

const expected = (text: string) => createHash('sha256').update(text).digest('hex');

describe('file identity', () => {
  it('is the SHA-256 of all the bytes, however they are chunked', async () => {
    expect(await sha256Of(chunks('customer_id,', 'email\n', 'C1,a@example.com\n'))).toBe(
      expected('customer_id,email\nC1,a@example.com\n'),
    );
    expect(await sha256Of(chunks())).toBe(expected(''));
  });

  it('passes the bytes through while hashing, and stops a file over the limit', async () => {
    const hashed = hashWhileStreaming(chunks('abc', 'def'));
    const seen: string[] = [];
    for await (const chunk of hashed.bytes) seen.push(Buffer.from(chunk).toString());
    expect(seen).toEqual(['abc', 'def']);
    expect(hashed.size()).toBe(6);
    expect(hashed.sha256()).toBe(expected('abcdef'));
    await expect(sha256Of(hashWhileStreaming(chunks('abc', 'def'), 4).bytes)).rejects.toThrow(/over the 4-byte limit/);
  });
});
