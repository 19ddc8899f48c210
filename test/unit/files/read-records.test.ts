import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeText, MAX_TEXT_CHUNK } from '../../../lambdas/core/files/file-encoding';
import { readRecords, type SourceRecord } from '../../../lambdas/core/files/read-records';
import {
  NESTED_JSON_RULE,
  RefusedValue,
  requiredColumns,
  UNPAIRED_SURROGATE_RULE,
} from '../../../lambdas/core/files/record-schemas';
import { chunksOf, collect, tempDir } from '../helpers';

const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';
const read = (name: string, bytes: Uint8Array | string, chunkSize?: number) =>
  collect(readRecords(chunksOf(bytes, chunkSize), { name, requiredColumns: requiredColumns('users') }));
const summary = (records: SourceRecord[]) => records.map((r) => [r.line, r.fields.customer_id, r.fields.last_name]);

describe('readRecords: CSV', () => {
  it('reads values by trimmed, case-insensitive header in any column order, ignoring unknown columns', async () => {
    const csv =
      ' Email ,CUSTOMER_ID,extra,last_name,First_Name,country,created_at,phone\n' +
      'a@example.com,C1,x,Alder,Ada,GB,2026-01-01T00:00:00Z,\n';
    const [record] = await read('users.csv', csv);
    expect(record).toEqual({
      line: 2,
      fields: {
        email: 'a@example.com',
        customer_id: 'C1',
        extra: 'x',
        last_name: 'Alder',
        first_name: 'Ada',
        country: 'GB',
        created_at: '2026-01-01T00:00:00Z',
        phone: '',
      },
    });
  });

  it('drops a UTF-8 BOM, reads CRLF, and keeps quoted commas, quotes and newlines, with the line each record starts on', async () => {
    const csv =
      '\uFEFF' +
      [
        USERS_HEADER,
        'C1,Ada,"Maple, Jr.",a@example.com,,GB,2026-01-01T00:00:00Z',
        'C2,Ben,"O""Hazel",b@example.com,,GB,2026-01-01T00:00:00Z',
        'C3,Eve,"two\r\nlines",c@example.com,,GB,2026-01-01T00:00:00Z',
        'C4,Jun,Yew,d@example.com,,GB,"2026-01-01T00:00:00Z"',
      ].join('\r\n') +
      '\r\n';
    const expected = [
      [2, 'C1', 'Maple, Jr.'],
      [3, 'C2', 'O"Hazel'],
      [4, 'C3', 'two\r\nlines'],
      [6, 'C4', 'Yew'],
    ];
    expect(summary(await read('users.csv', csv))).toEqual(expected);
    // Every chunk boundary (inside a quote, between \r and \n, inside the BOM) gives the same records.
    expect(summary(await read('users.csv', csv, 1))).toEqual(expected);
    expect(summary(await read('users.csv', csv, 7))).toEqual(expected);
  });

  it('reads multi-byte UTF-8 split across chunks', async () => {
    const csv = `${USERS_HEADER}\nC1,Chloé,Ünïcode 名前,a@example.com,,FR,2026-01-01T00:00:00Z\n`;
    const [record] = await read('users.csv', csv, 1);
    expect(record?.fields.first_name).toBe('Chloé');
    expect(record?.fields.last_name).toBe('Ünïcode 名前');
  });

  it('skips blank lines but counts them in line numbers', async () => {
    const csv = `${USERS_HEADER}\n\nC1,Ada,Alder,a@example.com,,GB,2026-01-01T00:00:00Z\n   \nC2,Ben,Birch,b@example.com,,GB,2026-01-01T00:00:00Z`;
    expect(summary(await read('users.csv', csv))).toEqual([
      [3, 'C1', 'Alder'],
      [5, 'C2', 'Birch'],
    ]);
  });

  it('takes __proto__ and constructor as columns like any other', async () => {
    const [record] = await read('users.csv', `${USERS_HEADER},__proto__,constructor\nC1,A,B,a@b.co,,GB,x,p,c\n`);
    expect(Object.getPrototypeOf(record!.fields)).toBe(Object.prototype);
    expect(record!.fields).toMatchObject({ customer_id: 'C1', ['__proto__']: 'p', constructor: 'c' });
  });

  it('marks a row with the wrong number of fields as a bad record and goes on', async () => {
    const csv = `${USERS_HEADER}\nC1,Ada\nC2,Ben,Birch,b@example.com,,GB,2026-01-01T00:00:00Z\n`;
    const records = await read('users.csv', csv);
    expect(records[0]?.problem).toEqual({ column: 'record', rule: '7 fields as in the header, found 2' });
    expect(records[1]).toMatchObject({ line: 3, fields: { customer_id: 'C2' } });
    expect(records[1]?.problem).toBeUndefined();
  });

  it('gives zero records for an empty file, a header-only file and a blank file', async () => {
    expect(await read('users.csv', '')).toEqual([]);
    expect(await read('users.csv', `${USERS_HEADER}\r\n`)).toEqual([]);
    expect(await read('users.csv', '\n\n')).toEqual([]);
  });

  it.each([
    [
      'a missing required column',
      'customer_id,first_name,last_name,phone,country,created_at\nC1,A,B,,GB,x\n',
      /line 1: missing required column email/,
    ],
    [
      'no header (data on line 1)',
      'C1,Ada,Alder,a@example.com,,GB,2026-01-01T00:00:00Z\n',
      /line 1: missing required columns/,
    ],
    ['a duplicate column', `${USERS_HEADER},email\n`, /line 1: duplicate column "email"/],
    [
      'an unclosed quote',
      `${USERS_HEADER}\nC1,"Ada,Alder,a@example.com,,GB,x\nC2,B,C,d,,GB,x\n`,
      /line 2: a quoted field is never closed \(CSV quoting\)/,
    ],
    [
      'text after a closing quote',
      `${USERS_HEADER}\nC1,"Ada"x,Alder,a@example.com,,GB,x\n`,
      /line 2: text after the closing quote of a quoted field/,
    ],
    ['binary content', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0xff, 0xfe]), /not UTF-8|binary/],
    ['NUL bytes', `${USERS_HEADER}\nC1\0,A`, /binary content \(NUL bytes\)/],
  ])('rejects a file with %s as File.Unreadable, naming where', async (_case, bytes, message) => {
    await expect(read('users.csv', bytes)).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: expect.stringMatching(message),
    });
  });

  it('names the line of a quoting error found in the middle of a large file', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `C${i},Ada,"Al""der",a@example.com,,GB,x`);
    rows[2500] = 'C2500,Ada,"Alder"x,a@example.com,,GB,x';
    await expect(read('users.csv', `${USERS_HEADER}\n${rows.join('\n')}\n`, 4096)).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: 'line 2502: text after the closing quote of a quoted field (CSV quoting)',
    });
  });

  it('stops a record that never ends (unclosed quote in a huge file) before memory grows', async () => {
    const csv = `${USERS_HEADER}\nC1,"${'x'.repeat(5000)}`;
    await expect(
      collect(
        readRecords(chunksOf(csv, 512), {
          name: 'users.csv',
          requiredColumns: requiredColumns('users'),
          maxRecordChars: 1000,
        }),
      ),
    ).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: expect.stringMatching(/line 2: a record longer than 1000 characters/),
    });
  });
});

