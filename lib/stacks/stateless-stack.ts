import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { AppConfig } from '../config';
import { CrmDispatch } from '../constructs/crm-dispatch';
import { IngestionWorkflow } from '../constructs/ingestion-workflow';
import { Observability } from '../constructs/observability';
import type { StatefulStack } from './stateful-stack';

export interface StatelessStackProps extends StackProps {
  readonly config: AppConfig;
  /** The data this stack's functions work on. */
  readonly stateful: StatefulStack;
}

/** What can be replaced at any time: the functions, the state machine, rules, the dashboard and alarms. */
export class StatelessStack extends Stack {
  public readonly workflow: IngestionWorkflow;
  public readonly dispatch: CrmDispatch;
  public readonly observability: Observability;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { settings, deployment } = props.config;
    const { stateful } = props;
    const logRetention = deployment.logRetentionDays as RetentionDays;
    this.workflow = new IngestionWorkflow(this, 'IngestionWorkflow', {
      settings,
      landingBucket: stateful.storage.landingBucket,
      archiveBucket: stateful.storage.archiveBucket,
      failedBucket: stateful.storage.failedBucket,
      ledgerTable: stateful.registry.ledgerTable,
      callQueue: stateful.calls.queue,
      key: stateful.key,
      logRetention,
    });
    this.dispatch = new CrmDispatch(this, 'CrmDispatch', {
      settings,
      callQueue: stateful.calls.queue,
      ledgerTable: stateful.registry.ledgerTable,
      limiterTable: stateful.registry.limiterTable,
      crmToken: stateful.crmToken,
      stateMachine: this.workflow.stateMachine,
      key: stateful.key,
      logRetention,
    });
    this.observability = new Observability(this, 'Observability', {
      callsPerMinute: settings.callsPerMinute,
      callQueue: stateful.calls.queue,
      deadLetterQueue: stateful.calls.deadLetterQueue,
      stateMachine: this.workflow.stateMachine,
      key: stateful.key,
      oldestCallAlarmAge: Duration.minutes(deployment.oldestCallAlarmMinutes),
      ...(deployment.alarmEmail ? { alarmEmail: deployment.alarmEmail } : {}),
    });

    new CfnOutput(this, 'SftpEndpoint', {
      description: 'SFTP host of the landing zone',
      value: `${stateful.landingZone.server.attrServerId}.server.transfer.${this.region}.amazonaws.com`,
    });
    new CfnOutput(this, 'LandingBucketName', { value: stateful.storage.landingBucket.bucketName });
    new CfnOutput(this, 'ArchiveBucketName', { value: stateful.storage.archiveBucket.bucketName });
    new CfnOutput(this, 'FailedBucketName', { value: stateful.storage.failedBucket.bucketName });
    new CfnOutput(this, 'CrmTokenSecretArn', { value: stateful.crmToken.secretArn });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: stateful.calls.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.observability.dashboard.dashboardName}`,
    });
  }
}
