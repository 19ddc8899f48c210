import type { ObjectRef, ObjectStore } from '../files/object-store';
import type { FileOutcomes, RedoMarks } from '../ledger/file-claim';
import { resultRows } from '../operations/file-records';
import { leaveSchedule, type Schedule, type TurnNotifier } from '../schedule/schedule';
import { failureReason } from './finalise-file';

/**
 * What a redo round sends again (the workflow's SelectRedo step): the failed records of results.csv with the
 * codes asked for, written as line numbers where the round's prepare slices read them.
 */
export interface RedoSelection {
  /** The failure reasons retried (CRM codes, CONFLICTING_PROFILE, CANCELLED). */
  readonly codes: readonly string[];
  /** The file's results.csv, as its last summary wrote it. */
  readonly results: ObjectRef;
  /** Where the lines go: `redo/<fileId>/<round>.lines` in the archive bucket. */
  readonly lines: ObjectRef;
}

/** Text written to the lines object a request at a time: one write per ~64 KiB, not one per line. */
const LINES_CHUNK_CHARS = 64 * 1024;

/**
 * Streams results.csv once and writes the line of every failed record with one of `codes`, ascending, one a
 * line (prepare-phase.ts `readLineSet` reads them). Memory stays flat whatever the file's size: rows are parsed
 * as they arrive and the lines are uploaded as they are found. One invocation reads a 20M-record results.csv
 * well within its 15 minutes (docs/operations.md, "Retrying failed records", gives the measured rate).
 * @returns the number of lines written (0: nothing to send, the round is given up).
 */
export async function selectRedoLines(store: Pick<ObjectStore, 'read' | 'upload'>, selection: RedoSelection) {
  const wanted = new Set(selection.codes);
  const upload = store.upload(selection.lines, 'text/plain; charset=utf-8');
  let count = 0;
  let text = '';
  try {
    for await (const { record } of resultRows(store, selection.results)) {
      if (record.outcome !== 'failed' || record.code === null || !wanted.has(record.code)) continue;
      text += `${record.line}\n`;
      count++;
      if (text.length >= LINES_CHUNK_CHARS) {
        await upload.write(text);
        text = '';
      }
    }
    if (text) await upload.write(text);
    await upload.end();
  } catch (error) {
    await upload.abort().catch(() => undefined);
    throw error;
  }
  return count;
}

/** A redo round given up by its execution (the workflow's GiveUpRedo step). */
export interface RedoGiveUp {
  readonly fileId: string;
  readonly round: number;
  /** The error that ended it (a Catch's `{Error, Cause}`): kept on the claim as the reason. */
  readonly error?: { readonly Error?: string; readonly Cause?: string };
}

export interface RedoGiveUpDeps {
  readonly outcomes: Pick<FileOutcomes, 'read'>;
  readonly marks: Pick<RedoMarks, 'abandonRedo'>;
  readonly schedule?: Pick<Schedule, 'read' | 'finish' | 'view' | 'takeTurnToken'>;
  readonly turnNotifier?: TurnNotifier;
}

/**
 * Ends a redo round whose execution failed or found nothing to send: the file leaves the schedule (waking
 * the files it held), then the round is marked done and abandoned on the claim, so a new retry may start. The
 * summary, the reports and the archived file are left as they were: the file is as it was before the round,
 * except for the records the round had sent (their answers are merged by the next round's report).
 * Only the round in flight: a repeat (a retried step) after it ended changes nothing, so it can never take a
 * later round's file out of the schedule.
 * @returns false when the round had already ended.
 */
export async function abandonRedoRound(deps: RedoGiveUpDeps, input: RedoGiveUp): Promise<boolean> {
  const mark = (await deps.outcomes.read(input.fileId))?.redo;
  if (!mark || mark.round !== input.round || mark.done) return false;
  // Out of the schedule before the mark ends: once it has, a new round may register the file again.
  const scheduled = await deps.schedule?.read(input.fileId);
  if (scheduled && deps.schedule) {
    await leaveSchedule(deps.schedule, deps.turnNotifier, scheduled, new Date().toISOString());
  }
  return deps.marks.abandonRedo(input.fileId, input.round, input.error ? failureReason(input.error) : undefined);
}
