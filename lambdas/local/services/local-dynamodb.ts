import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import dynalite from 'dynalite';
import { CATALOG_INDEX } from '../../contracts/catalog-index';

/** A global secondary index (projection ALL), as CDK creates it. */
export interface TableIndex {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
}

/** The tables the pipeline uses, as CDK will create them: key schema only, everything else is schemaless. */
export const TABLES = {
  /** The global rate limiter's state (one item per limiter). */
  limiter: { partitionKey: 'pk' },
  /** File claims, phase counters and call answers (the ledger). */
  ledger: { partitionKey: 'pk', sortKey: 'sk', indexes: [CATALOG_INDEX] },
} as const;

export interface LocalDynamoDb {
  readonly endpoint: string;
  /** A client for this endpoint (any region and credentials work locally). */
  client(): DynamoDBClient;
  createTable(
    name: string,
    key: { partitionKey: string; sortKey?: string; indexes?: readonly TableIndex[] },
  ): Promise<void>;
  close(): Promise<void>;
}

const DYNALITE_OPTIONS = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 };

/** dynalite in a child process of its own, so it does not share the event loop (and the core) of its callers. */
async function startInChildProcess(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const script =
    `const server = require('dynalite')(${JSON.stringify(DYNALITE_OPTIONS)});` +
    `server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));` +
    `process.on('disconnect', () => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', script], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    cwd: __dirname,
  });
  const [chunk] = (await once(child.stdout as Readable, 'data')) as [Buffer];
  return {
    endpoint: `http://127.0.0.1:${chunk.toString().trim()}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill();
      await exited;
    },
  };
}

async function startInProcess(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const server = dynalite(DYNALITE_OPTIONS);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * DynamoDB on 127.0.0.1 and a free port: dynalite, in memory. It has conditional writes, ADD counters and
 * queries; it has no TTL and no transactions (DESIGN.md), so the pipeline uses single-item conditional writes.
 * `separateProcess` runs it in a child process: for loads where it would compete with its callers for CPU.
 */
export async function startLocalDynamoDb(options: { separateProcess?: boolean } = {}): Promise<LocalDynamoDb> {
  const { endpoint, stop } = options.separateProcess ? await startInChildProcess() : await startInProcess();
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
      const indexes = key.indexes ?? [];
      const attributes = new Set([
        key.partitionKey,
        ...(key.sortKey ? [key.sortKey] : []),
        ...indexes.flatMap((index) => [index.partitionKey, index.sortKey]),
      ]);
      await admin.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [...attributes].map((attribute) => ({ AttributeName: attribute, AttributeType: 'S' })),
          KeySchema: [
            { AttributeName: key.partitionKey, KeyType: 'HASH' },
            ...(key.sortKey ? [{ AttributeName: key.sortKey, KeyType: 'RANGE' as const }] : []),
          ],
          ...(indexes.length > 0
            ? {
                GlobalSecondaryIndexes: indexes.map((index) => ({
                  IndexName: index.name,
                  KeySchema: [
                    { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
                    { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
                  ],
                  Projection: { ProjectionType: 'ALL' as const },
                })),
              }
            : {}),
        }),
      );
    },
    async close() {
      for (const c of clients) c.destroy();
      await stop();
    },
  };
}
