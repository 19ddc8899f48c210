import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  JsonSchemaType,
  JsonSchemaVersion,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
  type JsonSchema,
  type Model,
  type RequestValidator,
} from 'aws-cdk-lib/aws-apigateway';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { Config } from '../../lambdas/core/config';
import type { ApiErrorCode } from '../../lambdas/core/operations/api-error';
import { MAX_RETRY_CODES } from '../../lambdas/core/operations/retry-file';
import { DEFAULT_LANDING_PREFIX } from '../../lambdas/core/workflow/storage-keys';
import { opsApiContract, ROUTE_GROUPS, type RouteGroup } from '../../lambdas/ops-api/contract';
import { acknowledgeNag, acknowledgeWildcards } from './nag';
import { IngestionFunction } from './node-function';

/** A route of the API (../shared/ops-api.md, Resources): the group whose function answers it, what it reads. */
export interface OpsApiRoute {
  readonly method: 'GET' | 'POST';
  /** The resource path, with `{parameters}`. */
  readonly path: string;
  readonly group: RouteGroup;
  /** The query string parameters it reads (all optional: the handler names a bad one in its 400). */
  readonly query?: readonly string[];
  /** The JSON body it takes: checked by API Gateway's validator before a function runs. */
  readonly body?: { readonly name: string; readonly schema: JsonSchema };
}

const PAGE = ['limit', 'cursor'] as const;

/** The shape of POST /v1/files/{fileId}/retry's body; which codes may be retried is the handler's rule. */
const RETRY_BODY: JsonSchema = {
  schema: JsonSchemaVersion.DRAFT4,
  title: 'RetryRequest',
  type: JsonSchemaType.OBJECT,
  required: ['codes'],
  properties: {
    codes: {
      type: JsonSchemaType.ARRAY,
      minItems: 1,
      maxItems: MAX_RETRY_CODES,
      items: { type: JsonSchemaType.STRING, minLength: 1 },
    },
  },
};

/** The shape of POST /v1/uploads's body; whether the partner and name are acceptable is the handler's rule. */
const UPLOAD_BODY: JsonSchema = {
  schema: JsonSchemaVersion.DRAFT4,
  title: 'UploadRequest',
  type: JsonSchemaType.OBJECT,
  required: ['partner', 'name'],
  properties: {
    partner: { type: JsonSchemaType.STRING, minLength: 1 },
    name: { type: JsonSchemaType.STRING, minLength: 1 },
  },
};

/** Every route of ops-api.md, by the group of permissions that answers it. */
export const OPS_API_ROUTES: readonly OpsApiRoute[] = [
  { method: 'GET', path: '/v1/files', group: 'read', query: [...PAGE, 'partner', 'status', 'kind', 'since'] },
  { method: 'GET', path: '/v1/files/{fileId}', group: 'read' },
  { method: 'GET', path: '/v1/files/{fileId}/records', group: 'read', query: [...PAGE, 'outcome', 'code'] },
  { method: 'GET', path: '/v1/records/{recordId}', group: 'read', query: ['kind', 'partner'] },
  { method: 'POST', path: '/v1/files/{fileId}/pause', group: 'control' },
  { method: 'POST', path: '/v1/files/{fileId}/resume', group: 'control' },
  { method: 'POST', path: '/v1/files/{fileId}/cancel', group: 'control' },
  { method: 'POST', path: '/v1/files/{fileId}/retry', group: 'retry', body: { name: 'Retry', schema: RETRY_BODY } },
  { method: 'POST', path: '/v1/validate', group: 'validate', query: ['name'] },
  { method: 'POST', path: '/v1/uploads', group: 'uploads', body: { name: 'Upload', schema: UPLOAD_BODY } },
  { method: 'GET', path: '/v1/stats', group: 'stats', query: ['minutes'] },
];

/**
 * The bodies API Gateway hands to the function as base64 (POST /v1/validate: a gzip partner file, or any file
 * sent as octet-stream). Not `*\/*`, and not CSV or JSON Lines: base64 adds a third, and Lambda takes at most
 * 6 MB of request, so a 5 MB CSV must arrive as the text it is (about 5 MB in the event); JSON bodies stay text
 * for their models. A gzip body therefore fits up to about 4.4 MB on AWS (docs/deploy.md).
 */
export const OPS_API_BINARY_MEDIA_TYPES = [
  'application/octet-stream',
  'application/gzip',
  'application/x-gzip',
] as const;

/** The objects of the archive bucket the read routes open: a finished file's reports. */
const REPORTS_OBJECTS = 'reports/*';

