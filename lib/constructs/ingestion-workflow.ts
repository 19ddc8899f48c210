import { Arn, ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule, type IEventBus, EventBus } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { configEnvironment, type Config } from '../../lambdas/core/config';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { acknowledgeWildcards } from './nag';
import { IngestionFunction } from './node-function';

/** The state machine file CDK deploys: the same file the local runner and the state machine tests execute. */
export const FILE_INGESTION_ASL = join(__dirname, '../../statemachines/file-ingestion.asl.json');

export interface IngestionWorkflowProps {
  readonly settings: Config;
  readonly landingBucket: IBucket;
  readonly archiveBucket: IBucket;
  readonly failedBucket: IBucket;
  readonly ledgerTable: ITable;
  readonly callQueue: IQueue;
  readonly key: IKey;
  readonly logRetention: RetentionDays;
  /** Prefix of the partners' folders in the landing bucket. @default 'incoming/' */
  readonly landingPrefix?: string;
  /** Where `file.completed` events go. @default the account's default bus */
  readonly eventBus?: IEventBus;
}

/**
 * The file workflow: the Lambdas of its steps, the Step Functions Standard state machine from
 * `statemachines/file-ingestion.asl.json` (one execution per file, logged without execution data, which
 * holds no records but does hold keys and names), the EventBridge rule that starts it for every object created
 * under the landing prefix, and the scheduled sweep that starts it for anything an event missed.
 */
export class IngestionWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly functions: Record<'classify' | 'prepare' | 'await' | 'finalise' | 'sweep', NodejsFunction>;

  constructor(scope: Construct, id: string, props: IngestionWorkflowProps) {
    super(scope, id);
    const landingPrefix = props.landingPrefix ?? 'incoming/';
    const eventBus = props.eventBus ?? EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    const settings = configEnvironment(props.settings, { secrets: false });
    const make = (name: string, handler: string, description: string, environment: Record<string, string>) =>
      new IngestionFunction(this, name, {
        handler,
        description,
        key: props.key,
        logRetention: props.logRetention,
        environment: { ...settings, ...environment },
      }).function;

    const ledger = { LEDGER_TABLE_NAME: props.ledgerTable.tableName };
    const classify = make('ClassifyFile', 'classify-file', 'Classifies a landed file and claims it by SHA-256', ledger);
    props.landingBucket.grantRead(classify);
    props.ledgerTable.grantReadWriteData(classify);

    const prepare = make('PrepareFile', 'prepare-file', 'Segregates a file and enqueues its CRM calls in slices', {
      ...ledger,
      CALL_QUEUE_URL: props.callQueue.queueUrl,
      LANDING_PREFIX: landingPrefix,
    });
    props.landingBucket.grantReadWrite(prepare);
    props.landingBucket.grantDelete(prepare);
    props.ledgerTable.grantReadWriteData(prepare);
    props.callQueue.grantSendMessages(prepare);

    const awaitPhase = make('AwaitPhase', 'await-phase', 'Stores a phase task token; checks a stalled phase', ledger);
    props.ledgerTable.grantReadWriteData(awaitPhase);

    const finalise = make('FinaliseFile', 'finalise-file', 'Reconciles, reports and archives (or quarantines) a file', {
      ...ledger,
      ARCHIVE_BUCKET_NAME: props.archiveBucket.bucketName,
      FAILED_BUCKET_NAME: props.failedBucket.bucketName,
      EVENT_BUS_NAME: eventBus.eventBusName,
      LANDING_PREFIX: landingPrefix,
    });
    props.landingBucket.grantRead(finalise);
    props.landingBucket.grantDelete(finalise);
    props.archiveBucket.grantReadWrite(finalise);
    props.failedBucket.grantReadWrite(finalise);
    props.ledgerTable.grantReadWriteData(finalise);
    eventBus.grantPutEventsTo(finalise);

    const logGroup = new LogGroup(this, 'ExecutionLogs', {
      retention: props.logRetention,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // A known name: await-phase's grant names the machine by its ARN without referring to the resource,
    // which would be a cycle (the machine refers to the function, the function's policy to the machine).
    const stateMachineName = `${Stack.of(this).stackName}-FileIngestion`;
    this.stateMachine = new StateMachine(this, 'FileIngestion', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromFile(FILE_INGESTION_ASL),
      definitionSubstitutions: {
        ClassifyFileFunctionArn: classify.functionArn,
        PrepareFileFunctionArn: prepare.functionArn,
        AwaitPhaseFunctionArn: awaitPhase.functionArn,
        FinaliseFileFunctionArn: finalise.functionArn,
        RetryLaterAttempts: String(props.settings.retryLaterAttempts),
        RetryLaterDelaySeconds: String(props.settings.retryLaterDelaySeconds),
        PhaseCheckSeconds: String(props.settings.phaseCheckSeconds),
      },
      tracingEnabled: true,
      // Execution data holds object keys and partner names: not logged.
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    for (const fn of [classify, prepare, awaitPhase, finalise]) fn.grantInvoke(this.stateMachine);
    acknowledgeWildcards(this.stateMachine, [
      { finding: /^Resource::\*$/, reason: 'X-Ray and CloudWatch Logs delivery take no resource.' },
      { finding: /^Resource::<.+\.Arn>:\*$/, reason: 'Invoking the four task functions, in any version.' },
    ]);
    // await-phase resumes an execution with its task token when the phase is already complete.
    awaitPhase.addToRolePolicy(
      new PolicyStatement({
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
        resources: [
          Arn.format(
            {
              service: 'states',
              resource: 'stateMachine',
              resourceName: stateMachineName,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            },
            Stack.of(this),
          ),
        ],
      }),
    );

    new Rule(this, 'ObjectCreated', {
      description: 'A file landed: start its workflow',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [props.landingBucket.bucketName] }, object: { key: [{ prefix: landingPrefix }] } },
      },
      targets: [new SfnStateMachine(this.stateMachine)],
    });

    const sweep = make('SweepLandingZone', 'sweep-landing-zone', 'Starts the workflow of files an event missed', {
      LANDING_BUCKET_NAME: props.landingBucket.bucketName,
      LANDING_PREFIX: landingPrefix,
      STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
    });
    props.landingBucket.grantRead(sweep);
    this.stateMachine.grantStartExecution(sweep);
    new Rule(this, 'SweepSchedule', {
      description: 'Sweep the landing zone for files whose event went missing',
      schedule: Schedule.rate(Duration.minutes(props.settings.sweepIntervalMinutes)),
      targets: [new LambdaFunction(sweep, { retryAttempts: 2 })],
    });

    this.functions = { classify, prepare, await: awaitPhase, finalise, sweep };
  }
}
