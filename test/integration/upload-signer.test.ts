import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { S3UploadSigner } from '../../lambdas/adapters/aws/s3-upload-signer';
import { presignedUpload } from '../../lambdas/core/operations/uploads';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { UPLOAD_URL_SECONDS } from '../../lambdas/ops-api/contract';

/**
 * Pre-signed uploads against the embedded S3 (s3rver): a client with nothing but the URL puts a file in a
 * partner's landing folder. s3rver 3.7 checks a SigV4 query's parameters, its access key and its expiry, but not
 * its signature (lib/middleware/authentication.js: "Signature version 4 calculation is unimplemented"): the last
 * test pins that, so a tampered signature is refused only by S3 itself.
 */
const BUCKET = 'landing';
const PREFIX = 'incoming/';

describe('S3UploadSigner on the embedded S3', () => {
  let s3: LocalS3;
  let client: S3Client;
  const created: { bucket: string; key: string; size: number }[] = [];
  const upload = (partner: string, name: string, signer = new S3UploadSigner(client)) =>
    presignedUpload({ signer, landingBucket: BUCKET, landingPrefix: PREFIX }, { partner, name });
  const put = (url: string, headers: Record<string, string>, body: Uint8Array) =>
    fetch(url, { method: 'PUT', headers, body });
  const stored = async (key: string) =>
    (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray();
  const keys = async () =>
    ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key);

  beforeAll(async () => {
    s3 = await startLocalS3([BUCKET]);
    client = s3.client();
    s3.onObjectCreated((object) => created.push(object));
  });
  afterAll(async () => {
    await s3?.close();
  });

  it("a PUT to the URL stores the bytes at incoming/<partner>/<name>, an Object Created like SFTP's", async () => {
    const name = 'users_acme_20261124_001 (copy) +1.csv';
    const body = Buffer.from('customer_id,first_name\nC1,Ada\n');
    const answer = await upload('acme', name);
    expect(answer.method).toBe('PUT');
    expect(answer.headers).toEqual({});
    const response = await put(answer.url, answer.headers, body);
    expect(response.status).toBe(200);
    expect(Buffer.from(await stored(`incoming/acme/${name}`))).toEqual(body);
    expect(created).toContainEqual({ bucket: BUCKET, key: `incoming/acme/${name}`, size: body.byteLength });
  });

  it('signs only the host and carries no checksum, whatever the client checksums by default', async () => {
    // A client as on Lambda: default checksums (WHEN_SUPPORTED), which would put the CRC32 of no body in the URL.
    const lambdaLike = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      const answer = await upload('acme', 'transactions_acme_20261124_001.jsonl.gz', new S3UploadSigner(lambdaLike));
      const query = new URL(answer.url).searchParams;
      expect(query.get('X-Amz-SignedHeaders')).toBe('host');
      expect(query.get('X-Amz-Expires')).toBe(String(UPLOAD_URL_SECONDS));
      expect([...query.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
      const body = Buffer.from([0x1f, 0x8b, 1, 2, 3]);
      expect((await put(answer.url, answer.headers, body)).status).toBe(200);
      expect(Buffer.from(await stored('incoming/acme/transactions_acme_20261124_001.jsonl.gz'))).toEqual(body);
    } finally {
      lambdaLike.destroy();
    }
  });

  it('an expired URL is refused and stores nothing', async () => {
    const signedLongAgo = new S3UploadSigner(client, () => new Date(Date.now() - (UPLOAD_URL_SECONDS + 60) * 1000));
    const answer = await upload('acme', 'users_acme_20261124_002.csv', signedLongAgo);
    const response = await put(answer.url, answer.headers, Buffer.from('x'));
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('Request has expired');
    expect(await keys()).not.toContain('incoming/acme/users_acme_20261124_002.csv');
  });

  it('a URL whose credential was changed is refused', async () => {
    const answer = await upload('acme', 'users_acme_20261124_003.csv');
    const url = new URL(answer.url);
    url.searchParams.set(
      'X-Amz-Credential',
      (url.searchParams.get('X-Amz-Credential') ?? '').replace('S3RVER', 'OTHER'),
    );
    const response = await put(url.toString(), answer.headers, Buffer.from('x'));
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('InvalidAccessKeyId');
    expect(await keys()).not.toContain('incoming/acme/users_acme_20261124_003.csv');
  });

  it('s3rver takes a URL whose signature was changed (S3 refuses it): the signature is not verified locally', async () => {
    const answer = await upload('acme', 'users_acme_20261124_004.csv');
    const url = new URL(answer.url);
    url.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    expect((await put(url.toString(), answer.headers, Buffer.from('x'))).status).toBe(200);
  });
});
