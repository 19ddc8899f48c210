import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type IngestionApp } from '../../bin/ingestion-app';
import { OPS_API_ROUTES, OpsApi } from '../../lib/constructs/ops-api';
import { CATALOG_INDEX } from '../../lambdas/contracts/catalog-index';
import { loadConfig } from '../../lambdas/core/config';
import { ROUTE_GROUPS, type RouteGroup } from '../../lambdas/ops-api/contract';
import { routesOf, type OpsApiDeps } from '../../lambdas/ops-api/make-handler';

const CONTEXT = {
  crmBaseUrl: 'https://crm.example.com',
  partners: [
    {
      name: 'acme',
      publicKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfakeKeyForTemplateTestsOnly00000000000000 acme'],
    },
  ],
  // The template is what is asserted here, not the bundles (test/infra/stacks.test.ts bundles every function).
  [BUNDLING_STACKS]: [],
};

interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: unknown;
}
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

const actionsOf = (statements: readonly Statement[]) =>
  statements.flatMap((statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]));
const groupName = (group: RouteGroup) => `${group[0]!.toUpperCase()}${group.slice(1)}`;

/** A value's CloudFormation intrinsics written as plain text, to compare ARNs by their parts. */
const flat = (value: unknown): string => JSON.stringify(value);

