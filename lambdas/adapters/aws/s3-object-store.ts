import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { ObjectHead, ObjectRef, ObjectStore } from '../../core/files/object-store';

/** The object-store port on S3 (and on the embedded S3 locally, with the same client settings). */
export class S3ObjectStore implements ObjectStore {
  constructor(private readonly s3: S3Client) {}

  async head(ref: ObjectRef): Promise<ObjectHead> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
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
    const object = await this.s3.send(
      new GetObjectCommand({
        Bucket: ref.bucket,
        Key: ref.key,
        ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }),
    );
    yield* object.Body as Readable;
  }
}
