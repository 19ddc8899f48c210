import type { FileSummary } from '../../core/ledger/file-report';
import type { CrmCallCounts } from './crm-call-monitor';

/** One file of a run, as `ingest run --json` prints it (../shared/local-run.md). */
export type FileResult = Pick<
  FileSummary,
  'name' | 'sha256' | 'kind' | 'status' | 'received' | 'succeeded' | 'failed' | 'failures' | 'reason'
>;

export interface RunReport {
  readonly files: FileResult[];
  readonly totals: {
    readonly files: number;
    readonly received: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly apiCalls: number;
    readonly throttled: number;
  };
  /** Files that did not reach a terminal state (the run stopped): their records are pending, not failed. */
  readonly pending?: string[];
  /** Why the run could not finish. */
  readonly error?: string;
}

/** The fields of the contract, in its order, from a finished file's summary. */
export function fileResult(summary: FileSummary): FileResult {
  return {
    name: summary.name,
    sha256: summary.sha256,
    kind: summary.kind,
    status: summary.status,
    received: summary.received,
    succeeded: summary.succeeded,
    failed: summary.failed,
    failures: summary.failures,
    ...(summary.reason === undefined ? {} : { reason: summary.reason }),
  };
}

export function runReport(
  files: readonly FileResult[],
  calls: Pick<CrmCallCounts, 'calls' | 'throttled'>,
  stopped?: { pending: string[]; error: string },
): RunReport {
  const sum = (field: 'received' | 'succeeded' | 'failed') => files.reduce((total, file) => total + file[field], 0);
  return {
    files: [...files],
    totals: {
      files: files.length,
      received: sum('received'),
      succeeded: sum('succeeded'),
      failed: sum('failed'),
      apiCalls: calls.calls,
      throttled: calls.throttled,
    },
    ...(stopped ? { pending: stopped.pending, error: stopped.error } : {}),
  };
}

const number = (n: number) => n.toLocaleString('en-US');

/** Failures by reason, the most frequent first: `3217×2 VALIDATION×5`. */
export function failuresText(failures: Readonly<Record<string, number>>): string {
  return Object.entries(failures)
    .filter(([, count]) => count > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, count]) => `${reason}×${number(count)}`)
    .join(' ');
}

/** The summary table `ingest run` prints on stdout. */
export function summaryTable(report: RunReport): string {
  const header = ['file', 'kind', 'status', 'received', 'succeeded', 'failed', 'failures / reason'];
  const rows = report.files.map((file) => [
    file.name,
    file.kind,
    file.status,
    number(file.received),
    number(file.succeeded),
    number(file.failed),
    [failuresText(file.failures), file.reason ?? ''].filter(Boolean).join('  '),
  ]);
  for (const name of report.pending ?? []) rows.push([name, '', 'pending', '', '', '', '']);
  const numeric = new Set([3, 4, 5]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return column === cells.length - 1 ? cell : numeric.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const { totals } = report;
  return [
    line(header),
    line(
      widths.map((width, column) => '-'.repeat(column === widths.length - 1 ? (header[column] ?? '').length : width)),
    ),
    ...rows.map(line),
    '',
    `${number(totals.files)} files: ${number(totals.received)} records received, ${number(totals.succeeded)} succeeded, ` +
      `${number(totals.failed)} failed. CRM calls: ${number(totals.apiCalls)}, throttled: ${number(totals.throttled)}.`,
  ].join('\n');
}
