import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCrmSimulator, type CrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import type { FileResult } from '../../lambdas/local/cli/run-report';
import { alive, finished, readLines, runIngest, sftpPut, startIngest, upConnection } from './cli';

interface FileRow {
  fileId: string;
  name: string;
  kind: string;
  state: string;
  phase: string | null;
  waitingFor: string | null;
  etaSeconds: number | null;
  progress: string;
}

const NAME = 'users_acme_20261124_001.csv';
/** 1,500 new customers: 150 calls of 10 at 300 calls a minute, half a minute of calls. */
const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  ...Array.from({ length: 1500 }, (_, i) => `K${i},Ada,Alder,k${i}@example.com,,GB,2026-01-01T00:00:00Z`),
].join('\n');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `ingest files`, `pause`, `resume` and `cancel` against a running `ingest up`, as an operator would from a
 * second terminal: each is its own process and finds the running one through the report directory.
 */
describe('ingest pause, resume, cancel and files against a running ingest up', () => {
  let simulator: CrmSimulator;
  const reportDir = mkdtempSync(join(tmpdir(), 'ingest-control-'));
  const control = async (...args: string[]) => runIngest([...args, '--report-dir', reportDir]);
  const files = async (): Promise<FileRow[]> => {
    const result = await control('files', '--json');
    expect(result.code).toBe(0);
    return (JSON.parse(result.stdout) as { files: FileRow[] }).files;
  };
  const calls = () => simulator.stats().calls.ADD_CUST ?? 0;

  beforeAll(async () => {
    simulator = await startCrmSimulator();
  });
  afterAll(async () => {
    await simulator?.close();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it('pauses a file within seconds, resumes it, cancels it with its unsent records failed as CANCELLED', async () => {
    expect((await control('files')).stderr).toMatch(/no running `ingest up` found/);
    const child = startIngest([
      'up',
      '--json',
      '--partner',
      'acme',
      '--crm-url',
      simulator.url,
      '--crm-token',
      simulator.token,
      '--report-dir',
      reportDir,
      '--calls-per-minute',
      '300',
      '--batch-size',
      '10',
      '--send-window',
      '10',
    ]);
    const exited = finished(child);
    try {
      const connection = await upConnection(child);
      const results = readLines(child, (lines) => lines.length >= 1, 120_000);
      // Awaited below; should the test fail before, its rejection (the child killed) must not outlive it.
      results.catch(() => undefined);
      await sftpPut(connection, 'acme', NAME, USERS);

      // Sending: its phase, its calls answered so far, an ETA.
      let row: FileRow | undefined;
      // The ETA is written with the file's progress, every 2 s while it sends.
      for (let i = 0; i < 100 && !(row && row.state === 'sending' && calls() >= 10 && row.etaSeconds !== null); i++) {
        await sleep(200);
        row = (await files()).find((file) => file.name === NAME);
      }
      expect(row).toMatchObject({ kind: 'users', state: 'sending', phase: 'ADD', waitingFor: null });
      expect(row!.etaSeconds).toEqual(expect.any(Number));

      // Pause: within a few seconds no call is made for it.
      const paused = await control('pause', NAME);
      expect(paused.code).toBe(0);
      expect(paused.stdout).toContain(`paused: ${NAME}`);
      await sleep(3000);
      const atPause = calls();
      await sleep(4000);
      expect(calls()).toBe(atPause);
      expect(atPause).toBeLessThan(150);
      expect((await files()).find((file) => file.name === NAME)).toMatchObject({
        state: 'paused',
        waitingFor: 'paused by an operator',
      });

      // Resume, by the first hex digits of its SHA-256: calls go on.
      expect((await control('resume', row!.fileId.slice(0, 10))).code).toBe(0);
      for (let i = 0; i < 50 && calls() === atPause; i++) await sleep(200);
      expect(calls()).toBeGreaterThan(atPause);

      // Cancel: nothing more is sent; the file ends cancelled, its unsent records failed as CANCELLED.
      const cancelled = await control('cancel', NAME);
      expect(cancelled.code).toBe(0);
      const [line] = await results;
      const result = JSON.parse(line as string) as FileResult;
      expect(result).toMatchObject({ name: NAME, status: 'cancelled', received: 1500 });
      expect(result.received).toBe(result.succeeded + result.failed);
      expect(result.failures.CANCELLED).toBeGreaterThan(0);
      expect(result.succeeded).toBe(calls() * 10);
      const afterCancel = calls();
      await sleep(2000);
      expect(calls()).toBe(afterCancel);

      // Nothing in flight now: a control names what it cannot find.
      const missing = await control('pause', NAME);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`no file ${NAME} in flight`);
      expect(await files()).toEqual([]);

      child.kill('SIGINT');
      expect((await exited).code).toBe(0);
      expect((await control('files')).stderr).toMatch(/no running `ingest up` found/);
    } finally {
      if (alive(child.pid!)) child.kill('SIGKILL');
    }
  }, 180_000);
});
