import {
  Validations,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
} from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag AwsSolutions findings on a construct and everything under it, each with its reason:
 * `{ 'AwsSolutions-L1': 'why' }`. The reasons are kept in the template's metadata.
 */
export function acknowledgeNag(scope: IConstruct, findings: Readonly<Record<string, string>>): void {
  Validations.of(scope).acknowledge(
    ...Object.entries(findings).map(([id, reason]) => ({ id: `AwsSolutions::${id}`, reason })),
  );
}

/** A kind of IAM wildcard that is expected, and why: matched against cdk-nag's finding, e.g. `Action::s3:GetObject*`. */
export interface ExpectedWildcard {
  readonly finding: RegExp;
  readonly reason: string;
}

const expectedWildcards = new WeakMap<IConstruct, { path: string; expected: readonly ExpectedWildcard[] }[]>();

/**
 * Declares the IAM wildcard findings (AwsSolutions-IAM5) expected on the policies under `scope`, with the
 * reason. They name resources by tokens that are only final in the synthesised template (`<Id.Arn>/*`, or an
 * export of the other stack), so they are matched by pattern there, by {@link AwsSolutionsWithExpectedWildcards};
 * any other wildcard is still reported.
 */
export function acknowledgeWildcards(scope: IConstruct, expected: readonly ExpectedWildcard[]): void {
  const root = scope.node.root;
  expectedWildcards.set(root, [...(expectedWildcards.get(root) ?? []), { path: scope.node.path, expected }]);
}

/** cdk-nag's AwsSolutions pack, less the IAM5 findings declared with {@link acknowledgeWildcards}. */
export class AwsSolutionsWithExpectedWildcards implements IPolicyValidationPlugin {
  public readonly name = 'AwsSolutions';
  private readonly checks: AwsSolutionsChecks;

  constructor(private readonly app: IConstruct) {
    this.checks = new AwsSolutionsChecks(app);
  }

  validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const report = this.checks.validate(context);
    const declared = expectedWildcards.get(this.app) ?? [];
    const expected = (finding: string, path: string) =>
      declared.some(
        (entry) =>
          (path === entry.path || path.startsWith(`${entry.path}/`)) &&
          entry.expected.some((wildcard) => wildcard.finding.test(finding)),
      );
    const violations = report.violations
      .map((violation) => {
        const finding = /^AwsSolutions-IAM5\[(.*)\]$/.exec(violation.ruleName)?.[1];
        if (finding === undefined) return violation;
        const violatingResources = violation.violatingResources.filter(
          (resource) => !expected(finding, resource.constructPath ?? ''),
        );
        return { ...violation, violatingResources };
      })
      .filter((violation) => violation.violatingResources.length > 0);
    return { ...report, success: violations.length === 0, violations };
  }
}
