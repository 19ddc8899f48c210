import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { createServer, type Server, type Socket } from 'node:net';
import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { fileIngestionSubstitutions, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/contracts/infrastructure';
import { loadConfig } from '../../lambdas/core/config';
import { PollSourceSchema } from '../../lambdas/core/polling/poll-source';
import { loadDefinition, localLambdaArn } from '../../lambdas/local/integrations/state-machine-runner';
import { startLocalPipeline, withTaskTimeouts } from '../../lambdas/local/wiring/local-pipeline';

/**
 * LOCAL_FUNCTION_TIMEOUT_S (`--function-timeout`): on one machine every handler gets the smaller of its own
 * timeout and this one, and is cut off at it as Lambda would, and the workflow's Tasks keep their margin over it.
 */
describe('the local function timeout', () => {
  it('moves each Task timeout of the workflow with its function, keeping the margin', () => {
    const settings = loadConfig({ flags: { localFunctionTimeoutSeconds: 20 } });
    const definition = withTaskTimeouts(
      loadDefinition('file-ingestion.asl.json', fileIngestionSubstitutions(localLambdaArn, settings)),
      settings,
    ) as unknown as { States: Record<string, { Type: string; TimeoutSeconds?: number; TimeoutSecondsPath?: string }> };
    const timeouts = Object.values(definition.States)
      .filter((state) => state.Type === 'Task' && !state.TimeoutSecondsPath)
      .map((state) => state.TimeoutSeconds);
    expect(timeouts.length).toBeGreaterThan(5);
    expect(new Set(timeouts)).toEqual(new Set([20 + TASK_TIMEOUT_MARGIN_SECONDS]));
    // The default leaves the deployed timeouts as they are.
    const deployed = withTaskTimeouts(
      loadDefinition('file-ingestion.asl.json', fileIngestionSubstitutions(localLambdaArn, loadConfig())),
      loadConfig(),
    ) as unknown as { States: Record<string, { TimeoutSeconds?: number }> };
    expect(deployed.States.ClassifyFile?.TimeoutSeconds).toBe(
      FUNCTION_CONTRACTS['classify-file'].timeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS,
    );
  });

  it('cuts a handler off at its timeout, as on AWS (middy ends it with a TimeoutError just before)', async () => {
    // An SFTP source that takes the connection and never says a word: the poll waits on it.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const source = PollSourceSchema.parse({
      name: 'silent',
      partner: 'acme',
      host: '127.0.0.1',
      port: (silent.address() as { port: number }).port,
      username: 'crm',
      remoteDir: '/outbox',
      hostKeyFingerprint: `SHA256:${'A'.repeat(43)}`,
    });
    const pipeline = await startLocalPipeline({
      settings: loadConfig({ flags: { localFunctionTimeoutSeconds: 5 } }),
      sources: [{ source, credentials: { password: 'p' } }],
    });
    try {
      // The call queue follows AWS's rule on the dispatcher's local timeout: a cut-off batch is back in 30 s.
      const { Attributes } = await pipeline.sqs
        .client()
        .send(new GetQueueAttributesCommand({ QueueUrl: pipeline.queueUrl, AttributeNames: ['VisibilityTimeout'] }));
      expect(Attributes?.VisibilityTimeout).toBe('30');
      const started = Date.now();
      const error = await pipeline.poll('silent').then(
        () => undefined,
        (failure: unknown) => failure as Error,
      );
      expect(error?.name).toBe('TimeoutError');
      expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
      await pipeline.close();
    }
  }, 30_000);
});
