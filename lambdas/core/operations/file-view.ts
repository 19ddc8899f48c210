import type { FileKind } from '../files/record-schemas';
import { REDO_PHASE } from '../crm/call-message';
import type { RedoMark } from '../ledger/file-claim';
import type { PhaseState } from '../ledger/phase-counters';
import { etaSeconds, type ScheduledFile, type ScheduleRules, type ScheduleView } from '../schedule/schedule';
import type { FinalSummary } from '../workflow/finalise-file';
import type { CatalogEntry } from './ports';

/** A file's status as the operations API says it (ops-api.md, The file view). */
export type FileStatus =
  'queued' | 'waiting' | 'running' | 'paused' | 'succeeded' | 'partial' | 'failed' | 'duplicate' | 'cancelled';

export const FILE_STATUSES = [
  'queued',
  'waiting',
  'running',
  'paused',
  'succeeded',
  'partial',
  'failed',
  'duplicate',
  'cancelled',
] as const satisfies readonly FileStatus[];

/** Statuses of a file in flight (the others are a finished file's summary status). */
export const UNFINISHED_STATUSES: readonly FileStatus[] = ['queued', 'waiting', 'running', 'paused'];

export interface FileView {
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly kind: FileKind | 'unknown';
  readonly status: FileStatus;
  readonly phase: string | null;
  readonly waitingFor: string | null;
  readonly received: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly pending: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly calls: { readonly made: number; readonly remaining: number };
  readonly progress: number;
  readonly etaSeconds: number | null;
  readonly landedAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly reports: {
    readonly summary: string | null;
    readonly results: string | null;
    readonly failedRecords: string | null;
  };
}

export interface PhaseView {
  readonly phase: string;
  /** Null until its last prepare slice has queued them all. */
  readonly batches: number | null;
  readonly answered: number;
  readonly calls: number;
}

/** What the view of a file in flight reads besides its entry: the budget it shares. */
export interface ViewContext {
  readonly view: ScheduleView;
  readonly rules: Pick<ScheduleRules, 'partnerWeights'>;
  readonly callsPerMinute: number;
  /** Turns a report's key into what the API shows: the S3 key on AWS, a local path on one machine. */
  readonly reportPath?: (key: string) => string;
}

const NO_REPORTS = { summary: null, results: null, failedRecords: null } as const;

/** A finished file's view: its summary.json, as kept. */
export function finishedView(entry: CatalogEntry, summary: FinalSummary, reportPath = (key: string) => key): FileView {
  const { reports } = summary;
  return {
    fileId: entry.fileId,
    name: summary.name,
    partner: entry.partner,
    kind: summary.kind,
    status: summary.status,
    phase: null,
    waitingFor: null,
    received: summary.received,
    succeeded: summary.succeeded,
    failed: summary.failed,
    pending: 0,
    failures: summary.failures,
    calls: { made: summary.calls?.made ?? 0, remaining: 0 },
    progress: 1,
    etaSeconds: null,
    landedAt: summary.landedAt ?? entry.landedAt,
    startedAt: summary.startedAt ?? null,
    finishedAt: summary.finishedAt ?? null,
    reports: {
      summary: reportPath(reports.summary),
      results: reports.results ? reportPath(reports.results) : null,
      failedRecords: reports.failedRecords ? reportPath(reports.failedRecords) : null,
    },
  };
}

/** The status of a file in flight, from its schedule entry (a paused partner pauses its files too). */
export function unfinishedStatus(scheduled: ScheduledFile | undefined, view: ScheduleView): FileStatus {
  if (!scheduled) return 'queued';
  if (scheduled.control === 'paused' || view.pausedPartners.includes(scheduled.partner)) return 'paused';
  if (scheduled.state === 'queued') return 'queued';
  if (scheduled.state === 'waiting') return 'waiting';
  return 'running';
}

/**
 * A file in flight: the answers counted so far on its phases (terminal outcomes only: a record answered 8006 or
 * 4404 is pending until a later phase answers it) and the records its ADD phase has read, so
 * `received = succeeded + failed + pending`; its ETA from the calls it still needs at its share of the budget.
 */