describe('the operations API on AWS', () => {
  let built: IngestionApp;
  let api: Template;
  let data: Template;
  let resources: Resources;
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-out-'));

  /** Every statement of a route group's role. */
  const statementsOf = (group: RouteGroup): Statement[] =>
    Object.entries(resources)
      .filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith(`OpsApi${groupName(group)}Role`))
      .flatMap(([, r]) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  /** A route group's function: its logical ID and properties. */
  const functionOf = (group: RouteGroup) => {
    const found = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(`OpsApi${groupName(group)}Function`),
    );
    expect(found).toBeDefined();
    const [id, fn] = found!;
    return { id, variables: (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables };
  };
  /** Each API Gateway resource's full path, by logical ID. */
  const pathsById = (): Map<string, string> => {
    const parts = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ApiGateway::Resource');
    const pathOf = (id: string): string => {
      const resource = resources[id];
      if (!resource || resource.Type !== 'AWS::ApiGateway::Resource') return '';
      const parent = resource.Properties.ParentId as { Ref?: string };
      return `${parent.Ref ? pathOf(parent.Ref) : ''}/${String(resource.Properties.PathPart)}`;
    };
    return new Map(parts.map(([id]) => [id, pathOf(id)]));
  };

  beforeAll(() => {
    built = buildApp(CONTEXT, { outdir });
    // cdk-nag (AwsSolutions) runs at synthesis: a finding not acknowledged with a reason fails it.
    built.app.synth();
    api = Template.fromStack(built.stateless);
    data = Template.fromStack(built.stateful);
    resources = api.toJSON().Resources as Resources;
  }, 120_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('authorises every method with IAM (SigV4): no method is open without credentials', () => {
    const methods = Object.values(api.findResources('AWS::ApiGateway::Method')) as {
      Properties: { AuthorizationType: string; HttpMethod: string };
    }[];
    expect(methods).toHaveLength(OPS_API_ROUTES.length);
    for (const method of methods) expect(method.Properties.AuthorizationType).toBe('AWS_IAM');
    expect(JSON.stringify(methods)).not.toContain('"NONE"');
    // No CORS preflight (OPTIONS) either: nothing answers without a signature.
    expect(methods.map((method) => method.Properties.HttpMethod).sort()).toEqual(
      OPS_API_ROUTES.map((route) => route.method).sort(),
    );
    api.hasResourceProperties('AWS::ApiGateway::RestApi', { EndpointConfiguration: { Types: ['REGIONAL'] } });
  });

  it("answers each route of ops-api.md with its route group's function, told its group", () => {
    const paths = pathsById();
    const methods = Object.values(api.findResources('AWS::ApiGateway::Method')) as {
      Properties: { HttpMethod: string; ResourceId: { Ref: string }; Integration: { Type: string; Uri: unknown } };
    }[];
    const served = methods.map(
      (method) => `${method.Properties.HttpMethod} ${paths.get(method.Properties.ResourceId.Ref)}`,
    );
    expect(served.sort()).toEqual(OPS_API_ROUTES.map((route) => `${route.method} ${route.path}`).sort());
    for (const route of OPS_API_ROUTES) {
      const method = methods.find(
        (m) => m.Properties.HttpMethod === route.method && paths.get(m.Properties.ResourceId.Ref) === route.path,
      );
      const fn = functionOf(route.group);
      expect({ route: route.path, type: method?.Properties.Integration.Type }).toEqual({
        route: route.path,
        type: 'AWS_PROXY',
      });
      expect({ route: route.path, uri: flat(method?.Properties.Integration.Uri).includes(`"${fn.id}"`) }).toEqual({
        route: route.path,
        uri: true,
      });
    }
    for (const group of ROUTE_GROUPS) expect(functionOf(group).variables.OPS_ROUTES).toBe(JSON.stringify([group]));
  });

  it("deploys exactly the router's routes, each to the function of the router's group", () => {
    // The routes' handlers are only built here, never called: no dependency is needed.
    const router = routesOf({} as OpsApiDeps).map((route) => `${route.method} ${route.template} ${route.group}`);
    expect(OPS_API_ROUTES.map((route) => `${route.method} ${route.path} ${route.group}`).sort()).toEqual(router.sort());
  });

  it('validates the declared query parameters and the JSON bodies before any function runs', () => {
    const validators = api.findResources('AWS::ApiGateway::RequestValidator');
    expect(Object.values(validators)).toEqual([
      expect.objectContaining({
        Properties: expect.objectContaining({ ValidateRequestBody: true, ValidateRequestParameters: true }),
      }),
    ]);
    const [validatorId] = Object.keys(validators);
    api.allResourcesProperties('AWS::ApiGateway::Method', { RequestValidatorId: { Ref: validatorId } });
    const paths = pathsById();
    const methodAt = (httpMethod: string, path: string) =>
      (
        Object.values(api.findResources('AWS::ApiGateway::Method', { Properties: { HttpMethod: httpMethod } })) as {
          Properties: {
            ResourceId: { Ref: string };
            RequestParameters?: Record<string, boolean>;
            RequestModels?: Record<string, { Ref: string }>;
          };
        }[]
      ).find((method) => paths.get(method.Properties.ResourceId.Ref) === path)!.Properties;
    expect(methodAt('GET', '/v1/files').RequestParameters).toEqual(
      Object.fromEntries(
        ['limit', 'cursor', 'partner', 'status', 'kind', 'since'].map((name) => [
          `method.request.querystring.${name}`,
          false,
        ]),
      ),
    );
    expect(methodAt('GET', '/v1/files/{fileId}/records').RequestParameters).toMatchObject({
      'method.request.path.fileId': true,
      'method.request.querystring.outcome': false,
      'method.request.querystring.code': false,
    });
    expect(methodAt('GET', '/v1/stats').RequestParameters).toEqual({ 'method.request.querystring.minutes': false });
    expect(methodAt('POST', '/v1/validate').RequestParameters).toEqual({ 'method.request.querystring.name': false });

    const schemaOf = (httpMethod: string, path: string) => {
      const model = methodAt(httpMethod, path).RequestModels?.['application/json'];
      expect(model).toBeDefined();
      return (resources[model!.Ref]!.Properties as { ContentType: string; Schema: Record<string, unknown> }).Schema;
    };
    expect(schemaOf('POST', '/v1/files/{fileId}/retry')).toMatchObject({
      type: 'object',
      required: ['codes'],
      properties: { codes: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string' } } },
    });
    expect(schemaOf('POST', '/v1/uploads')).toMatchObject({
      type: 'object',
      required: ['partner', 'name'],
      properties: { partner: { type: 'string' }, name: { type: 'string' } },
    });
  });

  it('takes a partner file as binary on /v1/validate, and JSON bodies as text for their models', () => {
    const [restApi] = Object.values(api.findResources('AWS::ApiGateway::RestApi')) as {
      Properties: { BinaryMediaTypes: string[] };
    }[];
    expect(restApi!.Properties.BinaryMediaTypes).toEqual(
      expect.arrayContaining(['application/octet-stream', 'application/gzip']),
    );
    // Text files arrive as text: base64 would take a 5 MB CSV past Lambda's 6 MB request.
    expect(restApi!.Properties.BinaryMediaTypes).not.toContain('text/csv');
    expect(restApi!.Properties.BinaryMediaTypes).not.toContain('*/*');
    expect(restApi!.Properties.BinaryMediaTypes).not.toContain('application/json');
  });

  it('throttles, traces and meters the stage, and logs every request as JSON to a KMS-encrypted log group', () => {
    const [stage] = Object.values(api.findResources('AWS::ApiGateway::Stage')) as {
      Properties: {
        TracingEnabled: boolean;
        MethodSettings: Record<string, unknown>[];
        AccessLogSetting: { DestinationArn: { 'Fn::GetAtt': [string, string] }; Format: string };
      };
    }[];
    expect(stage!.Properties.TracingEnabled).toBe(true);
    expect(stage!.Properties.MethodSettings).toEqual([
      {
        HttpMethod: '*',
        ResourcePath: '/*',
        ThrottlingRateLimit: 50,
        ThrottlingBurstLimit: 100,
        MetricsEnabled: true,
        LoggingLevel: 'ERROR',
        // Request and response bodies are partner data: never logged.
        DataTraceEnabled: false,
      },
    ]);
    const [logGroupId] = stage!.Properties.AccessLogSetting.DestinationArn['Fn::GetAtt'];
    expect(resources[logGroupId]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { KmsKeyId: expect.anything(), RetentionInDays: 90 },
    });
    // One JSON object per request once API Gateway fills in its variables (strings, and numbers unquoted).
    const line = stage!.Properties.AccessLogSetting.Format.replace(/"\$context\.[\w.]+"/g, '"x"').replace(
      /\$context\.[\w.]+/g,
      '200',
    );
    expect(Object.keys(JSON.parse(line) as object)).toEqual(
      expect.arrayContaining(['requestId', 'caller', 'userArn', 'method', 'path', 'status', 'latencyMs', 'error']),
    );
    // The account's logging role, without which API Gateway writes no access log.
    api.hasResourceProperties('AWS::ApiGateway::Account', { CloudWatchRoleArn: Match.anyValue() });
  });

  it("answers API Gateway's own refusals (bad parameter or body, no signature, throttled) in the API's error shape", () => {
    const responses = Object.values(api.findResources('AWS::ApiGateway::GatewayResponse')) as {
      Properties: { ResponseType: string; ResponseTemplates: Record<string, string> };
    }[];
    const codeOf = (type: string) => {
      const template = responses.find((r) => r.Properties.ResponseType === type)?.Properties.ResponseTemplates[
        'application/json'
      ];
      const body = JSON.parse(template!.replace('$context.error.messageString', '"the message"')) as {
        error: { code: string; message: string };
      };
      expect(body.error.message).toBe('the message');
      return body.error.code;
    };
    expect(codeOf('BAD_REQUEST_BODY')).toBe('BadRequest');
    expect(codeOf('BAD_REQUEST_PARAMETERS')).toBe('BadRequest');
    expect(codeOf('MISSING_AUTHENTICATION_TOKEN')).toBe('Forbidden');
    expect(codeOf('ACCESS_DENIED')).toBe('Forbidden');
    expect(codeOf('REQUEST_TOO_LARGE')).toBe('PayloadTooLarge');
    expect(codeOf('THROTTLED')).toBe('Throttled');
    expect(codeOf('DEFAULT_4XX')).toBe('Refused');
    expect(codeOf('DEFAULT_5XX')).toBe('Unavailable');
  });

  it('outputs OpsApiUrl, the URL of the stage, and no other URL of the API', () => {
    const outputs = api.toJSON().Outputs as Record<string, { Value: unknown }>;
    const url = flat(outputs.OpsApiUrl?.Value);
    const [restApiId] = Object.keys(api.findResources('AWS::ApiGateway::RestApi'));
    const [stageId] = Object.keys(api.findResources('AWS::ApiGateway::Stage'));
    expect(url).toContain(`{"Ref":"${restApiId}"}`);
    expect(url).toContain('.execute-api.');
    expect(url).toContain(`{"Ref":"${stageId}"}`);
    expect(Object.keys(outputs).filter((name) => name.startsWith('OpsApi'))).toEqual(['OpsApiUrl']);
  });

  it('gives the validate function no data access at all', () => {
    const actions = actionsOf(statementsOf('validate'));
    expect(actions.sort()).toEqual(
      ['logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments'].sort(),
    );
    const { variables } = functionOf('validate');
    expect(variables).not.toHaveProperty('CALL_QUEUE_URL');
    expect(variables).not.toHaveProperty('STATE_MACHINE_ARN');
  });

  it('lets the uploads function put objects only under incoming/ of the landing bucket, encrypted through S3', () => {
    const statements = statementsOf('uploads');
    const s3 = statements.filter((s) => actionsOf([s]).some((action) => action.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect(s3[0]!.Action).toBe('s3:PutObject');
    const resource = flat(s3[0]!.Resource);
    expect(resource).toContain('StorageLanding');
    expect(resource).toMatch(/"\/incoming\/\*"\]\]\}$/);
    const kms = statements.find((s) => actionsOf([s]).some((action) => action.startsWith('kms:')));
    expect(actionsOf([kms!]).sort()).toEqual(['kms:Encrypt', 'kms:GenerateDataKey']);
    expect(flat(kms!.Condition)).toContain('kms:ViaService');
    expect(actionsOf(statements).filter((action) => /^(dynamodb|sqs|states|cloudwatch):/.test(action))).toEqual([]);
  });

  it('lets the read function read the ledger (with its catalogue index) and the reports, and change nothing', () => {
    const statements = statementsOf('read');
    const actions = actionsOf(statements);
    expect(actions).toContain('dynamodb:Query');
    expect(actions.filter((action) => /^dynamodb:(Put|Update|Delete|BatchWrite)/.test(action))).toEqual([]);
    expect(actions.filter((action) => /^s3:(Put|Delete)|^sqs:|^states:|^cloudwatch:/.test(action))).toEqual([]);
    const dynamodb = statements.find((s) => actionsOf([s]).includes('dynamodb:Query'));
    expect(flat(dynamodb!.Resource)).toContain('/index/*');
    const s3 = statements.find((s) => actionsOf([s]).includes('s3:GetObject*'));
    expect(flat(s3!.Resource)).toContain('StorageArchive');
    expect(flat(s3!.Resource)).toContain('"/reports/*"');
  });

  it('lets the control function write the ledger and answer task tokens, and nothing else', () => {
    const actions = actionsOf(statementsOf('control'));
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:UpdateItem', 'states:SendTaskSuccess']));
    expect(actions.filter((action) => /^s3:|^sqs:|^states:StartExecution|^cloudwatch:/.test(action))).toEqual([]);
  });

  it('lets the retry function mark the round on the claim and start an execution, and read no object', () => {
    const statements = statementsOf('retry');
    const actions = actionsOf(statements);
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:UpdateItem', 'states:StartExecution']));
    // The round's lines are picked from results.csv by its execution (finalise), not in the API request.
    expect(actions.filter((action) => /^s3:|^sqs:|^cloudwatch:|^states:SendTask/.test(action))).toEqual([]);
    expect(functionOf('retry').variables).toEqual(expect.objectContaining({ STATE_MACHINE_ARN: expect.anything() }));
    expect(functionOf('retry').variables).not.toHaveProperty('CALL_QUEUE_URL');
  });

  it("lets the stats function read metrics, the queue's depth and the ledger, and change nothing", () => {
    const statements = statementsOf('stats');
    const actions = actionsOf(statements);
    const metrics = statements.find((s) => actionsOf([s]).includes('cloudwatch:GetMetricData'));
    expect(metrics).toMatchObject({ Action: 'cloudwatch:GetMetricData', Resource: '*' });
    expect(actions.filter((action) => action.startsWith('sqs:'))).toEqual(['sqs:GetQueueAttributes']);
    expect(actions.filter((action) => /^dynamodb:(Put|Update|Delete|BatchWrite)|^s3:|^states:/.test(action))).toEqual(
      [],
    );
    expect(functionOf('stats').variables).toHaveProperty('CALL_QUEUE_URL');
  });

  it("indexes the ledger's claims by claim time for the file list, keeping the table's logical ID", () => {
    data.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: CATALOG_INDEX.partitionKey, AttributeType: 'S' },
        { AttributeName: CATALOG_INDEX.sortKey, AttributeType: 'S' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: 'FilesByClaimTime',
          KeySchema: [
            { AttributeName: 'catalog', KeyType: 'HASH' },
            { AttributeName: 'catalogAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
    expect(
      Object.keys(
        data.findResources('AWS::DynamoDB::Table', { Properties: { GlobalSecondaryIndexes: Match.anyValue() } }),
      ),
    ).toEqual(['FileRegistryLedgerF2FA9468']);
  });

  it('passes cdk-nag, acknowledging only the WAF, Cognito and the logging role, each with its reason', () => {
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: {
        conclusion: string;
        suppressedViolations: { ruleName: string; reason: string; violatingConstructs: { constructPath: string }[] }[];
      }[];
    };
    const [nag] = report.pluginReports;
    expect(nag!.conclusion).toBe('success');
    const acknowledged = nag!.suppressedViolations.filter((violation) =>
      violation.violatingConstructs.some((construct) => construct.constructPath.startsWith('CrmIngestion/OpsApi/')),
    );
    expect([...new Set(acknowledged.map((violation) => violation.ruleName.replace(/\[.*$/, '')))].sort()).toEqual([
      'AwsSolutions-APIG3',
      'AwsSolutions-COG4',
      'AwsSolutions-IAM4',
      // The Node.js runtime, as for every function of the pipeline (lib/constructs/node-function.ts).
      'AwsSolutions-L1',
    ]);
    for (const violation of acknowledged) expect(violation.reason.length).toBeGreaterThan(40);
  });
});

describe('the OpsApi construct', () => {
  it('takes the stage throttling as props', () => {
    const app = new App({ context: { [BUNDLING_STACKS]: [] } });
    const stack = new Stack(app, 'Ops', { env: { account: '123456789012', region: 'eu-west-1' } });
    const arn = (service: string, resource: string) => `arn:aws:${service}:eu-west-1:123456789012:${resource}`;
    new OpsApi(stack, 'OpsApi', {
      settings: loadConfig({ flags: { crmBaseUrl: 'https://crm.example.com' } }),
      ledgerTable: Table.fromTableName(stack, 'Ledger', 'ledger'),
      archiveBucket: Bucket.fromBucketName(stack, 'Archive', 'archive'),
      landingBucket: Bucket.fromBucketName(stack, 'Landing', 'landing'),
      callQueue: Queue.fromQueueArn(stack, 'Calls', arn('sqs', 'calls')),
      stateMachine: StateMachine.fromStateMachineArn(stack, 'Machine', arn('states', 'stateMachine:files')),
      key: Key.fromKeyArn(stack, 'Key', arn('kms', 'key/1234abcd-12ab-34cd-56ef-1234567890ab')),
      logRetention: RetentionDays.ONE_MONTH,
      throttlingRateLimit: 5,
      throttlingBurstLimit: 10,
      stageName: 'ops',
    });
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'ops',
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 })],
    });
  });
});
