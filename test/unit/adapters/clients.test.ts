import { asTransient } from '../../../lambdas/adapters/aws/clients';

const awsError = (name: string, status: number, extra: object = {}) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra });

describe('asTransient', () => {
  it.each([
    ['a 5xx', awsError('InternalError', 500)],
    ['throttling', awsError('ThrottlingException', 400)],
    ['DynamoDB capacity', awsError('ProvisionedThroughputExceededException', 400)],
    ['S3 SlowDown', awsError('SlowDown', 503)],
    ['an error the SDK marks retryable', awsError('Odd', 400, { $retryable: {} })],
  ])('turns %s into Pipeline.Transient, keeping what happened', (_case, error) => {
    const mapped = asTransient(error) as Error;
    expect(mapped.name).toBe('Pipeline.Transient');
    expect(mapped.message).toContain(error.name);
  });

  it.each([
    ['a missing object', awsError('NoSuchKey', 404)],
    ['access denied', awsError('AccessDenied', 403)],
    ['a plain error', new Error('bug')],
  ])('leaves %s as it is (the state fails, for a redrive)', (_case, error) => {
    expect(asTransient(error)).toBe(error);
  });
});
