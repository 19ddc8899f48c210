import type { FileKind } from '../files/record-schemas';
import type { ObjectRef } from '../files/object-store';
import type { RedoMark } from '../ledger/file-claim';
import type { PhaseState } from '../ledger/phase-counters';
import type { FinalSummary } from '../workflow/finalise-file';

/**
 * The ports the operations API (../shared/ops-api.md, lambdas/ops-api) reads and steers the pipeline through.
 * Each has a DynamoDB / S3 / CloudWatch adapter on AWS, and the same adapters (or in-process ones) on the
 * embedded services.
 */

/** A claimed file as the catalogue keeps it: its claim, and its summary once finished. */
export interface CatalogEntry {
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly kind: FileKind | 'unknown';
  /** When it was claimed (ISO 8601): the list's order. */
  readonly landedAt: string;
  /** Where it was when claimed (the landing bucket). */
  readonly file: ObjectRef;
  /** Once finished: what finalise kept (summary.json). */
  readonly summary?: FinalSummary;
  /** Its latest redo round (retry by code), in flight until `done`. */
  readonly redo?: RedoMark;
}

export interface CatalogQuery {
  readonly partner?: string;
  readonly kind?: FileKind;
  /** Files claimed at or after this (ISO 8601). */
  readonly since?: string;
  /** Only finished files with this status (`succeeded`, `partial`, ...); `unfinished` for files in flight. */
  readonly finished?: string;
  readonly limit: number;
  /** The page after the one that returned it. */
  readonly cursor?: string;
}

/** Every claimed file, newest first (the claims in the ledger table, through an index on their claim time). */
export interface FileCatalog {
  list(query: CatalogQuery): Promise<{ readonly entries: readonly CatalogEntry[]; readonly next?: string }>;
  get(fileId: string): Promise<CatalogEntry | undefined>;
}

/** Every phase of a file with its counters (ADD, UPD, RETRY1...), in phase order. */
export interface PhaseTallies {
  phases(fileId: string): Promise<readonly PhaseState[]>;
}

/** Where a record id was seen: one file's line and what became of it. */
export interface IndexedRecord {
  readonly fileId: string;
  readonly line: number;
  readonly outcome: 'succeeded' | 'failed';
  /** The CRM code, or the failure reason (VALIDATION, CANCELLED, ...) when there is no code. */
  readonly code?: string;
  readonly error?: string;
}

/** The record lookup index: customer or transaction id -> the files it was in (written by finalise). */
export interface RecordIndex {
  lookup(kind: FileKind, recordId: string): Promise<readonly IndexedRecord[]>;
}

/** One value per minute, oldest first. */
export interface MinuteStats {
  readonly callsPerMinute: readonly number[];
  readonly recordsPerMinute: { readonly succeeded: readonly number[]; readonly failed: readonly number[] };
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null };
  readonly errorsByCode: Readonly<Record<string, number>>;
}

/** The handlers' own metrics over the last minutes (CloudWatch on AWS; the EMF lines they write, locally). */
export interface StatsSource {
  stats(minutes: number, now: Date): Promise<MinuteStats>;
}

/** The call queue's depth: batches waiting, and being handled. */
export interface QueueDepth {
  depth(): Promise<{ readonly waiting: number; readonly inFlight: number }>;
}

/** A pre-signed PUT into the landing bucket. */
export interface UploadSigner {
  presignPut(
    ref: ObjectRef,
    expiresSeconds: number,
  ): Promise<{ readonly url: string; readonly headers: Readonly<Record<string, string>> }>;
}
