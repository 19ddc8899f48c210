import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { PhaseResult, TaskNotifier } from '../../core/ledger/phase-counters';

/** A token already used (another writer resumed the execution first) or no longer waited on. */
const SPENT = new Set(['TaskTimedOut', 'TaskDoesNotExist']);

/** Resumes a waiting execution with Step Functions' SendTaskSuccess (and locally, the same call to the stand-in). */
export class SfnTaskNotifier implements TaskNotifier {
  constructor(private readonly sfn: SFNClient) {}

  async succeed(taskToken: string, result: PhaseResult): Promise<void> {
    try {
      await this.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(result) }));
    } catch (error) {
      if (!SPENT.has((error as Error).name)) throw error;
    }
  }
}
