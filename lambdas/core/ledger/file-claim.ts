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

/**
 * A finished file's redo round (POST /v1/files/{fileId}/retry), marked on its claim by one conditional write:
 * a round is taken only when none is in flight, so two requests never run two rounds at once.
 */
export interface RedoMark {
  /** 1 for the file's first redo, then one more each time. Its phases are REDO<round> (and REDO<round>UPD). */
  readonly round: number;
  /** The failure reasons retried (CRM codes, CONFLICTING_PROFILE, CANCELLED). */
  readonly codes: readonly string[];
  /**
   * Records the round sends again, as the request counted them: the summary's failures with those codes (the
   * workflow's first step picks their lines from results.csv).
   */
  readonly lines: number;
  readonly requestedAt: string;
  /** Set once the round's summary is kept, or once the round is given up. */
  readonly done?: boolean;
  /**
   * The round was given up, its summary and reports left as they were: its execution could not be started, it
   * failed (`reason` says why), or results.csv had no line with its codes. The next request may take a new round.
   */
  readonly abandoned?: boolean;
  /** Why the round was given up (the failed state's error and cause). */
  readonly reason?: string;
}

/** The claim's redo mark (DynamoDbFileRegistry): one conditional write takes a round, one ends it given up. */
export interface RedoMarks {
  /** False when refused: the file is not finished, a round is in flight, or `mark.round` is not the next. */
  markRedo(fileId: string, mark: RedoMark): Promise<boolean>;
  /**
   * Gives the round up (done and abandoned, with the reason), so the next request may go on; its summary is left
   * as it was. False when the round is not the one in flight (already ended: a repeated call changes nothing).
   */
  abandonRedo(fileId: string, round: number, reason?: string): Promise<boolean>;
}

/** What the registry keeps of a finished file: its summary and where its reports are. */
export interface FileRecord {
  readonly claimedAt?: string;
  readonly summary?: unknown;
  /** The file's latest redo round, if it was ever retried. */
  readonly redo?: RedoMark;
}

/** The finished file's record, kept on its claim, so a repeated finalise reports the same thing. */
export interface FileOutcomes {
  read(fileId: string): Promise<FileRecord | undefined>;
  recordSummary(fileId: string, summary: unknown): Promise<void>;
}
