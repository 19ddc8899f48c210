import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { WorkflowStartRefused } from '../../core/workflow/start-refused';
import type { LandingZone, WorkflowStarter } from '../../core/workflow/sweep-landing-zone';

/** The landing bucket's objects under a prefix, page by page. */
export class S3LandingZone implements LandingZone {
  constructor(private readonly s3: S3Client) {}

  async *list(bucket: string, prefix: string) {
    for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket: bucket, Prefix: prefix })) {
      for (const object of page.Contents ?? []) {
        yield {
          key: object.Key ?? '',
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
          etag: object.ETag ?? '',
        };
      }
    }
  }
}

/**
 * StartExecution of the file workflow; a name already used is `already` (execution names are unique). An error
 * the service answered with a 4xx is {@link WorkflowStartRefused} (nothing started); any other (a 5xx, the
 * network, the SDK's retries spent on an answer lost) is thrown as it is: the execution may have started.
 */
export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(name: string, input: unknown): Promise<'started' | 'already'> {
    try {
      await this.sfn.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify(input) }),
      );
      return 'started';
    } catch (error) {
      if ((error as Error).name === 'ExecutionAlreadyExists') return 'already';
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        throw new WorkflowStartRefused(`${(error as Error).name}: ${(error as Error).message}`, { cause: error });
      }
      throw error;
    }
  }
}
