import type { FileKind } from '../files/record-schemas';

/** Who a file's bytes belong to: the object that first brought them. */
export interface FileClaim {
  /** SHA-256 of the bytes as uploaded. */
  readonly fileId: string;
  readonly bucket: string;
  readonly key: string;
  /** The object version (the landing bucket is versioned); absent where versioning is not (locally). */
  readonly versionId?: string;
  readonly kind: FileKind;
  /** For the file catalogue (the operations API's list): whose file, its name, and when it landed (ISO 8601). */
  readonly partner?: string;
  readonly name?: string;
  readonly landedAt?: string;
}

/**
 * - `claimed`: these bytes are new; this execution processes them.
 * - `duplicate`: the same bytes came before under another object: not processed again (file-formats.md).
 * - `redelivered`: the same object's event again (S3 and EventBridge deliver at least once): stop quietly.
 */
export type ClaimOutcome =
  | { readonly outcome: 'claimed' }
  | { readonly outcome: 'duplicate'; readonly duplicateOf: string }
  | { readonly outcome: 'redelivered' };

/** The port to the file registry: one claim per SHA-256, made with a single conditional write. */
export interface FileRegistry {
  claim(claim: FileClaim): Promise<ClaimOutcome>;
}

/** What the registry keeps of a finished file: its summary and where its reports are. */
export interface FileRecord {
  readonly claimedAt?: string;
  readonly summary?: unknown;
}

/** The finished file's record, kept on its claim, so a repeated finalise reports the same thing. */
export interface FileOutcomes {
  read(fileId: string): Promise<FileRecord | undefined>;
  recordSummary(fileId: string, summary: unknown): Promise<void>;
}
