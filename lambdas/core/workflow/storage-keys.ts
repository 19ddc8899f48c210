import type { RecordFormat } from '../files/file-encoding';

/**
 * Where a file lives at each step, from one table so every step agrees (README, Storage):
 * - landing bucket: `incoming/<partner>/<name>` (the SFTP homes) -> `users/...` or `transactions/...` while it
 *   is processed (segregated: only `incoming/` starts executions, so the move starts nothing new);
 * - archive bucket: the same key when processed, `duplicates/...` for a duplicate, and the reports under
 *   `reports/<partner>/<name>/<first 12 of the SHA-256>/`;
 * - failed bucket: `quarantine/...` with the reason as metadata.
 */
export const DEFAULT_LANDING_PREFIX = 'incoming/';

/** The object's name: its key's last segment. */
export const fileNameOf = (key: string) => key.split('/').pop() ?? key;

/** The file's path below the landing prefix: `<partner>/<name>`. */
export const relativeKey = (key: string, landingPrefix: string) =>
  key.startsWith(landingPrefix) ? key.slice(landingPrefix.length) : key.replace(/^(users|transactions)\//, '');

export const segregatedKey = (key: string, kind: string, landingPrefix: string) =>
  `${kind}/${relativeKey(key, landingPrefix)}`;

export const duplicateKey = (key: string, landingPrefix: string) => `duplicates/${relativeKey(key, landingPrefix)}`;

export const quarantineKey = (key: string, landingPrefix: string) => `quarantine/${relativeKey(key, landingPrefix)}`;

/** The report folder of one file (its name and identity: the same name uploaded again gets its own folder). */
export const reportPrefix = (key: string, landingPrefix: string, sha256: string | undefined) =>
  `reports/${relativeKey(key, landingPrefix)}/${sha256 ? sha256.slice(0, 12) : 'unidentified'}/`;

/**
 * Reports for the partner in their own home: `incoming/<partner>/reports/...` (the SFTP user's `/reports`).
 * Nothing there is a partner file: the workflow and the sweep leave it alone.
 */
export const PARTNER_REPORTS_FOLDER = 'reports';
export const partnerReportsKey = (landingPrefix: string, partner: string, path: string) =>
  `${landingPrefix}${partner}/${PARTNER_REPORTS_FOLDER}/${path}`;

/**
 * True for objects in a reports folder below a partner's home (`incoming/<partner>/.../reports/...`): not partner
 * files. The same rule as the state machine's IsPartnerReport (`StringMatches` `incoming/<*>/reports/<*>`).
 */
export const isPartnerReport = (key: string, landingPrefix: string) =>
  key.startsWith(landingPrefix) && key.slice(landingPrefix.length).includes(`/${PARTNER_REPORTS_FOLDER}/`);

/**
 * The failed-records file's name: the source's name with `.failed` before its extension, uncompressed
 * (`users_acme_20261124.failed.csv`). Uploaded again, it is classified by its header, and its extra
 * `failure_reason` column is ignored as an unknown column.
 */
export function failedRecordsName(key: string, format: RecordFormat): string {
  const name = fileNameOf(key);
  const stem = name.replace(/\.gz$/i, '').replace(/\.(csv|jsonl|ndjson)$/i, '');
  return `${stem}.failed.${format === 'jsonl' ? 'jsonl' : 'csv'}`;
}
