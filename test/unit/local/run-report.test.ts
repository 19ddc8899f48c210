import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { generateFiles } from '../../../lambdas/local/cli/generate-files';
import { inputFiles } from '../../../lambdas/local/cli/ingest-commands';
import { failuresText, fileResult, runReport, summaryTable } from '../../../lambdas/local/cli/run-report';

const users = fileResult({
  name: 'users_acme_20261124_001.csv',
  sha256: 'a'.repeat(64),
  kind: 'users',
  status: 'partial',
  received: 1200,
  succeeded: 1190,
  failed: 10,
  failures: { VALIDATION: 2, '3217': 7, CONFLICTING_PROFILE: 1 },
});
const unknown = fileResult({
  name: 'notes.txt',
  sha256: 'b'.repeat(64),
  kind: 'unknown',
  status: 'failed',
  received: 0,
  succeeded: 0,
  failed: 0,
  failures: {},
  reason: 'File.UnknownKind: unknown file kind',
});

describe('the run report', () => {
  it('adds up the files and takes the call counts as given', () => {
    const report = runReport([users, unknown], { calls: 13, throttled: 0 });
    expect(report.totals).toEqual({
      files: 2,
      received: 1200,
      succeeded: 1190,
      failed: 10,
      apiCalls: 13,
      throttled: 0,
    });
    expect(report).not.toHaveProperty('pending');
    expect(Object.keys(report.files[0]!)).toEqual([
      'name',
      'sha256',
      'kind',
      'status',
      'received',
      'succeeded',
      'failed',
      'failures',
    ]);
    expect(report.files[1]!.reason).toBe('File.UnknownKind: unknown file kind');
  });

  it('lists what did not finish, and why', () => {
    const report = runReport(
      [users],
      { calls: 1, throttled: 0 },
      { pending: ['trx.csv'], error: 'CRM credentials rejected' },
    );
    expect(report.pending).toEqual(['trx.csv']);
    expect(summaryTable(report)).toMatch(/^trx\.csv\s+pending$/m);
  });

  it('prints failures, the most frequent first, and a table with numbers aligned right', () => {
    expect(failuresText(users.failures)).toBe('3217×7 VALIDATION×2 CONFLICTING_PROFILE×1');
    const table = summaryTable(runReport([users, unknown], { calls: 13, throttled: 0 })).split('\n');
    expect(table[0]).toMatch(/^file\s+kind\s+status\s+received\s+succeeded\s+failed\s+failures \/ reason$/);
    expect(table[2]).toMatch(/^users_acme_20261124_001\.csv\s+users\s+partial\s+1,200\s+1,190\s+10\s+3217×7/);
    expect(table[3]).toMatch(/notes\.txt\s+unknown\s+failed\s+0\s+0\s+0\s+File\.UnknownKind/);
    expect(table.at(-1)).toBe(
      '2 files: 1,200 records received, 1,190 succeeded, 10 failed. CRM calls: 13, throttled: 0.',
    );
  });
});

describe('the command inputs', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-inputs-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('takes files as given and directories in name order, skipping hidden files', () => {
    mkdirSync(join(directory, 'in'));
    for (const name of ['users_b.csv', 'transactions_a.csv', '.partial'])
      writeFileSync(join(directory, 'in', name), 'x');
    writeFileSync(join(directory, 'single.csv'), 'x');
    expect(inputFiles([join(directory, 'single.csv'), join(directory, 'in')])).toEqual([
      join(directory, 'single.csv'),
      join(directory, 'in', 'transactions_a.csv'),
      join(directory, 'in', 'users_b.csv'),
    ]);
  });

  it("takes a directory's users files first, so customers go before their transactions", async () => {
    const out = join(directory, 'generated');
    const files = await generateFiles({ users: 3, transactions: 5, outDir: out });
    writeFileSync(join(out, 'customers_demo_20261124_002.csv'), 'x');
    expect(files.map((file) => basename(file.path))).toEqual([
      'users_demo_20261124_001.csv',
      'transactions_demo_20261124_001.csv',
    ]);
    expect(inputFiles([out]).map((file) => basename(file))).toEqual([
      'customers_demo_20261124_002.csv',
      'users_demo_20261124_001.csv',
      'transactions_demo_20261124_001.csv',
    ]);
  });

  it('refuses two files of the same name, and paths that are not there', () => {
    mkdirSync(join(directory, 'other'));
    writeFileSync(join(directory, 'other', 'single.csv'), 'y');
    expect(() => inputFiles([join(directory, 'single.csv'), join(directory, 'other')])).toThrow(
      /two files are named single\.csv/,
    );
    expect(() => inputFiles([join(directory, 'missing')])).toThrow(/no such file or directory: .*missing/);
  });
});
