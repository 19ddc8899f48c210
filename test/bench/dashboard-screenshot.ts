/**
 * `npx tsx test/bench/dashboard-screenshot.ts [out.png]`: the picture of the live dashboard in
 * docs/operations.md, taken from a real `ingest up` (its own process) in headless Chromium. Partner globex sends
 * a small users file that finishes with failures; acme a users file of 6,000 customers (600 calls at 600 a
 * minute, a minute of sending) and a transactions file that waits for it. The picture is taken once globex's file
 * is finished and acme's users file is `--at` (0.85) of the way. Default output: docs/images/dashboard.png.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SIM_INVALID_EMAIL_DOMAIN, startCrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import { finished, sftpPut, startIngest, upConnection } from '../e2e/cli';
import { launchBrowser, type PageElement } from '../support/browser';
import { numberOption } from './bench-support';

// In page functions only: they run in the browser.
declare const document: PageElement;

const OUT = resolve(
  process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'docs/images/dashboard.png',
);
const AT = numberOption('--at', 0.85);
const CALLS_PER_MINUTE = 600;

const users = (prefix: string, count: number, refused: (i: number) => boolean, invalid: (i: number) => boolean) =>
  [
    'customer_id,first_name,last_name,email,phone,country,created_at',
    ...Array.from({ length: count }, (_, i) => {
      const email = invalid(i)
        ? 'not-an-email'
        : `${prefix}${i}${refused(i) ? SIM_INVALID_EMAIL_DOMAIN : '@example.com'}`;
      return `${prefix}${i},Ada,Alder,${email},,GB,2026-01-01T00:00:00Z`;
    }),
  ].join('\n');

const transactions = (count: number) =>
  [
    'transaction_id,customer_id,amount,currency,occurred_at',
    ...Array.from({ length: count }, (_, i) => `T${i},A${i},${(10 + i / 100).toFixed(2)},EUR,2026-02-01T10:00:00Z`),
  ].join('\n');

const FILES = [
  {
    partner: 'globex',
    name: 'users_globex_20261124_001.csv',
    body: users(
      'G',
      300,
      (i) => i % 60 === 5,
      (i) => i === 17,
    ),
  },
  {
    partner: 'acme',
    name: 'users_acme_20261124_001.csv',
    body: users(
      'A',
      6000,
      (i) => i % 400 === 9,
      (i) => i % 1500 === 3,
    ),
  },
  { partner: 'acme', name: 'transactions_acme_20261124_001.csv', body: transactions(2000) },
];

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function main(): Promise<void> {
  const simulator = await startCrmSimulator({ faults: { latencyMs: 40 } });
  const reportDir = mkdtempSync(join(tmpdir(), 'dashboard-screenshot-'));
  const child = startIngest(
    [
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
      '--calls-per-minute',
      String(CALLS_PER_MINUTE),
      '--batch-size',
      '10',
    ],
    { POWERTOOLS_LOG_LEVEL: 'SILENT' },
  );
  const exited = finished(child);
  const browser = await launchBrowser();
  try {
    const connection = await upConnection(child);
    for (const file of FILES) await sftpPut(connection, file.partner, file.name, file.body);

    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${connection.api.url}/#token=${connection.api.token}`);
    const ready = () =>
      page.evaluate((at) => {
        const progress = document.querySelector('#files-in-flight tr[data-status="running"] [data-field="progress"]')
          ?.dataset.value;
        const failures = document.querySelectorAll('#recent-failures [data-failures-for]').length;
        return failures > 0 && progress !== undefined && Number(progress) >= at;
      }, AT);
    const deadline = Date.now() + 5 * 60_000;
    while (!(await ready())) {
      if (Date.now() > deadline) throw new Error('the dashboard never showed the moment to take');
      await sleep(250);
    }
    await page.screenshot({ path: OUT, fullPage: true });
    process.stdout.write(`dashboard: ${OUT}\n`);
  } finally {
    await browser.close();
    child.kill('SIGINT');
    await exited;
    await simulator.close();
    rmSync(reportDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
