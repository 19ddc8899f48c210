import { z } from 'zod';
import { readEnvironment } from '../../../lambdas/contracts/function-contract';

describe('readEnvironment', () => {
  const schema = z
    .object({ TABLE: z.string().min(1), URL: z.url(), TOKEN: z.string().optional(), TOKEN_ARN: z.string().optional() })
    .refine((env) => env.TOKEN || env.TOKEN_ARN, { path: ['TOKEN'], error: 'TOKEN or TOKEN_ARN is required' });

  it('returns the parsed environment', () => {
    expect(readEnvironment(schema, { TABLE: 't', URL: 'https://x.example', TOKEN: 'k', OTHER: 'ignored' })).toEqual({
      TABLE: 't',
      URL: 'https://x.example',
      TOKEN: 'k',
    });
  });

  it('names every bad variable with its rule, cross-field rules included', () => {
    expect(() => readEnvironment(schema, { URL: 'nope', TOKEN: 'k' })).toThrow(
      /^Invalid environment: TABLE: .+; URL: .+$/,
    );
    expect(() => readEnvironment(schema, { TABLE: 't', URL: 'https://x.example' })).toThrow(
      'Invalid environment: TOKEN: TOKEN or TOKEN_ARN is required',
    );
  });
});
