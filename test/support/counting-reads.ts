import type { ObjectReader, ObjectRef } from '../../lambdas/core/files/object-store';

type Range = { start: number; end: number };

/**
 * The store, its reads counted: the bytes they hand out and the ranges asked for, of the objects `counted`
 * picks (all by default). How the resume tests show a sliced file is read about once in all.
 */
export function countingReads<S extends ObjectReader>(store: S, counted: (ref: ObjectRef) => boolean = () => true) {
  const read = store.read.bind(store);
  const counts = Object.assign(store, { bytesRead: 0, ranges: [] as (Range | undefined)[] });
  counts.read = async function* (ref: ObjectRef, range?: Range) {
    const counting = counted(ref);
    if (counting) counts.ranges.push(range);
    for await (const chunk of read(ref, range)) {
      if (counting) counts.bytesRead += chunk.length;
      yield chunk;
    }
  } as S['read'];
  return counts;
}
