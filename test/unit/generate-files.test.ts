import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { tempDir } from './helpers';

describe('generateFiles', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it('writes the same bytes for the same seed, and other bytes for another', async () => {
    const [a] = await generateFiles({
      users: 300,
      transactions: 0,
      outDir: join(dir.path, 'a'),
      seed: 's1',
      badRate: 0.1,
    });
    const [b] = await generateFiles({
      users: 300,
      transactions: 0,
      outDir: join(dir.path, 'b'),
      seed: 's1',
      badRate: 0.1,
    });
    const [c] = await generateFiles({
      users: 300,
      transactions: 0,
      outDir: join(dir.path, 'c'),
      seed: 's2',
      badRate: 0.1,
    });
    expect(readFileSync(a!.path)).toEqual(readFileSync(b!.path));
    expect(readFileSync(a!.path)).not.toEqual(readFileSync(c!.path));
    expect(a!.bad).toEqual(b!.bad);
  });

  it('names files by the convention and writes every kind of bad value in turn', async () => {
    const files = await generateFiles({
      users: 400,
      transactions: 400,
      outDir: join(dir.path, 'd'),
      gzip: true,
      format: 'jsonl',
      badRate: 0.2,
      partner: 'acme',
    });
    expect(files.map((f) => f.path.split('/').pop())).toEqual([
      'users_acme_20261124_001.jsonl.gz',
      'transactions_acme_20261124_001.jsonl.gz',
    ]);
    expect(Object.keys(files[0]!.bad).sort()).toEqual([
      'country',
      'created_at',
      'customer_id',
      'email',
      'first_name',
      'last_name',
      'phone',
    ]);
    expect(Object.keys(files[1]!.bad).sort()).toEqual([
      'amount',
      'currency',
      'customer_id',
      'merchant',
      'occurred_at',
      'transaction_id',
      'type',
    ]);
    const lines = gunzipSync(readFileSync(files[1]!.path)).toString('utf8').trim().split('\n');
    expect(lines).toHaveLength(400);
    expect(Object.keys(JSON.parse(lines[0]!))).toContain('transaction_id');
  });
});

describe('ingest generate (the command)', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());
  const cli = join(__dirname, '../../bin/ingest.js');

  it('writes the files and lists them', () => {
    const out = execFileSync(
      process.execPath,
      [cli, 'generate', '--users', '20', '--transactions', '30', '--out', dir.path, '--gzip', '--seed', '9'],
      {
        encoding: 'utf8',
      },
    );
    expect(out).toContain('users_demo_20261124_001.csv.gz\tusers\t20 records\t0 bad');
    expect(readdirSync(dir.path).sort()).toEqual([
      'transactions_demo_20261124_001.csv.gz',
      'users_demo_20261124_001.csv.gz',
    ]);
  });

  it('refuses bad options with a clear message and exit status 2', () => {
    const run = spawnSync(
      process.execPath,
      [cli, 'generate', '--users', '-5', '--transactions', '1', '--out', dir.path, '--format', 'xml'],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('ingest: --users: must be a whole number >= 0; --format: must be csv or jsonl');
  });
});
