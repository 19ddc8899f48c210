/**
 * `npm run bench:collect`: how fast the polling watcher takes a file from a partner's SFTP server. The server is
 * a real OpenSSH sshd when /usr/sbin/sshd exists (else the embedded ssh2 one, in this process); a TCP relay in
 * front of it adds a round-trip time, as a partner across the internet has. Compared, on the same file:
 * - `stream`: one request of 64 KiB at a time (ssh2-sftp-client's createReadStream);
 * - `read-ahead`: the watcher's reader (64 requests of 32 KiB in flight, handed on in order);
 * - `collect`: a whole poll with read-ahead into the embedded S3 and DynamoDB (claim, land, record, move).
 * Prints MB/s (medians of `--runs`) and the read-ahead/stream ratio. Options: `--mb N` (32), `--rtt-ms N` (40),
 * `--rtt-mb N` (8, the file size behind the relay), `--runs N` (3), and the bench's own read-ahead for the
 * first two: `--chunk-kb N` (32), `--in-flight N` (64).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { DynamoDbCollectionClaims } from '../../lambdas/adapters/aws/dynamodb-collection-claims';
import { S3LandingWriter } from '../../lambdas/adapters/aws/s3-landing-writer';
import { connectSftpSource, readAhead, type SourceCredentials } from '../../lambdas/adapters/sftp/sftp-folder';
import { PollSourceSchema, pollSource, type PollSource } from '../../lambdas/core/polling/poll-source';
import { startFolderSftp } from '../../lambdas/local/services/folder-sftp';
import { startLocalDynamoDb, TABLES } from '../../lambdas/local/services/local-dynamodb';
import { startLocalS3 } from '../../lambdas/local/services/local-s3';
import { newSshKeyPair } from '../../lambdas/local/services/sftp-server';
import { hasOpenSsh, startOpenSsh } from '../support/openssh';
import { median, numberOption } from './bench-support';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const MB = numberOption('--mb', 32);
const RTT_MS = numberOption('--rtt-ms', 40);
const RTT_MB = numberOption('--rtt-mb', 8);
const RUNS = numberOption('--runs', 3);
const CHUNK_KB = numberOption('--chunk-kb', 32);
const IN_FLIGHT = numberOption('--in-flight', 64);

/** A TCP relay that holds every chunk for half the round trip, each way (bandwidth is not limited). */
async function latencyRelay(port: number, rttMs: number) {
  const sockets = new Set<Socket>();
  const delayed = (from: Socket, to: Socket) =>
    from.on('data', (chunk) => setTimeout(() => to.write(chunk), rttMs / 2));
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => (client.destroy(), upstream.destroy()));
    }
    delayed(client, upstream);
    delayed(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

async function timed(bytes: number, work: () => Promise<number>): Promise<number> {
  const started = process.hrtime.bigint();
  const read = await work();
  if (read !== bytes) throw new Error(`read ${read} bytes of ${bytes}`);
  return bytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'bench-collect-'));
  const key = newSshKeyPair();
  const password = 'bench';
  const server = hasOpenSsh
    ? await startOpenSsh(key.publicKey)
    : { ...(await startFolderSftp({ root, users: [{ name: 'bench', password }] })), username: 'bench' };
  const credentials: SourceCredentials = hasOpenSsh ? { privateKey: key.privateKey } : { password };
  const remote = (path: string) => (hasOpenSsh ? join(root, path) : `/${path}`);
  const [s3, db] = await Promise.all([startLocalS3(['landing']), startLocalDynamoDb()]);
  await db.createTable('ledger', TABLES.ledger);
  const ledger = new DynamoDbCollectionClaims(db.client(), 'ledger');
  const landing = new S3LandingWriter(s3.client(), 'landing');
  const source = (port: number, dir: string): PollSource =>
    PollSourceSchema.parse({
      name: `bench-${randomUUID().slice(0, 8)}`,
      partner: 'bench',
      host: '127.0.0.1',
      port,
      username: server.username,
      hostKeyFingerprint: server.hostKeyFingerprint,
      remoteDir: remote(dir),
    });

  const reads = async (port: number, sizeMb: number) => {
    const bytes = sizeMb * 1024 * 1024;
    mkdirSync(join(root, `f${sizeMb}`), { recursive: true });
    writeFileSync(join(root, `f${sizeMb}`, 'file.csv'), randomBytes(bytes));
    const path = remote(`f${sizeMb}/file.csv`);
    const client = new SftpClient('bench', { error: () => undefined, end: () => undefined, close: () => undefined });
    const wire: SFTPWrapper = await client.connect({
      host: '127.0.0.1',
      port,
      username: server.username,
      ...credentials,
    });
    const [listed] = await client.list(remote(`f${sizeMb}`));
    const count = async (chunks: AsyncIterable<Uint8Array>) => {
      let n = 0;
      for await (const chunk of chunks) n += chunk.length;
      return n;
    };
    const stream: number[] = [];
    const ahead: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      stream.push(await timed(bytes, () => count(client.createReadStream(path) as AsyncIterable<Uint8Array>)));
      ahead.push(
        await timed(bytes, () =>
          count(
            readAhead(
              wire,
              path,
              { size: bytes, modifiedAt: listed!.modifyTime },
              { concurrency: IN_FLIGHT, chunkSize: CHUNK_KB * 1024 },
            ),
          ),
        ),
      );
    }
    await client.end();
    return { stream: median(stream), ahead: median(ahead) };
  };

  const direct = await reads(server.port, MB);
  const relay = await latencyRelay(server.port, RTT_MS);
  const far = await reads(relay.port, RTT_MB);
  relay.close();

  const collects: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = `c${run}`;
    const bytes = MB * 1024 * 1024;
    mkdirSync(join(root, dir));
    writeFileSync(join(root, dir, 'users_bench_20261124.csv'), randomBytes(bytes));
    const from = source(server.port, dir);
    const deps = {
      connect: (s: PollSource) => connectSftpSource(s, credentials),
      claims: ledger,
      landing,
      owner: 'bench',
      leaseMs: 600_000,
    };
    await pollSource(from, deps); // first listing
    collects.push(
      await timed(bytes, async () => {
        const result = await pollSource(from, deps);
        return result.collected.reduce((sum, file) => sum + file.size, 0);
      }),
    );
  }

  const f = (n: number) => n.toFixed(1);
  console.log(`server: ${hasOpenSsh ? 'OpenSSH sshd' : 'embedded ssh2 (in this process)'}; runs: ${RUNS} (medians)`);
  console.log(
    `loopback, ${MB} MB:        stream ${f(direct.stream)} MB/s, read-ahead ${f(direct.ahead)} MB/s, ratio ${(direct.ahead / direct.stream).toFixed(2)}`,
  );
  console.log(
    `RTT ${RTT_MS} ms, ${RTT_MB} MB:      stream ${f(far.stream)} MB/s, read-ahead ${f(far.ahead)} MB/s, ratio ${(far.ahead / far.stream).toFixed(2)}`,
  );
  console.log(`collect (poll -> S3), ${MB} MB: ${f(median(collects))} MB/s`);
  await Promise.all([server.close(), s3.close(), db.close()]);
  rmSync(root, { recursive: true, force: true });
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
