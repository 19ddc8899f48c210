/** An object in a bucket: S3 on AWS, the embedded S3 locally. */
export interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
}

export interface ObjectHead {
  readonly size: number;
  /** User metadata, keys without `x-amz-meta-`. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly versionId?: string;
}

/** The port to object storage, as the file use cases need it. */
export interface ObjectStore {
  head(ref: ObjectRef): Promise<ObjectHead>;
  tags(ref: ObjectRef): Promise<Readonly<Record<string, string>>>;
  /** The object's bytes, streamed; `range` is inclusive, as in HTTP. */
  read(ref: ObjectRef, range?: { start: number; end: number }): AsyncIterable<Uint8Array>;
}
