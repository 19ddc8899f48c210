import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { CrmCustomer } from '../../core/files/record-schemas';
import { SIM_INCOMPLETE_TRANSACTION, SIM_INVALID_EMAIL_DOMAIN } from '../crm-simulator/crm-simulator';
import { generateFiles, generatedFileName } from './generate-files';

export interface DemoLoad {
  /** Files to upload in waves: the second wave goes once the first has been answered. */
  readonly waves: readonly (readonly string[])[];
  /** Customers the demo CRM simulator already holds. */
  readonly customers: readonly CrmCustomer[];
}

const DATE = '20261124';
const existing = (customerId: string, email: string): CrmCustomer => ({
  customerId,
  firstName: 'Existing',
  lastName: 'Customer',
  email,
  country: 'GB',
  createdAt: '2025-06-01T00:00:00Z',
});

/**
 * The sample load of `ingest demo` (`npm start`): small enough for about a minute at 1000 calls a minute, and
 * showing every outcome:
 * - users_demo_..._001.csv: 200 generated users, a few with a bad value (VALIDATION); 5 already in the CRM
 *   (8006, then updated); C-CONFLICT already in the CRM with another customer's email (CONFLICTING_PROFILE);
 *   C-INVALID with an address the CRM refuses (3217).
 * - transactions_demo_..._001.csv: 400 generated transactions, a few bad; T-INCOMPLETE-1 (624); three for
 *   customers that arrive in the second wave (4404, then created on a retry); one for a customer that never
 *   arrives (4404 until the retries are spent). Transactions of users refused above fail the same way.
 * - users_demo_..._002.jsonl.gz (second wave): the late customers, as gzip JSON Lines.
 * - customers_demo_..._009.csv: the same bytes as the first users file (duplicate).
 * - notes_demo.txt: not a partner file (unknown, quarantined).
 */
export async function writeDemoLoad(directory: string): Promise<DemoLoad> {
  const common = { outDir: directory, partner: 'demo', date: DATE, badRate: 0.02, seed: 'demo' };
  const [users, transactions] = await generateFiles({ ...common, users: 200, transactions: 400 });
  if (!users || !transactions) throw new Error('the demo files were not written');
  const usersPath = users.path;
  const transactionsPath = transactions.path;

  const row = (...cells: string[]) => `${cells.join(',')}\n`;
  const extraUsers = [
    row('C-CONFLICT', 'Cass', 'Conflict', 'owner@example.com', '', 'GB', '2026-01-01T00:00:00Z'),
    row('C-INVALID', 'Ivy', 'Invalid', `ivy${SIM_INVALID_EMAIL_DOMAIN}`, '', 'DE', '2026-01-01T00:00:00Z'),
  ];
  const late = ['C-LATE-1', 'C-LATE-2', 'C-LATE-3'];
  const extraTransactions = [
    row(`T-${SIM_INCOMPLETE_TRANSACTION}-1`, 'C00000010', '9.99', 'EUR', '2026-02-01T10:00:00Z', 'purchase', ''),
    ...late.map((customer, n) =>
      row(`T-LATE-${n + 1}`, customer, '20.00', 'EUR', '2026-02-02T10:00:00Z', 'purchase', 'Late Shop'),
    ),
    row('T-NEVER-1', 'C-NEVER', '5.00', 'USD', '2026-02-03T10:00:00Z', '', ''),
    // Bad values: refused before sending.
    row('T-BAD-1', 'C00000011', '12.345', 'EUR', '2026-02-04T10:00:00Z', '', ''),
    row('T-BAD-2', 'C00000012', '3.00', 'EURO', '2026-02-04T10:00:00Z', '', ''),
  ];
  writeFileSync(usersPath, extraUsers.join(''), { flag: 'a' });
  writeFileSync(transactionsPath, extraTransactions.join(''), { flag: 'a' });

  const lateUsers = join(
    directory,
    generatedFileName('users', { partner: 'demo', date: DATE, sequence: 2, format: 'jsonl', gzip: true }),
  );
  const lateLines = late.map((customerId, n) =>
    JSON.stringify({
      customer_id: customerId,
      first_name: 'Lou',
      last_name: `Late ${n + 1}`,
      email: `late${n + 1}@example.com`,
      country: 'ie',
      created_at: '2026-01-05T09:00:00',
    }),
  );
  writeFileSync(lateUsers, gzipSync(`${lateLines.join('\n')}\n`));

  const duplicate = join(directory, `customers_demo_${DATE}_009.csv`);
  copyFileSync(usersPath, duplicate);
  const unknown = join(directory, 'notes_demo.txt');
  writeFileSync(unknown, 'Hello! These are notes, not a partner file.\n');

  return {
    waves: [[usersPath, transactionsPath, duplicate, unknown], [lateUsers]],
    customers: [
      ...['C00000001', 'C00000002', 'C00000003', 'C00000004', 'C00000005'].map((id) =>
        existing(id, `old.${id.toLowerCase()}@example.com`),
      ),
      existing('C-CONFLICT', 'cass@example.com'),
      existing('C-OWNER', 'owner@example.com'),
    ],
  };
}
