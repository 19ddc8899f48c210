import { ErrorBodySchema } from '../../lambdas/ops-api/contract';

export interface OpsAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

/** A client of the operations API over real HTTP, as an independent client would call it. */
export function opsClient(url: string, token: string | undefined) {
  const call = async (method: string, path: string, body?: string | Buffer, type?: string): Promise<OpsAnswer> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(type ? { 'content-type': type } : {}),
      },
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // Not JSON: the page's HTML, kept as text.
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  return {
    get: (path: string) => call('GET', path),
    post: (path: string, body?: unknown) =>
      call('POST', path, body === undefined ? undefined : JSON.stringify(body), 'application/json'),
    postBytes: (path: string, body: Uint8Array, type = 'application/octet-stream') =>
      call('POST', path, Buffer.from(body), type),
  };
}

/** The error body every refusal has: its code, and a message naming what is wrong. */
export function errorOf(answer: OpsAnswer): { code: string; message: string } {
  return ErrorBodySchema.parse(answer.body).error;
}
