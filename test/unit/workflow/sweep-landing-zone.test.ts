import {
  sweepExecutionName,
  sweepLandingZone,
  type LandedObject,
  type WorkflowStarter,
} from '../../../lambdas/core/workflow/sweep-landing-zone';
import {
  failedRecordsName,
  relativeKey,
  reportPrefix,
  segregatedKey,
} from '../../../lambdas/core/workflow/storage-keys';

const now = new Date('2026-11-24T12:00:00Z');
const object = (key: string, ageS: number, etag = '"e1"'): LandedObject => ({
  key,
  size: 10,
  lastModified: new Date(now.getTime() - ageS * 1000),
  etag,
});

describe('sweepLandingZone', () => {
  it('starts old objects once under a name of their own; leaves young ones, folders and reports alone', async () => {
    const objects = [
      object('incoming/acme/', 900),
      object('incoming/acme/reports/a.csv/0123456789ab/summary.json', 900),
      object('incoming/acme/a.csv', 900),
      object('incoming/acme/b.csv', 5),
    ];
    const names = new Map<string, unknown>();
    const starter: WorkflowStarter = {
      start: async (name, input) => {
        if (names.has(name)) return 'already';
        names.set(name, input);
        return 'started';
      },
    };
    const zone = {
      async *list() {
        yield* objects;
      },
    };
    const options = { bucket: 'landing', prefix: 'incoming/', minAgeMs: 60_000, now };
    expect(await sweepLandingZone(zone, starter, options)).toEqual({
      listed: 4,
      started: 1,
      alreadyStarted: 0,
      young: 1,
    });
    expect(await sweepLandingZone(zone, starter, options)).toEqual({
      listed: 4,
      started: 0,
      alreadyStarted: 1,
      young: 1,
    });
    expect([...names.values()]).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ object: { key: 'incoming/acme/a.csv', size: 10 } }),
      }),
    ]);
  });

  it('execution names are valid Step Functions names, the same for the same upload and new for a new one', () => {
    const name = sweepExecutionName('landing', object('incoming/acme/ä b.csv', 0));
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(sweepExecutionName('landing', object('incoming/acme/ä b.csv', 99))).toBe(name);
    expect(sweepExecutionName('landing', object('incoming/acme/ä b.csv', 0, '"e2"'))).not.toBe(name);
  });
});

describe('storage keys', () => {
  it('keep the partner path from landing to archive and reports', () => {
    expect(relativeKey('incoming/acme/u.csv', 'incoming/')).toBe('acme/u.csv');
    expect(segregatedKey('incoming/acme/u.csv', 'users', 'incoming/')).toBe('users/acme/u.csv');
    expect(relativeKey('users/acme/u.csv', 'incoming/')).toBe('acme/u.csv');
    expect(reportPrefix('transactions/acme/t.csv', 'incoming/', 'ab'.repeat(32))).toBe(
      'reports/acme/t.csv/abababababab/',
    );
  });

  it('name the failed-records file after its source, uncompressed, in the format of the source', () => {
    expect(failedRecordsName('users/acme/users_acme_20261124_001.csv.gz', 'csv')).toBe(
      'users_acme_20261124_001.failed.csv',
    );
    expect(failedRecordsName('transactions/acme/trx_acme_20261124.ndjson', 'jsonl')).toBe(
      'trx_acme_20261124.failed.jsonl',
    );
  });
});