/** API Gateway's own refusals, answered in the API's error shape (`{"error": {"code", "message"}}`). */
const GATEWAY_ERRORS: readonly (readonly [ResponseType, ApiErrorCode | 'Throttled' | 'Refused' | 'Unavailable'])[] = [
  [ResponseType.BAD_REQUEST_BODY, 'BadRequest'],
  [ResponseType.BAD_REQUEST_PARAMETERS, 'BadRequest'],
  [ResponseType.MISSING_AUTHENTICATION_TOKEN, 'Forbidden'],
  [ResponseType.INVALID_SIGNATURE, 'Forbidden'],
  [ResponseType.EXPIRED_TOKEN, 'Forbidden'],
  [ResponseType.ACCESS_DENIED, 'Forbidden'],
  [ResponseType.REQUEST_TOO_LARGE, 'PayloadTooLarge'],
  [ResponseType.THROTTLED, 'Throttled'],
  [ResponseType.DEFAULT_4XX, 'Refused'],
  [ResponseType.DEFAULT_5XX, 'Unavailable'],
];

/**
 * One access log line per request, as JSON: who called (the IAM caller and ARN), what, the answer and how long it
 * took. Status and latency are numbers; API Gateway writes `-` for a value a request does not have.
 */
const ACCESS_LOG_LINE = [
  '{"requestId":"$context.requestId"',
  '"requestTimeEpoch":$context.requestTimeEpoch',
  '"caller":"$context.identity.caller"',
  '"userArn":"$context.identity.userArn"',
  '"sourceIp":"$context.identity.sourceIp"',
  '"method":"$context.httpMethod"',
  '"resourcePath":"$context.resourcePath"',
  '"path":"$context.path"',
  '"status":$context.status',
  '"latencyMs":$context.responseLatency',
  '"integrationLatencyMs":"$context.integrationLatency"',
  '"responseLength":"$context.responseLength"',
  '"error":"$context.error.message"',
  '"xrayTraceId":"$context.xrayTraceId"}',
].join(',');

export interface OpsApiProps {
  /** The pipeline's settings: each function gets those the contract names. */
  readonly settings: Config;
  readonly ledgerTable: ITable;
  readonly archiveBucket: IBucket;
  readonly landingBucket: IBucket;
  readonly callQueue: IQueue;
  readonly stateMachine: IStateMachine;
  /** Encrypts the log groups; the landing bucket's key, for pre-signed uploads. */
  readonly key: IKey;
  readonly logRetention: RetentionDays;
  /** Prefix of the partners' folders in the landing bucket: where uploads may go. @default 'incoming/' */
  readonly landingPrefix?: string;
  /** Requests per second the stage admits, all callers together (steady rate). @default 50 */
  readonly throttlingRateLimit?: number;
  /** Requests the stage admits at once above the rate. @default 100 */
  readonly throttlingBurstLimit?: number;
  /** The stage, the last segment of the API's URL. @default 'prod' */
  readonly stageName?: string;
}

/**
 * The operations API on AWS (../shared/ops-api.md): a regional API Gateway REST API with IAM (SigV4)
 * authorisation on every method, in front of one Lambda per route group, all from `lambdas/ops-api/handler.ts`
 * with `OPS_ROUTES` naming the group and a role holding only that group's grants. API Gateway validates the
 * declared query parameters and the JSON bodies; the stage is throttled (which also caps what the API can ask
 * of the ledger), traced with X-Ray, and logs every request to a KMS-encrypted log group.
 */
