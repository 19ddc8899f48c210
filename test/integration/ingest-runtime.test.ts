import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../lambdas/core/config';
import { startIngestRuntime, type FailedFile, type IngestRuntime } from '../../lambdas/local/cli/ingest-runtime';

const HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const GOOD = 'G1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z';
const BAD = 'G2,Bo,Birch,not-an-email,,SE,2026-01-02T00:00:00Z';
const NAME = 'users_acme_20261124_001.csv';

/**
 * The runtime behind `ingest up`: one file's failed workflow is said and the landing zone goes on; each
 * partner's reports have their own folder, and a file processed again leaves no stale report beside the new.
 */
describe('the ingest runtime', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-runtime-'));
  const reportDir = join(directory, 'reports');
  let runtime: IngestRuntime;
  const failures: FailedFile[] = [];

  beforeAll(async () => {
    runtime = await startIngestRuntime({
      settings: loadConfig({ flags: { reportDir } }),
      partners: ['acme', 'beta'],
      keepGoing: true,
    });
    runtime.onFailure((file) => failures.push(file));
  });
  afterAll(async () => {
    await runtime?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  const upload = async (partner: string, body: string) => {
    const path = join(directory, partner, NAME);
    rmSync(join(directory, partner), { recursive: true, force: true });
    mkdirSync(join(directory, partner));
    writeFileSync(path, body);
    const before = runtime.finished.get(NAME);
    await runtime.upload(path, partner);
    // `finished` is by name: wait until this upload's own result replaces what was there.
    const deadline = Date.now() + 30_000;
    while (runtime.finished.get(NAME) === before && Date.now() < deadline) await sleep(100);
    return runtime.finished.get(NAME);
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('says a failed workflow and goes on processing the next upload', async () => {
    // An execution whose input its first task refuses: it fails, as an execution to redrive would on AWS.
    await runtime.pipeline.startExecution('landing', '');
    const deadline = Date.now() + 30_000;
    while (failures.length === 0 && Date.now() < deadline) await sleep(100);
    expect(failures).toEqual([expect.objectContaining({ key: '', error: expect.stringContaining('ZodError') })]);
    const stopped = await Promise.race([
      runtime.stopped.then(
        () => 'stopped',
        () => 'stopped',
      ),
      sleep(500).then(() => 'running'),
    ]);
    expect(stopped).toBe('running');
    expect(await upload('acme', `${HEADER}\n${GOOD}\n${BAD}\n`)).toMatchObject({ status: 'partial', failed: 1 });
  }, 60_000);

  it("writes each partner's reports to a folder of their own, and replaces a file's reports when it comes again", async () => {
    const acme = join(reportDir, 'acme', NAME);
    expect(readdirSync(acme).sort()).toEqual(['results.csv', 'summary.json', 'users_acme_20261124_001.failed.csv']);
    // Another partner's file of the same name: its own folder; acme's reports are untouched.
    expect(await upload('beta', `${HEADER}\n${GOOD}\n`)).toMatchObject({ status: 'succeeded' });
    expect(readdirSync(join(reportDir, 'beta', NAME)).sort()).toEqual(['results.csv', 'summary.json']);
    expect(existsSync(join(acme, 'users_acme_20261124_001.failed.csv'))).toBe(true);
    // acme fixes the file and sends it again: nothing failed now, and no failed-records file is left over.
    expect(await upload('acme', `${HEADER}\n${GOOD.replace('G1', 'G3')}\n`)).toMatchObject({ status: 'succeeded' });
    expect(readdirSync(acme).sort()).toEqual(['results.csv', 'summary.json']);
    expect(JSON.parse(readFileSync(join(acme, 'summary.json'), 'utf8'))).toMatchObject({ failed: 0 });
  }, 60_000);
});
