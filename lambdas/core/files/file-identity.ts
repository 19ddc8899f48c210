import { createHash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
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

/**
 * The SHA-256 of a file read in slices, each in another invocation: a slice that reads a plain file from a
 * byte offset (a ranged read) loads the hash state its predecessor saved there, so the slice that reaches the
 * end has the hash of every byte without any slice reading a byte twice. hash-wasm's state can be saved and
 * loaded (node:crypto's cannot); it hashes at ~400 MB/s on one core, far ahead of parsing (~25 MB/s).
 * The bytes read run ahead of the points a state is saved at (record boundaries): they are held until
 * {@link advanceTo} passes them, at most what the reader holds unparsed.
 */
export class ResumableSha256 {
  private pending: Uint8Array[] = [];
  /** gzip: positions are in inflated text, not in these bytes, so nothing is held back: every byte is hashed as read. */
  private eager = false;
  private hashedTo: number;
  private readTo: number;

  private constructor(
    private readonly hasher: IHasher,
    start: number,
    private readonly maxBytes: number,
  ) {
    this.hashedTo = start;
    this.readTo = start;
  }

  /** A hash of the bytes from `start`, given the state saved there (base64); from 0 with no state. */
  static async resume(start = 0, state?: string, maxBytes = Number.POSITIVE_INFINITY): Promise<ResumableSha256> {
    if (start > 0 && !state) throw new RangeError('a hash resumed past byte 0 needs the state saved there');
    const hasher = await createSHA256();
    hasher.init();
    if (state) hasher.load(Buffer.from(state, 'base64'));
    return new ResumableSha256(hasher, start, maxBytes);
  }

  /** Passes `source` (the bytes from the start offset) through, keeping them to hash. */
  async *pass(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      this.readTo += chunk.length;
      if (this.readTo > this.maxBytes) {
        throw new FileRejectedError(ErrorNames.fileTooLarge, `file is over the ${this.maxBytes}-byte limit`);
      }
      if (this.hashedTo === 0 && this.pending.length === 0 && chunk.length > 0) {
        this.eager = chunk[0] === 0x1f && (chunk.length < 2 || chunk[1] === 0x8b);
      }
      this.pending.push(chunk);
      if (this.eager) this.advanceTo(this.readTo);
      yield chunk;
    }
  }

  /** Hashes the bytes read up to `offset` (at most what has been read). */
  advanceTo(offset: number): void {
    while (this.hashedTo < offset && this.pending.length > 0) {
      const chunk = this.pending[0] as Uint8Array;
      const take = Math.min(chunk.length, offset - this.hashedTo);
      this.hasher.update(chunk.subarray(0, take));
      this.hashedTo += take;
      if (take === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(take);
    }
  }

  /** The state after the bytes before `offset` (base64, ~160 characters), for the slice that goes on from it. */
  saveAt(offset: number): string {
    this.advanceTo(offset);
    if (this.hashedTo !== offset) throw new RangeError(`bytes up to ${offset} have not been read`);
    return Buffer.from(this.hasher.save()).toString('base64');
  }

  /** Bytes read so far, from byte 0 of the file. */
  size(): number {
    return this.readTo;
  }

  /** Hex SHA-256 of every byte read: the file's identity once the last slice has read to the end. */
  sha256(): string {
    this.advanceTo(this.readTo);
    return this.hasher.digest('hex');
  }
}
