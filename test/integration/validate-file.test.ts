import { GetObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';
import Papa from 'papaparse';
import { validateFile, type Validation } from '../../lambdas/core/operations/validate-file';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { generateFiles, idOf } from '../../lambdas/local/cli/generate-files';
import { LOCAL_NAMES, startLocalPipeline, type LocalPipeline } from '../../lambdas/local/wiring/local-pipeline';
import { tempDir } from '../unit/helpers';

/**
 * Acceptance of POST /v1/validate: it gives the same verdict and messages as a real run of the same file. Each
 * file (generated with bad rows, and hand-made: a missing column, a bad email, a bad amount, a bad JSON line,
 * gzip, an unknown name, bytes that are not UTF-8, ...) is validated, then run through the whole pipeline on the
 * embedded services, and the two are compared: received, the failures map, each VALIDATION row of results.csv
 * (line and error) against the problems; a file refused as a whole, its summary's reason against the error.
 * Every record that passes validation succeeds at the CRM (the transactions' customer is in the simulator), so
 * a real run's failures are its VALIDATION failures only and the maps compare whole.
 */
const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const TRANSACTIONS_HEADER = 'transaction_id,customer_id,amount,currency,occurred_at,type,merchant';
const KNOWN_CUSTOMER = idOf('C', 0);

const HAND_MADE: Readonly<Record<string, string | Uint8Array>> = {
  'users_acme_20261124_010.csv': [
    USERS_HEADER,
    'H1,Ada,Alder,h1@example.com,,GB,2026-01-01T00:00:00Z',
    // A missing column.
    'H2,Bo,Birch,h2@example.com,,SE',
    'H3,Cy,Cedar,h3.example.com,,FR,2026-01-03T00:00:00Z',
    // A quoted value over two lines: the lines after it keep their numbers.
    '"H4","Di\nDo",Dogwood,h4@example.com,,DE,2026-01-04T00:00:00Z',
    '',
    'H5,Ed,Elm,h5@example.com,12345,DE,2026-01-05',
    'H6,,Fir,h6@example.com,,NL,2026-01-06T00:00:00Z',
  ].join('\r\n'),
  'transactions_acme_20261124_011.csv': [
    TRANSACTIONS_HEADER,
    `X1,${KNOWN_CUSTOMER},12.5,eur,2026-02-01T10:00:00Z,purchase,Shop`,
    `X2,${KNOWN_CUSTOMER},1.001,EUR,2026-02-01T11:00:00Z,,`,
    `X3,${KNOWN_CUSTOMER},"1,000.00",EUR,2026-02-01T12:00:00Z,,`,
    `X4,${KNOWN_CUSTOMER},ten,EUR,2026-02-01T13:00:00Z,,`,
    `X5,${KNOWN_CUSTOMER},-3.00,EUR,2026-02-01T14:00:00Z,refund,`,
  ].join('\n'),
  'trx_acme_20261124_012.jsonl': [
    `{"transaction_id":"J1","customer_id":"${KNOWN_CUSTOMER}","amount":7,"currency":"USD","occurred_at":"2026-02-02T10:00:00Z"}`,
    `{"transaction_id":"J2","customer_id":"${KNOWN_CUSTOMER}","amount":"7.00","currency":"USD"`,
    '',
    `{"transaction_id":"J3","customer_id":{"id":1},"amount":"7.00","currency":"USD","occurred_at":"2026-02-02T10:00:00Z"}`,
    '[1,2]',
    `{"transaction_id":"J4","customer_id":"${KNOWN_CUSTOMER}","amount":1e-400,"currency":"USD","occurred_at":"2026-02-02T10:00:00Z"}`,
  ].join('\n'),
  // Classified by its header: no name convention.
  'crm-export.csv': [USERS_HEADER, 'H7,Gil,Gum,h7@example.com,,IE,2026-01-07T00:00:00Z', 'H8,Hal,Hazel,,,US,'].join(
    '\n',
  ),
  'notes_acme.txt': 'hello\n',
  'users_acme_20261124_013.csv': Buffer.concat([
    Buffer.from(`${USERS_HEADER}\nH9,`),
    Buffer.from([0xc3, 0x28, 0xff]),
    Buffer.from(',Ivy,h9@example.com,,GB,2026-01-09T00:00:00Z\n'),
  ]),
  'users_acme_20261124_014.csv': 'customer_id,first_name,email\nH10,Jo,h10@example.com\n',
  'users_acme_20261124_015.csv.gz': `${USERS_HEADER}\nH11,Kit,Kale,h11@example.com,,GB,2026-01-11T00:00:00Z\n`,
  'users_acme_20261124_016.csv': [
    USERS_HEADER,
    'H12,Lu,Lime,h12@example.com,,GB,2026-01-12T00:00:00Z',
    'H13,"Mo"x,Moss,h13@example.com,,GB,2026-01-13T00:00:00Z',
  ].join('\n'),
  'users_acme_20261124_017.jsonl.gz': gzipSync(
    '{"customer_id":"H14","first_name":"Ned","last_name":"Nut","email":"h14@example.com","country":"gb","created_at":"2026-01-14 10:00"}\n' +
      '{"customer_id":"H15","first_name":"Oz","last_name":"Oak","email":"h15@example.com","country":"GB","created_at":"2026-01-14T25:00:00Z"}\n',
  ),
};

/** results.csv's VALIDATION rows as problems: the line and the error the report wrote. */
function validationRows(resultsCsv: string): { line: number; reason: string }[] {
  const rows = Papa.parse<Record<string, string>>(resultsCsv.trim(), { header: true }).data;
  return rows
    .filter((row) => row.outcome === 'failed' && (row.error ?? '').startsWith('VALIDATION: '))
    .map((row) => ({ line: Number(row.line), reason: row.error as string }));
}

describe('validate gives the verdict and messages of a real run', () => {
  let pipeline: LocalPipeline;
  const directory = tempDir();
  const files = new Map<string, Uint8Array>();

  beforeAll(async () => {
    const generated = [
      ...(await generateFiles({
        outDir: directory.path,
        users: 40,
        transactions: 0,
        badRate: 0.3,
        seed: 'validate',
        partner: 'acme',
        customerPrefix: 'G',
      })),
      // users: 0: every transaction is for the first customer, whom the simulator knows.
      ...(await generateFiles({
        outDir: directory.path,
        users: 0,
        transactions: 40,
        badRate: 0.3,
        seed: 'validate',
        partner: 'acme',
        format: 'jsonl',
        gzip: true,
        sequence: 2,
      })),
    ];
    for (const file of generated) files.set(basename(file.path), readFileSync(file.path));
    for (const [name, body] of Object.entries(HAND_MADE)) files.set(name, Buffer.from(body));
    pipeline = await startLocalPipeline({
      sweepMinAgeSeconds: 0,
      env: { ORDERING_WINDOW_S: '0', RETRY_LATER_DELAY_S: '1', RETRY_LATER_ATTEMPTS: '1' },
      simulator: {
        customers: [
          {
            customerId: KNOWN_CUSTOMER,
            firstName: 'Known',
            lastName: 'Customer',
            email: 'known@example.com',
            country: 'GB',
            createdAt: '2025-01-01T00:00:00Z',
          },
        ],
      },
    });
  }, 60_000);
  afterAll(async () => {
    await pipeline?.close();
    directory.remove();
  });

  it('the same received, failures, VALIDATION lines and errors; a refused file, the same reason', async () => {
    const validations = new Map<string, Validation>();
    for (const [name, body] of files) {
      validations.set(name, await validateFile({ name, body }, pipeline.settings));
    }
    for (const [name, body] of files) await pipeline.land(`acme/${name}`, body);
    const summaries = await pipeline.waitForFiles(files.size);
    const text = async (key: string) =>
      (
        await pipeline.s3.client().send(new GetObjectCommand({ Bucket: LOCAL_NAMES.archiveBucket, Key: key }))
      ).Body!.transformToString();

    const refused: string[] = [];
    for (const [name, validation] of validations) {
      const summary = summaries.find((s) => s.name === name) as FinalSummary;
      expect({ name, status: summary.status }).not.toEqual({ name, status: 'duplicate' });
      const kept = JSON.parse(await text(summary.reports.summary)) as FinalSummary;
      if ('error' in validation) {
        refused.push(name);
        expect({ name, status: kept.status, reason: kept.reason }).toEqual({
          name,
          status: 'failed',
          reason: validation.error,
        });
        if (validation.kind === 'unknown') expect(kept.kind).toBe('unknown');
        continue;
      }
      expect({ name, kind: kept.kind, received: kept.received, failures: kept.failures }).toEqual({
        name,
        kind: validation.kind,
        received: validation.received,
        failures: validation.failures,
      });
      expect({ name, succeeded: kept.succeeded, failed: kept.failed }).toEqual({
        name,
        succeeded: validation.valid,
        failed: validation.invalid,
      });
      expect({ name, problems: validationRows(await text(kept.reports.results as string)) }).toEqual({
        name,
        problems: validation.problems,
      });
    }
    // The cases meant to be refused as a whole were, and the others were read: both sides were exercised.
    expect(refused.sort()).toEqual([
      'notes_acme.txt',
      'users_acme_20261124_013.csv',
      'users_acme_20261124_014.csv',
      'users_acme_20261124_015.csv.gz',
      'users_acme_20261124_016.csv',
    ]);
    const problems = [...validations.values()].flatMap((v) => ('problems' in v ? v.problems : []));
    expect(problems.length).toBeGreaterThan(20);
  }, 120_000);
});
