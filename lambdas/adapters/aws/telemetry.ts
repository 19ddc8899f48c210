import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Console } from 'node:console';
import {
  METRICS,
  METRICS_NAMESPACE,
  type DimensionsOf,
  type FunctionName,
  type MetricOf,
} from '../../contracts/telemetry';

export interface TelemetryOptions {
  /** @default Powertools' own (POWERTOOLS_LOG_LEVEL, else INFO) */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  /**
   * Where log lines and EMF metrics go. @default stdout, where Lambda takes them. The one-machine command
   * gives its log file, so its own output stays its own.
   */
  readonly output?: NodeJS.WritableStream;
}

/** A function's logger and metrics, and the one way it emits a metric: by the name and dimensions of the table. */
export interface Telemetry<S extends FunctionName> {
  readonly logger: Logger;
  readonly metrics: Metrics;
  emit<K extends MetricOf<S>>(name: K, value: number, dimensions: DimensionsOf<K>): void;
}

export function createTelemetry<S extends FunctionName>(service: S, options: TelemetryOptions = {}): Telemetry<S> {
  const logger = new Logger({ serviceName: service, ...(options.logLevel ? { logLevel: options.logLevel } : {}) });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service, logger });
  // Powertools writes through a Console of its own on stdout and takes no destination: this one writes there.
  const console = options.output ? new Console({ stdout: options.output, stderr: options.output }) : undefined;
  const redirect = <T>(target: T): T => {
    if (console) Object.assign(target as { console: Console }, { console });
    return target;
  };
  redirect(logger);
  redirect(metrics);
  return {
    logger,
    metrics,
    emit(name, value, dimensions) {
      const spec = METRICS[name];
      const unit = MetricUnit[spec.unit];
      if (spec.dimensions.length === 0) {
        metrics.addMetric(name, unit, value);
        return;
      }
      const single = redirect(metrics.singleMetric());
      single.addDimensions(dimensions as Record<string, string>);
      single.addMetric(name, unit, value);
    },
  };
}
