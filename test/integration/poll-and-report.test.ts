import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PollSourceSchema } from '../../lambdas/core/polling/poll-source';
import { partnerSummary } from '../../lambdas/core/workflow/deliver-reports';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { startFolderSftp } from '../../lambdas/local/services/folder-sftp';
import { startLocalPipeline, type LocalPipeline } from '../../lambdas/local/wiring/local-pipeline';
import { newPassword } from '../../lambdas/local/services/local-sftp';
import type { EmbeddedSftpServer } from '../../lambdas/local/services/sftp-server';
import { freePort } from '../support/openssh';

const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  'C1,Ada,Lovelace,ada@example.com,,GB,2026-01-01T00:00:00Z',
  'C2,Bob,,not-an-email,,US,2026-01-02T00:00:00Z',
].join('\n');

/**
 * A partner who exposes their own SFTP server: the poll-source handler collects from it on the embedded
 * services (its credentials served as its Secrets Manager secret), the workflow processes the file, and
 * deliver-reports uploads the summary and failed records into the source's results folder.
 */
describe('collecting from a partner server, and reports back to it', () => {
  let pipeline: LocalPipeline;
  let server: EmbeddedSftpServer | undefined;
  let root: string;
  let port: number;
  const password = newPassword();
  // The handlers' logs and EMF metrics, as CloudWatch would receive them.
  const output = new PassThrough();
  let emittedText = '';
  output.on('data', (chunk: Buffer) => (emittedText += chunk.toString()));
  const emitted = () => emittedText;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'partner-'));
    mkdirSync(join(root, 'outbox'));
    port = await freePort();
    const source = PollSourceSchema.parse({
      name: 'acme-sftp',
      partner: 'acme',
      host: '127.0.0.1',
      port,
      username: 'crm-collector',
      remoteDir: '/outbox',
      pattern: '*.csv',
      resultsDir: '/results',
    });
    pipeline = await startLocalPipeline({
      telemetry: { output, logLevel: 'INFO' },
      sources: [{ source, credentials: { password } }],
    });
  });
  afterAll(async () => {
    await server?.close();
    await pipeline?.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    emittedText = '';
  });

  it('an unreachable source fails its poll with an alarmable PollFailed metric, and the next poll collects', async () => {
    writeFileSync(join(root, 'outbox', 'users_acme_20261124_001.csv'), USERS);
    const down = await pipeline.poll('acme-sftp');
    expect(down).toMatchObject({ status: 'failed', reason: 'Source.Unreachable' });
    const metrics = emitted();
    expect(metrics).toMatch(/"PollFailed":1\b/);
    expect(metrics).toContain('"Source":"acme-sftp"');
    // The log line operators are sent to says why, with the source's address.
    const logged = metrics
      .split('\n')
      .filter((line) => line.includes('source not polled'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        source: 'acme-sftp',
        reason: 'Source.Unreachable',
        detail: expect.stringContaining(`127.0.0.1:${port}`),
      }),
    ]);
    expect(logged[0]?.detail).toBe(down.status === 'failed' ? down.message : undefined);

    server = await startFolderSftp({ root, users: [{ name: 'crm-collector', password }], port });
    expect(await pipeline.poll('acme-sftp')).toMatchObject({ status: 'polled', waiting: 1, collected: [] });
    expect(await pipeline.poll('acme-sftp')).toMatchObject({
      status: 'polled',
      collected: [{ key: 'incoming/acme/users_acme_20261124_001.csv' }],
    });
    expect(emitted()).toMatch(/"PollFailed":0\b/);
    expect(emitted()).toMatch(/"FilesCollected":1\b/);
    expect(readdirSync(join(root, 'outbox'))).toEqual(['processed']);
  });

  it('the summary and the failed records appear in the source results folder', async () => {
    const [summary] = (await pipeline.waitForFiles(1)) as [FinalSummary];
    expect(summary).toMatchObject({ name: 'users_acme_20261124_001.csv', status: 'partial', received: 2, failed: 1 });
    const folder = join(root, 'results', 'users_acme_20261124_001.csv', summary.sha256.slice(0, 12));
    expect(readdirSync(folder).sort()).toEqual(['summary.json', 'users_acme_20261124_001.failed.csv']);
    expect(JSON.parse(readFileSync(join(folder, 'summary.json'), 'utf8'))).toEqual(partnerSummary(summary));
    const failed = readFileSync(join(folder, 'users_acme_20261124_001.failed.csv'), 'utf8').trim().split('\n');
    expect(failed).toHaveLength(2);
    expect(failed[1]).toMatch(/^C2,Bob,,not-an-email,.*VALIDATION/);
    expect(pipeline.deliveries).toEqual([
      {
        destination: 'source',
        source: 'acme-sftp',
        files: expect.arrayContaining([expect.stringContaining('/results/')]),
      },
    ]);
  });
});
