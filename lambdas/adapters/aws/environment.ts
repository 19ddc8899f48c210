import type { z } from 'zod';

/**
 * A Lambda's own environment, read once at start: every missing or bad variable is named with its rule,
 * e.g. `Invalid environment: LEDGER_TABLE_NAME: required`, instead of a stack trace later.
 */
export function readEnvironment<T>(schema: z.ZodType<T>, env: Record<string, string | undefined> = process.env): T {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')}: ${issue.message}`);
  throw new Error(`Invalid environment: ${problems.join('; ')}`);
}
