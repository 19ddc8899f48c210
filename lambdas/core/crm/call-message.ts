import { z } from 'zod';
import { CrmCustomerSchema, CrmTransactionSchema } from '../files/record-schemas';
import { CRM_OPERATIONS } from './response-policy';

/** Phases of a file's workflow: ADD first, UPD for 8006 customers, RETRY<n> for 4404 transactions. */
export const PHASE_PATTERN = /^(ADD|UPD|RETRY[1-9]\d?)$/;

/**
 * One CRM call waiting in the call queue: a batch of one phase of one file, with each record's source line.
 * The same message always makes the same request body, so its Idempotency-Key (file, phase, batch) holds.
 */
export const CallMessageSchema = z
  .object({
    fileId: z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be the file SHA-256 (64 hex digits)' }),
    phase: z.string().regex(PHASE_PATTERN, { error: 'must be ADD, UPD or RETRY<n>' }),
    batchIndex: z.number().int().min(0),
    operation: z.enum(CRM_OPERATIONS),
    lines: z.array(z.number().int().min(1)).min(1).max(100),
    records: z.array(z.record(z.string(), z.unknown())).min(1).max(100),
  })
  .superRefine((message, ctx) => {
    if (message.lines.length !== message.records.length) {
      ctx.addIssue({ code: 'custom', path: ['lines'], message: 'one line per record' });
    }
    const schema = message.operation === 'ADD_TRX' ? CrmTransactionSchema : CrmCustomerSchema;
    message.records.forEach((record, index) => {
      const parsed = schema.safeParse(record);
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          path: ['records', index],
          message: parsed.error.issues[0]?.message ?? 'invalid record',
        });
      }
    });
  });

export type CallMessage = z.infer<typeof CallMessageSchema>;

/** The CRM body of a message: `{"records":[...]}` in message order. */
export const callBody = (message: CallMessage) => JSON.stringify({ records: message.records });
