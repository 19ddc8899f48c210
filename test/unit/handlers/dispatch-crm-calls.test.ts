import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { startCrmSimulator, type CrmSimulator } from '../../../lambdas/local/crm-simulator/crm-simulator';
import * as dynamodb from '@aws-sdk/lib-dynamodb';
import * as sqs from '@aws-sdk/client-sqs';
import * as secrets from '@aws-sdk/client-secrets-manager';
import { PassThrough } from 'node:stream';
import { awsClients } from '../../../lambdas/adapters/aws/clients';
import { dispatchCrmCallsContract } from '../../../lambdas/dispatch-crm-calls/contract';
import { awsDependencies, makeHandler } from '../../../lambdas/dispatch-crm-calls/make-handler';
import { redeliveryBackoffSeconds } from '../../../lambdas/core/crm/backoff';
import { customer } from '../../fixtures/crm-records';

type HandlerModule = { handler: ReturnType<typeof makeHandler> };
type Sdk = {
  dynamodb: typeof import('@aws-sdk/lib-dynamodb');
  sqs: typeof import('@aws-sdk/client-sqs');
  secrets: typeof import('@aws-sdk/client-secrets-manager');
};
const sdk: Sdk = { dynamodb, sqs, secrets };

/**
 * The handler built as its AWS entry builds it, from this environment (read by its contract), with the SDK
 * mocked; its logs and metrics are captured.
 */
