import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import type { AnyContract } from '../../lambdas/contracts/function-contract';
import { acknowledgeNag, acknowledgeWildcards } from './nag';

const ROOT = join(__dirname, '../..');

export interface IngestionFunctionProps {
  /** The function's contract: its name (the folder under `lambdas/` whose `handler.ts` it runs), description, timeout, memory. */
  readonly contract: AnyContract;
  /** What the console shows, when one contract is deployed as several functions. @default the contract's */
  readonly description?: string;
  /** Its environment, from the contract's builder (`contract.environment.build`): only what it reads. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logRetention: RetentionDays;
  /** Encrypts the log group. */
  readonly key: IKey;
  /** Concurrent executions kept for this function (and its cap); none by default. */
  readonly reservedConcurrentExecutions?: number;
  /** Runs in these subnets (egress through their NAT), with these security groups; none: Lambda's own network. */
  readonly vpc?: { readonly vpc: IVpc; readonly subnets: SubnetSelection; readonly securityGroups: ISecurityGroup[] };
}

/**
 * One Lambda of the pipeline: `lambdas/<handler>/handler.ts` bundled by esbuild (no Docker), Node.js 22 on
 * arm64, source maps on, X-Ray tracing, its own KMS-encrypted log group with a retention. Its environment is
 * what its contract names (resources and the settings it reads), validated by the handler at start.
 */
export class IngestionFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;

  constructor(scope: Construct, id: string, props: IngestionFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role, writing only to its own log group (no AWS managed policy with logs:* on every group).
    const role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    this.role = role;
    this.function = new NodejsFunction(this, 'Function', {
      role,
      entry: join(ROOT, 'lambdas', props.contract.name, 'handler.ts'),
      projectRoot: ROOT,
      depsLockFilePath: join(ROOT, 'package-lock.json'),
      handler: 'handler',
      description: props.description ?? props.contract.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.contract.memoryMb,
      timeout: Duration.seconds(props.contract.timeoutSeconds),
      tracing: Tracing.ACTIVE,
      logGroup,
      ...(props.vpc
        ? { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups: props.vpc.securityGroups }
        : {}),
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      // The service name is the contract's, set in code (lambdas/contracts/telemetry.ts), not here.
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: {
        sourceMap: true,
        minify: true,
        target: 'node22',
        format: OutputFormat.CJS,
        // The AWS SDK too: the code deployed runs with the SDK versions it was tested with. Not ssh2's optional
        // native add-ons (built for this machine, not Lambda's arm64): it loads them in a try and runs without.
        externalModules: ['cpu-features', '*.node'],
      },
    });
    acknowledgeWildcards(this, [
      { finding: /^Resource::\*$/, reason: 'X-Ray PutTraceSegments and PutTelemetryRecords take no resource.' },
      {
        finding: /^Action::(s3:(GetObject|GetBucket|List|DeleteObject|Abort)|kms:(ReEncrypt|GenerateDataKey))\*$/,
        reason: "CDK's bucket and key grants (read, write, delete of the pipeline's own buckets, its one KMS key).",
      },
      { finding: /^Resource::.+\/\*$/, reason: "The objects of the pipeline's own buckets, granted bucket by bucket." },
    ]);
    if (props.vpc) {
      acknowledgeNag(this, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]':
          'The network interfaces of a function in a VPC: what Lambda itself needs, as AWS maintains it.',
      });
    }
    acknowledgeNag(this, {
      'AwsSolutions-L1':
        'Node.js 22 is the runtime the pipeline is built and tested for (DESIGN.md); a newer one comes with a test run on it.',
    });
  }
}
