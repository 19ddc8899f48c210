import type { ObjectRef, ObjectStore } from '../../../lambdas/core/files/object-store';
import { PollSourceSchema, type RemoteFolder } from '../../../lambdas/core/polling/poll-source';
import { deliverReports, type DeliverDeps } from '../../../lambdas/core/workflow/deliver-reports';
import type { FinalSummary } from '../../../lambdas/core/workflow/finalise-file';

const SHA = 'ab'.repeat(32);
const summary = (failedRecords: boolean): FinalSummary => ({
  name: 'users_acme_20261124.csv',
  sha256: SHA,
  kind: 'users',
  status: failedRecords ? 'partial' : 'succeeded',
  received: 2,
  succeeded: failedRecords ? 1 : 2,
  failed: failedRecords ? 1 : 0,
  failures: failedRecords ? { VALIDATION: 1 } : {},
  reports: {
    bucket: 'archive',
    summary: `reports/acme/users_acme_20261124.csv/${SHA.slice(0, 12)}/summary.json`,
    results: `reports/acme/users_acme_20261124.csv/${SHA.slice(0, 12)}/results.csv`,
    ...(failedRecords
      ? { failedRecords: `reports/acme/users_acme_20261124.csv/${SHA.slice(0, 12)}/users_acme_20261124.failed.csv` }
      : {}),
  },
  archived: { bucket: 'archive', key: 'users/acme/users_acme_20261124.csv' },
});

/** Objects in memory, with their metadata: enough of the store for delivery. */
function world(origin?: string) {
  const objects = new Map<string, { body: string; metadata: Record<string, string> }>();
  const id = (ref: ObjectRef) => `${ref.bucket}/${ref.key}`;
  const put = (ref: ObjectRef, body: string, metadata: Record<string, string> = {}) =>
    objects.set(id(ref), { body, metadata });
  const store = {
    head: async (ref: ObjectRef) => {
      const object = objects.get(id(ref));
      if (!object) throw Object.assign(new Error('gone'), { name: 'File.Gone' });
      return { size: object.body.length, metadata: object.metadata };
    },
    async *read(ref: ObjectRef) {
      yield Buffer.from(objects.get(id(ref))?.body ?? '');
    },
    copy: async (from: ObjectRef, to: ObjectRef) => void objects.set(id(to), objects.get(id(from))!),
    put: async (ref: ObjectRef, body: string) => void put(ref, body),
  } as unknown as ObjectStore;
  const written = new Map<string, string>();
  const folder: RemoteFolder = {
    list: async () => [],
    read: () => (async function* () {})(),
    write: async (path, body) => {
      let text = '';
      for await (const chunk of body as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
      written.set(path, text);
    },
    rename: async () => undefined,
    mkdir: async () => undefined,
    close: async () => undefined,
  };
  const report = summary(true);
  put({ bucket: 'archive', key: report.reports.summary }, '{"summary":1}');
  put({ bucket: 'archive', key: report.reports.failedRecords! }, 'customer_id,failure_reason\nC2,VALIDATION\n');
  put(report.archived!, 'the file', origin ? { 'collected-from': origin } : {});
  const source = (resultsDir?: string) =>
    PollSourceSchema.parse({
      name: 'acme-sftp',
      partner: 'acme',
      host: 'sftp.acme.example',
      username: 'crm',
      remoteDir: '/outbox',
      ...(resultsDir ? { resultsDir } : {}),
    });
  const deps = (resultsDir?: string): DeliverDeps => ({
    store,
    landingBucket: 'landing',
    landingPrefix: 'incoming/',
    sources: [source(resultsDir)],
    openSource: async () => folder,
  });
  return { objects, written, deps };
}

describe('deliverReports', () => {
  it("puts the summary and failed records in the partner's reports/ folder when they uploaded it", async () => {
    const { objects, deps } = world();
    const delivery = await deliverReports(summary(true), deps());
    const folder = `incoming/acme/reports/users_acme_20261124.csv/${SHA.slice(0, 12)}`;
    expect(delivery).toEqual({
      destination: 'home',
      partner: 'acme',
      files: [`${folder}/summary.json`, `${folder}/users_acme_20261124.failed.csv`],
    });
    // The partner's summary says what happened to their file, and nothing of the deployment's buckets and keys.
    const { reports: _reports, archived: _archived, ...partnerView } = summary(true);
    const delivered = objects.get(`landing/${folder}/summary.json`)?.body ?? '';
    expect(JSON.parse(delivered)).toEqual(partnerView);
    expect(delivered).not.toMatch(/archive|reports\//);
    expect(objects.get(`landing/${folder}/users_acme_20261124.failed.csv`)?.body).toBe(
      'customer_id,failure_reason\nC2,VALIDATION\n',
    );
    // Nothing failed: the summary alone.
    expect(await deliverReports(summary(false), deps())).toMatchObject({ files: [`${folder}/summary.json`] });
  });

  it('uploads them to the results folder of the source the file was collected from', async () => {
    const { written, deps } = world('acme-sftp');
    const delivery = await deliverReports(summary(true), deps('results'));
    const folder = `/outbox/results/users_acme_20261124.csv/${SHA.slice(0, 12)}`;
    expect(delivery).toEqual({
      destination: 'source',
      source: 'acme-sftp',
      files: [`${folder}/summary.json`, `${folder}/users_acme_20261124.failed.csv`],
    });
    expect(written.get(`${folder}/users_acme_20261124.failed.csv`)).toBe('customer_id,failure_reason\nC2,VALIDATION\n');
    expect(JSON.parse(written.get(`${folder}/summary.json`) ?? '')).not.toHaveProperty('reports');
  });

  it('says why nothing was delivered: a source without a results folder, or no longer configured', async () => {
    expect(await deliverReports(summary(true), world('acme-sftp').deps())).toEqual({
      destination: 'none',
      reason: 'source acme-sftp has no resultsDir',
    });
    expect(await deliverReports(summary(true), world('gone-sftp').deps('results'))).toEqual({
      destination: 'none',
      reason: 'source gone-sftp is no longer configured',
    });
  });
});
