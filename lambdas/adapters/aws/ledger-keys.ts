/**
 * The ledger table's key scheme, in one place: every item of a file shares `pk` = `file#<sha256>`, so one
 * Query reads a file's claim and all its answers.
 */
export const fileKey = (fileId: string) => `file#${fileId}`;

/** The file's claim. */
export const CLAIM_SORT_KEY = 'claim';

/** A batch's answer; zero-padded so a file's answers sort by phase and batch. */
export const answerKey = (phase: string, batchIndex: number) =>
  `answer#${phase}#${String(batchIndex).padStart(9, '0')}`;
