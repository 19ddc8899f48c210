import { MAX_FILE_NAME_BYTES } from '../../lambdas/core/files/classify-file';
import { startLocalPipeline, type LocalPipeline } from '../../lambdas/local/wiring/local-pipeline';

const USERS = 'customer_id,first_name,last_name,email,country,created_at\n';
const row = (n: number) => `C${n},Ada,Lovelace,ada${n}@example.com,GB,2026-01-01T00:00:00Z\n`;

/** Every character S3 keys may hold that URLs, copy sources or event encodings treat specially. */
const AWKWARD = [';', ',', ':', '#', '&', '?', '@', '=', '$', '+', '%', '%2B', ' ', '(1)', "'", '!', '~', 'é', '日本'];

/**
 * File names a careless or hostile partner uploads: each is processed under exactly its name, through every
 * step that derives a key from it (segregate, archive, reports, the partner's copy); a name too long for the
 * pipeline is quarantined with its reason. None fails a workflow (which on `ingest up` stopped the landing zone).
 */
describe('awkward file names', () => {
  let pipeline: LocalPipeline;
  const names = AWKWARD.map((text, n) => `users_acme_20261124_${String(n).padStart(3, '0')}${text}x.csv`);
  const tooLong = `users_acme_20261124_${'n'.repeat(MAX_FILE_NAME_BYTES)}.csv`;

  beforeAll(async () => {
    pipeline = await startLocalPipeline({});
    for (const [n, name] of names.entries()) await pipeline.land(`acme/${name}`, USERS + row(n));
    await pipeline.land(`acme/${tooLong}`, USERS + row(99));
  });
  afterAll(() => pipeline?.close());

  it('are each processed under their own name, and no workflow fails', async () => {
    const done = await pipeline.waitForFiles(names.length + 1);
    expect(pipeline.failedExecutions).toEqual([]);
    const byName = new Map(done.map((summary) => [summary.name, summary]));
    for (const name of names) {
      expect({ name, ...byName.get(name) }).toMatchObject({ name, kind: 'users', status: 'succeeded', received: 1 });
    }
    expect(pipeline.deliveryFailures).toEqual([]);
  }, 60_000);

  it('quarantines a name too long for the keys derived from it, saying so', () => {
    const summary = pipeline.completed.find((file) => file.name === tooLong);
    expect(summary).toMatchObject({
      kind: 'unknown',
      status: 'failed',
      reason: expect.stringContaining(
        `file name too long: ${Buffer.byteLength(tooLong)} bytes, at most ${MAX_FILE_NAME_BYTES}`,
      ),
    });
  });
});
