import { SETTINGS } from '../../core/config';

const DAY_S = 86_400;
const DEFAULT_RETENTION_DAYS: number = SETTINGS.ledgerRetentionDays.schema.parse(undefined);

/**
 * How long a file's ledger items are kept (LEDGER_RETENTION_DAYS). Every write of an item sets its `expiresAt`,
 * the ledger table's TTL attribute (epoch seconds), to that many days after the write, so an item goes that long
 * after its last write; the claim's last write is the file's summary, so a finished file's claim goes that long
 * after the file finished. DynamoDB deletes expired items by itself (within days); the local stand-in never does.
 */
export interface LedgerRetention {
  /** @default LEDGER_RETENTION_DAYS's default */
  readonly retentionDays?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The `expiresAt` of an item written now. */
export function ledgerExpiresAt({
  retentionDays = DEFAULT_RETENTION_DAYS,
  now = Date.now,
}: LedgerRetention = {}): number {
  return Math.floor(now() / 1000) + retentionDays * DAY_S;
}
