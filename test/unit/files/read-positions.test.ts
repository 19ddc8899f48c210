import { gzipSync } from 'node:zlib';
import {
  readRecords,
  type ChunkPositions,
  type ReadPosition,
  type SourceRecord,
} from '../../../lambdas/core/files/read-records';
import { chunksOf } from '../helpers';

/** A users CSV with what makes resuming hard: a BOM, CRLF, blank lines, quoted fields holding newlines, multi-byte text. */
function usersCsv(records: number): string {
  const rows = ['\ufeffCustomer_ID ,first_name,last_name,email,country,created_at,note'];
  for (let i = 0; i < records; i++) {
    const note = i % 7 === 0 ? `"first line\r\nsecond ""quoted"" line 😀 ${i}\n"` : `plain ${i}`;
    rows.push(`C${i},Åsa,Lee ${'é'.repeat(i % 5)},u${i}@example.com,GB,2026-01-02T03:04:05Z,${note}`);
    if (i % 31 === 0) rows.push('');
    if (i % 97 === 0) rows.push('C-short,only,three');
  }
  return `${rows.join('\r\n')}\r\n`;
}

function usersJsonl(records: number): string {
  const lines = [''];
  for (let i = 0; i < records; i++) {
    lines.push(JSON.stringify({ customer_id: `C${i}`, first_name: 'Åsa 😀', amount: 1.5, i }));
    if (i % 11 === 0) lines.push('');
    if (i % 23 === 0) lines.push(`\ufeff[${i}]`);
  }
  return lines.join('\n');
}

async function read(bytes: Uint8Array, name: string, from?: ReadPosition, chunkSize = 512) {
  const records: SourceRecord[] = [];
  const positions: { chunk: ChunkPositions; lines: number[] }[] = [];
  const starts: ReadPosition[] = [];
  for await (const chunk of readRecords(chunksOf(bytes, chunkSize), {
    name,
    ...(from ? { from } : {}),
    onPositions: (p) => positions.push({ chunk: p, lines: [] }),
  })) {
    records.push(...chunk);
    const current = positions.at(-1)!;
    // Positions are valid while the chunk is in hand: take a few line starts now.
    for (const record of chunk.filter((_, i) => i % 5 === 0)) starts.push(current.chunk.lineStart(record.line));
  }
  return { records, ends: positions.map((p) => p.chunk.end), starts };
}

/** The bytes a reader resumed at `position` is given: the rest of a plain file (a ranged read), a gzip file whole. */
const bytesFrom = (file: Uint8Array, position: ReadPosition) => (position.gzip ? file : file.subarray(position.bytes));

describe('readRecords from a position', () => {
  const cases = [
    ['users.csv', Buffer.from(usersCsv(300))],
    ['users.csv.gz', gzipSync(Buffer.from(usersCsv(300)))],
    ['users.jsonl', Buffer.from(usersJsonl(300))],
    ['users.jsonl.gz', gzipSync(Buffer.from(usersJsonl(300)))],
  ] as const;

  it.each(cases)(
    '%s: from every chunk end and many line starts, the same records as read from the start',
    async (name, file) => {
      const whole = await read(file, name);
      // gunzip hands on 16 KiB at a time: fewer chunks than 512-byte reads, line starts in each still.
      expect(whole.ends.length).toBeGreaterThan(name.endsWith('.gz') ? 5 : 20);
      expect(whole.starts.length).toBeGreaterThan(50);
      const text = Buffer.from(name.endsWith('.gz') ? (await import('node:zlib')).gunzipSync(file) : file);
      for (const position of [...whole.ends, ...whole.starts]) {
        // A position is a line start in the text, and its byte offset there.
        if (position.bytes < text.length) expect(text[position.bytes - 1]).toBe(0x0a);
        const rest = await read(bytesFrom(file, position), name, position, 300);
        expect(rest.records).toEqual(whole.records.filter((r) => r.line >= position.line));
        if (rest.records.length > 0) expect(rest.ends.at(-1)).toEqual(whole.ends.at(-1));
      }
    },
  );

  it('the end position of a plain file is its size, a BOM counted', async () => {
    const file = Buffer.from(usersCsv(50));
    const { ends } = await read(file, 'users.csv');
    expect(ends.at(-1)).toEqual({
      bytes: file.length,
      line: 71, // 50 records, 8 of them on 3 lines, 2 blank lines, 1 short row, the header
      gzip: false,
      format: 'csv',
      columns: ['customer_id', 'first_name', 'last_name', 'email', 'country', 'created_at', 'note'],
    });
  });

  it('a resumed reader fails on a broken record past its position as one from the start does', async () => {
    const file = Buffer.from(`${usersCsv(300)}C9,"never closed,x\r\n`);
    const whole = read(file, 'users.csv');
    await expect(whole).rejects.toThrow(/CSV quoting/);
    const positions: ReadPosition[] = [];
    await readRecords(chunksOf(file, 512), { name: 'users.csv', onPositions: (p) => positions.push(p.end) })
      [Symbol.asyncIterator]()
      .next();
    const message = await whole.then(
      () => '',
      (e: Error) => e.message,
    );
    expect(message).toMatch(/^line 4\d\d: /);
    await expect(read(bytesFrom(file, positions[0]!), 'users.csv', positions[0])).rejects.toThrow(message);
  });

  it('JSON Lines: whether an object was seen travels with the position (a first line that is no object fails only at the start)', async () => {
    const file = Buffer.from('[1]\n');
    await expect(read(file, 'a.jsonl')).rejects.toThrow('line 1: not a JSON object');
    const resumed = await read(file, 'a.jsonl', { bytes: 0, line: 1, gzip: false, format: 'jsonl', seenRecord: true });
    expect(resumed.records).toEqual([
      { line: 1, text: '[1]', fields: {}, problem: { column: 'record', rule: 'a JSON object on one line' } },
    ]);
  });
});
