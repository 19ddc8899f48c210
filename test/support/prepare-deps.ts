import type { CallQueue } from '../../lambdas/core/crm/call-message';
import type { ObjectStore } from '../../lambdas/core/files/object-store';
import type { PhaseCounters } from '../../lambdas/core/ledger/phase-counters';
import type { AnswerSource, PhaseDeps } from '../../lambdas/core/workflow/prepare-phase';

/**
 * Prepare's ports around `store` and `queue`: phase counters that only keep each phase's batch total (`totals`),
 * no task to resume, the planner's limits as deployed (100 records, 200 KiB a batch). `answers`: none by default.
 */
export function phaseDeps(
  store: ObjectStore,
  queue: CallQueue,
  answers: AnswerSource = { answers: async function* () {} },
) {
  const totals: { phase: string; batches: number }[] = [];
  const phases = {
    setBatchTotal: (fileId: string, phase: string, batches: number) => {
      totals.push({ phase, batches });
      return Promise.resolve({ fileId, phase, batches, answered: 0, update: 0, retryLater: 0 });
    },
  } as unknown as PhaseCounters;
  const deps: PhaseDeps = {
    store,
    queue,
    phases,
    answers,
    notifier: { succeed: () => Promise.resolve() },
    limits: { maxRecords: 100, maxBytes: 200 * 1024 },
    acceptedEncodings: ['csv', 'jsonl', 'gzip'],
  };
  return { deps, totals };
}
