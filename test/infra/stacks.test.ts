import { Match, Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type IngestionApp } from '../../bin/ingestion-app';
import { FILE_INGESTION_ASL } from '../../lib/constructs/ingestion-workflow';

const CONTEXT = {
  crmBaseUrl: 'https://crm.example.com',
  partners: [
    {
      name: 'acme',
      publicKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfakeKeyForTemplateTestsOnly00000000000000 acme'],
    },
  ],
  alarmEmail: 'ops@example.com',
};

describe('the stacks', () => {
  let built: IngestionApp;
  let data: Template;
  let workflow: Template;
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-out-'));

  beforeAll(() => {
    built = buildApp(CONTEXT, { outdir });
    // cdk-nag (AwsSolutions) runs at synthesis: any finding not acknowledged with a reason fails it.
    built.app.synth();
    data = Template.fromStack(built.stateful);
    workflow = Template.fromStack(built.stateless);
  }, 120_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('encrypts, versions and closes every data bucket, and refuses plain HTTP', () => {
    const buckets = data.findResources('AWS::S3::Bucket');
    expect(Object.keys(buckets)).toHaveLength(4);
    for (const [id, bucket] of Object.entries(buckets)) {
      const props = (bucket as { Properties: Record<string, unknown> }).Properties;
      expect(props.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      const algorithm = (
        props.BucketEncryption as {
          ServerSideEncryptionConfiguration: { ServerSideEncryptionByDefault: { SSEAlgorithm: string } }[];
        }
      ).ServerSideEncryptionConfiguration[0]!.ServerSideEncryptionByDefault.SSEAlgorithm;
      expect(algorithm).toBe(id.includes('AccessLogs') ? 'AES256' : 'aws:kms');
      if (!id.includes('AccessLogs')) expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    }
    const policies = data.findResources('AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(4);
    for (const policy of Object.values(policies)) {
      expect(JSON.stringify(policy)).toContain('"aws:SecureTransport":"false"');
    }
    // Object Created events (multipart uploads included) go to EventBridge, where the workflow's rule is.
    data.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: 'StorageLandingB13DAC19' },
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  it('moves archived files to Glacier and expires old versions, as configured', () => {
    data.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Transitions: [{ StorageClass: 'GLACIER', TransitionInDays: 30 }],
            NoncurrentVersionExpiration: { NoncurrentDays: 90 },
          }),
        ]),
      },
    });
    const other = Template.fromStack(
      buildApp({ ...CONTEXT, archiveTransitionDays: 7, archiveNoncurrentExpiryDays: 14 }, { nag: false }).stateful,
    );
    other.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Transitions: [{ StorageClass: 'GLACIER', TransitionInDays: 7 }],
            NoncurrentVersionExpiration: { NoncurrentDays: 14 },
          }),
        ]),
      },
    });
  });

  it('keeps the tables recoverable and encrypted with the key, with TTL', () => {
    data.resourceCountIs('AWS::DynamoDB::Table', 2);
    data.allResourcesProperties('AWS::DynamoDB::Table', {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
    data.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('gives the call queue a KMS key and a dead-letter queue', () => {
    data.resourceCountIs('AWS::SQS::Queue', 2);
    data.allResourcesProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue() });
    data.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 10 },
      VisibilityTimeout: 720,
    });
  });

  it('serves SFTP with a modern security policy and confines each partner to their own folder', () => {
    data.hasResourceProperties('AWS::Transfer::Server', {
      Protocols: ['SFTP'],
      EndpointType: 'PUBLIC',
      SecurityPolicyName: 'TransferSecurityPolicy-2024-01',
      LoggingRole: Match.anyValue(),
    });
    data.hasResourceProperties('AWS::Transfer::User', {
      UserName: 'acme',
      HomeDirectoryType: 'LOGICAL',
      HomeDirectoryMappings: [
        { Entry: '/', Target: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['/incoming/acme'])] }) },
      ],
      SshPublicKeys: CONTEXT.partners[0]!.publicKeys,
    });
    const partnerPolicy = Object.entries(data.findResources('AWS::IAM::Policy')).find(([id]) =>
      id.includes('Partneracme'),
    );
    const statements = JSON.stringify(partnerPolicy?.[1]);
    expect(statements).toContain('/incoming/acme/*');
    expect(statements).toContain('"s3:prefix":["incoming/acme/*","incoming/acme/","incoming/acme"]');
    expect(statements).not.toMatch(/"s3:\*"|"Resource":"\*"/);

    const inVpc = Template.fromStack(
      buildApp(
        {
          ...CONTEXT,
          sftpEndpoint: 'vpc',
          sftpVpc: { vpcId: 'vpc-0abc1234def567890', subnetIds: ['subnet-0123456789abcdef0'] },
        },
        { nag: false },
      ).stateful,
    );
    inVpc.hasResourceProperties('AWS::Transfer::Server', {
      EndpointType: 'VPC',
      EndpointDetails: { VpcId: 'vpc-0abc1234def567890', SubnetIds: ['subnet-0123456789abcdef0'] },
    });
  });

  it('runs every Lambda on Node.js 22, arm64, with source maps and a log group with retention', () => {
    const functions = workflow.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(6);
    workflow.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Environment: {
        Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps', CRM_CALLS_PER_MINUTE: '1000' }),
      },
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
    workflow.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90, KmsKeyId: Match.anyValue() });
    // The CRM token is read from Secrets Manager, never put in the environment.
    expect(JSON.stringify(functions)).not.toContain('CRM_API_TOKEN"');
    workflow.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ CRM_API_TOKEN_SECRET_ARN: Match.anyValue() }) },
    });
  });

  it('feeds the dispatcher from the queue with partial batch responses and a maximum concurrency', () => {
    workflow.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 8 },
    });
  });

  it('deploys the same state machine file the tests execute, logging without execution data', () => {
    const [machine] = Object.values(workflow.findResources('AWS::StepFunctions::StateMachine')) as {
      Properties: {
        DefinitionS3Location: { Key: string };
        DefinitionSubstitutions: Record<string, unknown>;
        LoggingConfiguration: unknown;
      };
    }[];
    // The definition is the file itself, uploaded as an asset; CloudFormation fills in the placeholders.
    const asset = join(outdir, `asset.${machine!.Properties.DefinitionS3Location.Key}`);
    expect(readFileSync(asset, 'utf8')).toBe(readFileSync(FILE_INGESTION_ASL, 'utf8'));
    const placeholders = [...readFileSync(FILE_INGESTION_ASL, 'utf8').matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    expect(Object.keys(machine!.Properties.DefinitionSubstitutions).sort()).toEqual([...new Set(placeholders)].sort());
    expect(machine!.Properties.DefinitionSubstitutions).toMatchObject({
      RetryLaterAttempts: '3',
      RetryLaterDelaySeconds: '60',
      PhaseCheckSeconds: '900',
    });
    expect(machine!.Properties.LoggingConfiguration).toMatchObject({ IncludeExecutionData: false, Level: 'ALL' });
    workflow.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: Match.objectLike({ object: { key: [{ prefix: 'incoming/' }] } }),
      },
    });
    workflow.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
  });

  it('alarms on the DLQ, failed executions, 429s, rejected credentials and old calls, to SNS', () => {
    const alarms = Object.values(workflow.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { MetricName?: string; AlarmActions: unknown[] };
    }[];
    expect(alarms.map((a) => a.Properties.MetricName).sort()).toEqual([
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'CrmAuthRejected',
      'CrmThrottled',
      'ExecutionsFailed',
    ]);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toHaveLength(1);
    workflow.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    workflow.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const dashboard = JSON.stringify(workflow.findResources('AWS::CloudWatch::Dashboard'));
    for (const widget of [
      'Records per minute by outcome',
      'CRM calls per minute against the limit',
      'CRM latency',
      'Calls by operation and status',
      'Call queue: depth and oldest message',
      'Dead-letter queue',
      'File executions',
    ]) {
      expect(dashboard).toContain(widget);
    }
  });

  it('keeps the logical IDs of the stateful resources (a change would replace them, and lose their data)', () => {
    const ids = (type: string) => Object.keys(data.findResources(type)).sort();
    expect(ids('AWS::S3::Bucket')).toEqual([
      'StorageAccessLogs96FB524C',
      'StorageArchiveEF4C9845',
      'StorageFailedB1525DD7',
      'StorageLandingB13DAC19',
    ]);
    expect(ids('AWS::DynamoDB::Table')).toEqual(['FileRegistryLedgerF2FA9468', 'FileRegistryLimiterA30A68A2']);
    expect(ids('AWS::SQS::Queue')).toEqual(['CallQueueCallsC8CD0A33', 'CallQueueDeadLetters5D95EC0C']);
    expect(ids('AWS::KMS::Key')).toEqual(['DataKey17AFBB84']);
    expect(ids('AWS::Transfer::Server')).toEqual(['LandingZoneServer04F24FD9']);
    expect(ids('AWS::SecretsManager::Secret')).toEqual(['CrmToken249583F0']);
  });
});

describe('the deployment configuration', () => {
  it('names a bad context key', () => {
    expect(() => buildApp({ ...CONTEXT, partners: [{ name: 'Acme!', publicKeys: [] }] }, { nag: false })).toThrow(
      /context partners\.0\.name: 3-32 of a-z, 0-9 and -/,
    );
    expect(() => buildApp({ ...CONTEXT, sftpEndpoint: 'vpc' }, { nag: false })).toThrow(
      /context sftpVpc: required when sftpEndpoint is vpc/,
    );
    expect(() => buildApp({ partners: [] }, { nag: false })).toThrow(/crmBaseUrl \(CRM_BASE_URL\): required/);
  });
});
