import { ResumableSha256 } from './file-identity';
import type { ObjectReader, ObjectRef } from './object-store';
import { readRecords, type ChunkPositions, type ReadOptions, type ReadPosition } from './read-records';

/**
 * The byte of the object a slice resuming at `position` reads from: a plain file's position itself (its decoded
 * bytes are the object's), a gzip file's start (inflated again, the text before the position dropped unparsed).
 */
export const resumeOffset = (position: ReadPosition | undefined): number =>
  position && !position.gzip ? position.bytes : 0;

/**
 * The bytes a slice resuming at `position` reads, for classify, prepare and finalise alike: a plain file from
 * there on (a ranged GET, so the slices of a file read it about once in all), a gzip file whole. `size`: the
 * object's, when the caller has it. @default read with a HEAD
 */
export async function readFromPosition(
  store: ObjectReader,
  ref: ObjectRef,
  position: ReadPosition | undefined,
  size?: number,
): Promise<AsyncIterable<Uint8Array>> {
  const start = resumeOffset(position);
  if (start === 0) return store.read(ref);
  const end = size ?? (await store.head(ref)).size;
  return start >= end ? nothingLeft() : store.read(ref, { start, end: end - 1 });
}

/** A checkpoint at the end of the file: nothing left to read. */
async function* nothingLeft(): AsyncGenerator<Uint8Array> {}

/**
 * A file's records from `from` on, its SHA-256 taken as the bytes pass and continued from the state the slice
 * before saved: the pass of classify and of prepare. Bytes are hashed up to the end of the chunk before the one
 * in hand (every later checkpoint is at or past it), so `hash.saveAt(position.bytes)` holds those before it.
 * `positions()` gives the positions of the chunk in hand.
 */
export async function readHashedRecords(
  source: AsyncIterable<Uint8Array>,
  options: Omit<ReadOptions, 'from' | 'onPositions'> & {
    readonly from?: ReadPosition;
    /** A plain file's hash state at `from` (hash-wasm, base64); needed when `from` is past its start. */
    readonly sha256State?: string;
    /** Bytes past which the hash refuses the file (File.TooLarge). @default no limit */
    readonly maxHashedBytes?: number;
  },
) {
  const { from, sha256State, maxHashedBytes, ...read } = options;
  const start = resumeOffset(from);
  if (start > 0 && !sha256State) throw new RangeError('a checkpoint in a plain file needs its SHA-256 state');
  const hash = await ResumableSha256.resume(start, start > 0 ? sha256State : undefined, maxHashedBytes);
  let positions: ChunkPositions | undefined;
  let hashable = start;
  const records = readRecords(hash.pass(source), {
    ...read,
    ...(from ? { from } : {}),
    onPositions: (chunk) => {
      if (!chunk.end.gzip) hash.advanceTo(hashable);
      hashable = chunk.end.bytes;
      positions = chunk;
    },
  });
  return { hash, records, positions: () => positions };
}
