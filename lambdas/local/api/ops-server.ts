import type { APIGatewayProxyResult } from 'aws-lambda';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_VALIDATE_BYTES } from '../../ops-api/contract';
import { dashboardAsset } from './dashboard-assets';

export interface OpsServerOptions {
  /** The operations API's handler: API Gateway proxy events in, proxy results out (the Lambda's own code). */
  readonly handle: (event: unknown) => Promise<unknown>;
  /** @default a free port */
  readonly port?: number;
  /** @default a fresh random one */
  readonly token?: string;
}

export interface OpsServer {
  /** `http://127.0.0.1:<port>`: the API's base URL (paths /v1/...) and the dashboard (/). */
  readonly url: string;
  readonly token: string;
  close(): Promise<void>;
}

/** Bodies past this are refused (413) before they are read whole: the largest route's limit, and some room. */
const MAX_BODY_BYTES = MAX_VALIDATE_BYTES + 64 * 1024;

const sendJson = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(JSON.stringify(body));
};

const refusal = (code: string, message: string) => ({ error: { code, message } });

/** Constant-time: a wrong token takes as long to refuse whatever its first differing character. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The body, or undefined once it is past `limit` (then nothing more is kept). */
async function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The operations API on one machine (`ingest up`, `ingest run --api-port`): HTTP on 127.0.0.1, `Authorization:
 * Bearer <token>` on every /v1 route (401 without it), each request handed to the Lambda's own handler as the
 * API Gateway proxy event it would get on AWS. `/` and its assets are the live dashboard, served without a token
 * (the page asks for it, or takes it from `/#token=...`).
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const server = createServer((request, response) => {
    void serve(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, refusal('Internal', (error as Error).message));
      else response.destroy();
    });
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const method = (request.method ?? 'GET').toUpperCase();
    if (!url.pathname.startsWith('/v1/') && url.pathname !== '/v1') {
      const asset = method === 'GET' || method === 'HEAD' ? dashboardAsset(url.pathname) : undefined;
      if (!asset) {
        sendJson(response, 404, refusal('NotFound', `no page ${url.pathname}`));
        return;
      }
      response.writeHead(200, {
        'content-type': asset.contentType,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
      });
      response.end(method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (!tokenMatches(request.headers.authorization, token)) {
      request.resume();
      const message = request.headers.authorization
        ? 'the bearer token is wrong (ingest up printed the right one)'
        : 'Authorization: Bearer <token> is required (ingest up printed the token)';
      sendJson(response, 401, refusal('Unauthorized', message), { 'www-authenticate': 'Bearer' });
      return;
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    const body = declared > MAX_BODY_BYTES ? undefined : await readBody(request, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(response, 413, refusal('PayloadTooLarge', `body: more than ${MAX_VALIDATE_BYTES} bytes`), {
        connection: 'close',
      });
      request.destroy();
      return;
    }
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const result = (await options.handle({
      httpMethod: method,
      path: url.pathname,
      resource: url.pathname,
      headers: { 'content-type': request.headers['content-type'] ?? '' },
      queryStringParameters: Object.keys(query).length > 0 ? query : null,
      body: body.length > 0 ? body.toString('base64') : null,
      isBase64Encoded: body.length > 0,
    })) as APIGatewayProxyResult;
    response.writeHead(result.statusCode, { ...(result.headers as Record<string, string> | undefined) });
    response.end(result.body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
