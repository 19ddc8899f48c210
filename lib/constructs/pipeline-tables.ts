import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { CATALOG_INDEX } from '../../lambdas/contracts/catalog-index';

export interface PipelineTablesProps {
  readonly key: IKey;
}

/**
 * The DynamoDB tables: the ledger (per file: the claim by SHA-256, phase counters with the task token, and
 * one answer item per CRM call, all under `pk = file#<sha256>`), with the sparse index of claims by claim time
 * that lists the files ({@link CATALOG_INDEX}), and the rate limiter (one item per limiter).
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
    // Added in place (an index, not a key change): the table keeps its logical ID and its data.
    this.ledgerTable.addGlobalSecondaryIndex({
      indexName: CATALOG_INDEX.name,
      partitionKey: { name: CATALOG_INDEX.partitionKey, type: AttributeType.STRING },
      sortKey: { name: CATALOG_INDEX.sortKey, type: AttributeType.STRING },
      // The file view needs the whole claim; claims are one item per file, so copying them costs little.
      projectionType: ProjectionType.ALL,
    });
    this.limiterTable = new Table(this, 'Limiter', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });
  }
}
