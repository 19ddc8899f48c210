/**
 * The error names the pipeline raises. They are data in one place: the state machine catches them by
 * name (`File.Unreadable`, ...), reports quote them, and tests assert them.
 */
export const ErrorNames = {
  configInvalid: 'Config.Invalid',
  fileUnreadable: 'File.Unreadable',
  fileTooLarge: 'File.TooLarge',
  fileEncodingNotAccepted: 'File.EncodingNotAccepted',
  fileUnknownKind: 'File.UnknownKind',
  /** The object is no longer there (already moved by an earlier execution, or deleted): nothing to do. */
  fileGone: 'File.Gone',
  ledgerMismatch: 'Ledger.Mismatch',
  /** The CRM rejected the credentials (401/403): the circuit is open, records stay pending. */
  crmAuthRejected: 'Crm.AuthRejected',
  /** 409 (key reused with another body) or a status the contract does not name: a pipeline bug, records pending. */
  crmConflict: 'Crm.Conflict',
  /** Still 429 after the retries. */
  crmThrottled: 'Crm.Throttled',
  /** 5xx, timeouts, resets or mismatched answers past the retries. */
  crmUnavailable: 'Crm.Unavailable',
  transient: 'Pipeline.Transient',
  /** Anything else a task handler met (a bug, an input the contract refuses): fails the state, for a redrive. */
  failed: 'Pipeline.Failed',
  /** A polled file changed (size or content) while it was read: it waits for a later poll. */
  sourceFileChanged: 'Source.FileChanged',
  /** The one-machine run cannot finish (credentials rejected, CRM unreachable, an execution failed). */
  runStopped: 'Run.Stopped',
  /** A polled SFTP source did not answer (refused, timed out, no such host): tried again at the next poll. */
  sourceUnreachable: 'Source.Unreachable',
  /** A polled SFTP source showed a host key other than the pinned one: nothing is read from it. */
  sourceHostKeyRejected: 'Source.HostKeyRejected',
  /** A polled SFTP source refused the user's password or key. */
  sourceAuthRejected: 'Source.AuthRejected',
  /** A transfer from (or to) a polled SFTP source broke off, or its size did not match the listing. */
  sourceTransferFailed: 'Source.TransferFailed',
} as const;

export type ErrorName = (typeof ErrorNames)[keyof typeof ErrorNames];

/** Every name of {@link ErrorNames}: what a Catch or Retry of the state machine may match, besides AWS's own. */
export const ERROR_NAMES: readonly ErrorName[] = Object.values(ErrorNames);

/** Base class: `name` is one of {@link ErrorNames}, so `error.name` is what a Catch or a report sees. */
export class PipelineError extends Error {
  constructor(
    override readonly name: ErrorName,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A file as a whole cannot be processed (binary, broken gzip, no header, a missing required column,
 * over the size limit, an encoding not accepted). Nothing of it is sent; it is quarantined with `message`.
 */
export class FileRejectedError extends PipelineError {}

/** Invalid configuration, raised at start: the message names every bad field and its rule. */
export class ConfigError extends PipelineError {
  constructor(message: string) {
    super(ErrorNames.configInvalid, message);
  }
}
