import type { LocalS3 } from '../services/local-s3';

export interface ObjectCreatedRule {
  readonly bucket: string;
  readonly prefix: string;
  readonly target: (object: { bucket: string; key: string; size: number }) => void;
}

/**
 * S3's Object Created events on EventBridge and the rule that starts the workflow: an object created under
 * the prefix of the bucket starts its target. `miss(key)` makes one object's event go missing, as AWS may
 * (the sweep's tests).
 */
export function routeObjectCreated(s3: LocalS3, rule: ObjectCreatedRule): { miss(key: string): void } {
  const missed = new Set<string>();
  s3.onObjectCreated((object) => {
    if (missed.delete(object.key)) return;
    if (object.bucket === rule.bucket && object.key.startsWith(rule.prefix)) rule.target(object);
  });
  return { miss: (key) => void missed.add(key) };
}
