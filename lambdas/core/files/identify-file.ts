import type { Encoding } from '../config';
import { ErrorNames, FileRejectedError } from '../errors';
import { classifyFile, type ClassifiedBy } from './classify-file';
import { encodingFromName, notAccepted, readHead, sniffFormat, type RecordFormat } from './file-encoding';
import { hashWhileStreaming } from './file-identity';
import type { ObjectRef, ObjectStore } from './object-store';
import type { FileKind } from './record-schemas';

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
}

/**
 * The classify step: checks the size limit, reads only the head to decide the kind (metadata > tag > name >
 * header) and format, then streams the whole object once for its SHA-256, the file's identity.
 * @throws FileRejectedError `File.TooLarge`, `File.EncodingNotAccepted`, `File.Unreadable` (e.g. broken gzip head)
 */
export async function identifyFile(store: ObjectStore, ref: ObjectRef, options: IdentifyOptions): Promise<Identified> {
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
  const hashed = hashWhileStreaming(store.read(ref));
  for await (const _chunk of hashed.bytes) {
    // Reading is all: the hash is taken as the bytes pass.
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
