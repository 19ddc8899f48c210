import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import {
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type ISecurityGroup,
  type IVpc,
  type SubnetSelection,
} from 'aws-cdk-lib/aws-ec2';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { Deployment, DeployedPollSource } from '../config';
import type { DeployedSource } from '../../lambdas/adapters/aws/source-config';
import { pollSourceContract } from '../../lambdas/poll-source/contract';
import type { Config } from '../../lambdas/core/config';
import { IngestionFunction } from './node-function';
import { handlerMetric } from './observability';

/** Where the functions that speak SFTP to partners run: a VPC's subnets with egress only to SFTP and HTTPS. */
export interface PartnerNetwork {
  readonly vpc: IVpc;
  readonly subnets: SubnetSelection;
  readonly securityGroups: ISecurityGroup[];
}

/** The sources as their Lambdas read them (POLL_SOURCES, through their contracts): the secret by ARN. */
export const deployedSources = (
  sources: readonly DeployedPollSource[],
  secrets: Readonly<Record<string, string>>,
): DeployedSource[] =>
  sources.map(({ secretArn: _secretArn, ...source }) => ({ ...source, secretId: secrets[source.name] ?? '' }));

/** The VPC of `pollerVpc` (its private subnets route through a NAT), or none: Lambda's own public egress. */
export function partnerNetwork(
  scope: Construct,
  config: Deployment['pollerVpc'],
  sources: readonly DeployedPollSource[],
): PartnerNetwork | undefined {
  if (!config) return undefined;
  const vpc = Vpc.fromVpcAttributes(scope, 'PartnerVpc', {
    vpcId: config.vpcId,
    availabilityZones: config.availabilityZones,
    privateSubnetIds: config.subnetIds,
  });
  const group = new SecurityGroup(scope, 'PartnerEgress', {
    vpc,
    allowAllOutbound: false,
    // CloudFormation takes only a few punctuation marks here (no apostrophe).
    description: 'SFTP to partner servers and HTTPS to AWS APIs; nothing inbound',
  });
  for (const port of new Set(sources.map((source) => source.port))) {
    group.addEgressRule(Peer.anyIpv4(), Port.tcp(port), `SFTP to partner servers on ${port}`);
  }
  group.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'AWS APIs: S3, DynamoDB, Secrets Manager, CloudWatch');
  return { vpc, subnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS }, securityGroups: [group] };
}

export interface SourcePollingProps {
  /** The pipeline's settings: the function gets those its contract reads (its log level). */
  readonly settings: Config;
  readonly sources: readonly DeployedPollSource[];
  readonly sourceSecrets: Readonly<Record<string, string>>;
  readonly landingBucket: IBucket;
  readonly ledgerTable: ITable;
  readonly key: IKey;
  readonly logRetention: RetentionDays;
  readonly network?: PartnerNetwork;
  readonly alarmTopic: ITopic;
  /** Failed polls in a row (one per interval) before a source's alarm. */
  readonly failuresBeforeAlarm: number;
}

/**
 * The polling watcher: one function, one schedule per source (its interval; the input names the source), an
 * alarm per source when its polls fail `failuresBeforeAlarm` times in a row (unreachable, host key refused,
 * credentials refused). The function may write only under its sources' partner folders, use only its own
 * ledger items (`source#...`) and read only its sources' secrets.
 */
export class SourcePolling extends Construct {
  public readonly function: NodejsFunction;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: SourcePollingProps) {
    super(scope, id);
    this.function = new IngestionFunction(this, 'Poller', {
      contract: pollSourceContract,
      key: props.key,
      logRetention: props.logRetention,
      ...(props.network ? { vpc: props.network } : {}),
      environment: pollSourceContract.environment.build(
        {
          POLL_SOURCES: deployedSources(props.sources, props.sourceSecrets),
          LANDING_BUCKET_NAME: props.landingBucket.bucketName,
          LEDGER_TABLE_NAME: props.ledgerTable.tableName,
        },
        props.settings,
      ),
    }).function;
    const partners = [...new Set(props.sources.map((source) => source.partner))];
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: partners.map((partner) => props.landingBucket.arnForObjects(`incoming/${partner}/*`)),
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [props.ledgerTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['source#*'] } },
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: props.sources.map((source) => props.sourceSecrets[source.name] ?? ''),
      }),
    );
    props.key.grant(this.function, 'kms:Decrypt', 'kms:GenerateDataKey');

    const action = new SnsAction(props.alarmTopic);
    // A poll that ends in a crash or the 15-minute timeout (a file too large for the link) emits no PollFailed.
    const crashed = new Alarm(this, 'PollerErrors', {
      alarmDescription:
        'The poller crashed or timed out (e.g. a file too large to stream within 15 minutes): see its log',
      metric: this.function.metricErrors({ period: Duration.minutes(15), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    crashed.addAlarmAction(action);
    this.alarms.push(crashed);
    for (const source of props.sources) {
      new Rule(this, `Schedule-${source.name}`, {
        description: `Polls ${source.name} (${source.host}) every ${source.intervalMinutes} min`,
        schedule: Schedule.rate(Duration.minutes(source.intervalMinutes)),
        // A failed poll is not retried by EventBridge: the next scheduled poll is the retry.
        targets: [
          new LambdaFunction(this.function, {
            event: RuleTargetInput.fromObject({ source: source.name }),
            retryAttempts: 0,
          }),
        ],
      });
      const alarm = new Alarm(this, `PollFailing-${source.name}`, {
        alarmDescription:
          `Source ${source.name} (${source.host}:${source.port}) failed ${props.failuresBeforeAlarm} polls in a row: ` +
          'unreachable, host key refused or credentials refused; the reason is in the poller log (PollFailedByReason)',
        metric: handlerMetric(
          'PollFailed',
          { Source: source.name },
          'Maximum',
          Duration.minutes(source.intervalMinutes),
        ),
        threshold: 1,
        evaluationPeriods: props.failuresBeforeAlarm,
        datapointsToAlarm: props.failuresBeforeAlarm,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    }
  }
}
