import { Writable } from 'node:stream';
import { METRICS_NAMESPACE } from '../../contracts/telemetry';
import type { MinuteStats, StatsSource } from '../../core/operations/ports';
import { quantile } from '../../core/operations/stats';

/** One minute of the metrics the stats read. */
interface Minute {
  calls: number;
  succeeded: number;
  failed: number;
  latencies: number[];
  errors: Map<string, number>;
}

interface EmfLine {
  _aws?: { Timestamp?: number; CloudWatchMetrics?: { Namespace?: string; Metrics?: { Name?: string }[] }[] };
  [key: string]: unknown;
}

const MINUTE_MS = 60_000;
/** Minutes kept: the stats route answers at most a day. */
const KEPT_MINUTES = 1440;

const values = (value: unknown): number[] =>
  (Array.isArray(value) ? value : [value]).filter((v): v is number => typeof v === 'number');

/**
 * The handlers' metrics on one machine, as CloudWatch would aggregate them: a writable stream that takes their
 * log output (JSON lines; the EMF ones carry `_aws`), tallies CrmCalls, Records (by Outcome and Code) and
 * CrmLatency per minute, and passes every line on to `next` (the log file). The stats route reads it.
 */
export class EmfStats extends Writable implements StatsSource {
  private readonly minutes = new Map<number, Minute>();
  private carry = '';

  constructor(private readonly next?: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = (this.carry + text).split('\n');
    this.carry = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"_aws"')) this.take(line);
    // Passed on at once, as the handlers' console would write it: whoever reads the log sees each line as soon
    // as the handler has written it (tests read it right after an invocation). Logs take no backpressure.
    this.next?.write(chunk);
    done();
  }

  async stats(minutes: number, now: Date): Promise<MinuteStats> {
    const last = Math.floor(now.getTime() / MINUTE_MS);
    const window = Array.from({ length: minutes }, (_, i) => this.minutes.get(last - minutes + 1 + i));
    const latencies = window.flatMap((minute) => minute?.latencies ?? []).sort((a, b) => a - b);
    const errorsByCode: Record<string, number> = {};
    for (const minute of window) {
      for (const [code, count] of minute?.errors ?? []) errorsByCode[code] = (errorsByCode[code] ?? 0) + count;
    }
    return {
      callsPerMinute: window.map((minute) => minute?.calls ?? 0),
      recordsPerMinute: {
        succeeded: window.map((minute) => minute?.succeeded ?? 0),
        failed: window.map((minute) => minute?.failed ?? 0),
      },
      latencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
      errorsByCode,
    };
  }

  private take(text: string): void {
    let line: EmfLine;
    try {
      line = JSON.parse(text) as EmfLine;
    } catch {
      return;
    }
    const directive = line._aws?.CloudWatchMetrics?.[0];
    if (!directive || directive.Namespace !== METRICS_NAMESPACE) return;
    const minuteOf = Math.floor((line._aws?.Timestamp ?? Date.now()) / MINUTE_MS);
    let minute = this.minutes.get(minuteOf);
    if (!minute) {
      minute = { calls: 0, succeeded: 0, failed: 0, latencies: [], errors: new Map() };
      this.minutes.set(minuteOf, minute);
      for (const old of this.minutes.keys()) if (old <= minuteOf - KEPT_MINUTES) this.minutes.delete(old);
    }
    const names = new Set((directive.Metrics ?? []).map((metric) => metric.Name));
    if (names.has('CrmCalls')) minute.calls += values(line.CrmCalls).reduce((a, b) => a + b, 0);
    if (names.has('CrmLatency')) minute.latencies.push(...values(line.CrmLatency));
    if (names.has('Records')) {
      const count = values(line.Records).reduce((a, b) => a + b, 0);
      if (line.Outcome === 'succeeded') minute.succeeded += count;
      else if (line.Outcome === 'failed') {
        minute.failed += count;
        const code = String(line.Code ?? 'none');
        minute.errors.set(code, (minute.errors.get(code) ?? 0) + count);
      }
    }
  }
}
