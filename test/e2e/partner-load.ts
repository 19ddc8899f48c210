import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import { generateFiles, type GeneratedFile } from '../../lambdas/local/cli/generate-files';

export interface PartnerLoad {
  readonly directory: string;
  /** Customers the CRM holds before the load. */
  readonly customers: CrmCustomer[];
  /** The generated (gzip) files, with their bad-row counts. */
  readonly generated: GeneratedFile[];
}

const existing = (customerId: string, email: string): CrmCustomer => ({
  customerId,
  firstName: 'Old',
  lastName: 'Record',
  email,
  country: 'GB',
  createdAt: '2025-01-01T00:00:00Z',
});

const USERS_HEADER = 'customer_id,first_name,last_name,email,phone,country,created_at';

/**
 * A partner's load with every case of local-run.md's acceptance: bad rows, a customer the CRM already has,
 * a conflicting profile, a transaction whose customer comes in a later file, one whose customer never comes,
 * a duplicate file under another name, an unknown file, gzip CSV and JSON Lines.
 */
export async function writePartnerLoad(): Promise<PartnerLoad> {
  const directory = mkdtempSync(join(tmpdir(), 'ingest-e2e-'));
  const users = [
    USERS_HEADER,
    'U1,Ada,Alder,ada@example.com,+44 20 7946 0001,GB,2026-01-01T00:00:00Z',
    // In the CRM already: 8006, then updated.
    'U2,Bo,Birch,bo@example.com,,se,2026-01-02T00:00:00Z',
    // In the CRM already, and the new email is another customer's: CONFLICTING_PROFILE.
    'U3,Cy,Cedar,owner@example.com,,FR,2026-01-03T00:00:00Z',
    // Refused by the CRM: 3217.
    'U4,Di,Dogwood,di@invalid.example,,DE,2026-01-04T00:00:00Z',
    // Refused before sending: VALIDATION.
    'U5,Ed,Elm,ed@example.com,,XX,2026-01-05T00:00:00Z',
    'U6,Fa,Fir,not-an-email,,NL,2026-01-06T00:00:00Z',
    '"U7","Gil, ""G""",Gum,gil@example.com,,IE,2026-01-07 08:00',
  ];
  writeFileSync(join(directory, 'users_acme_20261124_001.csv'), `${users.join('\r\n')}\r\n`);
  // The same bytes under another name: a duplicate.
  copyFileSync(join(directory, 'users_acme_20261124_001.csv'), join(directory, 'customers_acme_20261124_009.csv'));

  const transactions = [
    { transaction_id: 'X1', customer_id: 'U1', amount: '10.50', currency: 'eur', occurred_at: '2026-02-01T10:00:00Z' },
    // U8 comes in a later users file.
    { transaction_id: 'X2', customer_id: 'U8', amount: '-2', currency: 'EUR', occurred_at: '2026-02-01T11:00:00Z' },
    // U99 never comes: 4404 once the retries are spent.
    { transaction_id: 'X3', customer_id: 'U99', amount: '1.00', currency: 'USD', occurred_at: '2026-02-01T12:00:00Z' },
    { transaction_id: 'X4', customer_id: 'U1', amount: '1.001', currency: 'EUR', occurred_at: '2026-02-01T13:00:00Z' },
    {
      transaction_id: 'X5',
      customer_id: 'U2',
      amount: '99.99',
      currency: 'GBP',
      occurred_at: '2026-02-01T14:00:00',
      type: 'refund',
      merchant: 'Shop, "Main"',
    },
  ];
  writeFileSync(
    join(directory, 'transactions_acme_20261124_003.jsonl'),
    `${transactions.map((t) => JSON.stringify(t)).join('\n')}\n\n`,
  );
  const lateUsers = [
    {
      customer_id: 'U8',
      first_name: 'Hal',
      last_name: 'Hazel',
      email: 'hal@example.com',
      country: 'gb',
      created_at: '2026-01-08T00:00:00Z',
    },
  ];
  writeFileSync(
    join(directory, 'users_acme_20261124_004.ndjson'),
    `${lateUsers.map((u) => JSON.stringify(u)).join('\n')}\n`,
  );
  writeFileSync(join(directory, 'readme.txt'), 'Not a partner file.\n');

  const generated = await generateFiles({
    users: 150,
    transactions: 300,
    outDir: directory,
    gzip: true,
    badRate: 0.05,
    partner: 'acme',
    sequence: 2,
    seed: 'e2e',
    customerPrefix: 'G',
    transactionPrefix: 'GT',
  });

  return {
    directory,
    customers: [
      existing('U2', 'bo@old.example'),
      existing('U3', 'cy@example.com'),
      existing('U-OWNER', 'owner@example.com'),
    ],
    generated,
  };
}
