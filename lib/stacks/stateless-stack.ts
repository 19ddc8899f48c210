import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { AppConfig } from '../config';
import { CrmDispatch } from '../constructs/crm-dispatch';
import { IngestionWorkflow } from '../constructs/ingestion-workflow';
import { Observability } from '../constructs/observability';
import { OpsApi } from '../constructs/ops-api';
import { PartnerReports } from '../constructs/partner-reports';
import { partnerNetwork, SourcePolling } from '../constructs/source-polling';
import type { StatefulStack } from './stateful-stack';

export interface StatelessStackProps extends StackProps {
  readonly config: AppConfig;
  /** The data this stack's functions work on. */
  readonly stateful: StatefulStack;
}

/**
 * What can be replaced at any time: the functions, the state machine, rules, the operations API, the dashboard and
 * alarms.
 */
export class StatelessStack extends Stack {
  public readonly workflow: IngestionWorkflow;
  public readonly dispatch: CrmDispatch;
  public readonly observability: Observability;
  public readonly polling?: SourcePolling;
  public readonly reports: PartnerReports;
  public readonly opsApi: OpsApi;

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
      crmBaseUrl: settings.crmBaseUrl ?? '',
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
      stalledCallsAfter: Duration.minutes(deployment.stalledCallsAlarmMinutes),
      ...(deployment.alarmEmail ? { alarmEmail: deployment.alarmEmail } : {}),
    });
    const network = partnerNetwork(this, deployment.pollerVpc, deployment.pollSources);
    if (deployment.pollSources.length > 0) {
      this.polling = new SourcePolling(this, 'SourcePolling', {
        settings,
        sources: deployment.pollSources,
        sourceSecrets: stateful.sourceSecrets,
        landingBucket: stateful.storage.landingBucket,
        ledgerTable: stateful.registry.ledgerTable,
        key: stateful.key,
        logRetention,
        ...(network ? { network } : {}),
        alarmTopic: this.observability.topic,
        failuresBeforeAlarm: deployment.pollFailuresBeforeAlarm,
      });
    }
    this.reports = new PartnerReports(this, 'PartnerReports', {
      settings,
      landingBucket: stateful.storage.landingBucket,
      archiveBucket: stateful.storage.archiveBucket,
      failedBucket: stateful.storage.failedBucket,
      key: stateful.key,
      logRetention,
      sources: deployment.pollSources,
      sourceSecrets: stateful.sourceSecrets,
      ...(network ? { network } : {}),
      alarmTopic: this.observability.topic,
    });

    this.opsApi = new OpsApi(this, 'OpsApi', {
      settings,
      ledgerTable: stateful.registry.ledgerTable,
      archiveBucket: stateful.storage.archiveBucket,
      landingBucket: stateful.storage.landingBucket,
      callQueue: stateful.calls.queue,
      stateMachine: this.workflow.stateMachine,
      key: stateful.key,
      logRetention,
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
    new CfnOutput(this, 'UndeliveredReportsQueueUrl', { value: this.reports.deadLetterQueue.queueUrl });
    for (const source of deployment.pollSources) {
      new CfnOutput(this, `SourceSecret-${source.name}`, {
        description: `Put the SFTP credentials of source ${source.name} here`,
        value: stateful.sourceSecrets[source.name] ?? '',
      });
    }
    new CfnOutput(this, 'OpsApiUrl', {
      description: 'Base URL of the operations API (IAM/SigV4 on every method): paths are /v1/... below it',
      value: this.opsApi.api.url,
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.observability.dashboard.dashboardName}`,
    });
  }
}