describe('readRecords: gzip', () => {
  const csv = `${USERS_HEADER}\nC1,Ada,Alder,a@example.com,,GB,2026-01-01T00:00:00Z\n`;

  it('gunzips by suffix and by magic bytes, from a real file on disk', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'users.csv.gz'), gzipSync(csv));
      writeFileSync(join(dir.path, 'upload.bin'), gzipSync(csv));
      const bySuffix = await collect(
        readRecords(createReadStream(join(dir.path, 'users.csv.gz')), { name: 'users.csv.gz' }),
      );
      const byMagic = await collect(
        readRecords(createReadStream(join(dir.path, 'upload.bin')), { name: 'upload.bin' }),
      );
      expect(bySuffix.map((r) => r.fields.customer_id)).toEqual(['C1']);
      expect(byMagic).toEqual(bySuffix);
    } finally {
      dir.remove();
    }
  });

  it('rejects a .gz file that is not gzip, and a truncated gzip stream', async () => {
    await expect(read('users.csv.gz', csv)).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: 'named .gz but not gzip-compressed',
    });
    const gz = gzipSync(csv.repeat(50));
    await expect(read('users.csv.gz', gz.subarray(0, gz.length - 20))).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: expect.stringMatching(/^broken gzip/),
    });
  });
});

describe('readRecords: accepted encodings', () => {
  const csv = `${USERS_HEADER}\nC1,Ada,Alder,a@example.com,,GB,2026-01-01T00:00:00Z\n`;
  const readAccepting = (name: string, bytes: Uint8Array | string, acceptedEncodings: ('csv' | 'jsonl' | 'gzip')[]) =>
    collect(readRecords(chunksOf(bytes), { name, acceptedEncodings }));

  it('refuses gzip, or a format, that the deployment does not accept, by content as well as by name', async () => {
    await expect(readAccepting('users.csv.gz', gzipSync(csv), ['csv', 'jsonl'])).rejects.toMatchObject({
      name: 'File.EncodingNotAccepted',
      message: 'gzip files are not accepted (ACCEPTED_ENCODINGS)',
    });
    await expect(readAccepting('upload', '{"customer_id":"C1"}\n', ['csv', 'gzip'])).rejects.toMatchObject({
      name: 'File.EncodingNotAccepted',
      message: 'jsonl files are not accepted (ACCEPTED_ENCODINGS)',
    });
    expect(await readAccepting('users.csv.gz', gzipSync(csv), ['csv', 'gzip'])).toHaveLength(1);
  });
});

