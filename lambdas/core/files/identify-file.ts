import type { Encoding } from '../config';
import { ErrorNames, FileRejectedError } from '../errors';
import { classifyFile, type ClassifiedBy } from './classify-file';
import { encodingFromName, notAccepted, readHead, sniffFormat, type RecordFormat } from './file-encoding';
import type { ObjectReader, ObjectRef } from './object-store';
import { readFromPosition, readHashedRecords } from './read-from';
import type { ReadPosition } from './read-records';
import { requiredColumns, type FileKind } from './record-schemas';

/** Bytes read from the start of a file to classify it: enough for any header or first record. */
const HEAD_BYTES = 64 * 1024;

export type Identified =
  | {
      readonly kind: FileKind;
      readonly by: ClassifiedBy;
      readonly sha256: string;
      readonly size: number;
      readonly format: RecordFormat;
      readonly versionId?: string;
    }
  | { readonly kind: 'unknown'; readonly reason: string; readonly size: number };

/**
 * Where the next slice of the identity and readability pass goes on: what the head decided (so no later slice
 * reads it again), the reader's position (a line boundary) and, for a plain file, the SHA-256 state of the bytes
 * before it. A plain file is read on with a ranged read; a gzip file is inflated from its start by every slice
 * and the text before the position dropped unparsed (as prepare does), so its hash is taken whole by each slice.
 */
export interface IdentifyCheckpoint {
  readonly kind: FileKind;
  readonly by: ClassifiedBy;
  readonly format: RecordFormat;
  readonly position: ReadPosition;
  readonly sha256State?: string;
}

/** A slice that stopped before the end of the file: where the next one goes on. */
export interface IdentifyStopped {
  readonly done: false;
  readonly checkpoint: IdentifyCheckpoint;
}

/** One slice's result: the classification once the whole file is read, else where the next slice goes on. */
export type IdentifySlice = Identified | IdentifyStopped;

export const isStopped = (slice: IdentifySlice): slice is IdentifyStopped => 'checkpoint' in slice;

export interface IdentifyOptions {
  readonly maxFileSizeBytes: number;
  readonly acceptedEncodings: readonly Encoding[];
  /** Bytes of text (after gunzip) past which the file is refused (`MAX_DECOMPRESSED_BYTES`). @default no limit */
  readonly maxDecompressedBytes?: number;
}

export interface IdentifySliceOptions {
  /** Go on from the checkpoint an earlier slice returned. */
  readonly from?: IdentifyCheckpoint;
  /** Asked after each chunk of records: true ends the slice there, with a checkpoint. */
  readonly shouldStop?: () => boolean;
}

/**
 * The classify step: checks the size limit, reads only the head to decide the kind (metadata > tag > name >
 * header) and format, then streams the whole object once for its SHA-256, the file's identity, parsing it on
 * the way so that a file unreadable anywhere is refused as a whole. The pass goes in slices when `shouldStop`
 * says so, each from the checkpoint the one before returned (see {@link IdentifyCheckpoint}).
 * @throws FileRejectedError `File.TooLarge` (bytes, or text after gunzip), `File.EncodingNotAccepted`,
 *   `File.Unreadable` (e.g. broken gzip head)
 */
export async function identifyFile(store: ObjectReader, ref: ObjectRef, options: IdentifyOptions): Promise<Identified>;
export async function identifyFile(
  store: ObjectReader,
  ref: ObjectRef,
  options: IdentifyOptions,
  slice: IdentifySliceOptions,
): Promise<IdentifySlice>;
export async function identifyFile(
  store: ObjectReader,
  ref: ObjectRef,
  options: IdentifyOptions,
  slice: IdentifySliceOptions = {},
): Promise<IdentifySlice> {
  const head = await store.head(ref);
  if (head.size > options.maxFileSizeBytes) {
    throw new FileRejectedError(
      ErrorNames.fileTooLarge,
      `file is ${head.size} bytes, over the ${options.maxFileSizeBytes}-byte limit`,
    );
  }
  let decided: { kind: FileKind; by: ClassifiedBy; format: RecordFormat };
  if (slice.from) {
    decided = { kind: slice.from.kind, by: slice.from.by, format: slice.from.format };
  } else {
    const fromName = encodingFromName(ref.key);
    const text =
      head.size === 0
        ? ''
        : await readHead(store.read(ref, { start: 0, end: Math.min(head.size, HEAD_BYTES) - 1 }), HEAD_BYTES, {
            gzip: fromName.gzip,
            acceptGzip: options.acceptedEncodings.includes('gzip'),
          });
    const classification = classifyFile({
      name: ref.key,
      metadata: head.metadata,
      tags: await store.tags(ref),
      head: text,
    });
    if (classification.kind === 'unknown') {
      return { kind: 'unknown', reason: classification.reason, size: head.size };
    }
    const format = fromName.format ?? sniffFormat(text);
    if (!options.acceptedEncodings.includes(format)) throw notAccepted(format);
    decided = { kind: classification.kind, by: classification.by, format };
  }
  // One pass over the whole object (in slices): the hash is taken as the bytes pass, and the records are parsed
  // (not validated), so a file that breaks as its encoding further down (binary, broken gzip, quoting) is
  // refused here, before any of it is sent.
  const from = slice.from;
  const source = await readFromPosition(store, ref, from?.position, head.size);
  const {
    hash,
    records,
    positions: chunkPositions,
  } = await readHashedRecords(source, {
    name: ref.key,
    requiredColumns: requiredColumns(decided.kind),
    acceptedEncodings: options.acceptedEncodings,
    ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
    ...(from ? { from: from.position } : {}),
    ...(from?.sha256State ? { sha256State: from.sha256State } : {}),
  });
  for await (const _chunk of records) {
    // Parsing is all; a slice stops only past a chunk, so each makes progress.
    const positions = chunkPositions();
    if (positions && slice.shouldStop?.()) {
      const position = positions.end;
      return {
        done: false,
        checkpoint: {
          ...decided,
          position,
          ...(position.gzip ? {} : { sha256State: hash.saveAt(position.bytes) }),
        },
      };
    }
  }
  return {
    ...decided,
    sha256: hash.sha256(),
    size: hash.size(),
    ...(head.versionId ? { versionId: head.versionId } : {}),
  };
}
