import { z } from 'zod';
import { FILE_KINDS } from '../files/record-schemas';
import type { TurnNotifier } from '../schedule/schedule';
import {
  controlFiles,
  ControlRefused,
  type ControlAction,
  type Schedule,
  type ScheduleRules,
  type ScheduleView,
} from '../schedule/schedule';
import { ApiError } from './api-error';
import {
  FILE_STATUSES,
  finishedView,
  phaseView,
  redoView,
  runningView,
  UNFINISHED_STATUSES,
  type FileView,
  type PhaseView,
} from './file-view';
import type { CatalogEntry, FileCatalog, PhaseTallies } from './ports';

/** What the file routes read: the catalogue, the schedule, the phases' counters, and the budget they share. */
export interface FileQueries {
  readonly catalog: FileCatalog;
  readonly schedule: Schedule;
  readonly phases: PhaseTallies;
  readonly rules: Pick<ScheduleRules, 'partnerWeights'>;
  readonly callsPerMinute: number;
  /** A report's key as the API shows it (S3 keys on AWS, paths on one machine). @default the key */
  readonly reportPath?: (key: string) => string;
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** `?limit=`: 1-1000, default 100. */
export const LimitParam = z.coerce
  .number({ error: 'limit: a whole number from 1 to 1000' })
  .int({ error: 'limit: a whole number from 1 to 1000' })
  .min(1, { error: 'limit: a whole number from 1 to 1000' })
  .max(MAX_PAGE, { error: 'limit: a whole number from 1 to 1000' })
  .default(DEFAULT_PAGE);

const FileListQuery = z.object({
  partner: z.string().min(1).optional(),
  status: z.enum(FILE_STATUSES, { error: `status: one of ${FILE_STATUSES.join(', ')}` }).optional(),
  kind: z.enum(FILE_KINDS, { error: `kind: one of ${FILE_KINDS.join(', ')}` }).optional(),
  since: z.iso
    .datetime({ offset: true, error: 'since: an ISO 8601 date and time, e.g. 2026-11-24T00:00:00Z' })
    .optional(),
  limit: LimitParam,
  cursor: z.string().min(1).optional(),
});

/** A file id: the SHA-256 of its bytes, as 64 hex digits. */
export const FileIdParam = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { error: 'fileId: the SHA-256 of the file, 64 hex digits' });

/** Parses query parameters with a schema; a bad one is 400 naming it and its rule. */
export function parseParams<T extends z.ZodType>(schema: T, params: unknown): z.output<T> {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = issue?.path.join('.') ?? '';
  const message = issue?.message ?? 'bad parameter';
  throw new ApiError('BadRequest', message.startsWith(`${name}:`) || !name ? message : `${name}: ${message}`);
}

/**
 * The view of one catalogued file: its summary when finished, else its live counts from the schedule and phases
 * (for a redo round in flight: its last summary's, with the round's records pending until answered).
 */
async function viewOf(deps: FileQueries, entry: CatalogEntry, view: ScheduleView): Promise<FileView> {
  const redo = entry.redo && !entry.redo.done ? entry.redo : undefined;
  if (entry.summary && !redo) return finishedView(entry, entry.summary, deps.reportPath);
  const scheduled = view.files.find((file) => file.fileId === entry.fileId);
  const phases = await deps.phases.phases(entry.fileId);
  const context = {
    view,
    rules: deps.rules,
    callsPerMinute: deps.callsPerMinute,
    ...(deps.reportPath ? { reportPath: deps.reportPath } : {}),
  };
  if (entry.summary && redo) return redoView(entry, entry.summary, redo, scheduled, phases, context);
  return runningView(entry, scheduled, phases, context);
}

/** The view of one catalogued file as the file routes answer it (without its phases). */
export async function fileView(deps: FileQueries, entry: CatalogEntry): Promise<FileView> {
  return viewOf(deps, entry, await deps.schedule.view());
}

/** GET /v1/files: newest first, filtered, a page at a time. */
export async function listFiles(
  deps: FileQueries,
  params: Record<string, string | undefined>,
): Promise<{ files: FileView[]; next: string | null }> {
  const query = parseParams(FileListQuery, params);
  const unfinished = query.status !== undefined && UNFINISHED_STATUSES.includes(query.status);
  const [page, view] = await Promise.all([
    deps.catalog.list({
      limit: query.limit,
      ...(query.partner ? { partner: query.partner } : {}),
      ...(query.kind ? { kind: query.kind } : {}),
      ...(query.since ? { since: new Date(query.since).toISOString() } : {}),
      ...(query.status ? { finished: unfinished ? 'unfinished' : query.status } : {}),
      ...(query.cursor ? { cursor: query.cursor } : {}),
    }),
    deps.schedule.view(),
  ]);
  const views = await Promise.all(page.entries.map((entry) => viewOf(deps, entry, view)));
  // A status of a file in flight is known only from its view: the page keeps those that have it (and may be short).
  const files = unfinished ? views.filter((file) => file.status === query.status) : views;
  return { files, next: page.next ?? null };
}

/** The catalogue entry of a file, or 404. */
export async function catalogued(deps: Pick<FileQueries, 'catalog'>, fileId: string): Promise<CatalogEntry> {
  const id = parseParams(FileIdParam, fileId);
  const entry = await deps.catalog.get(id);
  if (!entry) throw new ApiError('NotFound', `no file ${id}`);
  return entry;
}

/** GET /v1/files/{fileId}: the view and its phases. */
export async function getFile(deps: FileQueries, fileId: string): Promise<FileView & { phases: PhaseView[] }> {
  const entry = await catalogued(deps, fileId);
  const [view, phases] = await Promise.all([deps.schedule.view(), deps.phases.phases(entry.fileId)]);
  return { ...(await viewOf(deps, entry, view)), phases: phases.map(phaseView) };
}

/** POST /v1/files/{fileId}/pause|resume|cancel: 202 with the view; 409 when it does not fit the file's state. */
export async function controlFile(
  deps: FileQueries & { readonly notifier?: TurnNotifier },
  fileId: string,
  action: ControlAction,
): Promise<FileView> {
  const entry = await catalogued(deps, fileId);
  // A finished file takes no control; one in a redo round (a retry by code) is in flight again until it ends.
  if (entry.summary && !(entry.redo && !entry.redo.done)) {
    throw new ApiError(
      'Conflict',
      `${entry.name} is finished (${entry.summary.status}): there is nothing to ${action}`,
    );
  }
  try {
    await controlFiles(deps.schedule, { fileId: entry.fileId }, action, deps.notifier);
  } catch (error) {
    if (error instanceof ControlRefused) throw new ApiError('Conflict', error.message);
    throw error;
  }
  const [view, refreshed] = await Promise.all([deps.schedule.view(), deps.catalog.get(entry.fileId)]);
  return viewOf(deps, refreshed ?? entry, view);
}
