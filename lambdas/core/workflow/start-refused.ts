/**
 * A workflow start the service refused outright (a 4xx answer other than a name already used: the machine or
 * its input refused, a limit, throttling): nothing was started. Thrown by a {@link WorkflowStarter}; any other
 * error leaves it unknown whether the execution started (an answer lost on the way back).
 */
export class WorkflowStartRefused extends Error {
  override readonly name = 'WorkflowStartRefused';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
