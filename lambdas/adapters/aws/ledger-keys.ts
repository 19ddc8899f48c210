/**
 * The ledger table's key scheme, in one place: every item of a file shares `pk` = `file#<sha256>`, so one
 * Query reads a file's claim and all its answers.
 */
export const fileKey = (fileId: string) => `file#${fileId}`;

/** The file's claim. */
export const CLAIM_SORT_KEY = 'claim';

/** A batch's answer; zero-padded so a file's answers sort by phase and batch. */
export const answerKey = (phase: string, batchIndex: number) =>
  `${answerPrefix(phase)}${String(batchIndex).padStart(9, '0')}`;

/** The answers of one phase: `answer#<phase>#`, with the closing `#` so RETRY1 does not take in RETRY10. */
export const answerPrefix = (phase: string) => `answer#${phase}#`;

/** A phase's counters and task token. */
export const phaseKey = (phase: string) => `phase#${phase}`;

/** A polled source's items: `pk` = `source#<name>`; one `seen#<path>` per listed file, one `collect#...` per file taken. */
export const sourceKey = (source: string) => `source#${source}`;
export const seenKey = (path: string) => `seen#${path}`;
export const collectionKey = (file: { path: string; size: number; modifiedAt: number }) =>
  `collect#${file.path}#${file.size}#${file.modifiedAt}`;

/** The schedule (lambdas/core/schedule): one partition, an item per file in flight and per partner. */
export const SCHEDULE_PARTITION = 'schedule';
export const scheduledFileKey = (fileId: string) => `file#${fileId}`;
export const schedulePartnerKey = (partner: string) => `partner#${partner}`;
export const LANDINGS_SORT_KEY = 'landings';
