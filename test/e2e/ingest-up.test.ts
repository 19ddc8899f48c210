import { keyFingerprint } from '../../lambdas/adapters/sftp/host-key';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { startCrmSimulator, type CrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import type { FileResult, RunReport } from '../../lambdas/local/cli/run-report';
import {
  alive,
  descendants,
  finished,
  portOpen,
  readLines,
  runIngest,
  startIngest,
  survivors,
  upConnection,
} from './cli';

const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  'P1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z',
  'P2,Bo,Birch,bo@invalid.example,,SE,2026-01-02T00:00:00Z',
].join('\n');
const TRANSACTIONS = [
  'transaction_id,customer_id,amount,currency,occurred_at',
  'Q1,P1,10.00,EUR,2026-02-01T10:00:00Z',
].join('\n');

describe('ingest up', () => {
  let simulator: CrmSimulator;
  const reportDir = mkdtempSync(join(tmpdir(), 'ingest-up-'));

  beforeAll(async () => {
    simulator = await startCrmSimulator();
  });
  afterAll(async () => {
    await simulator?.close();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it('takes uploads from any SFTP client, reports each file, and stops cleanly on Ctrl-C', async () => {
    const child = startIngest([
      'up',
      '--json',
      '--partner',
      'acme',
      '--partner',
      'globex',
      '--crm-url',
      simulator.url,
      '--crm-token',
      simulator.token,
      '--report-dir',
      reportDir,
      '--retry-later-delay',
      '1',
      // The transactions file holds at most this long for more users files to land (ORDERING_WINDOW_S).
      '--ordering-window',
      '10',
    ]);
    const exited = finished(child);
    try {
      const connection = await upConnection(child);
      expect(connection.users.map((u) => u.user)).toEqual(['acme', 'globex']);
      expect(connection.sftp.host).toBe('127.0.0.1');

      const client = new SftpClient('partner', {
        error: () => undefined,
        end: () => undefined,
        close: () => undefined,
      });
      const acme = connection.users[0]!;
      await client.connect({
        host: connection.sftp.host,
        port: connection.sftp.port,
        username: acme.user,
        password: acme.password,
        // The partner checks the server's key, as they would Transfer Family's.
        hostVerifier: (key: Buffer) => keyFingerprint(key) === connection.sftp.hostKeyFingerprint,
      } as SftpClient.ConnectOptions);
      const files = readLines(child, (lines) => lines.length >= 2);
      await client.put(Buffer.from(USERS), '/users_acme_20261124_001.csv');
      await client.put(Buffer.from(TRANSACTIONS), '/transactions_acme_20261124_001.csv');

      const reported = (await files).map((line) => JSON.parse(line) as FileResult);
      // The partner finds each file's summary (and its failed records) in their own reports/ folder.
      const users = reported.find((file) => file.name === 'users_acme_20261124_001.csv')!;
      const folder = `/reports/users_acme_20261124_001.csv/${users.sha256.slice(0, 12)}`;
      expect((await client.list(folder)).map((entry) => entry.name).sort()).toEqual([
        'summary.json',
        'users_acme_20261124_001.failed.csv',
      ]);
      const partnerSummary = JSON.parse(String(await client.get(`${folder}/summary.json`))) as FileResult;
      expect(partnerSummary).toMatchObject({ name: users.name, failed: 1, failures: { '3217': 1 } });
      expect((await client.list('/')).map((entry) => entry.name).sort()).toEqual(['reports']);
      await client.end();

      const byName = Object.fromEntries(reported.map((file) => [file.name, file]));
      expect(byName['users_acme_20261124_001.csv']).toMatchObject({
        status: 'partial',
        received: 2,
        succeeded: 1,
        failed: 1,
        failures: { '3217': 1 },
      });
      expect(byName['transactions_acme_20261124_001.csv']).toMatchObject({ status: 'succeeded', succeeded: 1 });
      const summary = JSON.parse(
        readFileSync(join(reportDir, 'acme', 'users_acme_20261124_001.csv', 'summary.json'), 'utf8'),
      ) as FileResult;
      expect(summary.failures).toEqual({ '3217': 1 });

      const helpers = descendants(child.pid!);
      expect(helpers.length).toBeGreaterThan(0); // the embedded DynamoDB runs in a process of its own
      child.kill('SIGINT');
      const result = await exited;
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/interrupted \(SIGINT\); stopping/);
      expect(await survivors(helpers)).toEqual([]);
      expect(await portOpen(connection.sftp.port)).toBe(false);
    } finally {
      if (alive(child.pid!)) child.kill('SIGKILL');
    }
  }, 120_000);
});

describe('ingest exit statuses', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-exit-'));
  const files = join(directory, 'in');
  beforeAll(() => {
    mkdirSync(files);
    writeFileSync(join(files, 'users_acme_20261124_001.csv'), USERS);
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('stops with the reason when the CRM rejects the credentials, leaving the records pending', async () => {
    const simulator = await startCrmSimulator({ token: 'right' });
    try {
      const result = await runIngest([
        'run',
        files,
        '--json',
        '--crm-url',
        simulator.url,
        '--crm-token',
        'wrong',
        '--report-dir',
        join(directory, 'auth'),
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/CRM credentials rejected \(HTTP 401\)/);
      const report = JSON.parse(result.stdout) as RunReport;
      expect(report.pending).toEqual(['users_acme_20261124_001.csv']);
      expect(report.files).toEqual([]);
      expect(report.totals.failed).toBe(0);
    } finally {
      await simulator.close();
    }
  }, 60_000);

  it('stops at once when the CRM cannot be reached', async () => {
    const closed = await startCrmSimulator();
    const url = closed.url;
    await closed.close();
    const result = await runIngest(['run', files, '--crm-url', url, '--crm-token', 't', '--report-dir', directory]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`CRM unreachable at ${url}`);
  }, 60_000);

  it('refuses bad configuration, naming the setting', async () => {
    const result = await runIngest(['run', files, '--calls-per-minute', '0', '--report-dir', directory]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/CRM_CALLS_PER_MINUTE \(--calls-per-minute.*\): must be a whole number/);
    const missing = await runIngest(['run', join(directory, 'nothing-here')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no such file or directory: .*nothing-here/);
  }, 60_000);
});
