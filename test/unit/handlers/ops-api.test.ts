import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { Writable } from 'node:stream';
import { createTelemetry } from '../../../lambdas/adapters/aws/telemetry';
import type { ObjectReader } from '../../../lambdas/core/files/object-store';
import type { PhaseState } from '../../../lambdas/core/ledger/phase-counters';
import type { CatalogEntry, CatalogQuery, FileCatalog } from '../../../lambdas/core/operations/ports';
import { FileDetailSchema, FileListSchema, FileRecordsSchema, FileViewSchema } from '../../../lambdas/ops-api/contract';
import { makeHandler, type OpsApiDeps } from '../../../lambdas/ops-api/make-handler';
import { MemorySchedule } from '../../support/memory-schedule';

const RUNNING = 'a'.repeat(64);
const DONE = 'b'.repeat(64);
const RESULTS = [
  'line,record_id,operations,outcome,code,error,attempts',
  '2,C1,ADD_CUST,succeeded,200,,1',
  '3,C2,,failed,,"VALIDATION: email: an email address, as name@domain",0',
  '4,C3,ADD_CUST+UPD_CUST,failed,200,CONFLICTING_PROFILE,2',
  '5,C4,ADD_CUST,failed,3217,invalid email,1',
  '',
].join('\n');

/** The catalogue in memory: newest first, a page of `limit` from an index cursor. */
class MemoryCatalog implements FileCatalog {
  constructor(readonly entries: CatalogEntry[]) {}

  list(query: CatalogQuery) {
    const sorted = [...this.entries]
      .sort((a, b) => b.landedAt.localeCompare(a.landedAt))
      .filter((entry) => !query.partner || entry.partner === query.partner)
      .filter((entry) => query.finished !== 'unfinished' || !entry.summary);
    const from = query.cursor ? Number(query.cursor) : 0;
    const page = sorted.slice(from, from + query.limit);
    return Promise.resolve({
      entries: page,
      ...(from + query.limit < sorted.length ? { next: String(from + query.limit) } : {}),
    });
  }

  get(fileId: string) {
    return Promise.resolve(this.entries.find((entry) => entry.fileId === fileId));
  }
}

/** results.csv of the finished file, with ranged reads as S3 gives them. */
const reports: ObjectReader = {
  head: () => Promise.resolve({ size: Buffer.byteLength(RESULTS), metadata: {} }),
  tags: () => Promise.resolve({}),
  async *read(_ref, range) {
    const bytes = Buffer.from(RESULTS);
    yield range ? bytes.subarray(range.start, range.end + 1) : bytes;
  },
};

function deps(routes: OpsApiDeps['routes'] = ['read', 'control', 'validate', 'stats']): {
  deps: OpsApiDeps;
  schedule: MemorySchedule;
  lines: string[];
} {
  const schedule = new MemorySchedule();
  const now = new Date().toISOString();
  schedule.put({
    fileId: RUNNING,
    name: 'users_acme_20261124_002.csv',
    partner: 'acme',
    kind: 'users',
    landedAt: '2026-11-24T10:00:00.000Z',
    startedAt: '2026-11-24T10:00:05.000Z',
    state: 'sending',
    phase: 'ADD',
    sent: 6,
    answered: 4,
    batchesEstimate: 10,
    received: 1000,
    rejected: 10,
    updatedAt: now,
  });
  const catalog = new MemoryCatalog([
    {
      fileId: RUNNING,
      name: 'users_acme_20261124_002.csv',
      partner: 'acme',
      kind: 'users',
      landedAt: '2026-11-24T10:00:00.000Z',
      file: { bucket: 'landing', key: 'users/acme/users_acme_20261124_002.csv' },
    },
    {
      fileId: DONE,
      name: 'users_acme_20261124_001.csv',
      partner: 'acme',
      kind: 'users',
      landedAt: '2026-11-24T09:00:00.000Z',
      file: { bucket: 'landing', key: 'users/acme/users_acme_20261124_001.csv' },
      summary: {
        name: 'users_acme_20261124_001.csv',
        sha256: DONE,
        kind: 'users',
        status: 'partial',
        received: 4,
        succeeded: 1,
        failed: 3,
        failures: { VALIDATION: 1, CONFLICTING_PROFILE: 1, '3217': 1 },
        reports: { bucket: 'archive', summary: 'reports/acme/x/summary.json', results: 'reports/acme/x/results.csv' },
        landedAt: '2026-11-24T09:00:00.000Z',
        startedAt: '2026-11-24T09:00:02.000Z',
        finishedAt: '2026-11-24T09:01:00.000Z',
        calls: { made: 3, remaining: 0 },
      },
    },
  ]);
  const phases: PhaseState[] = [
    {
      fileId: RUNNING,
      phase: 'ADD',
      answered: 4,
      update: 0,
      retryLater: 0,
      calls: 5,
      succeeded: 380,
      failed: 10,
      failures: { '3217': 10 },
    },
  ];
  const lines: string[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    schedule,
    lines,
    deps: {
      routes,
      files: {
        catalog,
        schedule,
        phases: { phases: (fileId) => Promise.resolve(phases.filter((phase) => phase.fileId === fileId)) },
        rules: { partnerWeights: {} },
        callsPerMinute: 1000,
      },
      reports,
      validate: ({ name, body }) =>
        Promise.resolve({
          kind: 'users',
          format: 'csv',
          received: body.length,
          valid: name.length,
          invalid: 0,
          failures: {},
          problems: [],
        }),
      stats: {
        source: {
          stats: (minutes) =>
            Promise.resolve({
              callsPerMinute: Array.from({ length: minutes }, () => 1),
              recordsPerMinute: { succeeded: [], failed: [] },
              latencyMs: { p50: null, p99: null },
              errorsByCode: {},
            }),
        },
        queue: { depth: () => Promise.resolve({ waiting: 2, inFlight: 1 }) },
        schedule,
        callsPerMinute: 1000,
      },
      telemetry: createTelemetry('ops-api', { output }),
    },
  };
}

