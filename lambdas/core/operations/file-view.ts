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

/** Where a summary's reports are, as the API shows them. */
function reportsOf(summary: FinalSummary, reportPath: (key: string) => string): FileView['reports'] {
  const { reports } = summary;
  return {
    summary: reportPath(reports.summary),
    results: reports.results ? reportPath(reports.results) : null,
    failedRecords: reports.failedRecords ? reportPath(reports.failedRecords) : null,
  };
}

/** A finished file's view: its summary.json, as kept. */
export function finishedView(entry: CatalogEntry, summary: FinalSummary, reportPath = (key: string) => key): FileView {
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
    reports: reportsOf(summary, reportPath),
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

/** What a file in flight has so far: its records ended, by reason, and the calls they took. */
interface Tally {
  readonly succeeded: number;
  readonly failed: number;
  readonly made: number;
  /** By reason; a Map, so a CRM error named like an Object property (`__proto__`) is a key like any other. */
  readonly failures: Map<string, number>;
}

/** `tally` with the counters of `phases` added. */
function addPhases(tally: Tally, phases: readonly PhaseState[]): Tally {
  let { succeeded, failed, made } = tally;
  const failures = new Map(tally.failures);
  for (const phase of phases) {
    succeeded += phase.succeeded ?? 0;
    failed += phase.failed ?? 0;
    made += phase.calls ?? 0;
    for (const [reason, count] of Object.entries(phase.failures ?? {})) {
      failures.set(reason, (failures.get(reason) ?? 0) + count);
    }
  }
  return { succeeded, failed, made, failures };
}

/**
 * The view of a file in flight from what it has so far and its schedule entry: `received` at least what is
 * answered, so `received = succeeded + failed + pending`; its ETA from the calls it still needs at its share of
 * the budget.
 */
function inFlightView(
  file: Pick<FileView, 'fileId' | 'name' | 'partner' | 'kind' | 'landedAt' | 'startedAt' | 'reports'>,
  tally: Tally,
  read: number,
  scheduled: ScheduledFile | undefined,
  phase: string | null,
  context: ViewContext,
): FileView {
  const { succeeded, failed, made } = tally;
  const received = Math.max(read, succeeded + failed);
  const remaining =
    scheduled?.batchesEstimate !== undefined ? Math.max(0, scheduled.batchesEstimate - (scheduled.answered ?? 0)) : 0;
  const eta = scheduled ? etaSeconds(scheduled, context.view, context.rules, context.callsPerMinute) : undefined;
  const status = unfinishedStatus(scheduled, context.view);
  return {
    ...file,
    status,
    phase: scheduled?.phase ?? phase,
    waitingFor:
      status === 'paused' ? (scheduled?.waitingFor ?? 'paused by an operator') : (scheduled?.waitingFor ?? null),
    received,
    succeeded,
    failed,
    pending: received - succeeded - failed,
    failures: Object.fromEntries(tally.failures),
    calls: { made, remaining },
    progress: received > 0 ? (succeeded + failed) / received : 0,
    etaSeconds: eta ?? null,
    finishedAt: null,
  };
}

/**
 * A file in flight: the answers counted so far on its phases (terminal outcomes only: a record answered 8006 or
 * 4404 is pending until a later phase answers it) and the records its ADD phase has read and refused.
 */
export function runningView(
  entry: CatalogEntry,
  scheduled: ScheduledFile | undefined,
  phases: readonly PhaseState[],
  context: ViewContext,
): FileView {
  const rejected = scheduled?.rejected ?? 0;
  const refused: Tally = {
    succeeded: 0,
    failed: rejected,
    made: 0,
    failures: new Map(rejected > 0 ? [['VALIDATION', rejected]] : []),
  };
  const file = {
    fileId: entry.fileId,
    name: entry.name,
    partner: entry.partner,
    kind: entry.kind,
    landedAt: scheduled?.landedAt ?? entry.landedAt,
    startedAt: scheduled?.startedAt ?? null,
    reports: NO_REPORTS,
  };
  return inFlightView(file, addPhases(refused, phases), scheduled?.received ?? 0, scheduled, null, context);
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
  const failures = new Map(Object.entries(summary.failures));
  for (const code of redo.codes) failures.delete(code);
  const before: Tally = {
    succeeded: summary.succeeded,
    failed: Math.max(0, summary.failed - redo.lines),
    made: summary.calls?.made ?? 0,
    failures,
  };
  const round = phases.filter((phase) => Number(REDO_PHASE.exec(phase.phase)?.[1]) === redo.round);
  const file = {
    fileId: entry.fileId,
    name: summary.name,
    partner: entry.partner,
    kind: summary.kind,
    landedAt: summary.landedAt ?? entry.landedAt,
    startedAt: summary.startedAt ?? null,
    reports: reportsOf(summary, context.reportPath ?? ((key: string) => key)),
  };
  return inFlightView(file, addPhases(before, round), summary.received, scheduled, `REDO${redo.round}`, context);
}

/** A phase's counters as the file view lists them. */
export const phaseView = (state: PhaseState): PhaseView => ({
  phase: state.phase,
  batches: state.batches ?? null,
  answered: state.answered,
  calls: state.calls ?? 0,
});