export class OpsApi extends Construct {
  public readonly api: RestApi;
  public readonly functions: Readonly<Record<RouteGroup, NodejsFunction>>;
  public readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: OpsApiProps) {
    super(scope, id);
    const landingPrefix = props.landingPrefix ?? DEFAULT_LANDING_PREFIX;
    const functions = Object.fromEntries(
      ROUTE_GROUPS.map((group) => [group, this.routeFunction(group, props, landingPrefix)]),
    ) as Record<RouteGroup, NodejsFunction>;
    this.functions = functions;
    this.grantRouteGroups(functions, props, landingPrefix);

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new RestApi(this, 'Api', {
      restApiName: `${Stack.of(this).stackName}-ops`,
      description: 'The operations API of the CRM ingestion (ops-api.md): IAM-authorised',
      endpointTypes: [EndpointType.REGIONAL],
      binaryMediaTypes: [...OPS_API_BINARY_MEDIA_TYPES],
      // The account's CloudWatch role, without which API Gateway writes no log (docs/deploy.md).
      cloudWatchRole: true,
      defaultMethodOptions: { authorizationType: AuthorizationType.IAM },
      deployOptions: {
        stageName: props.stageName ?? 'prod',
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
        tracingEnabled: true,
        metricsEnabled: true,
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: AccessLogFormat.custom(ACCESS_LOG_LINE),
        // Errors only, and never a body: bodies are partner files and records.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
      },
    });
    // The stack's own OpsApiUrl output names the URL; RestApi's generic `Endpoint` output would repeat it.
    this.api.node.tryRemoveChild('Endpoint');

    const validator = this.api.addRequestValidator('Validator', {
      requestValidatorName: 'parameters-and-body',
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    for (const route of OPS_API_ROUTES) this.addRoute(route, functions[route.group], validator);
    for (const [type, code] of GATEWAY_ERRORS) {
      this.api.addGatewayResponse(`Error${type.responseType}`, {
        type,
        templates: { 'application/json': `{"error":{"code":"${code}","message":$context.error.messageString}}` },
      });
    }

    acknowledgeNag(this.api, {
      'AwsSolutions-APIG3':
        'Every method requires IAM (SigV4) credentials and the stage is throttled: API Gateway refuses unsigned ' +
        'requests before any function runs, and the callers are operators and partner systems, not the public web.',
      'AwsSolutions-COG4':
        'Callers are IAM principals (operators, partner systems with a role), authorised by SigV4: no Cognito.',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]':
        "API Gateway's account-level logging role, with the policy AWS maintains for it: no access log without it.",
    });
  }

  /** One route group's function: the shared handler, told which routes it answers, with only what they read. */
  private routeFunction(group: RouteGroup, props: OpsApiProps, landingPrefix: string): NodejsFunction {
    const environment = opsApiContract.environment.build(
      {
        OPS_ROUTES: [group],
        LEDGER_TABLE_NAME: props.ledgerTable.tableName,
        ARCHIVE_BUCKET_NAME: props.archiveBucket.bucketName,
        LANDING_BUCKET_NAME: props.landingBucket.bucketName,
        LANDING_PREFIX: landingPrefix,
        ...(group === 'stats' ? { CALL_QUEUE_URL: props.callQueue.queueUrl } : {}),
        ...(group === 'retry' ? { STATE_MACHINE_ARN: props.stateMachine.stateMachineArn } : {}),
      },
      props.settings,
    );
    const name = `${group[0]!.toUpperCase()}${group.slice(1)}`;
    return new IngestionFunction(this, name, {
      contract: opsApiContract,
      description: `${opsApiContract.description} (routes: ${group})`,
      environment,
      key: props.key,
      logRetention: props.logRetention,
    }).function;
  }

  /** Least privilege: each group's role may do what its routes do, and nothing else. */
  private grantRouteGroups(fns: Record<RouteGroup, NodejsFunction>, props: OpsApiProps, landingPrefix: string): void {
    const { ledgerTable, archiveBucket, landingBucket, callQueue, stateMachine, key } = props;
    // Files, a file's records and record lookup: the ledger and its catalogue index, and the reports.
    ledgerTable.grantReadData(fns.read);
    archiveBucket.grantRead(fns.read, REPORTS_OBJECTS);

    // Pause, resume and cancel write the file's schedule entry and wake its waiting execution with its task token.
    ledgerTable.grantReadWriteData(fns.control);
    stateMachine.grantTaskResponse(fns.control);

    // Retry checks the file's summary, marks the round on its claim and starts the round's execution, which picks
    // the lines from results.csv (finalise's role) and queues the calls: no object of the archive is read here.
    ledgerTable.grantReadWriteData(fns.retry);
    stateMachine.grantStartExecution(fns.retry);

    // Validate reads nothing and stores nothing: its role has only its log group (and X-Ray).

    // Uploads: the URL is signed with the function's own credentials, so the role may put exactly what the URL
    // allows: a new object in a partner's folder, encrypted with the bucket's key by S3 on its behalf.
    fns.uploads.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:PutObject'], resources: [landingBucket.arnForObjects(`${landingPrefix}*`)] }),
    );
    fns.uploads.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Encrypt'],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );

    // Stats: the handlers' metrics, the call queue's depth, and the files in flight.
    fns.stats.addToRolePolicy(new PolicyStatement({ actions: ['cloudwatch:GetMetricData'], resources: ['*'] }));
    callQueue.grant(fns.stats, 'sqs:GetQueueAttributes');
    ledgerTable.grantReadData(fns.stats);

    acknowledgeWildcards(this, [
      { finding: /^Resource::.+\/index\/\*$/, reason: "The ledger's indexes: the file catalogue (FilesByClaimTime)." },
    ]);
    acknowledgeWildcards(fns.stats, [
      { finding: /^Resource::\*$/, reason: 'cloudwatch:GetMetricData names no resource: it reads metrics by query.' },
    ]);
  }

  /** A method on its path: IAM-authorised, its parameters declared and validated, its body checked by its model. */
  private addRoute(route: OpsApiRoute, fn: NodejsFunction, validator: RequestValidator): void {
    const resource = this.api.root.resourceForPath(route.path);
    const pathParameters = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
    const requestParameters = Object.fromEntries([
      ...pathParameters.map((name) => [`method.request.path.${name}`, true]),
      ...(route.query ?? []).map((name) => [`method.request.querystring.${name}`, false]),
    ]) as Record<string, boolean>;
    const model: Model | undefined = route.body
      ? this.api.addModel(`${route.body.name}Request`, {
          contentType: 'application/json',
          modelName: `${route.body.name}Request`,
          schema: route.body.schema,
        })
      : undefined;
    resource.addMethod(route.method, new LambdaIntegration(fn, { proxy: true, allowTestInvoke: false }), {
      authorizationType: AuthorizationType.IAM,
      requestValidator: validator,
      requestParameters,
      ...(model ? { requestModels: { 'application/json': model } } : {}),
    });
  }
}
