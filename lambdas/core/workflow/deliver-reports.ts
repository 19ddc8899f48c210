import { posix } from 'node:path';
import type { ObjectRef, ObjectStore } from '../files/object-store';
import { sourcePath, type PollSource, type RemoteFolder } from '../polling/poll-source';
import type { FileSummary } from '../ledger/file-report';
import type { FinalSummary } from './finalise-file';
import { partnerReportsKey } from './storage-keys';

export interface DeliverDeps {
  readonly store: ObjectStore;
  readonly landingBucket: string;
  readonly landingPrefix: string;
  /** The polled sources, by name (a collected file's `collected-from` metadata names its source). */
  readonly sources: readonly PollSource[];
  readonly openSource: (source: PollSource) => Promise<RemoteFolder>;
}

export type Delivery =
  | { readonly destination: 'home'; readonly partner: string; readonly files: readonly string[] }
  | { readonly destination: 'source'; readonly source: string; readonly files: readonly string[] }
  | { readonly destination: 'none'; readonly reason: string };

/** The partner and the file's path below their folder, from the reports' own keys (`reports/<partner>/<path>/<id>/`). */
function reportFolder(summary: FinalSummary): { partner: string; folder: string } {
  const [, partner = '', ...rest] = summary.reports.summary.split('/');
  return { partner, folder: rest.slice(0, -1).join('/') };
}

/**
 * The summary a partner gets: what happened to their file, without the deployment's internals (bucket names,
 * archive keys) that the archive's summary.json and the file.completed event carry for operations.
 */
export function partnerSummary(summary: FileSummary): FileSummary {
  const { name, sha256, kind, status, received, succeeded, failed, failures, reason } = summary;
  return {
    name,
    sha256,
    kind,
    status,
    received,
    succeeded,
    failed,
    failures,
    ...(reason === undefined ? {} : { reason }),
  };
}

const SUMMARY_FILE = 'summary.json';

/** Where the file came from: a polled source records itself on the object it lands (kept through every move). */
async function originOf(summary: FinalSummary, deps: DeliverDeps): Promise<string | undefined> {
  if (!summary.archived) return undefined;
  try {
    return (await deps.store.head(summary.archived)).metadata['collected-from'];
  } catch {
    return undefined;
  }
}

/**
 * Partner feedback, after finalise (`file.completed`): the file's summary.json and, where records failed, its
 * failed-records file are put where the partner looks: `reports/<file>/<id>/` in their Transfer Family home
 * (the landing bucket's `incoming/<partner>/reports/`, which the workflow ignores), or, for a file collected
 * from the partner's own server, that source's results folder over SFTP. Safe to repeat: same names, replaced.
 */
export async function deliverReports(summary: FinalSummary, deps: DeliverDeps): Promise<Delivery> {
  const { partner, folder } = reportFolder(summary);
  const partnerCopy = `${JSON.stringify(partnerSummary(summary), null, 2)}\n`;
  // The summary is written from the partner's view of it; the failed-records file is copied as it is.
  const reports: { name: string; ref?: ObjectRef }[] = [
    { name: SUMMARY_FILE },
    ...(summary.reports.failedRecords
      ? [
          {
            name: posix.basename(summary.reports.failedRecords),
            ref: { bucket: summary.reports.bucket, key: summary.reports.failedRecords },
          },
        ]
      : []),
  ];
  const originName = await originOf(summary, deps);
  if (originName) {
    const source = deps.sources.find((candidate) => candidate.name === originName);
    if (!source) return { destination: 'none', reason: `source ${originName} is no longer configured` };
    if (!source.resultsDir) return { destination: 'none', reason: `source ${source.name} has no resultsDir` };
    const target = posix.join(sourcePath(source, source.resultsDir), folder);
    const remote = await deps.openSource(source);
    try {
      await remote.mkdir(target);
      const files: string[] = [];
      for (const report of reports) {
        const path = posix.join(target, report.name);
        await remote.write(path, report.ref ? deps.store.read(report.ref) : partnerCopy);
        files.push(path);
      }
      return { destination: 'source', source: source.name, files };
    } finally {
      await remote.close().catch(() => undefined);
    }
  }
  const files: string[] = [];
  for (const report of reports) {
    const to = {
      bucket: deps.landingBucket,
      key: partnerReportsKey(deps.landingPrefix, partner, `${folder}/${report.name}`),
    };
    if (report.ref) await deps.store.copy(report.ref, to);
    else await deps.store.put(to, partnerCopy, 'application/json');
    files.push(to.key);
  }
  return { destination: 'home', partner, files };
}
