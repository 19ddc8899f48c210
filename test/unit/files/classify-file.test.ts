import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { classifyFile, MAX_FILE_NAME_BYTES, parseFileName } from '../../../lambdas/core/files/classify-file';
import { readHead } from '../../../lambdas/core/files/file-encoding';

describe('classifyFile', () => {
  it('takes metadata first, then the tag, then the name, then the header', () => {
    const head = 'transaction_id,customer_id,amount\n';
    expect(
      classifyFile({
        name: 'users_a_20261124.csv',
        metadata: { 'file-type': 'Transactions' },
        tags: { 'file-type': 'users' },
        head,
      }),
    ).toEqual({
      kind: 'transactions',
      by: 'metadata',
    });
    expect(
      classifyFile({
        name: 'trx_a_20261124.csv',
        metadata: { 'file-type': 'nonsense' },
        tags: { 'file-type': 'users' },
        head,
      }),
    ).toEqual({
      kind: 'users',
      by: 'tag',
    });
    expect(classifyFile({ name: 'in/acme/users_a_20261124.csv', head })).toEqual({ kind: 'users', by: 'name' });
    expect(classifyFile({ name: 'upload.csv', head })).toEqual({ kind: 'transactions', by: 'header' });
  });

  it.each([
    ['users_acme_20261124T0300_001.csv.gz', 'users'],
    ['CUSTOMERS_acme_20261124.JSONL', 'users'],
    ['transactions_acme-eu_20261124T030000.ndjson', 'transactions'],
    ['trx_big_partner_20261124_12.csv', 'transactions'],
  ])('classifies %s by name as %s', (name, kind) => expect(classifyFile({ name })).toEqual({ kind, by: 'name' }));

  it.each([
    'users_acme_2026112.csv',
    'orders_acme_20261124.csv',
    'users_acme_20261124.xlsx',
    'users-acme-20261124.csv',
  ])('does not take %s by name', (name) => expect(parseFileName(name)).toBeUndefined());

  it('reads the parts of a partner file name', () => {
    expect(parseFileName('trx_acme_corp_20261124T0300_007.csv.gz')).toEqual({
      kind: 'transactions',
      partner: 'acme_corp',
      date: '20261124',
      sequence: 7,
    });
  });

  it.each([
    [' Customer_ID , EMAIL ,first_name\n', 'users'],
    ['"transaction_id","amount"\r\n', 'transactions'],
    ['\n{"customer_id":"C1","email":"a@b.c"}\n', 'users'],
    ['{"transaction_id":"T1","amount":"1.00","customer_id":"C1","email":"x"}', 'transactions'],
  ])('sniffs the header %j as %s', (head, kind) =>
    expect(classifyFile({ name: 'upload', head })).toEqual({ kind, by: 'header' }),
  );

  it('calls a file unknown, with the reason, when nothing matches', () => {
    const result = classifyFile({ name: 'report.pdf', head: 'customer_id,amount\n' });
    expect(result.kind).toBe('unknown');
    expect(result).toHaveProperty('reason', expect.stringContaining('unknown file kind'));
  });

  it('refuses a name longer than the pipeline can derive keys from, whatever else says the kind', () => {
    const name = `users_acme_20261124_${'é'.repeat(90)}.csv`; // 2 bytes a letter in UTF-8: 204 bytes
    expect(classifyFile({ name: `incoming/acme/${name}`, metadata: { 'file-type': 'users' } })).toEqual({
      kind: 'unknown',
      reason: `file name too long: 204 bytes, at most ${MAX_FILE_NAME_BYTES}`,
    });
    const longest = `users_${'a'.repeat(MAX_FILE_NAME_BYTES - 23)}_20261124_001.csv`;
    expect(Buffer.byteLength(longest)).toBe(MAX_FILE_NAME_BYTES);
    expect(classifyFile({ name: longest })).toEqual({ kind: 'users', by: 'name' });
  });

  it('reads the head of a gzip file from only its first bytes', async () => {
    const body = `customer_id,email\n${'C1,a@b.c\n'.repeat(20000)}`;
    const gz = gzipSync(body);
    const head = await readHead(Readable.from([gz.subarray(0, 1024)]), 100);
    expect(head).toBe(body.slice(0, 100));
    expect(classifyFile({ name: 'upload.gz', head })).toEqual({ kind: 'users', by: 'header' });
  });
});
