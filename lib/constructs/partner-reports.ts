import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENT_SOURCE } from '../../lambdas/adapters/aws/eventbridge-publisher';
import type { DeployedPollSource } from '../config';
import { acknowledgeNag } from './nag';
import { IngestionFunction } from './node-function';
import { deliverReportsContract } from '../../lambdas/deliver-reports/contract';
import type { Config } from '../../lambdas/core/config';
import { deployedSources, type PartnerNetwork } from './source-polling';

export interface PartnerReportsProps {
  /** The pipeline's settings: the function gets those its contract reads (its log level). */
  readonly settings: Config;
  readonly landingBucket: IBucket;
  readonly archiveBucket: IBucket;
  readonly failedBucket: IBucket;
  readonly key: IKey;
  readonly logRetention: RetentionDays;
  readonly sources: readonly DeployedPollSource[];
  readonly sourceSecrets: Readonly<Record<string, string>>;
  readonly network?: PartnerNetwork;
  readonly alarmTopic: ITopic;
}

/**
 * Partner feedback: `file.completed` (from finalise, on the default bus) -> the deliver-reports function, which
 * puts the file's summary and failed records in the partner's `reports/` folder (their SFTP home) or the results
 * folder of the source it was collected from. Retried by EventBridge for 6 hours; then kept on a dead-letter
 * queue, alarmed, to redrive.
 */
export class PartnerReports extends Construct {
  public readonly function: NodejsFunction;
  public readonly deadLetterQueue: Queue;
  public readonly alarm: Alarm;

  constructor(scope: Construct, id: string, props: PartnerReportsProps) {
    super(scope, id);
    const answering = props.sources.filter((source) => source.resultsDir);
    this.function = new IngestionFunction(this, 'Deliver', {
      contract: deliverReportsContract,
      key: props.key,
      logRetention: props.logRetention,
      ...(props.network && answering.length > 0 ? { vpc: props.network } : {}),
      environment: deliverReportsContract.environment.build(
        {
          LANDING_BUCKET_NAME: props.landingBucket.bucketName,
          POLL_SOURCES: deployedSources(props.sources, props.sourceSecrets),
        },
        props.settings,
      ),
    }).function;
    this.function.addToRolePolicy(
      new PolicyStatement({
        // The reports, and the head of the archived (or quarantined) file, which names the source it came from.
        actions: ['s3:GetObject'],
        resources: [props.archiveBucket.arnForObjects('*'), props.failedBucket.arnForObjects('quarantine/*')],
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [props.landingBucket.arnForObjects('incoming/*/reports/*')],
      }),
    );
    if (answering.length > 0) {
      this.function.addToRolePolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: answering.map((source) => props.sourceSecrets[source.name] ?? ''),
        }),
      );
    }
    props.key.grant(this.function, 'kms:Decrypt', 'kms:GenerateDataKey');

    // Event envelopes only (names and counts, no records): SQS-managed encryption, which EventBridge can write
    // to without a grant in the data key's policy (another stack's).
    this.deadLetterQueue = new Queue(this, 'Undelivered', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledgeNag(this.deadLetterQueue, {
      'AwsSolutions-SQS3': 'It is the dead-letter queue of the report deliveries.',
    });
    new Rule(this, 'FileCompleted', {
      description: 'Each finished file: its reports to the partner',
      eventPattern: { source: [EVENT_SOURCE], detailType: ['file.completed'] },
      targets: [
        new LambdaFunction(this.function, {
          retryAttempts: 20,
          maxEventAge: Duration.hours(6),
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
    this.alarm = new Alarm(this, 'UndeliveredAlarm', {
      alarmDescription:
        "A file's reports could not be delivered to its partner: see deliver-reports' log, then redrive",
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.alarm.addAlarmAction(new SnsAction(props.alarmTopic));
  }
}
