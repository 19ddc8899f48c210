import type { Encoding } from '../config';
import { ErrorNames, FileRejectedError } from '../errors';
import { classifyFile, type ClassifiedBy } from './classify-file';
import { encodingFromName, notAccepted, readHead, sniffFormat, type RecordFormat } from './file-encoding';
import { hashWhileStreaming } from './file-identity';
import type { ObjectReader, ObjectRef } from './object-store';
import { readRecords } from './read-records';
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

export interface IdentifyOptions {
  readonly maxFileSizeBytes: number;
  readonly acceptedEncodings: readonly Encoding[];
  /** Bytes of text (after gunzip) past which the file is refused (`MAX_DECOMPRESSED_BYTES`). @default no limit */
  readonly maxDecompressedBytes?: number;
}

/**
 * The classify step: checks the size limit, reads only the head to decide the kind (metadata > tag > name >
 * header) and format, then streams the whole object once for its SHA-256, the file's identity, parsing it on
 * the way so that a file unreadable anywhere is refused as a whole.
 * @throws FileRejectedError `File.TooLarge` (bytes, or text after gunzip), `File.EncodingNotAccepted`,
 *   `File.Unreadable` (e.g. broken gzip head)
 */
export async function identifyFile(store: ObjectReader, ref: ObjectRef, options: IdentifyOptions): Promise<Identified> {
  const head = await store.head(ref);
  if (head.size > options.maxFileSizeBytes) {
    throw new FileRejectedError(
      ErrorNames.fileTooLarge,
      `file is ${head.size} bytes, over the ${options.maxFileSizeBytes}-byte limit`,
    );
  }
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
  if (classification.kind === 'unknown') return { kind: 'unknown', reason: classification.reason, size: head.size };
  const format = fromName.format ?? sniffFormat(text);
  if (!options.acceptedEncodings.includes(format)) throw notAccepted(format);
  // One pass over the whole object: the hash is taken as the bytes pass, and the records are parsed (not
  // validated), so a file that breaks as its encoding further down (binary, broken gzip, quoting) is refused
  // here, before any of it is sent.
  const hashed = hashWhileStreaming(store.read(ref));
  const records = readRecords(hashed.bytes, {
    name: ref.key,
    requiredColumns: requiredColumns(classification.kind),
    acceptedEncodings: options.acceptedEncodings,
    ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
  });
  for await (const _chunk of records) {
    // Parsing is all.
  }
  return {
    kind: classification.kind,
    by: classification.by,
    sha256: hashed.sha256(),
    size: hashed.size(),
    format,
    ...(head.versionId ? { versionId: head.versionId } : {}),
  };
}
