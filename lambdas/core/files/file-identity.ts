import { createHash } from 'node:crypto';
import { ErrorNames, FileRejectedError } from '../errors';

/** A byte stream passed through while its SHA-256 and size are taken. */
export interface HashedStream {
  readonly bytes: AsyncIterable<Uint8Array>;
  /** Hex SHA-256 of the bytes read so far: the file's identity once the stream is read to the end. */
  sha256(): string;
  /** Bytes read so far. */
  size(): number;
}

/**
 * Hashes a file's bytes as uploaded (before any gunzip) while they stream to the reader, so identity costs
 * no second read. Optionally stops a file over `maxBytes` (`File.TooLarge`) before it is read further.
 */
export function hashWhileStreaming(
  source: AsyncIterable<Uint8Array>,
  maxBytes = Number.POSITIVE_INFINITY,
): HashedStream {
  const hash = createHash('sha256');
  let size = 0;
  async function* pass(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > maxBytes) {
        throw new FileRejectedError(ErrorNames.fileTooLarge, `file is over the ${maxBytes}-byte limit`);
      }
      hash.update(chunk);
      yield chunk;
    }
  }
  return {
    bytes: pass(),
    sha256: () => hash.copy().digest('hex'),
    size: () => size,
  };
}

/** The SHA-256 of a whole byte stream (a local file, an object), in hex: a file's identity. */
export async function sha256Of(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hashed = hashWhileStreaming(source);
  for await (const chunk of hashed.bytes) void chunk;
  return hashed.sha256();
}
