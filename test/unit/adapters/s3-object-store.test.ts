import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { S3ObjectStore } from '../../../lambdas/adapters/aws/s3-object-store';

/**
 * The copy source of a move on AWS: S3 wants it URL-encoded and decodes it, so every key S3 allows must come
 * back whole (the embedded S3 decodes it the same way: test/integration/awkward-names.test.ts).
 */
describe('S3ObjectStore on AWS', () => {
  const s3 = mockClient(S3Client);
  afterEach(() => s3.reset());

  it.each([
    'incoming/acme/users_acme_20261124_001;x.csv',
    'incoming/acme/users ,:#&?@=$+%x.csv',
    'incoming/acme/users_%2B_%25.csv',
    'incoming/acme/ünïcødé 日本.csv',
    "incoming/acme/it's (1)!*~.csv",
  ])('moves %j with a copy source S3 decodes back to the key', async (key) => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, Metadata: {} });
    s3.on(CopyObjectCommand).resolves({});
    s3.on(DeleteObjectCommand).resolves({});
    const store = new S3ObjectStore(new S3Client({ region: 'eu-west-1' }));
    await store.move({ bucket: 'landing', key }, { bucket: 'archive', key: `users/${key}` });
    const [copy] = s3.commandCalls(CopyObjectCommand);
    const source = copy!.args[0].input.CopySource!;
    expect(source).toMatch(/^[A-Za-z0-9\-._~!*'()%/]+$/); // nothing a header or a URL would misread
    expect(decodeURIComponent(source)).toBe(`landing/${key}`);
    expect(s3.commandCalls(DeleteObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'landing', Key: key });
  });
});
