import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../../lambdas/local/cli/run-report';
import { alive, descendants, finished, runIngest, startIngest, survivors } from './cli';

const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const USERS = [USERS_HEADER, 'E1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z'].join('\n');

/** A CRM that takes connections and never answers a request: unreachable for HTTP, yet open to TCP. */
async function silentCrm(): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `ingest run` ends by itself, and a stop signal ends it in seconds, whatever is in flight. */
describe('a run ends', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-ends-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('by itself after refusing a file with a line over the record limit (the unread rest is let go)', async () => {
    const files = join(directory, 'long-line');
    mkdirSync(files);
    // 8 MB on one line: refused at 1 MiB; the rest of the object, left unread, held the embedded S3 open.
    writeFileSync(join(files, 'users_acme_20261124_001.csv'), `${USERS_HEADER}\n${'x'.repeat(8_000_000)}\n`);
    const started = Date.now();
    const result = await runIngest(['run', files, '--json', '--report-dir', join(directory, 'reports-long')]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as RunReport;
    expect(report.files.map(({ name, status }) => ({ name, status }))).toEqual([
      { name: 'users_acme_20261124_001.csv', status: 'failed' },
    ]);
    expect(report.files[0]?.reason).toMatch(/File\.Unreadable: line 2: a record longer than 1048576 characters/);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it('within seconds of a stop signal while every CRM call hangs, its records pending, nothing left running', async () => {
    const crm = await silentCrm();
    const files = join(directory, 'hanging');
    mkdirSync(files);
    writeFileSync(join(files, 'users_acme_20261124_001.csv'), USERS);
    const child = startIngest([
      'run',
      files,
      '--json',
      '--crm-url',
      crm.url,
      '--crm-token',
      't',
      '--report-dir',
      join(directory, 'reports-hanging'),
    ]);
    const ended = finished(child);
    try {
      // Wait until the call is in flight: the CRM has a connection.
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && crm.connections() === 0) await sleep(200);
      expect(crm.connections()).toBeGreaterThan(0);
      const helpers = descendants(child.pid!);
      const signalled = Date.now();
      child.kill('SIGINT');
      const result = await ended;
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('interrupted (SIGINT)');
      const report = JSON.parse(result.stdout) as RunReport;
      expect(report.pending).toEqual(['users_acme_20261124_001.csv']);
      expect(report.totals.failed).toBe(0);
      expect(await survivors(helpers)).toEqual([]);
    } finally {
      if (alive(child.pid!)) child.kill('SIGKILL');
      await crm.close();
    }
  }, 90_000);

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
});
