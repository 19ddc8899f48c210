import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The AWS calls the handlers make to Step Functions, EventBridge and Secrets Manager, answered on 127.0.0.1
 * (no npm stand-in runs them with the current SDK): `SendTaskSuccess` resumes the local execution waiting on
 * that token, `PutEvents` hands each event to the local runtime, `GetSecretValue` answers from secrets put
 * here. The handlers keep their AWS SDK clients; only their endpoints (AWS_ENDPOINT_URL_SFN, _EVENTBRIDGE,
 * _SECRETS_MANAGER) point here.
 */
export interface LocalAwsEndpoint {
  readonly endpoint: string;
  /** Waits for the task token to be sent back; the output is what SendTaskSuccess carried. */
  waitForToken(token: string): Promise<unknown>;
  /** Called for StartExecution; returns false when an execution of that name exists (ExecutionAlreadyExists). */
  onStartExecution(starter: (name: string, input: unknown) => boolean): void;
  /** A secret for GetSecretValue (the polled sources' credentials). */
  putSecret(id: string, value: string): void;
  /** Receives every event put on any bus. */
  onEvent(listener: (event: { source: string; detailType: string; detail: unknown }) => void): void;
  close(): Promise<void>;
}

const json = (response: ServerResponse, status: number, body: unknown, contentType: string) => {
  response.writeHead(status, { 'content-type': contentType });
  response.end(JSON.stringify(body));
};

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of request) text += String(chunk);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function startLocalAwsEndpoint(): Promise<LocalAwsEndpoint> {
  const waiters = new Map<string, (output: unknown) => void>();
  let startExecution: (name: string, input: unknown) => boolean = () => false;
  const secrets = new Map<string, string>();
  const listeners: ((event: { source: string; detailType: string; detail: unknown }) => void)[] = [];
  const server = createServer((request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const contentType = String(request.headers['content-type'] ?? 'application/x-amz-json-1.0');
    readBody(request)
      .then((body) => {
        if (target.endsWith('.SendTaskSuccess')) {
          const token = String(body.taskToken);
          const resume = waiters.get(token);
          if (!resume) {
            json(response, 400, { __type: 'TaskDoesNotExist', message: 'no task waits on this token' }, contentType);
            return;
          }
          waiters.delete(token);
          resume(JSON.parse(String(body.output)));
          json(response, 200, {}, contentType);
        } else if (target.endsWith('.StartExecution')) {
          const name = String(body.name);
          if (!startExecution(name, JSON.parse(String(body.input ?? '{}')))) {
            json(response, 400, { __type: 'ExecutionAlreadyExists', message: `execution ${name} exists` }, contentType);
            return;
          }
          json(response, 200, { executionArn: `local:execution:${name}`, startDate: Date.now() / 1000 }, contentType);
        } else if (target === 'secretsmanager.GetSecretValue') {
          const id = String(body.SecretId);
          const value = secrets.get(id);
          if (value === undefined) {
            json(response, 400, { __type: 'ResourceNotFoundException', message: `no secret ${id}` }, contentType);
            return;
          }
          json(response, 200, { ARN: `local:secret:${id}`, Name: id, SecretString: value }, contentType);
        } else if (target.endsWith('.PutEvents')) {
          const entries = (body.Entries ?? []) as { Source: string; DetailType: string; Detail: string }[];
          for (const entry of entries) {
            const event = { source: entry.Source, detailType: entry.DetailType, detail: JSON.parse(entry.Detail) };
            for (const listener of listeners) listener(event);
          }
          json(
            response,
            200,
            { FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `local-${i}` })) },
            contentType,
          );
        } else {
          json(
            response,
            400,
            { __type: 'UnknownOperationException', message: `not served locally: ${target}` },
            contentType,
          );
        }
      })
      .catch((error: unknown) =>
        json(response, 500, { __type: 'InternalFailure', message: String(error) }, contentType),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    waitForToken: (token) => new Promise((resolve) => waiters.set(token, resolve)),
    onStartExecution: (starter) => {
      startExecution = starter;
    },
    putSecret: (id, value) => void secrets.set(id, value),
    onEvent: (listener) => void listeners.push(listener),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
