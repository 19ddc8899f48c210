import { Match, Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type IngestionApp } from '../../bin/ingestion-app';
import { FILE_INGESTION_ASL } from '../../lambdas/contracts/infrastructure';
import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { FUNCTION_NAMES } from '../../lambdas/contracts/telemetry';
import { loadSettings } from '../../lambdas/core/config';
import { dispatchCrmCallsContract, dispatchWorstCaseSeconds } from '../../lambdas/dispatch-crm-calls/contract';
import { ROUTE_GROUPS } from '../../lambdas/ops-api/contract';
import { metricUseProblem, metricUses, SETTING_VARIABLES } from './contract-links';

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
            // A finalise slice's multipart report upload left by a failed file does not linger.
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          }),
          // What a finalise slice carries to the next is removed by finalise; a failed file's goes in a week.
          Match.objectLike({ Prefix: 'finalise/', ExpirationInDays: 7 }),
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
      VisibilityTimeout: Match.anyValue(),
    });
  });

  it("gives the dispatcher a timeout over one call's worst case, and the queue six times it as visibility", () => {
    const [dispatcher] = Object.values(
      workflow.findResources('AWS::Lambda::Function', {
        Properties: { Description: dispatchCrmCallsContract.description },
      }),
    ) as { Properties: { Timeout: number; Environment: { Variables: Record<string, unknown> } } }[];
    const [mapping] = Object.values(workflow.findResources('AWS::Lambda::EventSourceMapping')) as {
      Properties: { BatchSize: number; ScalingConfig: { MaximumConcurrency: number } };
    }[];
    // The worst case from what is deployed: the function's own settings, the event source's batch and concurrency.
    const variables = dispatcher!.Properties.Environment.Variables;
    const deployed = loadSettings(
      dispatchCrmCallsContract.environment.settings,
      Object.fromEntries(Object.entries(variables).filter(([, value]) => typeof value === 'string')) as Record<
        string,
        string
      >,
    );
    const callsInFlight = mapping!.Properties.BatchSize * mapping!.Properties.ScalingConfig.MaximumConcurrency;
    const worstCase = dispatchWorstCaseSeconds(deployed, callsInFlight);
    expect(variables).toHaveProperty('CRM_RETRY_ATTEMPTS', '6');
    expect(worstCase).toBe(529);
    expect(dispatcher!.Properties.Timeout).toBeGreaterThanOrEqual(worstCase);
    expect(dispatcher!.Properties.Timeout).toBeLessThanOrEqual(900);
    const [calls] = Object.values(
      data.findResources('AWS::SQS::Queue', { Properties: { RedrivePolicy: Match.anyValue() } }),
    ) as { Properties: { VisibilityTimeout: number } }[];
    expect(calls!.Properties.VisibilityTimeout).toBe(6 * dispatcher!.Properties.Timeout);
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
    // The workflow's five, the dispatcher, the report delivery, and the operations API's one per route group.
    const count = 7 + ROUTE_GROUPS.length;
    expect(Object.keys(functions)).toHaveLength(count);
    workflow.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
    // A setting reaches only the functions whose contract reads it: the call limit, the dispatcher and the
    // operations API (its ETAs and stats); the log level, all of them.
    const withSetting = (variable: string) =>
      Object.values(functions).filter((f) => JSON.stringify(f).includes(`"${variable}":`)).length;
    expect(withSetting('CRM_CALLS_PER_MINUTE')).toBe(1 + ROUTE_GROUPS.length);
    expect(withSetting('ACCEPTED_ENCODINGS')).toBe(3 + ROUTE_GROUPS.length);
    expect(withSetting('LOG_LEVEL')).toBe(count);
    expect(withSetting('ARCHIVE_TRANSITION_DAYS')).toBe(0);
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

  it('lets the functions that wake a waiting file (prepare, finalise, await-phase) and the dispatcher answer task tokens; a paused call may go back on the queue', () => {
    const policies = Object.entries(workflow.findResources('AWS::IAM::Policy'));
    const policyOf = (prefix: string) =>
      JSON.stringify(policies.filter(([id]) => id.startsWith(prefix)).map(([, policy]) => policy));
    for (const prefix of [
      'IngestionWorkflowPrepareFile',
      'IngestionWorkflowFinaliseFile',
      'IngestionWorkflowAwaitPhase',
      'CrmDispatch',
    ]) {
      expect({ prefix, sendsTaskSuccess: policyOf(prefix).includes('states:SendTaskSuccess') }).toEqual({
        prefix,
        sendsTaskSuccess: true,
      });
    }
    expect(policyOf('CrmDispatch')).toContain('sqs:SendMessage');
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

  it('alarms on the DLQ, failed executions, 429s, rejected credentials, stalled calls and undelivered reports, to SNS', () => {
    const alarms = Object.values(workflow.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { MetricName?: string; Metrics?: unknown[]; AlarmActions: unknown[] };
    }[];
    expect(alarms.map((a) => a.Properties.MetricName ?? 'metric math').sort()).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesVisible',
      'CrmAuthRejected',
      'CrmThrottled',
      'ExecutionsFailed',
      'metric math',
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
      'Partner sources: failed polls by reason',
      'Reports delivered to partners',
    ]) {
      expect(dashboard).toContain(widget);
    }
  });

  it('alarms when calls wait with none answered for stalledCallsAlarmMinutes, not on the age of a full backlog', () => {
    const stalled = (template: Template) =>
      Object.values(
        template.findResources('AWS::CloudWatch::Alarm', { Properties: { Metrics: Match.anyValue() } }),
      ) as {
        Properties: {
          EvaluationPeriods: number;
          DatapointsToAlarm: number;
          Threshold: number;
          TreatMissingData: string;
          Metrics: {
            Id: string;
            Expression?: string;
            MetricStat?: {
              Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] };
              Period: number;
              Stat: string;
            };
          }[];
        };
      }[];
    const [alarm] = stalled(workflow);
    expect(alarm!.Properties).toMatchObject({
      EvaluationPeriods: 30,
      DatapointsToAlarm: 30,
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    const queries = alarm!.Properties.Metrics;
    const expression = queries.find((query) => query.Expression)?.Expression ?? '';
    const stats = queries.flatMap((query) => (query.MetricStat ? [query.MetricStat] : []));
    // Waiting or in flight (the smallest count of each minute), and every answering status of every operation.
    expect(stats.filter((stat) => stat.Metric.Namespace === 'AWS/SQS').map((stat) => stat.Metric.MetricName)).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesNotVisible',
    ]);
    const answers = stats.filter((stat) => stat.Metric.MetricName === 'CrmCalls');
    const answering = answers.map((stat) =>
      stat.Metric.Dimensions.filter((d) => d.Name !== 'service')
        .map((d) => `${d.Name}=${String(d.Value)}`)
        .join(','),
    );
    expect(answering.sort()).toEqual(
      ['ADD_CUST', 'ADD_TRX', 'UPD_CUST'].flatMap((op) => [`Operation=${op},Status=200`, `Operation=${op},Status=400`]),
    );
    for (const stat of stats) expect(stat.Period).toBe(60);
    expect(stats.filter((stat) => stat.Metric.Namespace === 'AWS/SQS').every((stat) => stat.Stat === 'Minimum')).toBe(
      true,
    );
    expect(answers.every((stat) => stat.Stat === 'Sum')).toBe(true);
    // No answer metric at all is 0 answers: it must not keep the alarm quiet.
    for (const query of queries.filter((q) => q.MetricStat)) expect(expression).toContain(`FILL(${query.Id}, 0)`);
    expect(expression).toMatch(/^IF\(\(FILL\(waiting, 0\) \+ FILL\(inFlight, 0\)\) > 0 AND \(.*\) == 0, 1, 0\)$/);
    expect(JSON.stringify(workflow.findResources('AWS::CloudWatch::Alarm'))).not.toContain(
      'ApproximateAgeOfOldestMessage',
    );

    const [other] = stalled(
      Template.fromStack(buildApp({ ...CONTEXT, stalledCallsAlarmMinutes: 90 }, { nag: false }).stateless),
    );
    expect(other!.Properties).toMatchObject({ EvaluationPeriods: 90, DatapointsToAlarm: 90 });
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

const FINGERPRINT = `SHA256:${'A'.repeat(43)}`;
const SOURCES_CONTEXT = {
  ...CONTEXT,
  pollSources: [
    {
      name: 'acme-sftp',
      partner: 'acme',
      host: 'sftp.acme.example',
      username: 'crm',
      hostKeyFingerprint: FINGERPRINT,
      remoteDir: '/outbox',
      resultsDir: '/results',
    },
    {
      name: 'globex',
      partner: 'globex',
      host: 'files.globex.example',
      port: 2222,
      username: 'collector',
      hostKeyFingerprint: FINGERPRINT,
      intervalMinutes: 15,
      completeWhen: 'marker',
      afterCollect: 'leave',
      secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:globex-sftp-AbC123',
    },
  ],
  pollerVpc: {
    vpcId: 'vpc-0abc1234',
    subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  },
};

describe('partner sources and reports', () => {
  let built: IngestionApp;
  let data: Template;
  let stack: Template;
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-out-'));
  const poller = () => {
    const found = Object.entries(stack.findResources('AWS::Lambda::Function')).find(([id]) =>
      id.startsWith('SourcePollingPoller'),
    );
    return found![1] as { Properties: { Environment: { Variables: Record<string, unknown> }; VpcConfig?: unknown } };
  };
  const policyOf = (prefix: string) =>
    JSON.stringify(Object.entries(stack.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith(prefix)));

  beforeAll(() => {
    built = buildApp(SOURCES_CONTEXT, { outdir });
    built.app.synth();
    data = Template.fromStack(built.stateful);
    stack = Template.fromStack(built.stateless);
  }, 120_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('polls each source on its own schedule, naming it, with no retry but the next poll', () => {
    stack.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Input: '{"source":"acme-sftp"}', RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    stack.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: [Match.objectLike({ Input: '{"source":"globex"}' })],
    });
    const sources = JSON.stringify(poller().Properties.Environment.Variables.POLL_SOURCES);
    for (const text of ['acme-sftp', 'sftp.acme.example', '/outbox', 'globex-sftp-AbC123', 'marker', 'leave']) {
      expect(sources).toContain(text);
    }
  });

  it('runs the poller in the configured subnets, with egress only to the SFTP ports and HTTPS', () => {
    expect(poller().Properties.VpcConfig).toEqual({
      SubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
      SecurityGroupIds: [expect.anything()],
    });
    const [group] = Object.values(stack.findResources('AWS::EC2::SecurityGroup')) as {
      Properties: {
        SecurityGroupEgress: { FromPort: number; ToPort: number; CidrIp: string }[];
        SecurityGroupIngress?: unknown;
      };
    }[];
    expect(group!.Properties.SecurityGroupEgress.map((rule) => rule.FromPort).sort()).toEqual([22, 2222, 443].sort());
    expect(group!.Properties.SecurityGroupIngress).toBeUndefined();
  });

  it("lets the poller write only its partners' folders, its own ledger items, and its sources' secrets", () => {
    const policy = policyOf('SourcePollingPoller');
    expect(policy).toContain('/incoming/acme/*');
    expect(policy).toContain('/incoming/globex/*');
    expect(policy).not.toContain('"s3:*"');
    expect(policy).not.toContain('s3:DeleteObject');
    expect(policy).toContain('"dynamodb:LeadingKeys":["source#*"]');
    expect(policy).toContain('arn:aws:secretsmanager:eu-west-1:123456789012:secret:globex-sftp-AbC123');
    // The secret of a source with none named is made in the data stack, with the data key.
    expect(
      Object.keys(data.findResources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('SourceSecret')),
    ).toHaveLength(1);
    data.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('source acme-sftp'),
      KmsKeyId: Match.anyValue(),
    });
  });

  it('alarms per source when its polls fail in a row, and when the poller crashes or times out', () => {
    stack.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: Match.anyValue() }],
      AlarmActions: [Match.anyValue()],
    });
    for (const [source, minutes] of [
      ['acme-sftp', 5],
      ['globex', 15],
    ] as const) {
      stack.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'CrmIngestion',
        MetricName: 'PollFailed',
        Dimensions: Match.arrayWith([
          { Name: 'Source', Value: source },
          { Name: 'service', Value: 'poll-source' },
        ]),
        Period: minutes * 60,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        Threshold: 1,
        AlarmActions: [Match.anyValue()],
      });
    }
  });

  it('every alarm and dashboard widget names a metric a handler emits, with the dimensions it emits', () => {
    const uses = metricUses(stack);
    // Alarms (429s, rejected credentials, one per source) and the dashboard's widgets.
    expect(uses.filter((use) => use.where.startsWith('alarm')).length).toBeGreaterThanOrEqual(4);
    // The stalled-calls alarm's metric math reads the dispatcher's answering calls, each with its dimensions.
    expect(uses.filter((use) => /^alarm .*StalledCalls/.test(use.where) && use.metricName === 'CrmCalls')).toHaveLength(
      6,
    );
    expect(uses.filter((use) => use.where.startsWith('dashboard')).length).toBeGreaterThanOrEqual(14);
    expect(uses.map(metricUseProblem).filter(Boolean)).toEqual([]);
  });

  it('gives each function only the environment its contract reads: its resources and its settings', () => {
    // The steps that read a whole file get a full vCPU (their work is one thread parsing: docs/development.md).
    for (const name of ['classify-file', 'prepare-file', 'finalise-file'] as const) {
      expect(FUNCTION_CONTRACTS[name].memoryMb).toBe(1769);
    }
    const functions = Object.values(stack.findResources('AWS::Lambda::Function')) as {
      Properties: {
        Handler: string;
        Description?: string;
        Timeout: number;
        MemorySize: number;
        Environment?: { Variables: object };
      };
    }[];
    const ours = functions.filter((fn) => fn.Properties.Handler === 'index.handler');
    // One function per contract, but the operations API's: one per route group, its description naming the group.
    expect(ours).toHaveLength(FUNCTION_NAMES.length - 1 + ROUTE_GROUPS.length);
    for (const contract of Object.values(FUNCTION_CONTRACTS)) {
      const deployed = ours.filter((candidate) => candidate.Properties.Description?.startsWith(contract.description));
      expect({ name: contract.name, functions: deployed.length }).toEqual({
        name: contract.name,
        functions: contract.name === 'ops-api' ? ROUTE_GROUPS.length : 1,
      });
      for (const fn of deployed) {
        expect(fn.Properties.Timeout).toBe(contract.timeoutSeconds);
        expect({ name: contract.name, memory: fn.Properties.MemorySize }).toEqual({
          name: contract.name,
          memory: contract.memoryMb,
        });
        const variables = Object.keys(fn.Properties.Environment?.Variables ?? {}).filter(
          (name) => name !== 'NODE_OPTIONS',
        );
        const settings = variables.filter(
          (name) => SETTING_VARIABLES.has(name) && !(name in contract.environment.resources.shape),
        );
        expect({ name: contract.name, settings: settings.map((name) => SETTING_VARIABLES.get(name)).sort() }).toEqual({
          name: contract.name,
          settings: [...contract.environment.settings].sort(),
        });
        for (const name of variables.filter((variable) => !settings.includes(variable))) {
          expect({ name: contract.name, variable: name, known: name in contract.environment.resources.shape }).toEqual({
            name: contract.name,
            variable: name,
            known: true,
          });
        }
      }
    }
  });

  it('delivers reports on file.completed, retried for hours, then to an alarmed dead-letter queue', () => {
    stack.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['crm-ingestion'], 'detail-type': ['file.completed'] },
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumEventAgeInSeconds: 21600, MaximumRetryAttempts: 20 },
          DeadLetterConfig: { Arn: Match.anyValue() },
        }),
      ],
    });
    const policy = policyOf('PartnerReportsDeliver');
    expect(policy).toContain('/incoming/*/reports/*');
    // Only the secrets of sources with a results folder (globex has none).
    expect(policy).toContain('SourceSecretacmesftp');
    expect(policy).not.toContain('globex-sftp');
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
    const [acme] = SOURCES_CONTEXT.pollSources;
    const { hostKeyFingerprint: _unpinned, ...unpinned } = acme!;
    expect(() => buildApp({ ...CONTEXT, pollSources: [unpinned] }, { nag: false })).toThrow(
      /context pollSources\.0\.hostKeyFingerprint/,
    );
    expect(() => buildApp({ ...CONTEXT, pollSources: [acme, acme] }, { nag: false })).toThrow(
      /context pollSources: source acme-sftp is listed twice/,
    );
    expect(() => buildApp({ ...CONTEXT, stalledCallsAlarmMinutes: 0 }, { nag: false })).toThrow(
      /context stalledCallsAlarmMinutes/,
    );
    expect(() => buildApp({ ...CONTEXT, oldestCallAlarmMinutes: 30 }, { nag: false })).toThrow(
      /context oldestCallAlarmMinutes: renamed to stalledCallsAlarmMinutes/,
    );
  });

  it("refuses settings under which one CRM call can outlast the dispatcher's timeout", () => {
    // 21 attempts of up to 2 minutes each cannot fit in any Lambda's 15 minutes.
    expect(() => buildApp({ ...CONTEXT, crmRetryAttempts: 20, crmTimeoutMs: 120_000 }, { nag: false })).toThrow(
      /one CRM call may take \d+ s .* over the dispatcher's 600 s timeout/,
    );
    // 1000 dispatchers x 10 messages wait up to 1 minute each for a slot at 1000 calls a minute.
    expect(() => buildApp({ ...CONTEXT, dispatchConcurrency: 1000 }, { nag: false })).toThrow(/dispatcher's 600 s/);
    expect(() => buildApp({ ...CONTEXT, crmRetryAttempts: 3 }, { nag: false })).not.toThrow();
  });
});
