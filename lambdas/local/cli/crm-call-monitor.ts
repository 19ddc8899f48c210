import diagnosticsChannel from 'node:diagnostics_channel';

interface UndiciRequest {
  readonly origin?: string | URL;
  readonly path?: string;
}

export interface CrmCallCounts {
  /** HTTP requests that reached the CRM (every attempt, retries included). */
  readonly calls: number;
  /** Answers with status 429. */
  readonly throttled: number;
  /** Answers with status 401 or 403; the first one's status, if any. */
  readonly authRejected: number;
  readonly authStatus?: number;
  /** Answers with a 5xx status. */
  readonly serverErrors: number;
}

export interface CrmCallMonitor {
  counts(): CrmCallCounts;
  /** Calls made in the last `windowMs` (the rolling window the CRM's limit counts). */
  callsInLast(windowMs: number): number;
  /** Called with the status of the first credentials rejection (401 or 403). */
  onAuthRejected(listener: (status: number) => void): void;
  close(): void;
}

const CREATE = 'undici:request:create';
const HEADERS = 'undici:request:headers';

/**
 * Counts the CRM calls this process makes, from Node's own HTTP client (fetch publishes every request and
 * answer on `node:diagnostics_channel`), so the one-machine run can show calls against the limit and stop
 * when credentials are rejected, whatever CRM it talks to. Only calls to `crmUrl`'s origin count.
 */
export function monitorCrmCalls(crmUrl: string): CrmCallMonitor {
  const origin = new URL(crmUrl).origin;
  const isCrm = (request: UndiciRequest) => request.origin !== undefined && new URL(request.origin).origin === origin;
  const times: number[] = [];
  let head = 0;
  let calls = 0;
  let throttled = 0;
  let authRejected = 0;
  let authStatus: number | undefined;
  let serverErrors = 0;
  const authListeners: ((status: number) => void)[] = [];

  const onCreate = (message: unknown) => {
    const { request } = message as { request: UndiciRequest };
    if (!isCrm(request) || request.path?.startsWith('/_sim/')) return;
    calls++;
    times.push(Date.now());
  };
  const onHeaders = (message: unknown) => {
    const { request, response } = message as { request: UndiciRequest; response: { statusCode: number } };
    if (!isCrm(request) || request.path?.startsWith('/_sim/')) return;
    const status = response.statusCode;
    if (status === 429) throttled++;
    else if (status >= 500) serverErrors++;
    else if (status === 401 || status === 403) {
      authRejected++;
      if (authStatus === undefined) {
        authStatus = status;
        for (const listener of authListeners) listener(status);
      }
    }
  };
  diagnosticsChannel.subscribe(CREATE, onCreate);
  diagnosticsChannel.subscribe(HEADERS, onHeaders);

  return {
    counts: () => ({ calls, throttled, authRejected, ...(authStatus ? { authStatus } : {}), serverErrors }),
    callsInLast(windowMs) {
      const since = Date.now() - windowMs;
      while (head < times.length && (times[head] as number) < since) head++;
      if (head > 10_000) {
        times.splice(0, head);
        head = 0;
      }
      return times.length - head;
    },
    onAuthRejected: (listener) => void authListeners.push(listener),
    close() {
      diagnosticsChannel.unsubscribe(CREATE, onCreate);
      diagnosticsChannel.unsubscribe(HEADERS, onHeaders);
    },
  };
}
