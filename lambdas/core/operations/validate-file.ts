import type { z } from 'zod';
import type { ValidationSchema } from '../../ops-api/contract';
import type { Encoding } from '../config';
import { FileRejectedError, ErrorNames } from '../errors';
import { classifyFile } from '../files/classify-file';
import { encodingFromName, readHead } from '../files/file-encoding';
import { identifyFile } from '../files/identify-file';
import type { ObjectHead, ObjectReader, ObjectRef } from '../files/object-store';
import { readRecords } from '../files/read-records';
import { invalid, requiredColumns, validateRecord, type FileKind } from '../files/record-schemas';
import { failureReason } from '../workflow/finalise-file';

export type Validation = z.infer<typeof ValidationSchema>;

/** Problems listed at most (ops-api.md, POST /v1/validate): the counts cover the rest. */
export const MAX_PROBLEMS = 100;

export interface ValidateOptions {
  /** The deployment's `ACCEPTED_ENCODINGS`. */
  readonly acceptedEncodings: readonly Encoding[];
  /** The deployment's `MAX_DECOMPRESSED_BYTES`. @default no limit */
  readonly maxDecompressedBytes?: number;
  /** The deployment's `MAX_FILE_SIZE_BYTES`. @default no limit (the router caps the body anyway) */
  readonly maxFileSizeBytes?: number;
}

/** Pieces the body is handed to the readers in, as an S3 body would be streamed. */
const PIECE_BYTES = 64 * 1024;
/** classify reads this much of the head to decide the kind (identify-file.ts). */
const HEAD_BYTES = 64 * 1024;
/** The bucket the body stands in: no bucket is read, nothing is stored. */
const NO_BUCKET = 'validate';

/**
 * The body as the one object an {@link ObjectReader} holds, so classify's own code (identifyFile) reads it as it
 * reads a landed file: no metadata or tags (an SFTP upload or a pre-signed PUT carries none).
 */
function bodyReader(body: Uint8Array): ObjectReader {
  return {
    head: async (): Promise<ObjectHead> => ({ size: body.byteLength, metadata: {} }),
    tags: async () => ({}),
    read: (_ref, range) => pieces(range ? body.subarray(range.start, range.end + 1) : body),
  };
}

async function* pieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += PIECE_BYTES) yield bytes.subarray(at, at + PIECE_BYTES);
}

/**
 * The kind classify decides before it refuses a file (a name or header it knows), else unknown: a refused file's
 * answer says what it was taken for. The real run's quarantine summary says `unknown` whatever the kind.
 */
async function kindBeforeRefusal(
  ref: ObjectRef,
  body: Uint8Array,
  options: ValidateOptions,
): Promise<FileKind | 'unknown'> {
  const head = await readHead(pieces(body.subarray(0, HEAD_BYTES)), HEAD_BYTES, {
    gzip: encodingFromName(ref.key).gzip,
    acceptGzip: options.acceptedEncodings.includes('gzip'),
  }).catch(() => undefined);
  return classifyFile({ name: ref.key, ...(head === undefined ? {} : { head }) }).kind;
}

/**
 * What the pipeline would make of a file, without a CRM call and without storing anything: classify's verdict
 * (identifyFile over the bytes: size, kind, encoding, readable as a whole) and then each record through the
 * reader and rules prepare and the report use, so the counts and the `VALIDATION: <column>: <rule>` reasons are a
 * real run's. A file refused as a whole answers `{kind, error}` with the reason its summary would give
 * (`File.Unreadable: ...`, `File.UnknownKind: ...`).
 * @param input.name the file's name as it would land (only its last segment counts, as for a landed key)
 */
export async function validateFile(
  input: { readonly name: string; readonly body: Uint8Array },
  options: ValidateOptions,
): Promise<Validation> {
  const ref: ObjectRef = { bucket: NO_BUCKET, key: input.name };
  const settings = {
    acceptedEncodings: options.acceptedEncodings,
    maxFileSizeBytes: options.maxFileSizeBytes ?? Number.POSITIVE_INFINITY,
    ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
  };
  const refused = async (error: FileRejectedError): Promise<Validation> => ({
    kind: await kindBeforeRefusal(ref, input.body, options),
    // As the state machine hands a task's error to quarantine: its name, and the message as the cause.
    error: failureReason({ Error: error.name, Cause: JSON.stringify({ errorMessage: error.message }) }),
  });
  try {
    const identified = await identifyFile(bodyReader(input.body), ref, settings);
    if (identified.kind === 'unknown') {
      return { kind: 'unknown', error: failureReason({ Error: ErrorNames.fileUnknownKind, Cause: identified.reason }) };
    }
    const { kind, format } = identified;
    let received = 0;
    let invalidCount = 0;
    const problems: { line: number; reason: string }[] = [];
    const records = readRecords(pieces(input.body), {
      name: input.name,
      requiredColumns: requiredColumns(kind),
      acceptedEncodings: options.acceptedEncodings,
      ...(options.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: options.maxDecompressedBytes }),
    });
    for await (const chunk of records) {
      for (const record of chunk) {
        received++;
        // The report's own test (file-report.ts): a record that could not be taken apart, else the column rules.
        const validated = record.problem
          ? invalid(record.problem.column, record.problem.rule)
          : validateRecord(kind, record.fields);
        if (validated.ok) continue;
        invalidCount++;
        if (problems.length < MAX_PROBLEMS) problems.push({ line: record.line, reason: validated.reason });
      }
    }
    return {
      kind,
      format,
      received,
      valid: received - invalidCount,
      invalid: invalidCount,
      failures: invalidCount > 0 ? { VALIDATION: invalidCount } : {},
      problems,
    };
  } catch (error) {
    if (error instanceof FileRejectedError) return refused(error);
    throw error;
  }
}
