/**
 * A summary.json's text without its clock times (`landedAt`, `startedAt`, `finishedAt`): what two runs of the
 * same file must share byte for byte (the counts, failures, calls made and report keys).
 */
export function withoutTimes(summaryText: string): string {
  const {
    landedAt: _landed,
    startedAt: _started,
    finishedAt: _finished,
    ...rest
  } = JSON.parse(summaryText) as Record<string, unknown>;
  return JSON.stringify(rest, null, 2);
}
