import { runThroughPipeline } from './in-memory-pipeline';

const user = (id: string, firstName: string) =>
  `{"customer_id":"${id}","first_name":${firstName},"last_name":"Alder","email":"${id}@example.com","country":"GB","created_at":"2026-01-01T00:00:00Z"}`;

describe('a JSON Lines record nested thousands of levels deep', () => {
  const deepArray = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  const deepObject = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;

  it.each([
    ['an array', deepArray],
    ['an object', deepObject],
  ])('fails only that record (%s in first_name), through prepare and finalise', async (_case, nested) => {
    const deep = user('C2', nested);
    const text = [user('C1', '"Ada"'), deep, user('C3', '"Eve"')].join('\n');

    const run = await runThroughPipeline('users_acme_20261124.jsonl', 'users', text);

    expect(run.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, 'VALIDATION: first_name: a text or number value, not nested JSON'],
    ]);
    expect(run.batches.flatMap((b) => b.items.map((i) => i.line))).toEqual([1, 3]);
    expect(run.final).toMatchObject({ status: 'partial', received: 3, succeeded: 2, failed: 1 });
    expect(run.results).toContain('2,C2,,failed,,"VALIDATION: first_name: a text or number value, not nested JSON",0');
    // The partner gets back the line as written, with the reason added, to fix and upload again.
    const [failed, ...rest] = run.failedRecords.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(failed).toBe(
      `${deep.slice(0, -1)},"failure_reason":"VALIDATION: first_name: a text or number value, not nested JSON"}`,
    );
  });

  it('in a column no rule reads, is ignored like any unknown column', async () => {
    const text = [user('C1', '"Ada"'), user('C2', '"Ben"').replace('{', `{"notes":${deepArray},`)].join('\n');
    const run = await runThroughPipeline('users_acme_20261124.jsonl', 'users', text);
    expect(run.final).toMatchObject({ status: 'succeeded', received: 2, succeeded: 2, failed: 0 });
  });
});

describe('the failed-records file of a JSON Lines file', () => {
  it('holds each failed line as written, with the reason as its last key; a line that is no object as a string', async () => {
    const good = user('C1', '"Ada"');
    const broken = '{"customer_id":"C2",';
    const badEmail = user('C3', '"Eve"')
      .replace('"C3@example.com"', '"no-email"')
      .replace('{', '{"Ref":12345678901234567890,');
    const empty = '{ }';
    const run = await runThroughPipeline(
      'users_acme_20261124.jsonl',
      'users',
      [good, broken, badEmail, empty].join('\r\n'),
    );
    expect(run.failedRecords.split('\n')).toEqual([
      '{"source_line":"{\\"customer_id\\":\\"C2\\",","failure_reason":"VALIDATION: record: a JSON object on one line"}',
      `${badEmail.slice(0, -1)},"failure_reason":"VALIDATION: email: an email address"}`,
      '{ "failure_reason":"VALIDATION: customer_id: required"}',
      '',
    ]);
  });
});
