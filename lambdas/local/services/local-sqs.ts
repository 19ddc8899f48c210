import { SQSClient } from '@aws-sdk/client-sqs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createSqsServer } from 'local-aws-sqs';

export interface LocalSqs {
  readonly endpoint: string;
  client(): SQSClient;
  close(): Promise<void>;
}

/** SQS on 127.0.0.1 and a free port (local-aws-sqs). Queues are created by the caller, with their redrive policy. */
export async function startLocalSqs(): Promise<LocalSqs> {
  const server = (await createSqsServer({
    port: 0,
    hostname: '127.0.0.1',
    emulateQueueCreationLifecycle: false,
  } as never)) as unknown as Server;
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: SQSClient[] = [];
  return {
    endpoint,
    client() {
      const created = new SQSClient({
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      clients.push(created);
      return created;
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
