import { BatchPlanner, batchBody, type PlannedBatch } from '../../../lambdas/core/files/plan-batches';

function plan(jsons: string[], maxRecords: number, maxBytes: number): PlannedBatch[] {
  const planner = new BatchPlanner({ maxRecords, maxBytes });
  const batches: PlannedBatch[] = [];
  jsons.forEach((json, i) => {
    const full = planner.add(i + 2, json);
    if (full) batches.push(full);
  });
  const last = planner.flush();
  if (last) batches.push(last);
  return batches;
}

const record = (n: number, pad = 0) => JSON.stringify({ id: `R${n}`, pad: 'é'.repeat(pad) });

describe('BatchPlanner', () => {
  it('cuts batches of at most N records, numbered in order, keeping every record once', () => {
    const jsons = Array.from({ length: 250 }, (_, i) => record(i));
    const batches = plan(jsons, 100, 1_000_000);
    expect(batches.map((b) => [b.index, b.items.length])).toEqual([
      [0, 100],
      [1, 100],
      [2, 50],
    ]);
    expect(batches.flatMap((b) => b.items.map((i) => i.json))).toEqual(jsons);
    expect(batches[1]?.items[0]?.line).toBe(102);
  });

  it('keeps every batch body within the byte budget, counting UTF-8 bytes exactly', () => {
    const jsons = Array.from({ length: 500 }, (_, i) => record(i, i % 37));
    const batches = plan(jsons, 100, 2000);
    for (const batch of batches) {
      const body = batchBody(batch.items);
      expect(Buffer.byteLength(body)).toBe(batch.bytes);
      expect(batch.bytes).toBeLessThanOrEqual(2000);
      expect(JSON.parse(body).records).toHaveLength(batch.items.length);
    }
    expect(batches.flatMap((b) => b.items.map((i) => i.json))).toEqual(jsons);
    expect(batches.length).toBeGreaterThan(5);
  });

  it('plans the same records into the same batches every time', () => {
    const jsons = Array.from({ length: 333 }, (_, i) => record(i, i % 5));
    expect(plan(jsons, 100, 3000)).toEqual(plan(jsons, 100, 3000));
  });

  it('numbers from a given first index (later phases and slices go on from there)', () => {
    const planner = new BatchPlanner({ maxRecords: 2, maxBytes: 10_000 }, 7);
    planner.add(1, '{}');
    planner.add(2, '{}');
    expect(planner.add(3, '{}')?.index).toBe(7);
    expect(planner.flush()?.index).toBe(8);
    expect(planner.flush()).toBeUndefined();
  });

  it('refuses a single record larger than the budget, naming its line', () => {
    const planner = new BatchPlanner({ maxRecords: 100, maxBytes: 50 });
    expect(() => planner.add(9, record(1, 40))).toThrow(/line 9: one record is \d+ bytes, over the batch budget of 50/);
  });
});
