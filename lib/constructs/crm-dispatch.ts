import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CALL_QUEUE } from '../../lambdas/contracts/infrastructure';
import type { Config } from '../../lambdas/core/config';
import { dispatchCrmCallsContract } from '../../lambdas/dispatch-crm-calls/contract';
import { dispatchInvocationsAtOnce } from '../config';
import { IngestionFunction } from './node-function';

export interface CrmDispatchProps {
  readonly settings: Config;
  /** The CRM the dispatcher calls. */
  readonly crmBaseUrl: string;
  readonly callQueue: IQueue;
  readonly ledgerTable: ITable;
  readonly limiterTable: ITable;
  readonly crmToken: ISecret;
  readonly stateMachine: IStateMachine;
  readonly key: IKey;
  readonly logRetention: RetentionDays;
}

/**
 * CrmDispatch: the SQS event source (batches of up to 10, partial batch responses, at most
 * DISPATCH_CONCURRENCY invocations at once) feeding the Lambda that paces every call through the global
 * limiter, calls the CRM, stores the answer once and resumes the file's workflow when a phase completes.
 */
export class CrmDispatch extends Construct {
  public readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: CrmDispatchProps) {
    super(scope, id);
    this.function = new IngestionFunction(this, 'CrmDispatch', {
      contract: dispatchCrmCallsContract,
      key: props.key,
      logRetention: props.logRetention,
      environment: dispatchCrmCallsContract.environment.build(
        {
          LEDGER_TABLE_NAME: props.ledgerTable.tableName,
          LIMITER_TABLE_NAME: props.limiterTable.tableName,
          CALL_QUEUE_URL: props.callQueue.queueUrl,
          CRM_BASE_URL: props.crmBaseUrl,
          CRM_API_TOKEN_SECRET_ARN: props.crmToken.secretArn,
        },
        props.settings,
      ),
    }).function;
    props.ledgerTable.grantReadWriteData(this.function);
    props.limiterTable.grantReadWriteData(this.function);
    // Granted on the function's role only: a grant through the secret would edit the key policy in the
    // stateful stack with this stack's role, a reference cycle between the stacks.
    Secret.fromSecretCompleteArn(this, 'CrmTokenRef', props.crmToken.secretArn).grantRead(this.function);
    props.key.grantDecrypt(this.function);
    props.stateMachine.grantTaskResponse(this.function);
    // A paused file's queued call goes back on the queue, hidden for a few seconds (docs/design.md, Scheduling).
    props.callQueue.grantSendMessages(this.function);
    this.function.addEventSource(
      new SqsEventSource(props.callQueue, {
        batchSize: CALL_QUEUE.eventSourceBatchSize,
        reportBatchItemFailures: true,
        maxConcurrency: dispatchInvocationsAtOnce(props.settings),
      }),
    );
  }
}
