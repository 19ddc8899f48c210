import type { LocalAwsEndpoint } from '../services/local-aws-endpoint';

/** What an EventBridge rule's Lambda target receives. */
export interface RuleEvent {
  readonly 'detail-type': string;
  readonly source: string;
  readonly detail: unknown;
}

/**
 * An EventBridge rule on the events the handlers put (PutEvents, answered by the local AWS endpoint): each
 * event of `detailType` invokes `target`, asynchronously as Lambda's event invocation does. `settled()` waits
 * for the invocations in hand (a stop lets them finish).
 */
export function routeEvents(
  endpoint: LocalAwsEndpoint,
  detailType: string,
  target: (event: RuleEvent) => Promise<void>,
): { settled(): Promise<void> } {
  const running = new Set<Promise<void>>();
  endpoint.onEvent((event) => {
    if (event.detailType !== detailType) return;
    const invocation = target({ 'detail-type': event.detailType, source: event.source, detail: event.detail });
    running.add(invocation);
    void invocation.finally(() => running.delete(invocation));
  });
  return {
    settled: async () => {
      await Promise.allSettled([...running]);
    },
  };
}
