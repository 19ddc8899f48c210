import { gzipSync } from 'node:zlib';
import { ENCODINGS } from '../../../lambdas/core/config';
import { MAX_PROBLEMS, validateFile, type ValidateOptions } from '../../../lambdas/core/operations/validate-file';
import { ValidationSchema } from '../../../lambdas/ops-api/contract';

/**
 * validateFile on hand-made files: the verdict of classify and the record rules, in the answer's shape. That the
 * verdict and messages are a real run's is shown against the pipeline itself (test/integration/validate-file.test.ts).
 */
const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const GOOD_USER = 'C1,Ada,Alder,ada@example.com,,GB,2026-01-01T00:00:00Z';
const all = { acceptedEncodings: [...ENCODINGS] };
const bytes = (text: string) => Buffer.from(text, 'utf8');

async function validate(name: string, body: Uint8Array, options: ValidateOptions = all) {
  const answer = await validateFile({ name, body }, options);
  expect(ValidationSchema.parse(answer)).toEqual(answer);
  return answer;
}

describe('validateFile', () => {
  it('counts a file and lists each refused record with its line and the reason the report would give', async () => {
    const file = [
      USERS_HEADER,
      GOOD_USER,
      'C2,Bo,Birch,bo.example.com,,SE,2026-01-02T00:00:00Z',
      'C3,Cy,Cedar,cy@example.com,,FR',
      '',
      'C4,Di,Dogwood,di@example.com,,XX,2026-01-04T00:00:00Z',
    ].join('\n');
    expect(await validate('users_acme_20261124_001.csv', bytes(file))).toEqual({
      kind: 'users',
      format: 'csv',
      received: 4,
      valid: 1,
      invalid: 3,
      failures: { VALIDATION: 3 },
      problems: [
        { line: 3, reason: 'VALIDATION: email: an email address' },
        { line: 4, reason: 'VALIDATION: record: 7 fields as in the header, found 6' },
        { line: 6, reason: 'VALIDATION: country: an ISO 3166-1 alpha-2 country code' },
      ],
    });
  });

  it('takes the kind from the header when the name does not say, and JSON Lines from the content', async () => {
    const jsonl = [
      '{"transaction_id":"T1","customer_id":"C1","amount":"1.005","currency":"EUR","occurred_at":"2026-02-01T10:00:00Z"}',
      'not json',
    ].join('\n');
    expect(await validate('upload', bytes(jsonl))).toEqual({
      kind: 'transactions',
      format: 'jsonl',
      received: 2,
      valid: 0,
      invalid: 2,
      failures: { VALIDATION: 2 },
      problems: [
        { line: 1, reason: 'VALIDATION: amount: a decimal with at most 2 fraction digits' },
        { line: 2, reason: 'VALIDATION: record: a JSON object on one line' },
      ],
    });
  });

  it('reads a gzip file, and answers a clean file with no failures', async () => {
    const body = gzipSync(bytes(`${USERS_HEADER}\n${GOOD_USER}\n`));
    expect(await validate('users_acme_20261124_002.csv.gz', body)).toEqual({
      kind: 'users',
      format: 'csv',
      received: 1,
      valid: 1,
      invalid: 0,
      failures: {},
      problems: [],
    });
  });

  it('an empty file has no records', async () => {
    expect(await validate('users_acme_20261124_003.csv', new Uint8Array())).toMatchObject({
      kind: 'users',
      received: 0,
      failures: {},
    });
  });

  it(`lists at most ${MAX_PROBLEMS} problems; the counts cover every record`, async () => {
    const rows = Array.from({ length: 150 }, (_, n) => `C${n},A,B,bad,,GB,2026-01-01T00:00:00Z`);
    const answer = await validate('users_acme_20261124_004.csv', bytes([USERS_HEADER, ...rows].join('\n')));
    expect(answer).toMatchObject({ received: 150, valid: 0, invalid: 150, failures: { VALIDATION: 150 } });
    expect('problems' in answer && answer.problems).toHaveLength(MAX_PROBLEMS);
    expect('problems' in answer && answer.problems[99]).toEqual({
      line: 101,
      reason: 'VALIDATION: email: an email address',
    });
  });

  it.each([
    ['an unknown kind', 'notes.txt', bytes('hello\n'), 'unknown', /^File\.UnknownKind: unknown file kind: /],
    [
      'a missing required column',
      'users_acme_20261124_005.csv',
      bytes('customer_id,first_name\nC1,Ada\n'),
      'users',
      /^File\.Unreadable: line 1: missing required columns last_name, email, country, created_at$/,
    ],
    [
      'a name that says gzip over plain bytes',
      'users_acme_20261124_006.csv.gz',
      bytes(`${USERS_HEADER}\n`),
      'users',
      /^File\.Unreadable: named \.gz but not gzip-compressed$/,
    ],
    [
      'bytes that are not UTF-8',
      'users_acme_20261124_007.csv',
      Buffer.concat([bytes(`${USERS_HEADER}\nC1,`), Buffer.from([0xff, 0xfe]), bytes(',A,a@b.co,,GB,2026-01-01\n')]),
      'users',
      /^File\.Unreadable: not UTF-8 text/,
    ],
  ])('refuses %s as a whole, with the reason a summary gives', async (_case, name, body, kind, error) => {
    expect(await validate(name, body)).toEqual({ kind, error: expect.stringMatching(error) });
  });

  it("applies the deployment's limits and encodings", async () => {
    const body = bytes(`${USERS_HEADER}\n${GOOD_USER}\n`);
    expect(await validate('users_acme_20261124_008.csv', body, { ...all, maxFileSizeBytes: 10 })).toEqual({
      kind: 'users',
      error: `File.TooLarge: file is ${body.byteLength} bytes, over the 10-byte limit`,
    });
    expect(
      await validate('users_acme_20261124_009.csv.gz', gzipSync(body), { acceptedEncodings: ['csv', 'jsonl'] }),
    ).toEqual({
      kind: 'users',
      error: 'File.EncodingNotAccepted: gzip files are not accepted (ACCEPTED_ENCODINGS)',
    });
    expect(
      await validate('users_acme_20261124_010.csv.gz', gzipSync(body), { ...all, maxDecompressedBytes: 20 }),
    ).toEqual({ kind: 'users', error: 'File.TooLarge: decompresses to more than 20 bytes (MAX_DECOMPRESSED_BYTES)' });
  });
});
