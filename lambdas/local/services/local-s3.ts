import { S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface LocalS3 {
  readonly endpoint: string;
  /** A client with the settings the embedded S3 needs (DESIGN.md): path style, checksums only when required. */
  client(): S3Client;
  /**
   * Calls `listener` for each object created by a PUT or copy, as S3's EventBridge notification would
   * (s3rver emits one for a completed multipart upload too).
   */
  onObjectCreated(listener: (object: { bucket: string; key: string; size: number }) => void): void;
  close(): Promise<void>;
}

interface KoaContext {
  readonly headers: Record<string, string | string[] | undefined>;
}

interface S3rverEvent {
  Records: { eventName: string; s3: { bucket: { name: string }; object: { key: string; size?: number } } }[];
}

/** S3 on 127.0.0.1 and a free port (s3rver), its data in a temporary directory removed on close. */
export async function startLocalS3(buckets: readonly string[]): Promise<LocalS3> {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-s3-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  // s3rver reads x-amz-copy-source with decodeURI, which leaves the escapes of `; , / ? : @ & = + $ #` as they
  // are: a copy of such a key (URL-encoded, as S3 wants it) would miss its source. Re-encode the header so that
  // decodeURI gives the key back. Koa composes its middleware at listen, so this runs before s3rver's own.
  (
    server as unknown as { middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[] }
  ).middleware.unshift(async (ctx, next) => {
    const source = ctx.headers['x-amz-copy-source'];
    if (typeof source === 'string') ctx.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(source));
    await next();
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    client() {
      // Without WHEN_REQUIRED the SDK's default checksums silently corrupt streamed uploads to s3rver.
      const created = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(created);
      return created;
    },
    onObjectCreated(listener) {
      (server as unknown as NodeJS.EventEmitter).on('event', (event: S3rverEvent) => {
        for (const record of event.Records) {
          if (!record.eventName.startsWith('ObjectCreated')) continue;
          // s3rver gives the key as stored, not URL-encoded as S3's notifications do: `+` and `%` are themselves.
          listener({
            bucket: record.s3.bucket.name,
            key: record.s3.object.key,
            size: record.s3.object.size ?? 0,
          });
        }
      });
    },
    async close() {
      for (const c of clients) c.destroy();
      // A reader that left a body unread keeps its keep-alive connection: close them all, or close() waits forever.
      (server as unknown as { httpServer?: import('node:http').Server }).httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
