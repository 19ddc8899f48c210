import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RemoteFileChanged, type LandingWriter } from '../../core/polling/poll-source';

/**
 * Collected files into the landing bucket. The bytes pass through a count: if fewer or more than the listed
 * size arrive, the stream fails before its end, the upload is aborted and no object (so no Object Created
 * event) appears. Large files go in parts, in memory that does not grow with them.
 */
export class S3LandingWriter implements LandingWriter {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async land(key: string, body: AsyncIterable<Uint8Array>, size: number, metadata: Record<string, string>) {
    let received = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > size) callback(new RemoteFileChanged(`more than the ${size} bytes listed arrived`));
        else callback(null, chunk);
      },
      flush(callback) {
        callback(received === size ? null : new RemoteFileChanged(`${received} of the ${size} bytes listed arrived`));
      },
    });
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: key, Body: counted, Metadata: metadata },
      partSize: 16 * 1024 * 1024,
      leavePartsOnError: false,
    });
    await Promise.all([pipeline(Readable.from(body), counted), upload.done()]).catch(async (error: unknown) => {
      await upload.abort().catch(() => undefined);
      throw error;
    });
  }
}
