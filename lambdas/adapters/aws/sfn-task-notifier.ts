import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { PhaseResult, TaskNotifier } from '../../core/ledger/phase-counters';
import type { TurnNotifier } from '../../core/schedule/schedule';

/** A token already used (another writer resumed the execution first) or no longer waited on. */
const SPENT = new Set(['TaskTimedOut', 'TaskDoesNotExist']);

/** Resumes a waiting execution with Step Functions' SendTaskSuccess (and locally, the same call to the stand-in). */
export class SfnTaskNotifier implements TaskNotifier, TurnNotifier {
  constructor(private readonly sfn: SFNClient) {}

  succeed(taskToken: string, result: PhaseResult): Promise<void> {
    return this.send(taskToken, result);
  }

  /** AwaitTurn's output is discarded (ResultPath null): the execution just asks again. */
  wake(taskToken: string): Promise<void> {
    return this.send(taskToken, {});
  }

  private async send(taskToken: string, output: unknown): Promise<void> {
    try {
      await this.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
    } catch (error) {
      if (!SPENT.has((error as Error).name)) throw error;
    }
  }
}
