import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { CfnServer, CfnUser } from 'aws-cdk-lib/aws-transfer';
import { Construct } from 'constructs';
import type { Deployment, Partner } from '../config';
import { acknowledgeWildcards } from './nag';

export interface LandingZoneProps {
  readonly landingBucket: IBucket;
  readonly key: IKey;
  readonly partners: readonly Partner[];
  /** `public` (default) or `vpc` with `vpc`. */
  readonly endpoint: Deployment['sftpEndpoint'];
  readonly vpc?: Deployment['sftpVpc'];
  /** Prefix of the partners' folders in the landing bucket. @default 'incoming/' */
  readonly landingPrefix?: string;
}

/** The SFTP security policy: no SHA-1, no CBC, no weak key exchange. */
export const SFTP_SECURITY_POLICY = 'TransferSecurityPolicy-2024-01';

/**
 * AWS Transfer Family SFTP server in front of the landing bucket. Each partner is a service-managed user with
 * SSH keys, a logical home directory (`/` is `incoming/<partner>/`, nothing else is visible) and a role that
 * can only list, read, write and delete under that prefix (and use the bucket's key for it).
 */
export class LandingZone extends Construct {
  public readonly server: CfnServer;
  public readonly users: CfnUser[] = [];
  public readonly partnerRoles: Role[] = [];

  constructor(scope: Construct, id: string, props: LandingZoneProps) {
    super(scope, id);
    const landingPrefix = props.landingPrefix ?? 'incoming/';
    const stack = Stack.of(this);
    const loggingRole = new Role(this, 'LoggingRole', {
      assumedBy: new ServicePrincipal('transfer.amazonaws.com'),
      description: 'Transfer Family writes the SFTP server logs',
      inlinePolicies: {
        logs: new PolicyDocument({
          statements: [
            new PolicyStatement({
              actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
              resources: [
                Arn.format(
                  {
                    service: 'logs',
                    resource: 'log-group',
                    resourceName: '/aws/transfer/*',
                    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
                  },
                  stack,
                ),
              ],
            }),
          ],
        }),
      },
    });

    acknowledgeWildcards(loggingRole, [
      {
        finding: /^Resource::.+:log-group:\/aws\/transfer\/\*$/,
        reason:
          "Transfer Family logs to /aws/transfer/<server id>; the server's id refers to this role, so it cannot be named.",
      },
    ]);
    this.server = new CfnServer(this, 'Server', {
      protocols: ['SFTP'],
      identityProviderType: 'SERVICE_MANAGED',
      domain: 'S3',
      securityPolicyName: SFTP_SECURITY_POLICY,
      loggingRole: loggingRole.roleArn,
      endpointType: props.endpoint === 'vpc' ? 'VPC' : 'PUBLIC',
      ...(props.endpoint === 'vpc' && props.vpc
        ? {
            endpointDetails: {
              vpcId: props.vpc.vpcId,
              subnetIds: props.vpc.subnetIds,
              ...(props.vpc.securityGroupIds.length > 0 ? { securityGroupIds: props.vpc.securityGroupIds } : {}),
            },
          }
        : {}),
    });

    for (const partner of props.partners) {
      const home = `${landingPrefix}${partner.name}`;
      const role = new Role(this, `Partner-${partner.name}`, {
        assumedBy: new ServicePrincipal('transfer.amazonaws.com'),
        description: `SFTP partner ${partner.name}: ${home}/ only`,
      });
      role.addToPolicy(
        new PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [props.landingBucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${home}/*`, `${home}/`, home] } },
        }),
      );
      role.addToPolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['s3:PutObject', 's3:GetObject', 's3:GetObjectVersion', 's3:DeleteObject', 's3:DeleteObjectVersion'],
          resources: [props.landingBucket.arnForObjects(`${home}/*`)],
        }),
      );
      role.addToPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
        }),
      );
      acknowledgeWildcards(role, [
        { finding: new RegExp(`^Resource::.+/${home}/\\*$`), reason: "The objects under the partner's own home only." },
      ]);
      this.partnerRoles.push(role);
      this.users.push(
        new CfnUser(this, `User-${partner.name}`, {
          serverId: this.server.attrServerId,
          userName: partner.name,
          role: role.roleArn,
          homeDirectoryType: 'LOGICAL',
          homeDirectoryMappings: [{ entry: '/', target: `/${props.landingBucket.bucketName}/${home}` }],
          sshPublicKeys: partner.publicKeys,
        }),
      );
    }
  }
}