export function runningView(
  entry: CatalogEntry,
  scheduled: ScheduledFile | undefined,
  phases: readonly PhaseState[],
  context: ViewContext,
): FileView {
  const rejected = scheduled?.rejected ?? 0;
  let succeeded = 0;
  let failed = rejected;
  let made = 0;
  const failures: Record<string, number> = rejected > 0 ? { VALIDATION: rejected } : {};
  for (const phase of phases) {
    succeeded += phase.succeeded ?? 0;
    failed += phase.failed ?? 0;
    made += phase.calls ?? 0;
    for (const [reason, count] of Object.entries(phase.failures ?? {})) {
      failures[reason] = (failures[reason] ?? 0) + count;
    }
  }
  const received = Math.max(scheduled?.received ?? 0, succeeded + failed);
  const pending = received - succeeded - failed;
  const remaining =
    scheduled?.batchesEstimate !== undefined ? Math.max(0, scheduled.batchesEstimate - (scheduled.answered ?? 0)) : 0;
  const eta = scheduled ? etaSeconds(scheduled, context.view, context.rules, context.callsPerMinute) : undefined;
  const status = unfinishedStatus(scheduled, context.view);
  return {
    fileId: entry.fileId,
    name: entry.name,
    partner: entry.partner,
    kind: entry.kind,
    status,
    phase: scheduled?.phase ?? null,
    waitingFor:
      status === 'paused' ? (scheduled?.waitingFor ?? 'paused by an operator') : (scheduled?.waitingFor ?? null),
    received,
    succeeded,
    failed,
    pending,
    failures,
    calls: { made, remaining },
    progress: received > 0 ? (succeeded + failed) / received : 0,
    etaSeconds: eta ?? null,
    landedAt: scheduled?.landedAt ?? entry.landedAt,
    startedAt: scheduled?.startedAt ?? null,
    finishedAt: null,
    reports: NO_REPORTS,
  };
}

/**
 * A finished file in a redo round (retry by code): its last summary's counts, with the round's records (its
 * failures with the codes retried) pending until the round's phases (REDO<round>, REDO<round>UPD) answer them.
 * A transaction answered 4404 again stays pending until the round's report fails it. The reports shown are the
 * last ones until the round rewrites them.
 */
export function redoView(
  entry: CatalogEntry,
  summary: FinalSummary,
  redo: RedoMark,
  scheduled: ScheduledFile | undefined,
  phases: readonly PhaseState[],
  context: ViewContext,
): FileView {
  const reportPath = context.reportPath ?? ((key: string) => key);
  const failures: Record<string, number> = { ...summary.failures };
  for (const code of redo.codes) delete failures[code];
  let succeeded = summary.succeeded;
  let failed = Math.max(0, summary.failed - redo.lines);
  let made = summary.calls?.made ?? 0;
  for (const phase of phases) {
    if (Number(REDO_PHASE.exec(phase.phase)?.[1]) !== redo.round) continue;
    succeeded += phase.succeeded ?? 0;
    failed += phase.failed ?? 0;
    made += phase.calls ?? 0;
    for (const [reason, count] of Object.entries(phase.failures ?? {})) {
      failures[reason] = (failures[reason] ?? 0) + count;
    }
  }
  const received = Math.max(summary.received, succeeded + failed);
  const pending = received - succeeded - failed;
  const remaining =
    scheduled?.batchesEstimate !== undefined ? Math.max(0, scheduled.batchesEstimate - (scheduled.answered ?? 0)) : 0;
  const eta = scheduled ? etaSeconds(scheduled, context.view, context.rules, context.callsPerMinute) : undefined;
  const status = unfinishedStatus(scheduled, context.view);
  const { reports } = summary;
  return {
    fileId: entry.fileId,
    name: summary.name,
    partner: entry.partner,
    kind: summary.kind,
    status,
    phase: scheduled?.phase ?? `REDO${redo.round}`,
    waitingFor:
      status === 'paused' ? (scheduled?.waitingFor ?? 'paused by an operator') : (scheduled?.waitingFor ?? null),
    received,
    succeeded,
    failed,
    pending,
    failures,
    calls: { made, remaining },
    progress: received > 0 ? (succeeded + failed) / received : 0,
    etaSeconds: eta ?? null,
    landedAt: summary.landedAt ?? entry.landedAt,
    startedAt: summary.startedAt ?? null,
    finishedAt: null,
    reports: {
      summary: reportPath(reports.summary),
      results: reports.results ? reportPath(reports.results) : null,
      failedRecords: reports.failedRecords ? reportPath(reports.failedRecords) : null,
    },
  };
}

/** A phase's counters as the file view lists them. */
export const phaseView = (state: PhaseState): PhaseView => ({
  phase: state.phase,
  batches: state.batches ?? null,
  answered: state.answered,
  calls: state.calls ?? 0,
});
