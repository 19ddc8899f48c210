import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import type { PhaseState } from '../../lambdas/core/ledger/phase-counters';
import type { ScheduledFile } from '../../lambdas/core/schedule/schedule';
import { LOCAL_NAMES } from '../../lambdas/local/wiring/local-pipeline';
import {
  finished,
  scheduled,
  sleep,
  startScheduledPipeline,
  type ScheduledPipeline,
} from '../support/scheduled-pipeline';

/**
 * The live tallies of a file in flight (issue 16, the file view's `received = succeeded + failed + pending`), on
 * the embedded services at a scaled pace: the phase counters (records each phase's answers ended, failures by
 * reason) and the records the ADD phase read and refused (its schedule entry), read again and again while the
 * file runs, in short prepare slices (each carries the counts on in its checkpoint).
 */
const RECORDS = 5000;
const NAME = 'users_tl_20261124_001.csv';

/**
 * Record i of the file: every 97th has a bad email (VALIDATION); every 41st an email the CRM refuses (3217); every
 * 10th a customer the CRM has (8006, then UPD), of whom every 30th gives an email another customer has
 * (CONFLICTING_PROFILE).
 */
function usersFile(): { csv: string; customers: CrmCustomer[] } {
  const rows = ['customer_id,first_name,last_name,email,phone,country,created_at'];
  const customers: CrmCustomer[] = [];
  const seededEmail = (i: number) => `seeded-tl${i}@example.com`;
  for (let i = 1; i <= RECORDS; i++) {
    if (i % 10 === 0) {
      customers.push({
        customerId: `TL${i}`,
        firstName: 'Seeded',
        lastName: 'Customer',
        email: seededEmail(i),
        country: 'GB',
        createdAt: '2025-01-01T00:00:00Z',
      });
    }
    const email =
      i % 97 === 0
        ? 'not-an-email'
        : i % 41 === 0
          ? `tl${i}@invalid.example`
          : i % 30 === 0
            ? seededEmail(i + 10)
            : `tl${i}@example.com`;
    rows.push(`TL${i},Ada,Alder,${email},,GB,2026-11-24T03:00:00Z`);
  }
  return { csv: rows.join('\n'), customers };
}

/** One look at the file: its phases' counters, then its schedule entry (gone once the file is finished). */
interface Look {
  readonly phases: readonly PhaseState[];
  readonly entry: ScheduledFile | undefined;
}

const sumOf = (phases: readonly PhaseState[], count: (phase: PhaseState) => number | undefined) =>
  phases.reduce((sum, phase) => sum + (count(phase) ?? 0), 0);

/** What the file view makes of a look: every count, by phase and in all, keyed for the never-go-down check. */
function countsOf({ phases, entry }: Look): Record<string, number> {
  const counts: Record<string, number> = {
    received: entry?.received ?? 0,
    rejected: entry?.rejected ?? 0,
    succeeded: sumOf(phases, (phase) => phase.succeeded),
    failed: sumOf(phases, (phase) => phase.failed) + (entry?.rejected ?? 0),
  };
  for (const phase of phases) {
    counts[`${phase.phase}.answered`] = phase.answered;
    counts[`${phase.phase}.succeeded`] = phase.succeeded ?? 0;
    counts[`${phase.phase}.failed`] = phase.failed ?? 0;
    for (const [reason, count] of Object.entries(phase.failures ?? {})) counts[`${phase.phase}.fail#${reason}`] = count;
  }
  return counts;
}

describe('live per-record tallies of a file in flight', () => {
  let run: ScheduledPipeline;
  const { csv, customers } = usersFile();
  beforeAll(async () => {
    // Short invocations: the ADD phase takes several prepare slices, each going on from its checkpoint.
    run = await startScheduledPipeline({ CRM_BATCH_SIZE: '40', LOCAL_FUNCTION_TIMEOUT_S: '6' }, { customers });
  }, 60_000);
  afterAll(() => run?.close());

  it('never counts more answered than read, never goes down, and ends as the summary says', async () => {
    const { pipeline } = run;
    const counters = new DynamoDbPhaseCounters(
      pipeline.db.client(),
      LOCAL_NAMES.ledgerTable,
      new DynamoDbCallAnswers(pipeline.db.client(), LOCAL_NAMES.ledgerTable),
    );
    await pipeline.land(`tl/${NAME}`, csv);
    const { fileId } = await scheduled(pipeline, NAME);

    const looks: Look[] = [];
    let done = false;
    const summary = finished(pipeline, NAME, 120_000).finally(() => {
      done = true;
    });
    while (!done) {
      // The phases first: the entry read after them has counted every record their answers name (it is written
      // before each hand-off of batches), so the order of the two reads cannot make answers outrun the records.
      const phases = await counters.phases(fileId);
      const entry = await pipeline.schedule.read(fileId);
      if (entry) looks.push({ phases, entry });
      await sleep(150);
    }
    const final = await summary;
    const phases = await counters.phases(fileId);

    // Seen mid-run, in several phases' time, and after the ADD phase had read the whole file.
    const midRun = looks.filter((look) => {
      const answered = sumOf(look.phases, (phase) => (phase.succeeded ?? 0) + (phase.failed ?? 0));
      return answered > 0 && answered + (look.entry?.rejected ?? 0) < final.received;
    });
    expect(midRun.length).toBeGreaterThan(10);
    const last = looks[looks.length - 1] as Look;
    expect({ received: last.entry?.received, rejected: last.entry?.rejected }).toEqual({
      received: final.received,
      rejected: final.failures.VALIDATION,
    });

    // Every look: terminal outcomes within the records read, nothing negative.
    const outrun = looks
      .map(countsOf)
      .filter(
        (counts) => counts.succeeded! + counts.failed! > counts.received! || Object.values(counts).some((n) => n < 0),
      );
    expect(outrun).toEqual([]);
    // No count ever goes down from one look to the next.
    const wentDown: string[] = [];
    looks.map(countsOf).forEach((counts, i, all) => {
      if (i === 0) return;
      for (const [name, before] of Object.entries(all[i - 1]!)) {
        if ((counts[name] ?? 0) < before) wentDown.push(`look ${i}: ${name} ${before} -> ${counts[name] ?? 0}`);
      }
    });
    expect(wentDown).toEqual([]);

    // At the end, the phases and the records refused add up to the summary.
    expect(phases.map((phase) => phase.phase)).toEqual(['ADD', 'UPD']);
    const failures: Record<string, number> = { VALIDATION: last.entry?.rejected ?? 0 };
    for (const phase of phases) {
      for (const [reason, count] of Object.entries(phase.failures ?? {})) {
        failures[reason] = (failures[reason] ?? 0) + count;
      }
    }
    expect({
      received: final.received,
      succeeded: sumOf(phases, (phase) => phase.succeeded),
      failed: sumOf(phases, (phase) => phase.failed) + (last.entry?.rejected ?? 0),
      failures,
    }).toEqual({ received: RECORDS, succeeded: final.succeeded, failed: final.failed, failures: final.failures });
    expect(Object.keys(final.failures).sort()).toEqual(['3217', 'CONFLICTING_PROFILE', 'VALIDATION']);
  }, 150_000);
});
