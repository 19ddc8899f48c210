import { z } from 'zod';
import type { Schedule } from '../schedule/schedule';
import { parseParams } from './files';
import { unfinishedStatus } from './file-view';
import type { MinuteStats, QueueDepth, StatsSource } from './ports';

export interface StatsDeps {
  readonly source: StatsSource;
  readonly queue: QueueDepth;
  readonly schedule: Pick<Schedule, 'view'>;
  readonly callsPerMinute: number;
  readonly now?: () => Date;
}

const StatsQuery = z.object({
  minutes: z.coerce
    .number({ error: 'minutes: a whole number from 1 to 1440' })
    .int({ error: 'minutes: a whole number from 1 to 1440' })
    .min(1, { error: 'minutes: a whole number from 1 to 1440' })
    .max(1440, { error: 'minutes: a whole number from 1 to 1440' })
    .default(15),
});

export type Stats = MinuteStats & {
  readonly limitPerMinute: number;
  readonly queue: { readonly waiting: number; readonly inFlight: number };
  readonly files: { readonly running: number; readonly waiting: number; readonly paused: number };
};

/**
 * GET /v1/stats: per minute over the last `minutes` (oldest first), from the metrics the handlers emit; the call
 * queue's depth and the files in flight from the queue and the schedule, now.
 */
export async function stats(deps: StatsDeps, params: Record<string, string | undefined>): Promise<Stats> {
  const { minutes } = parseParams(StatsQuery, params);
  const now = (deps.now ?? (() => new Date()))();
  const [metrics, queue, view] = await Promise.all([
    deps.source.stats(minutes, now),
    deps.queue.depth(),
    deps.schedule.view(),
  ]);
  const files = { running: 0, waiting: 0, paused: 0 };
  for (const file of view.files) {
    const status = unfinishedStatus(file, view);
    if (status === 'paused') files.paused++;
    else if (status === 'running') files.running++;
    else files.waiting++;
  }
  return { limitPerMinute: deps.callsPerMinute, ...metrics, queue, files };
}

/** The value at a quantile of sorted numbers (nearest rank), or null when there are none. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
