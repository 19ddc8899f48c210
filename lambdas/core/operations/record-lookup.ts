import type { FileKind } from '../files/record-schemas';
import type { RecordLocations } from '../ledger/record-index';

/** `GET /v1/records/{recordId}` (ops-api.md): one file's line in which the id was seen. */
export interface RecordSighting {
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly line: number;
  readonly outcome: 'succeeded' | 'failed';
  /** Failed: the failure reason (the CRM code, VALIDATION, CONFLICTING_PROFILE, CANCELLED...); succeeded: the CRM code. */
  readonly code: string | null;
  readonly error: string | null;
  readonly finishedAt: string | null;
}

export interface RecordQuery {
  /** Customer ids are looked up in users files, transaction ids in transactions files. @default both */
  readonly kind?: FileKind;
  readonly recordId: string;
  /** Only files of this partner. @default every partner */
  readonly partner?: string;
}

export interface RecordLookupDeps {
  readonly index: RecordLocations;
  /**
   * When a file finished, for the hits whose index item does not say (only the file's last chunk carries it):
   * the catalogue's summary, read once per file. @default null for those
   */
  readonly finishedAt?: (fileId: string) => Promise<string | undefined>;
}

const KINDS: readonly FileKind[] = ['users', 'transactions'];

/**
 * Every file in which this customer or transaction id was seen, with its line and what became of the record
 * there: newest file first, each file's lines in order. A file finalised more than once (a retry by code) shows
 * its latest outcome. None: an empty list (not a 404: the id may simply never have been sent).
 */
export async function lookupRecord(
  deps: RecordLookupDeps,
  query: RecordQuery,
): Promise<{ readonly records: RecordSighting[] }> {
  const kinds = query.kind ? [query.kind] : KINDS;
  const found = (await Promise.all(kinds.map((kind) => deps.index.lookup(kind, query.recordId)))).flat();
  const hits = query.partner === undefined ? found : found.filter((hit) => hit.partner === query.partner);
  const finishedAt = new Map<string, Promise<string | undefined>>();
  for (const hit of hits) {
    if (hit.finishedAt !== undefined) finishedAt.set(hit.fileId, Promise.resolve(hit.finishedAt));
  }
  const finishOf = (fileId: string) => {
    let known = finishedAt.get(fileId);
    if (!known) finishedAt.set(fileId, (known = deps.finishedAt?.(fileId) ?? Promise.resolve(undefined)));
    return known;
  };
  const records = await Promise.all(
    hits.map(async (hit) => {
      const finished = (await finishOf(hit.fileId)) ?? null;
      const sighting: RecordSighting = {
        fileId: hit.fileId,
        name: hit.name,
        partner: hit.partner,
        line: hit.line,
        outcome: hit.outcome,
        code: hit.code ?? null,
        error: hit.error ?? null,
        finishedAt: finished,
      };
      return { sighting, order: finished ?? new Date(hit.indexedAt ?? 0).toISOString() };
    }),
  );
  // Newest file first across both kinds: by when it finished (or was indexed, when that is not known).
  records.sort(
    (a, b) =>
      b.order.localeCompare(a.order) ||
      a.sighting.fileId.localeCompare(b.sighting.fileId) ||
      a.sighting.line - b.sighting.line,
  );
  return { records: records.map((record) => record.sighting) };
}
