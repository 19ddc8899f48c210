import { z } from 'zod';
import { defineContract, defineEnvironment, Sha256Schema } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import { PHASE_PATTERN } from '../core/crm/call-message';
import { ErrorNames } from '../core/errors';
import { SCHEDULE_SETTINGS } from '../core/schedule/schedule';

const Phase = z.string().regex(PHASE_PATTERN);

/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({ action: z.literal('await'), fileId: Sha256Schema, phase: Phase, taskToken: z.string().min(1) }),
  z.object({ action: z.literal('await-turn'), fileId: Sha256Schema, phase: Phase, taskToken: z.string().min(1) }),
  z.object({
    action: z.literal('check'),
    fileId: Sha256Schema,
    phase: Phase,
    previous: z.object({ phase: z.string(), answered: z.number().int() }).optional(),
  }),
]);

/** What a finished phase tells the state machine: the task token's output (its NextPhase choice reads it). */
export const PhaseResultSchema = z.object({
  phase: Phase,
  batches: z.number().int().min(0),
  answered: z.number().int().min(0),
  update: z.number().int().min(0),
  retryLater: z.number().int().min(0),
});

/**
 * await: stores the waiting execution's task token on the phase (the `.waitForTaskToken` task ends with
 * {@link PhaseResultSchema}, sent by whoever sees the phase complete); check: the periodic check.
 */
export const awaitPhaseContract = defineContract({
  name: 'await-phase',
  description: 'Stores a phase or turn task token; checks a stalled phase',
  timeoutSeconds: 15 * 60,
  memoryMb: 1024,
  input: Input,
  outputs: {
    await: z.object({ resumed: z.boolean() }),
    'await-turn': z.object({ woken: z.boolean() }),
    check: PhaseResultSchema.extend({ complete: z.boolean(), recounted: z.boolean() }),
  },
  environment: defineEnvironment({ LEDGER_TABLE_NAME: z.string().min(1) }, [
    'ledgerRetentionDays',
    'logLevel',
    ...SCHEDULE_SETTINGS,
  ]),
  errors: [ErrorNames.transient, ErrorNames.failed],
  metrics: metricsOf('await-phase'),
});

export type AwaitPhaseEnvironment = ReturnType<typeof awaitPhaseContract.environment.read>;
