import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CrmOperation } from '../../lambdas/core/crm/response-policy';

/** One CRM call the CRM accepted (not a 429 or 401), in the order its answer came back. */
export interface RecordedCall {
  /** When the answer came back (epoch ms). */
  readonly at: number;
  readonly operation: CrmOperation;
  /** The call's records: customer ids (ADD_CUST, UPD_CUST) or transaction ids (ADD_TRX). */
  readonly ids: readonly string[];
  /** Each record's code in the answer (200, 8006, 4404...), in record order; empty when the call itself failed. */
  readonly codes: readonly number[];
  readonly status: number;
  readonly replayed: boolean;
}

export interface RecordingCrm {
  readonly url: string;
  /** Every accepted call so far, oldest first (the live array). */
  readonly calls: RecordedCall[];
  close(): Promise<void>;
}

const OPERATIONS: Record<string, CrmOperation> = {
  'POST /v1/customers': 'ADD_CUST',
  'PUT /v1/customers': 'UPD_CUST',
  'POST /v1/transactions': 'ADD_TRX',
};

/**
 * A pass-through in front of the CRM simulator that logs each call it forwards: which records went, with which
 * operation, what the CRM answered them, and when. The simulator counts calls; the scheduling tests need their
 * order and their records (which file a call belonged to, and whether a record was ever sent).
 */
export async function startRecordingCrm(target: string): Promise<RecordingCrm> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const calls: RecordedCall[] = [];

  const forward = async (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = incoming.url ?? '/';
    const headers = { ...incoming.headers, host: upstream.host };
    const answer = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>(
      (resolve, reject) => {
        const call = request(
          { host: upstream.hostname, port: upstream.port, path, method: incoming.method, headers, agent },
          (response) => {
            const parts: Buffer[] = [];
            response.on('data', (part: Buffer) => parts.push(part));
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 502, headers: response.headers, body: Buffer.concat(parts) }),
            );
            response.on('error', reject);
          },
        );
        call.on('error', reject);
        call.end(body);
      },
    );
    const operation = OPERATIONS[`${incoming.method} ${path.split('?')[0]}`];
    if (operation && answer.status !== 429 && answer.status !== 401) {
      calls.push({
        at: Date.now(),
        operation,
        ids: idsOf(operation, body),
        codes: codesOf(answer.body),
        status: answer.status,
        replayed: answer.headers['idempotent-replayed'] === 'true',
      });
    }
    const { connection: _connection, 'keep-alive': _keepAlive, 'transfer-encoding': _te, ...rest } = answer.headers;
    outgoing.writeHead(answer.status, { ...rest, 'content-length': String(answer.body.length) });
    outgoing.end(answer.body);
  };

  const server: Server = createServer((incoming, outgoing) => {
    forward(incoming, outgoing).catch(() => {
      // The simulator went away (a test closing): the client sees a cut connection, as from a real CRM.
      outgoing.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function idsOf(operation: CrmOperation, body: Buffer): string[] {
  try {
    const { records } = JSON.parse(body.toString('utf8')) as { records?: Record<string, unknown>[] };
    const field = operation === 'ADD_TRX' ? 'transactionId' : 'customerId';
    return (records ?? []).map((record) => String(record[field]));
  } catch {
    return [];
  }
}

function codesOf(body: Buffer): number[] {
  try {
    const { results } = JSON.parse(body.toString('utf8')) as { results?: { code?: number }[] };
    return (results ?? []).map((result) => Number(result.code));
  } catch {
    return [];
  }
}
