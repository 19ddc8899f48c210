import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

/** The tables the pipeline uses, as CDK will create them: key schema only, everything else is schemaless. */
export const TABLES = {
  /** The global rate limiter's state (one item per limiter). */
  limiter: { partitionKey: 'pk' },
  /** File claims, phase counters and call answers (the ledger). */
  ledger: { partitionKey: 'pk', sortKey: 'sk' },
} as const;

export interface LocalDynamoDb {
  readonly endpoint: string;
  /** A client for this endpoint (any region and credentials work locally). */
  client(): DynamoDBClient;
  createTable(name: string, key: { partitionKey: string; sortKey?: string }): Promise<void>;
  close(): Promise<void>;
}

/**
 * DynamoDB on 127.0.0.1 and a free port: dynalite, in memory. It has conditional writes, ADD counters and
 * queries; it has no TTL and no transactions (DESIGN.md), so the pipeline uses single-item conditional writes.
 */
export async function startLocalDynamoDb(): Promise<LocalDynamoDb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: DynamoDBClient[] = [];
  const client = () => {
    const created = new DynamoDBClient({
      endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    clients.push(created);
    return created;
  };
  return {
    endpoint,
    client,
    async createTable(name, key) {
      const admin = client();
      await admin.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: key.partitionKey, AttributeType: 'S' },
            ...(key.sortKey ? [{ AttributeName: key.sortKey, AttributeType: 'S' as const }] : []),
          ],
          KeySchema: [
            { AttributeName: key.partitionKey, KeyType: 'HASH' },
            ...(key.sortKey ? [{ AttributeName: key.sortKey, KeyType: 'RANGE' as const }] : []),
          ],
        }),
      );
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
