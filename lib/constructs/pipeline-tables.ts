import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface PipelineTablesProps {
  readonly key: IKey;
}

/**
 * The DynamoDB tables: the ledger (per file: the claim by SHA-256, phase counters with the task token, and
 * one answer item per CRM call, all under `pk = file#<sha256>`) and the rate limiter (one item per limiter).
 * On demand, point-in-time recovery, customer-managed KMS key, retained on stack deletion.
 */
export class PipelineTables extends Construct {
  public readonly ledgerTable: Table;
  public readonly limiterTable: Table;

  constructor(scope: Construct, id: string, props: PipelineTablesProps) {
    super(scope, id);
    const common = {
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.ledgerTable = new Table(this, 'Ledger', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      // Items that carry `expiresAt` (epoch seconds) go by themselves; claims and answers keep none.
      timeToLiveAttribute: 'expiresAt',
    });
    this.limiterTable = new Table(this, 'Limiter', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });
  }
}
