/** S3 user metadata is US-ASCII and at most 2 KB in all: values are kept readable but safe. */
export const metadataValue = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 1024);

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

/** The reading half of the object store: all that classification needs. */
export interface ObjectReader {
  head(ref: ObjectRef): Promise<ObjectHead>;
  tags(ref: ObjectRef): Promise<Readonly<Record<string, string>>>;
  /** The object's bytes, streamed; `range` is inclusive, as in HTTP. */
  read(ref: ObjectRef, range?: { start: number; end: number }): AsyncIterable<Uint8Array>;
}

/** The port to object storage, as the file use cases need it. */
export interface ObjectStore extends ObjectReader {
  /**
   * Moves an object (copy, then delete the source), replacing its user metadata when `metadata` is given.
   * Safe to repeat: when the source is gone and the target is there, the move is done.
   * @returns false when neither is there.
   */
  move(from: ObjectRef, to: ObjectRef, metadata?: Readonly<Record<string, string>>): Promise<boolean>;
  /** Copies an object, metadata included (in parts when over 5 GiB). @throws File.Gone when it is not there. */
  copy(from: ObjectRef, to: ObjectRef): Promise<void>;
  /** Writes a small object whole. */
  put(ref: ObjectRef, body: string, contentType: string): Promise<void>;
  /** Writes a large object as its text arrives, in memory that does not grow with it. */
  upload(ref: ObjectRef, contentType: string): TextUpload;
  /**
   * Multipart uploads that go on across invocations. A store without them (a local benchmark's) finalises a
   * file in one invocation. @default none
   */
  readonly parts?: PartUploads;
}

/**
 * A multipart upload held open between invocations by its id and its parts' ETags (S3: every part but the
 * last at least 5 MiB, at most 10,000 parts).
 */
export interface PartUploads {
  /** @returns the upload's id. `metadata` is the finished object's user metadata. */
  create(ref: ObjectRef, contentType: string, metadata?: Readonly<Record<string, string>>): Promise<string>;
  /** @returns the part's ETag. */
  uploadPart(ref: ObjectRef, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  /** Joins the parts, numbered from 1 in the order of `etags`. */
  complete(ref: ObjectRef, uploadId: string, etags: readonly string[]): Promise<void>;
  abort(ref: ObjectRef, uploadId: string): Promise<void>;
  /** Deletes an object (a carried partial part); none there is fine. */
  remove(ref: ObjectRef): Promise<void>;
}

/** A text object being written: `write` backs up when the store is slower; `end` completes it. */
export interface TextUpload {
  write(text: string): Promise<void>;
  end(): Promise<void>;
  /** Stops and discards the upload. */
  abort(): Promise<void>;
}
