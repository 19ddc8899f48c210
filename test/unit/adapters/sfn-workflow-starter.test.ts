import {
  ExecutionAlreadyExists,
  SFNClient,
  SFNServiceException,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { SfnWorkflowStarter } from '../../../lambdas/adapters/aws/landing-zone-adapters';
import { WorkflowStartRefused } from '../../../lambdas/core/workflow/start-refused';

/**
 * What a StartExecution outcome tells the caller (a retry by code decides on it whether its round runs): a name
 * used is `already`; a 4xx answer is a refusal, nothing started; anything else may have started it.
 */
describe('SfnWorkflowStarter', () => {
  const sfn = mockClient(SFNClient);
  afterEach(() => sfn.reset());
  const starter = () => new SfnWorkflowStarter(new SFNClient({ region: 'eu-west-1' }), 'arn:aws:states:::machine');
  const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode }, message: 'm' });

  it('starts under the name with the input as JSON', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:x', startDate: new Date() });
    expect(await starter().start('redo-aaaa-1', { redo: { round: 1 } })).toBe('started');
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: 'arn:aws:states:::machine',
      name: 'redo-aaaa-1',
      input: '{"redo":{"round":1}}',
    });
  });

  it('a name already used is `already`: that execution is the one', async () => {
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ ...meta(400) }));
    expect(await starter().start('redo-aaaa-1', {})).toBe('already');
  });

  it('a 4xx answer (the machine refused, a limit, throttling) is a WorkflowStartRefused: nothing started', async () => {
    sfn.on(StartExecutionCommand).rejects(new StateMachineDoesNotExist({ ...meta(400) }));
    const error = (await starter()
      .start('redo-aaaa-1', {})
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(WorkflowStartRefused);
    expect(error.message).toMatch(/^StateMachineDoesNotExist: /);
  });

  it('a 5xx or no answer at all is thrown as it is: the execution may have started', async () => {
    const serverError = new SFNServiceException({ name: 'InternalFailure', $fault: 'server', ...meta(500) });
    sfn.on(StartExecutionCommand).rejectsOnce(serverError).rejectsOnce(new Error('socket hang up'));
    for (const expected of ['InternalFailure', 'Error']) {
      const error = (await starter()
        .start('redo-aaaa-1', {})
        .catch((e: unknown) => e)) as Error;
      expect(error).not.toBeInstanceOf(WorkflowStartRefused);
      expect(error.name).toBe(expected);
    }
  });
});