async function loadHandler(
  env: Record<string, string>,
  configure: (sdk: Sdk, mocks: Mocks) => void,
  output: NodeJS.WritableStream,
) {
  const mocks = {
    dynamodb: mockClient(sdk.dynamodb.DynamoDBDocumentClient),
    sqs: mockClient(sdk.sqs.SQSClient),
    secrets: mockClient(sdk.secrets.SecretsManagerClient),
    sdk,
  };
  mocks.dynamodb.on(sdk.dynamodb.GetCommand).resolves({});
  mocks.dynamodb.on(sdk.dynamodb.PutCommand).resolves({});
  // The schedule's view: no file paused or cancelled.
  mocks.dynamodb.on(sdk.dynamodb.QueryCommand).resolves({ Items: [] });
  // The limiter's atomic slot update: answer as DynamoDB would for a schedule that is current.
  mocks.dynamodb
    .on(sdk.dynamodb.UpdateCommand)
    .callsFake((input: { ExpressionAttributeValues: Record<string, number> }) => ({
      Attributes: {
        nextSlotMs: input.ExpressionAttributeValues[':now']! + input.ExpressionAttributeValues[':interval']!,
      },
    }));
  mocks.sqs.on(sdk.sqs.ChangeMessageVisibilityCommand).resolves({});
  configure(sdk, mocks);
  const environment = dispatchCrmCallsContract.environment.read(env);
  const clients = awsClients({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const module = { handler: makeHandler(awsDependencies(environment, { clients, telemetry: { output } })) };
  return { module, mocks };
}

interface Mocks {
  dynamodb: ReturnType<typeof mockClient>;
  sqs: ReturnType<typeof mockClient>;
  secrets: ReturnType<typeof mockClient>;
  sdk: Sdk;
}

const FILE = 'c'.repeat(64);
const context = {
  functionName: 'crm-dispatch',
  functionVersion: '1',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:crm-dispatch',
  memoryLimitInMB: '512',
  awsRequestId: 'request-1',
  logGroupName: 'group',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

const sqsRecord = (messageId: string, body: unknown): SQSRecord =>
  ({
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { ApproximateReceiveCount: '2' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:calls',
    awsRegion: 'eu-west-1',
  }) as unknown as SQSRecord;

const callMessage = (batchIndex: number, records: object[]) => ({
  fileId: FILE,
  phase: 'ADD',
  batchIndex,
  operation: 'ADD_CUST',
  lines: records.map((_, i) => i + 2),
  records,
});

describe('dispatch-crm-calls handler (AWS SDK mocked, CRM simulator over HTTP)', () => {
  let sim: CrmSimulator;
  let output: PassThrough;
  let captured = '';
  const emitted = () => captured;
  const baseEnv = () => ({
    LEDGER_TABLE_NAME: 'ledger',
    LIMITER_TABLE_NAME: 'limiter',
    CRM_BASE_URL: sim.url,
    CRM_RETRY_ATTEMPTS: '1',
    CRM_RETRY_BASE_DELAY_MS: '1',
    CRM_RETRY_MAX_DELAY_MS: '2',
    CALL_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/calls',
  });
  const load = async (env: Record<string, string>, configure: (sdk: Sdk, mocks: Mocks) => void = () => undefined) =>
    loadHandler({ ...baseEnv(), ...env }, configure, output);
  const invoke = (module: HandlerModule, records: SQSRecord[]) =>
    module.handler({ Records: records } as SQSEvent, context) as Promise<SQSBatchResponse>;
  const puts = (mocks: Mocks, table: string) =>
    mocks.dynamodb
      .commandCalls(mocks.sdk.dynamodb.PutCommand)
      .filter((c) => (c.args[0].input as { TableName?: string }).TableName === table);

  beforeEach(async () => {
    sim = await startCrmSimulator({ customers: [customer('EXISTS')] });
    captured = '';
    output = new PassThrough();
    output.on('data', (chunk: Buffer) => (captured += chunk.toString()));
  });
  afterEach(async () => {
    await sim.close();
  });

  it('calls the CRM once per message, stores each record outcome, reports a malformed message as a failure', async () => {
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token });
    const result = await invoke(module, [
      sqsRecord('m1', callMessage(0, [customer('NEW'), customer('EXISTS')])),
      sqsRecord('m2', { ...callMessage(1, [customer('X')]), fileId: 'not-a-sha' }),
    ]);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm2' }]);
    const answer = puts(mocks, 'ledger')[0]?.args[0].input as { Item?: unknown } | undefined;
    expect(answer?.Item).toMatchObject({
      pk: `file#${FILE}`,
      sk: 'answer#ADD#000000000',
      operation: 'ADD_CUST',
      outcomes: JSON.stringify([
        [2, 'succeeded', 200, null, null],
        [3, 'update', 8006, '8006', 'CUSTOMER_EXISTS'],
      ]),
    });
    const slots = mocks.dynamodb
      .commandCalls(mocks.sdk.dynamodb.UpdateCommand)
      .filter((c) => (c.args[0].input as { TableName?: string }).TableName === 'limiter');
    expect(slots).toHaveLength(1);
    expect(sim.stats().callsAccepted).toBe(1);
    const output = emitted();
    expect(output).toContain('"CrmCalls"');
    expect(output).toContain('"Outcome":"update"');
    // Logs name files and batches, never the people in them.
    expect(output).not.toContain('example.com');
    expect(output).not.toContain('Alder');
  });

  /** The schedule's view with this file in flight under an operator's control. */
  const scheduled = (control: 'paused' | 'cancelled') => (sdk: Sdk, mocks: Mocks) => {
    mocks.dynamodb.on(sdk.dynamodb.QueryCommand).resolves({
      Items: [
        {
          pk: 'schedule',
          sk: `file#${FILE}`,
          fileId: FILE,
          name: 'users_acme_20261124_001.csv',
          partner: 'acme',
          kind: 'users',
          landedAt: '2026-11-24T00:00:00.000Z',
          state: 'sending',
          control,
          updatedAt: new Date().toISOString(),
        },
      ],
    });
    mocks.sqs
      .on(sdk.sqs.SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }] });
  };

  it("holds a paused file's call back: sent again hidden for a few seconds, no CRM call, nothing answered", async () => {
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token }, scheduled('paused'));
    const body = callMessage(0, [customer('NEW')]);
    const result = await invoke(module, [sqsRecord('m1', body)]);
    expect(result.batchItemFailures).toEqual([]);
    expect(sim.stats().callsAccepted).toBe(0);
    expect(puts(mocks, 'ledger')).toHaveLength(0);
    const resent = mocks.sqs.commandCalls(mocks.sdk.sqs.SendMessageBatchCommand);
    expect(resent).toHaveLength(1);
    const entry = (resent[0]!.args[0].input as { Entries: { MessageBody: string; DelaySeconds?: number }[] })
      .Entries[0]!;
    expect(JSON.parse(entry.MessageBody)).toEqual(body);
    expect(entry.DelaySeconds).toBe(5);
    expect(emitted()).toContain('"CallsHeld"');
  });

  it("answers a cancelled file's call CANCELLED without calling the CRM, and counts it", async () => {
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token }, scheduled('cancelled'));
    const first = {
      ...sqsRecord('m1', callMessage(3, [customer('NEW'), customer('EXISTS')])),
      attributes: { ApproximateReceiveCount: '1' },
    } as unknown as SQSRecord;
    const result = await invoke(module, [first]);
    expect(result.batchItemFailures).toEqual([]);
    expect(sim.stats().callsAccepted).toBe(0);
    const answer = puts(mocks, 'ledger')[0]?.args[0].input as { Item?: Record<string, unknown> } | undefined;
    expect(answer?.Item).toMatchObject({
      sk: 'answer#ADD#000000003',
      attempts: 0,
      outcomes: JSON.stringify([
        [2, 'failed', null, 'CANCELLED', 'cancelled by an operator before it was sent'],
        [3, 'failed', null, 'CANCELLED', 'cancelled by an operator before it was sent'],
      ]),
    });
    const counted = mocks.dynamodb
      .commandCalls(mocks.sdk.dynamodb.UpdateCommand)
      .filter((c) => (c.args[0].input as { Key?: { sk?: string } }).Key?.sk === 'phase#ADD');
    expect(counted).toHaveLength(1);
    expect(emitted()).toContain('"CallsCancelled"');
  });

  it("makes a cancelled file's call that may have reached the CRM before (a redelivery, or a held-back copy of one): never CANCELLED", async () => {
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token }, scheduled('cancelled'));
    const heldCopy = {
      ...sqsRecord('m2', callMessage(4, [customer('NEW')])),
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: { MayHaveBeenSent: { dataType: 'String', stringValue: 'true' } },
    } as unknown as SQSRecord;
    // sqsRecord() says ApproximateReceiveCount 2: a redelivery.
    const result = await invoke(module, [sqsRecord('m1', callMessage(3, [customer('OTHER')])), heldCopy]);
    expect(result.batchItemFailures).toEqual([]);
    expect(sim.stats().callsAccepted).toBe(2);
    const outcomes = puts(mocks, 'ledger').map(
      (c) => (c.args[0].input as unknown as { Item: { outcomes: string } }).Item.outcomes,
    );
    expect(outcomes.join()).not.toContain('CANCELLED');
  });

  it('skips a batch the ledger has already answered (a redelivery costs no API call)', async () => {
    // sqsRecord() says ApproximateReceiveCount 2: a redelivery, so the ledger is asked first.
    const { module } = await load({ CRM_API_TOKEN: sim.token }, (sdk, mocks) => {
      mocks.dynamodb.on(sdk.dynamodb.GetCommand, { TableName: 'ledger' }).resolves({ Item: { pk: `file#${FILE}` } });
    });
    const result = await invoke(module, [sqsRecord('m1', callMessage(0, [customer('NEW')]))]);
    expect(result.batchItemFailures).toEqual([]);
    expect(sim.stats().callsAccepted).toBe(0);
  });

  it('does not read the ledger before a first delivery (ApproximateReceiveCount 1)', async () => {
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token });
    const first = {
      ...sqsRecord('m1', callMessage(0, [customer('NEW')])),
      attributes: { ApproximateReceiveCount: '1' },
    } as SQSRecord;
    expect((await invoke(module, [first])).batchItemFailures).toEqual([]);
    const ledgerReads = mocks.dynamodb
      .commandCalls(mocks.sdk.dynamodb.GetCommand)
      .filter((c) => (c.args[0].input as { TableName?: string }).TableName === 'ledger');
    expect(ledgerReads).toHaveLength(0);
    expect(sim.stats().callsAccepted).toBe(1);
  });

  it('CRM unavailable: the message fails back to the queue with a back-off visibility, nothing is recorded', async () => {
    sim.setFaults({ serverErrorRate: 1 });
    const { module, mocks } = await load({ CRM_API_TOKEN: sim.token });
    const result = await invoke(module, [sqsRecord('m1', callMessage(0, [customer('NEW')]))]);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    const visibility = mocks.sqs.commandCalls(mocks.sdk.sqs.ChangeMessageVisibilityCommand)[0]?.args[0].input as
      { ReceiptHandle?: string; VisibilityTimeout?: number } | undefined;
    expect(visibility).toMatchObject({ ReceiptHandle: 'receipt-m1' });
    expect(visibility?.VisibilityTimeout).toBeGreaterThanOrEqual(1);
    expect(puts(mocks, 'ledger')).toHaveLength(0);
  });

  it('reads the token from Secrets Manager; a rejected token fails the message and counts CrmAuthRejected', async () => {
    const { module, mocks } = await load(
      { CRM_API_TOKEN_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm' },
      (sdk, m) => {
        m.secrets.on(sdk.secrets.GetSecretValueCommand).resolves({ SecretString: 'wrong-token' });
      },
    );
    const result = await invoke(module, [sqsRecord('m1', callMessage(0, [customer('NEW')]))]);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(mocks.secrets.commandCalls(mocks.sdk.secrets.GetSecretValueCommand)).toHaveLength(1);
    expect(emitted()).toContain('"CrmAuthRejected"');
    expect(sim.stats().unauthorized).toBe(1);
  });

  it('fails at start, naming the variable, when the environment is incomplete', async () => {
    await expect(load({ CRM_BASE_URL: 'not a url', CRM_API_TOKEN: 'x' })).rejects.toThrow(
      /Invalid environment: CRM_BASE_URL/,
    );
  });

  it('backs a redelivery off exponentially with full jitter, capped (from ten times the first retry delay)', () => {
    expect(redeliveryBackoffSeconds(1, 1000, () => 1)).toBe(10);
    expect(redeliveryBackoffSeconds(4, 1000, () => 1)).toBe(80);
    expect(redeliveryBackoffSeconds(20, 1000, () => 1)).toBe(900);
    expect(redeliveryBackoffSeconds(3, 1000, () => 0)).toBe(1);
  });
});
