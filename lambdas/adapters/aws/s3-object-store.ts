import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { ErrorNames, PipelineError } from '../../core/errors';
import type { ObjectHead, ObjectRef, ObjectStore, PartUploads, TextUpload } from '../../core/files/object-store';

/** CopyObject takes objects up to 5 GiB; larger ones are copied in parts (partner files go up to 10 GB). */
const SINGLE_COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART_BYTES = 512 * 1024 ** 2;

const isMissing = (error: unknown) => ['NoSuchKey', 'NotFound', ErrorNames.fileGone].includes((error as Error).name);
/** A missing object is File.Gone (typically moved by an earlier run of the same step); other errors pass. */
const gone =
  (ref: ObjectRef) =>
  (error: unknown): never => {
    if (isMissing(error))
      throw new PipelineError(ErrorNames.fileGone, `s3://${ref.bucket}/${ref.key} is no longer there`);
    throw error;
  };
const copySource = (ref: ObjectRef) => `${ref.bucket}/${ref.key.split('/').map(encodeURIComponent).join('/')}`;

/** The object-store port on S3 (and on the embedded S3 locally, with the same client settings). */
export class S3ObjectStore implements ObjectStore {
  constructor(private readonly s3: S3Client) {}

  /** Multipart uploads that a later invocation goes on with (finalise's reports), by UploadId and ETags. */
  readonly parts: PartUploads = {
    create: async (ref, contentType, metadata) => {
      const { UploadId } = await this.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: ref.bucket,
          Key: ref.key,
          ContentType: contentType,
          ...(metadata ? { Metadata: { ...metadata } } : {}),
        }),
      );
      if (!UploadId) throw new Error(`no UploadId for s3://${ref.bucket}/${ref.key}`);
      return UploadId;
    },
    uploadPart: async (ref, uploadId, partNumber, body) => {
      const { ETag } = await this.s3.send(
        new UploadPartCommand({
          Bucket: ref.bucket,
          Key: ref.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
        }),
      );
      return ETag ?? '';
    },
    complete: async (ref, uploadId, etags) => {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: ref.bucket,
          Key: ref.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    },
    abort: async (ref, uploadId) => {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: ref.bucket, Key: ref.key, UploadId: uploadId }));
    },
    remove: async (ref) => {
      await this.s3.send(new DeleteObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    },
  };

  async head(ref: ObjectRef): Promise<ObjectHead> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key })).catch(gone(ref));
    return {
      size: head.ContentLength ?? 0,
      metadata: head.Metadata ?? {},
      ...(head.VersionId && head.VersionId !== 'null' ? { versionId: head.VersionId } : {}),
    };
  }

  async tags(ref: ObjectRef): Promise<Record<string, string>> {
    const { TagSet = [] } = await this.s3.send(new GetObjectTaggingCommand({ Bucket: ref.bucket, Key: ref.key }));
    return Object.fromEntries(TagSet.map((tag) => [tag.Key ?? '', tag.Value ?? '']));
  }

  async *read(ref: ObjectRef, range?: { start: number; end: number }): AsyncIterable<Uint8Array> {
    const object = await this.s3
      .send(
        new GetObjectCommand({
          Bucket: ref.bucket,
          Key: ref.key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      )
      .catch(gone(ref));
    yield* object.Body as Readable;
  }

  async move(from: ObjectRef, to: ObjectRef, metadata?: Readonly<Record<string, string>>): Promise<boolean> {
    let source: ObjectHead;
    try {
      source = await this.head(from);
    } catch (error) {
      if (!isMissing(error)) throw error;
      // Moved already by an earlier try of the same step?
      return this.head(to).then(
        () => true,
        (missing: unknown) => {
          if (isMissing(missing)) return false;
          throw missing;
        },
      );
    }
    await this.copyObject(from, to, source, metadata);
    await this.s3.send(new DeleteObjectCommand({ Bucket: from.bucket, Key: from.key }));
    return true;
  }

  async copy(from: ObjectRef, to: ObjectRef): Promise<void> {
    await this.copyObject(from, to, await this.head(from));
  }

  private async copyObject(
    from: ObjectRef,
    to: ObjectRef,
    source: ObjectHead,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<void> {
    // New metadata is added to the object's own (REPLACE is the only way to change it in a copy).
    const replace = metadata
      ? { MetadataDirective: 'REPLACE' as const, Metadata: { ...source.metadata, ...metadata } }
      : {};
    if (source.size <= SINGLE_COPY_LIMIT) {
      await this.s3.send(
        new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from), ...replace }),
      );
    } else {
      await this.copyInParts(from, to, source.size, { ...source.metadata, ...metadata });
    }
  }

  private async copyInParts(from: ObjectRef, to: ObjectRef, size: number, metadata: Readonly<Record<string, string>>) {
    const { UploadId } = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, Metadata: { ...metadata } }),
    );
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let start = 0, part = 1; start < size; start += COPY_PART_BYTES, part++) {
      const end = Math.min(size, start + COPY_PART_BYTES) - 1;
      const { CopyPartResult } = await this.s3.send(
        new UploadPartCopyCommand({
          Bucket: to.bucket,
          Key: to.key,
          UploadId,
          PartNumber: part,
          CopySource: copySource(from),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ ETag: CopyPartResult?.ETag ?? '', PartNumber: part });
    }
    await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: to.bucket,
        Key: to.key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  }

  async put(ref: ObjectRef, body: string, contentType: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: ref.bucket, Key: ref.key, Body: body, ContentType: contentType }),
    );
  }

  upload(ref: ObjectRef, contentType: string): TextUpload {
    const body = new PassThrough();
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: ref.bucket, Key: ref.key, Body: body, ContentType: contentType },
    });
    const done = upload.done();
    // Reported by end(); a failure before then is seen there, not as an unhandled rejection.
    done.catch(() => undefined);
    return {
      write: async (text) => {
        if (!body.write(text)) await Promise.race([once(body, 'drain'), done]);
      },
      end: async () => {
        body.end();
        await done;
      },
      abort: async () => {
        await upload.abort().catch(() => undefined);
        body.destroy();
      },
    };
  }
}