/** An API Gateway REST proxy event, as API Gateway sends it to the Lambda. */
function proxyEvent(
  method: string,
  path: string,
  query: Record<string, string> | null = null,
  body?: Buffer,
): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    resource: path,
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: query,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    body: body ? body.toString('base64') : null,
    isBase64Encoded: body !== undefined,
  };
}

const context = { getRemainingTimeInMillis: () => 29_000, functionName: 'ops-api' } as unknown as Context;

async function call(built: OpsApiDeps, event: APIGatewayProxyEvent) {
  const result = (await makeHandler(built)(event, context)) as APIGatewayProxyResult;
  return { status: result.statusCode, body: JSON.parse(result.body) as unknown, headers: result.headers };
}

describe('the ops-api handler with API Gateway proxy events', () => {
  it('lists files newest first with live counts of the one in flight and the summary of the finished one', async () => {
    const { deps: built } = deps();
    const answer = await call(built, proxyEvent('GET', '/v1/files'));
    expect(answer.status).toBe(200);
    expect(answer.headers?.['content-type']).toContain('application/json');
    const { files, next } = FileListSchema.parse(answer.body);
    expect(next).toBeNull();
    expect(files.map((file) => file.fileId)).toEqual([RUNNING, DONE]);
    expect(files[0]).toMatchObject({
      status: 'running',
      phase: 'ADD',
      received: 1000,
      succeeded: 380,
      failed: 20,
      pending: 600,
      failures: { VALIDATION: 10, '3217': 10 },
      calls: { made: 5, remaining: 6 },
      progress: 0.4,
      startedAt: '2026-11-24T10:00:05.000Z',
      finishedAt: null,
    });
    expect(files[0]!.etaSeconds).toBeGreaterThan(0);
    expect(files[1]).toMatchObject({ status: 'partial', received: 4, pending: 0, progress: 1, calls: { made: 3 } });
    const page = FileListSchema.parse((await call(built, proxyEvent('GET', '/v1/files', { limit: '1' }))).body);
    expect(page.files).toHaveLength(1);
    expect(page.next).toBe('1');
    const running = FileListSchema.parse(
      (await call(built, proxyEvent('GET', '/v1/files', { status: 'running' }))).body,
    );
    expect(running.files.map((file) => file.fileId)).toEqual([RUNNING]);
  });

  it("gives a file's view with its phases, and a finished file's records filtered, from results.csv", async () => {
    const { deps: built } = deps();
    const detail = FileDetailSchema.parse((await call(built, proxyEvent('GET', `/v1/files/${RUNNING}`))).body);
    expect(detail.phases).toEqual([{ phase: 'ADD', batches: null, answered: 4, calls: 5 }]);
    const failed = await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { outcome: 'failed' }));
    expect(FileRecordsSchema.parse(failed.body).records.map((record) => [record.line, record.code])).toEqual([
      [3, 'VALIDATION'],
      [4, 'CONFLICTING_PROFILE'],
      [5, '3217'],
    ]);
    const paged = FileRecordsSchema.parse(
      (await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { limit: '2' }))).body,
    );
    expect(paged.records.map((record) => record.recordId)).toEqual(['C1', 'C2']);
    const rest = FileRecordsSchema.parse(
      (await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { limit: '2', cursor: paged.next! }))).body,
    );
    expect(rest.records.map((record) => record.recordId)).toEqual(['C3', 'C4']);
    expect(rest.next).toBeNull();
    expect((await call(built, proxyEvent('GET', `/v1/files/${RUNNING}/records`))).status).toBe(409);
  });

  it('pauses and resumes a file in flight (202 with its view), and refuses a finished one with 409', async () => {
    const { deps: built, schedule } = deps();
    const paused = await call(built, proxyEvent('POST', `/v1/files/${RUNNING}/pause`));
    expect(paused.status).toBe(202);
    expect(FileViewSchema.parse(paused.body)).toMatchObject({ status: 'paused', waitingFor: 'paused by an operator' });
    expect((await schedule.read(RUNNING))?.control).toBe('paused');
    expect(
      FileViewSchema.parse((await call(built, proxyEvent('POST', `/v1/files/${RUNNING}/resume`))).body).status,
    ).toBe('running');
    const finished = await call(built, proxyEvent('POST', `/v1/files/${DONE}/cancel`));
    expect(finished).toMatchObject({ status: 409, body: { error: { code: 'Conflict' } } });
  });

  it('answers every refusal as {"error": {"code", "message"}} with its status, and hides an unexpected failure', async () => {
    const { deps: built, lines } = deps();
    expect(await call(built, proxyEvent('GET', '/v1/files', { limit: '0' }))).toMatchObject({
      status: 400,
      body: { error: { code: 'BadRequest', message: 'limit: a whole number from 1 to 1000' } },
    });
    expect(await call(built, proxyEvent('GET', `/v1/files/${'c'.repeat(64)}`))).toMatchObject({
      status: 404,
      body: { error: { code: 'NotFound', message: `no file ${'c'.repeat(64)}` } },
    });
    expect((await call(built, proxyEvent('DELETE', '/v1/files'))).status).toBe(404);
    const large = await call(
      built,
      proxyEvent('POST', '/v1/validate', { name: 'u.csv' }, Buffer.alloc(5 * 1024 * 1024 + 1)),
    );
    expect(large).toMatchObject({ status: 413, body: { error: { code: 'PayloadTooLarge' } } });
    const small = await call(built, proxyEvent('POST', '/v1/validate', { name: 'u.csv' }, Buffer.from('abc')));
    expect(small).toMatchObject({ status: 200, body: { received: 3, valid: 5 } });

    const broken = {
      ...built,
      files: {
        ...built.files,
        catalog: { ...built.files.catalog, list: () => Promise.reject(new Error('secret detail')) },
      },
    };
    const failure = await call(broken, proxyEvent('GET', '/v1/files'));
    expect(failure).toEqual({
      status: 500,
      body: { error: { code: 'Internal', message: 'the request failed; see the logs' } },
      headers: expect.any(Object),
    });
    expect(JSON.stringify(failure.body)).not.toContain('secret');
    // Each request's route, status and latency as metrics.
    const metric = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.ApiRequests);
    expect(metric).toMatchObject({ Route: 'GET /v1/files', Status: '400', service: 'ops-api' });
  });

  it('asks one lookup for both kinds when none is given; refuses a cursor of another file or of rewritten reports', async () => {
    const { deps: built } = deps();
    const asked: unknown[] = [];
    const withLookup: OpsApiDeps = {
      ...built,
      lookup: (query) => {
        asked.push(query);
        return Promise.resolve({ records: [] });
      },
    };
    expect(await call(withLookup, proxyEvent('GET', '/v1/records/C-1042', { partner: 'acme' }))).toMatchObject({
      status: 200,
      body: { records: [] },
    });
    expect(asked).toEqual([{ recordId: 'C-1042', partner: 'acme' }]);
    expect(await call(withLookup, proxyEvent('GET', '/v1/records/%E0%A4%A'))).toMatchObject({
      status: 400,
      body: { error: { code: 'BadRequest', message: expect.stringMatching(/^recordId:/) } },
    });

    const first = FileRecordsSchema.parse(
      (await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { limit: '1' }))).body,
    );
    const another = Buffer.from(JSON.stringify({ o: 60, f: RUNNING, r: 0 })).toString('base64url');
    const elsewhere = await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { cursor: another }));
    expect(elsewhere).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining('another file') } },
    });
    const done = (await built.files.catalog.get(DONE))!;
    (done as { summary: { redoRounds?: number } }).summary.redoRounds = 1;
    const rewritten = await call(built, proxyEvent('GET', `/v1/files/${DONE}/records`, { cursor: first.next! }));
    expect(rewritten).toMatchObject({
      status: 409,
      body: { error: { message: expect.stringContaining('rewritten') } },
    });
  });

  it('answers only the route groups it was deployed for (one function per group on AWS)', async () => {
    const { deps: validateOnly } = deps(['validate']);
    expect((await call(validateOnly, proxyEvent('GET', '/v1/files'))).status).toBe(404);
    expect(
      (await call(validateOnly, proxyEvent('POST', '/v1/validate', { name: 'u.csv' }, Buffer.from('x')))).status,
    ).toBe(200);
    const { deps: statsOnly } = deps(['stats']);
    const stats = await call(statsOnly, proxyEvent('GET', '/v1/stats', { minutes: '3' }));
    expect(stats).toMatchObject({
      status: 200,
      body: { limitPerMinute: 1000, callsPerMinute: [1, 1, 1], queue: { waiting: 2, inFlight: 1 } },
    });
    expect((stats.body as { files: unknown }).files).toEqual({ running: 1, waiting: 0, paused: 0 });
  });
});
