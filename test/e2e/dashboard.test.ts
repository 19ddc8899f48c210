import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import type { z } from 'zod';
import { dashboardAsset } from '../../lambdas/local/api/dashboard-assets';
import type { FileResult } from '../../lambdas/local/cli/run-report';
import {
  SIM_INVALID_EMAIL_DOMAIN,
  startCrmSimulator,
  type CrmSimulator,
} from '../../lambdas/local/crm-simulator/crm-simulator';
import {
  ErrorBodySchema,
  FileDetailSchema,
  FileListSchema,
  FileRecordsSchema,
  StatsSchema,
} from '../../lambdas/ops-api/contract';
import {
  NO_BROWSER_REASON,
  chromiumPath,
  launchBrowser,
  watchProblems,
  type PageElement,
  type PageStorage,
} from '../support/browser';
import { alive, finished, readLines, sftpPut, startIngest, upConnection } from './cli';

// In page functions only: they run in the browser.
declare const document: PageElement;
declare const sessionStorage: PageStorage;

type FileView = z.infer<typeof FileListSchema>['files'][number];
type Stats = z.infer<typeof StatsSchema>;

if (!chromiumPath) process.stderr.write(`Dashboard tests not run: ${NO_BROWSER_REASON}\n`);
const describeWithBrowser = chromiumPath ? describe : describe.skip;
const withBrowser = (title: string) => (chromiumPath ? title : `${title} (skipped: ${NO_BROWSER_REASON})`);

/** lambdas/local/api/ops-server.ts's policy for the page: anything it blocks is a console error. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

const RUNNING_ID = 'a'.repeat(64);
const FINISHED_ID = 'b'.repeat(64);
const NO_REPORTS = { summary: null, results: null, failedRecords: null };

const runningFile = (succeeded: number): FileView => ({
  fileId: RUNNING_ID,
  name: 'users_acme_20261124_001.csv',
  partner: 'acme',
  kind: 'users',
  status: 'running',
  phase: 'ADD',
  waitingFor: null,
  received: 1000,
  succeeded,
  failed: 0,
  pending: 1000 - succeeded,
  failures: {},
  calls: { made: succeeded / 10, remaining: 100 - succeeded / 10 },
  progress: succeeded / 1000,
  etaSeconds: 125,
  landedAt: '2026-11-24T10:00:00.000Z',
  startedAt: '2026-11-24T10:00:01.000Z',
  finishedAt: null,
  reports: NO_REPORTS,
});

const FINISHED: FileView = {
  fileId: FINISHED_ID,
  name: 'transactions_acme_20261124_001.csv',
  partner: 'acme',
  kind: 'transactions',
  status: 'partial',
  phase: null,
  waitingFor: null,
  received: 40,
  succeeded: 37,
  failed: 3,
  pending: 0,
  failures: { '4404': 2, VALIDATION: 1 },
  calls: { made: 3, remaining: 0 },
  progress: 1,
  etaSeconds: null,
  landedAt: '2026-11-24T09:00:00.000Z',
  startedAt: '2026-11-24T09:00:01.000Z',
  finishedAt: '2026-11-24T09:05:00.000Z',
  reports: { summary: '/r/summary.json', results: '/r/results.csv', failedRecords: '/r/failed.csv' },
};

const STATS: Stats = {
  limitPerMinute: 600,
  callsPerMinute: [0, 0, 120, 480, 590],
  recordsPerMinute: { succeeded: [0, 0, 1200, 4790, 5900], failed: [0, 0, 2, 1, 0] },
  latencyMs: { p50: 42, p99: 180.4 },
  errorsByCode: { '4404': 2, VALIDATION: 1 },
  queue: { waiting: 12, inFlight: 3 },
  files: { running: 1, waiting: 0, paused: 0 },
};

/**
 * A stand-in for the operations API with fixed answers that match its schemas (each is parsed before it is sent),
 * serving the page through dashboardAsset() as `ingest up` does: for what the real pipeline cannot be made to do
 * on demand (answer 500, change a file's counts at will).
 */
