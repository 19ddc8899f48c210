import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectRef } from '../../core/files/object-store';
import type { UploadSigner } from '../../core/operations/ports';

/** The headers the SDK's default checksums add to a PutObject (`x-amz-checksum-crc32`, the algorithm). */
const CHECKSUM_HEADER = /^x-amz-(checksum-|sdk-checksum-algorithm$)/i;

/**
 * Drops the default checksum from the request before it is presigned. Signed with no body, the SDK (3.729 on,
 * unless the client says WHEN_REQUIRED) puts the CRC32 of an empty body in the URL, `x-amz-checksum-crc32=AAAAAA==`,
 * and S3 refuses every PUT of real bytes to it. Runs in the build step after the checksum middleware (low priority).
 */
function dropDefaultChecksum(request: unknown): void {
  const headers = (request as { headers?: Record<string, string> }).headers ?? {};
  for (const header of Object.keys(headers)) if (CHECKSUM_HEADER.test(header)) delete headers[header];
}

/**
 * Pre-signed PUTs into the landing bucket (SigV4 in the query string): the client sends the bytes with no header
 * of its own, as no header but `host` is signed. The URL is as good as the credentials that signed it: a role's
 * session credentials end it sooner if they expire first.
 */
export class S3UploadSigner implements UploadSigner {
  constructor(
    private readonly s3: S3Client,
    /** The signing time. @default the system clock */
    private readonly now: () => Date = () => new Date(),
  ) {}

  async presignPut(ref: ObjectRef, expiresSeconds: number) {
    const command = new PutObjectCommand({ Bucket: ref.bucket, Key: ref.key });
    command.middlewareStack.add(
      (next) => async (args) => {
        dropDefaultChecksum(args.request);
        return next(args);
      },
      {
        step: 'build',
        priority: 'low',
        name: 'withoutDefaultChecksum',
      },
    );
    const url = await getSignedUrl(this.s3, command, { expiresIn: expiresSeconds, signingDate: this.now() });
    return { url, headers: {} };
  }
}
