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
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { awaitPhaseContract } from '../../lambdas/await-phase/contract';
import { classifyFileContract } from '../../lambdas/classify-file/contract';
import type { AnyContract } from '../../lambdas/contracts/function-contract';
import {
  FILE_INGESTION_ASL,
  fileIngestionSubstitutions,
  type WorkflowTaskFunction,
} from '../../lambdas/contracts/infrastructure';
import type { Config } from '../../lambdas/core/config';
import { finaliseFileContract } from '../../lambdas/finalise-file/contract';
import { prepareFileContract } from '../../lambdas/prepare-file/contract';
import { sweepLandingZoneContract } from '../../lambdas/sweep-landing-zone/contract';
import { acknowledgeWildcards } from './nag';
import { IngestionFunction } from './node-function';

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
    const make = (id: string, contract: AnyContract, environment: Record<string, string>) =>
      new IngestionFunction(this, id, {
        contract,
        key: props.key,
        logRetention: props.logRetention,
        environment,
      }).function;
    const { settings } = props;
    const ledger = { LEDGER_TABLE_NAME: props.ledgerTable.tableName };
    const classify = make(
      'ClassifyFile',
      classifyFileContract,
      classifyFileContract.environment.build({ ...ledger, LANDING_PREFIX: landingPrefix }, settings),
    );
    props.landingBucket.grantRead(classify);
    props.ledgerTable.grantReadWriteData(classify);

    const prepare = make(
      'PrepareFile',
      prepareFileContract,
      prepareFileContract.environment.build(
        { ...ledger, CALL_QUEUE_URL: props.callQueue.queueUrl, LANDING_PREFIX: landingPrefix },
        settings,
      ),
    );
    props.landingBucket.grantReadWrite(prepare);
    props.landingBucket.grantDelete(prepare);
    props.ledgerTable.grantReadWriteData(prepare);
    props.callQueue.grantSendMessages(prepare);
    // A retry round (POST /v1/files/{id}/retry) reads the archived source and the lines to send again (redo/).
    props.archiveBucket.grantRead(prepare);

    const awaitPhase = make('AwaitPhase', awaitPhaseContract, awaitPhaseContract.environment.build(ledger, settings));
    props.ledgerTable.grantReadWriteData(awaitPhase);

    const finalise = make(
      'FinaliseFile',
      finaliseFileContract,
      finaliseFileContract.environment.build(
        {
          ...ledger,
          ARCHIVE_BUCKET_NAME: props.archiveBucket.bucketName,
          FAILED_BUCKET_NAME: props.failedBucket.bucketName,
          EVENT_BUS_NAME: eventBus.eventBusName,
          LANDING_PREFIX: landingPrefix,
        },
        settings,
      ),
    );
    props.landingBucket.grantRead(finalise);
    props.landingBucket.grantDelete(finalise);
    // The reports; and a redo round's lines (select-redo reads results.csv, writes redo/<fileId>/<round>.lines).
    props.archiveBucket.grantReadWrite(finalise);
    props.failedBucket.grantReadWrite(finalise);
    props.ledgerTable.grantReadWriteData(finalise);
    eventBus.grantPutEventsTo(finalise);

    const taskFunctions: Record<WorkflowTaskFunction, NodejsFunction> = {
      'classify-file': classify,
      'prepare-file': prepare,
      'await-phase': awaitPhase,
      'finalise-file': finalise,
    };
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
      definitionSubstitutions: fileIngestionSubstitutions((name) => taskFunctions[name].functionArn, settings),
      tracingEnabled: true,
      // Execution data holds object keys and partner names: not logged.
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    for (const fn of [classify, prepare, awaitPhase, finalise]) fn.grantInvoke(this.stateMachine);
    acknowledgeWildcards(this.stateMachine, [
      { finding: /^Resource::\*$/, reason: 'X-Ray and CloudWatch Logs delivery take no resource.' },
      { finding: /^Resource::<.+\.Arn>:\*$/, reason: 'Invoking the four task functions, in any version.' },
    ]);
    // await-phase resumes an execution with its task token when the phase is already complete (or its turn has
    // come); prepare and finalise wake the executions waiting for their turn (AwaitTurn) when they release one.
    for (const fn of [awaitPhase, prepare, finalise]) {
      fn.addToRolePolicy(
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
    }

    new Rule(this, 'ObjectCreated', {
      description: 'A file landed: start its workflow',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [props.landingBucket.bucketName] }, object: { key: [{ prefix: landingPrefix }] } },
      },
      targets: [new SfnStateMachine(this.stateMachine)],
    });

    const sweep = make(
      'SweepLandingZone',
      sweepLandingZoneContract,
      sweepLandingZoneContract.environment.build(
        {
          LANDING_BUCKET_NAME: props.landingBucket.bucketName,
          LANDING_PREFIX: landingPrefix,
          STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
        },
        settings,
      ),
    );
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