async function startStubApi(token: string) {
  const state = {
    files: [runningFile(300), FINISHED],
    stats: STATS,
    failure: undefined as { status: number; code: string; message: string } | undefined,
    requests: [] as string[],
  };
  const json = (status: number, body: unknown) => ({ status, body: JSON.stringify(body) });
  const answer = (path: string, query: URLSearchParams) => {
    if (path === '/v1/files') return json(200, FileListSchema.parse({ files: state.files, next: null }));
    if (path === '/v1/stats') return json(200, StatsSchema.parse(state.stats));
    const records = /^\/v1\/files\/([0-9a-f]{64})\/records$/.exec(path);
    if (records && query.get('outcome') === 'failed') {
      return json(
        200,
        FileRecordsSchema.parse({
          records: [
            {
              line: 4,
              recordId: 'T4',
              operations: ['ADD_TX'],
              outcome: 'failed',
              code: '4404',
              error: 'unknown customer',
              attempts: 3,
            },
            {
              line: 9,
              recordId: 'T9',
              operations: ['ADD_TX'],
              outcome: 'failed',
              code: 'VALIDATION',
              error: 'amount: not a number',
              attempts: 0,
            },
          ],
          next: null,
        }),
      );
    }
    const detail = /^\/v1\/files\/([0-9a-f]{64})$/.exec(path);
    const file = detail && state.files.find((candidate) => candidate.fileId === detail[1]);
    if (file) {
      return json(
        200,
        FileDetailSchema.parse({ ...file, phases: [{ phase: 'ADD', batches: 100, answered: 30, calls: 30 }] }),
      );
    }
    return json(404, ErrorBodySchema.parse({ error: { code: 'NotFound', message: `no route ${path}` } }));
  };
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const asset = dashboardAsset(url.pathname);
    if (asset) {
      response.writeHead(200, { 'content-type': asset.contentType, 'content-security-policy': CSP });
      response.end(asset.body);
      return;
    }
    state.requests.push(`${url.pathname}${url.search}`);
    const reply = (status: number, body: string) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(body);
    if (!url.pathname.startsWith('/v1/')) return reply(404, '{}');
    if (request.headers.authorization !== `Bearer ${token}`) {
      return reply(401, JSON.stringify({ error: { code: 'Unauthorized', message: 'missing or wrong token' } }));
    }
    if (state.failure) {
      const { status, code, message } = state.failure;
      return reply(status, JSON.stringify({ error: { code, message } }));
    }
    const { status, body } = answer(url.pathname, url.searchParams);
    reply(status, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The text and raw value of a file row's field. */
const field = (page: Page, fileId: string, name: string) =>
  page.$eval(`[data-file-id="${fileId}"] [data-field="${name}"]`, (cell) => ({
    text: cell.textContent ?? '',
    value: (cell as PageElement).dataset.value,
  }));

describeWithBrowser('the live dashboard (against a stand-in API)', () => {
  const TOKEN = 'stub-token-123';
  let browser: Browser;
  let api: Awaited<ReturnType<typeof startStubApi>>;

  beforeAll(async () => {
    [browser, api] = await Promise.all([launchBrowser(), startStubApi(TOKEN)]);
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  it(
    withBrowser('shows files, charts, latency, errors and failures, takes the token from the address, refreshes'),
    async () => {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await page.goto(`${api.url}/#token=${TOKEN}`);
      await page.waitForSelector(`#files-in-flight [data-file-id="${RUNNING_ID}"]`);

      // The token leaves the address bar and stays for the tab.
      expect(page.url()).toBe(`${api.url}/`);
      expect(await page.evaluate(() => sessionStorage.getItem('ingest.dashboard.token'))).toBe(TOKEN);

      expect(await field(page, RUNNING_ID, 'progress')).toMatchObject({ text: '30%', value: '0.3' });
      expect(await field(page, RUNNING_ID, 'succeeded')).toMatchObject({ value: '300' });
      expect(await field(page, RUNNING_ID, 'pending')).toMatchObject({ value: '700' });
      expect(await field(page, RUNNING_ID, 'eta')).toMatchObject({ text: '2:05' });
      expect(await field(page, RUNNING_ID, 'phase')).toMatchObject({ text: 'ADD' });
      expect(await page.$(`#files-in-flight [data-file-id="${FINISHED_ID}"]`)).toBeNull();
      expect(await field(page, FINISHED_ID, 'status')).toMatchObject({ text: 'partial' });
      expect(await field(page, FINISHED_ID, 'failed')).toMatchObject({ value: '3' });
      expect((await field(page, FINISHED_ID, 'failures')).text).toBe('4404 ×2, VALIDATION ×1');

      expect(await page.$eval('#latency-p50', (node) => node.textContent)).toBe('42 ms');
      expect(await page.$eval('#latency-p99', (node) => node.textContent)).toBe('180 ms');
      expect(await page.$eval('#calls-last-minute', (node) => node.textContent)).toBe('480');
      expect(await page.$eval('#calls-this-minute', (node) => node.textContent)).toBe('590');
      expect(await page.$eval('#limit-per-minute', (node) => node.textContent)).toBe('600');
      const chart = (id: string) =>
        page.$eval(id, (node) => ({
          points: (node as PageElement).dataset.points,
          total: (node as PageElement).dataset.total,
          canvas: node.querySelector('canvas') !== null,
        }));
      expect(await chart('#calls-chart')).toEqual({ points: '5', total: '1190', canvas: true });
      expect(await chart('#records-chart')).toEqual({ points: '5', total: '11890', canvas: true });
      expect(await page.$$eval('#errors-by-code tbody tr', (rows) => rows.map((row) => row.dataset.code))).toEqual([
        '4404',
        'VALIDATION',
      ]);
      await page.waitForSelector(`[data-failures-for="${FINISHED_ID}"] tr[data-line="9"]`);
      expect(api.state.requests).toContain(`/v1/files/${FINISHED_ID}/records?outcome=failed&limit=5`);

      // Refreshed within 2 s of a change.
      api.state.files = [runningFile(650), FINISHED];
      const changedAt = Date.now();
      await page.waitForFunction(
        (id) => document.querySelector(`[data-file-id="${id}"] [data-field="succeeded"]`)?.textContent === '650',
        { timeout: 5000 },
        RUNNING_ID,
      );
      expect(Date.now() - changedAt).toBeLessThan(2500);

      // A file's detail: its phases.
      await page.click(`#files-in-flight [data-file-id="${RUNNING_ID}"] [data-field="name"] button`);
      await page.waitForSelector('#detail-phases tr[data-phase="ADD"]');
      expect(await page.$eval('#detail-title', (node) => node.textContent)).toBe('users_acme_20261124_001.csv');

      // The file finishes: it moves from the files in flight to the finished ones, with its final counts.
      api.state.files = [
        {
          ...runningFile(1000),
          status: 'succeeded',
          phase: null,
          etaSeconds: null,
          finishedAt: '2026-11-24T10:10:00.000Z',
        },
        FINISHED,
      ];
      await page.waitForSelector(`#files-finished [data-file-id="${RUNNING_ID}"]`, { timeout: 5000 });
      expect(await page.$(`#files-in-flight [data-file-id="${RUNNING_ID}"]`)).toBeNull();
      expect(await page.$eval('#in-flight-empty', (node) => (node as PageElement).hidden)).toBe(false);
      expect(await page.$$eval('#files-finished tbody tr', (rows) => rows.map((row) => row.dataset.fileId))).toEqual([
        RUNNING_ID,
        FINISHED_ID,
      ]);
      expect(await field(page, RUNNING_ID, 'succeeded')).toMatchObject({ value: '1000' });

      expect(problems.errors).toEqual([]);
      await page.close();
    },
    60_000,
  );

  it(withBrowser('shows an API error on the page, not in the console, and recovers'), async () => {
    api.state.files = [runningFile(300), FINISHED];
    const page = await browser.newPage();
    // The browser notes the 503 answer itself; the page must add nothing.
    const problems = watchProblems(page, [503]);
    await page.goto(`${api.url}/#token=${TOKEN}`);
    await page.waitForSelector(`[data-file-id="${RUNNING_ID}"]`);
    api.state.failure = { status: 503, code: 'Unavailable', message: 'the ledger did not answer' };
    await page.waitForSelector('#error:not([hidden])', { timeout: 5000 });
    expect(await page.$eval('#error', (node) => node.textContent)).toBe('Unavailable: the ledger did not answer');
    // The last data stays on screen meanwhile.
    expect(await page.$(`[data-file-id="${RUNNING_ID}"]`)).not.toBeNull();
    api.state.failure = undefined;
    await page.waitForSelector('#error', { hidden: true, timeout: 5000 });
    expect(problems.errors).toEqual([]);
    await page.close();
  });

  it(withBrowser('asks for the token when it has none or a wrong one, and goes on with the one given'), async () => {
    const page = await browser.newPage();
    const problems = watchProblems(page, [401]);
    await page.goto(`${api.url}/`);
    await page.waitForSelector('#token-form:not([hidden])');
    expect(await page.$eval('#dashboard', (node) => (node as PageElement).hidden)).toBe(true);

    await page.goto(`${api.url}/#token=wrong`);
    await page.reload();
    await page.waitForSelector('#token-form:not([hidden])');
    expect(await page.$eval('#token-reason', (node) => node.textContent)).toMatch(/refused/);
    expect(await page.evaluate(() => sessionStorage.getItem('ingest.dashboard.token'))).toBeNull();

    await page.type('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector(`[data-file-id="${RUNNING_ID}"]`);
    expect(await page.$eval('#token-form', (node) => (node as PageElement).hidden)).toBe(true);
    expect(problems.errors).toEqual([]);
    await page.close();
  });
});

const NAME = 'users_acme_20261124_001.csv';
/**
 * 600 customers, of which the CRM refuses 4 (3217: the simulator's invalid email domain) and validation 2:
 * 60 calls of 10 at 240 calls a minute, about 15 s of sending to watch.
 */
const USERS = [
  'customer_id,first_name,last_name,email,phone,country,created_at',
  ...Array.from({ length: 600 }, (_, i) => {
    const email =
      i % 150 === 7
        ? `d${i}${SIM_INVALID_EMAIL_DOMAIN}`
        : i === 300 || i === 301
          ? 'not-an-email'
          : `d${i}@example.com`;
    return `D${i},Ada,Alder,${email},,GB,2026-01-01T00:00:00Z`;
  }),
].join('\n');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The page during a real `ingest up`: a file uploaded over SFTP is watched from its first calls to its summary,
 * in headless Chromium, through the API `ingest up` serves with the token it printed.
 */
describeWithBrowser('the live dashboard during ingest up', () => {
  let simulator: CrmSimulator;
  let browser: Browser;
  const reportDir = mkdtempSync(join(tmpdir(), 'dashboard-'));

  beforeAll(async () => {
    [simulator, browser] = await Promise.all([startCrmSimulator(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await simulator?.close();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it(
    withBrowser("shows a file's progress while it sends, its final counts once finished, calls, records and latency"),
    async () => {
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
        '240',
        '--batch-size',
        '10',
      ]);
      const exited = finished(child);
      try {
        const connection = await upConnection(child);
        expect(connection.api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 1000 });
        const problems = watchProblems(page);
        await page.goto(`${connection.api.url}/#token=${connection.api.token}`);
        await page.waitForSelector('#dashboard:not([hidden])');
        expect(page.url()).toBe(`${connection.api.url}/`);

        const results = readLines(child, (lines) => lines.length >= 1, 120_000);
        results.catch(() => undefined);
        await sftpPut(connection, 'acme', NAME, USERS);

        // Its row (the file id is the SHA-256 of its bytes), looked at as a person would until it is finished.
        const fileId = createHash('sha256').update(USERS).digest('hex');
        await page.waitForSelector(`[data-file-id="${fileId}"]`, { timeout: 30_000 });
        const progressSeen: number[] = [];
        for (let i = 0; i < 300 && !(await page.$(`#files-finished [data-file-id="${fileId}"]`)); i++) {
          const progress = await page
            .$eval(`#files-in-flight [data-file-id="${fileId}"] [data-field="progress"]`, (cell) =>
              Number((cell as PageElement).dataset.value),
            )
            .catch(() => undefined);
          if (progress !== undefined) progressSeen.push(progress);
          await sleep(250);
        }
        expect(progressSeen.some((progress) => progress > 0 && progress < 1)).toBe(true);

        const [line] = await results;
        const summary = JSON.parse(line as string) as FileResult;
        expect(summary).toMatchObject({ name: NAME, status: 'partial', received: 600 });
        for (const name of ['received', 'succeeded', 'failed'] as const) {
          expect(Number((await field(page, fileId, name)).value)).toBe(summary[name]);
        }
        expect((await field(page, fileId, 'status')).text).toBe(summary.status);

        // The charts have data; latency is shown.
        await page.waitForFunction(() => Number(document.querySelector('#calls-chart')?.dataset.total) >= 60, {
          timeout: 5000,
        });
        expect(Number(await page.$eval('#records-chart', (node) => (node as PageElement).dataset.total))).toBe(
          summary.succeeded,
        );
        expect(Number(await page.$eval('#latency-p50', (node) => (node as PageElement).dataset.value))).toBeGreaterThan(
          0,
        );
        expect(await page.$eval('#latency-p50', (node) => node.textContent)).toMatch(/^\d[\d,]* ms$/);
        expect(await page.$eval('#limit-per-minute', (node) => node.textContent)).toBe('240');

        // Its first failed records, in line order.
        await page.waitForSelector(`[data-failures-for="${fileId}"] tbody tr`);
        expect(
          await page.$$eval(`[data-failures-for="${fileId}"] tbody tr`, (rows) =>
            rows.map((tr) => Number(tr.dataset.line)),
          ),
        ).toEqual([9, 159, 302, 303, 309]);
        expect(problems.errors).toEqual([]);
        await page.close();

        // A wrong token: the form, and nothing in the console but the browser's note of the 401.
        const wrong = await browser.newPage();
        const wrongProblems = watchProblems(wrong, [401]);
        await wrong.goto(`${connection.api.url}/#token=not-the-token`);
        await wrong.waitForSelector('#token-form:not([hidden])');
        expect(await wrong.$eval('#dashboard', (node) => (node as PageElement).hidden)).toBe(true);
        expect(wrongProblems.errors).toEqual([]);
        await wrong.close();

        child.kill('SIGINT');
        expect((await exited).code).toBe(0);
      } finally {
        if (alive(child.pid!)) child.kill('SIGKILL');
      }
    },
    180_000,
  );
});