describe('readRecords: JSON Lines', () => {
  it('reads one object per line with keys matched like CSV headers, skipping blank lines, with line numbers', async () => {
    const jsonl = '{"Customer_ID":"C1","amount":12.5}\r\n\n{"customer_id":"C2"}\n';
    const records = await read('trx.jsonl', jsonl);
    expect(records).toEqual([
      { line: 1, text: '{"Customer_ID":"C1","amount":12.5}', fields: { customer_id: 'C1', amount: '12.5' } },
      { line: 3, text: '{"customer_id":"C2"}', fields: { customer_id: 'C2' } },
    ]);
    expect(await read('trx.ndjson', jsonl, 3)).toEqual(records);
  });

  it('marks a later line that is not a JSON object as a bad record, and a first one as an unreadable file', async () => {
    const records = await read('t.jsonl', '{"customer_id":"C1"}\n[1,2]\nnot json\n{"customer_id":"C4"}');
    expect(records.map((r) => [r.line, r.problem?.rule ?? r.fields.customer_id])).toEqual([
      [1, 'C1'],
      [2, 'a JSON object on one line'],
      [3, 'a JSON object on one line'],
      [4, 'C4'],
    ]);
    await expect(read('t.jsonl', 'customer_id,email\nC1,a@b.c\n')).rejects.toMatchObject({
      name: 'File.Unreadable',
      message: 'line 1: not a JSON object (not a JSON Lines file?)',
    });
  });

  it('hands on flat fields: nested JSON and unpaired surrogates refused, numbers as written, any key a column', async () => {
    const line =
      '{"customer_id":"C1","__proto__":{"email":"a@example.com"},"constructor":"c","amount":12.50,' +
      '"big":12345678901234567890,"tiny":1e-400,"first_name":"\\ud800","last_name":"\\ud83d\\ude00","deep":[[[]]]}';
    const [record] = await read('t.jsonl', `{"customer_id":"C0"}\n${line}`).then((r) => r.slice(1));
    const fields = record!.fields;
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
    expect(Object.hasOwn(fields, '__proto__')).toBe(true);
    expect(fields.email).toBeUndefined();
    expect(fields['__proto__']).toEqual(new RefusedValue(NESTED_JSON_RULE));
    expect(fields.deep).toEqual(new RefusedValue(NESTED_JSON_RULE));
    expect(fields.first_name).toEqual(new RefusedValue(UNPAIRED_SURROGATE_RULE));
    expect(fields).toMatchObject({
      customer_id: 'C1',
      constructor: 'c',
      amount: '12.50',
      big: '12345678901234567890',
      tiny: '1e-400',
      last_name: '😀',
    });
    expect(record!.text).toBe(line);
  });

  it('keeps the line as written for the failed-records file, without a CRLF end or a BOM that starts it', async () => {
    const records = await read('t.jsonl', '{"customer_id":"C1"}\r\n\uFEFF{"customer_id":"C2"}\r\n{"a":1,"a":2}');
    expect(records.map((r) => [r.text, r.fields.customer_id ?? r.fields.a])).toEqual([
      ['{"customer_id":"C1"}', 'C1'],
      ['{"customer_id":"C2"}', 'C2'],
      ['{"a":1,"a":2}', '2'],
    ]);
  });

  it('detects JSON Lines by content when the name has no suffix', async () => {
    const records = await read('upload', '\n{"customer_id":"C1"}\n');
    expect(records).toEqual([{ line: 2, text: '{"customer_id":"C1"}', fields: { customer_id: 'C1' } }]);
  });
});

describe('decodeText', () => {
  it('hands text on in pieces of at most 64 KiB, whatever size the source chunks are', async () => {
    const text = 'x'.repeat(3 * MAX_TEXT_CHUNK + 5);
    const pieces: string[] = [];
    for await (const piece of decodeText(chunksOf(text, 1024 * 1024))) pieces.push(piece);
    expect(pieces.map((p) => p.length)).toEqual([MAX_TEXT_CHUNK, MAX_TEXT_CHUNK, MAX_TEXT_CHUNK, 5]);
    expect(pieces.join('')).toBe(text);
  });
});
