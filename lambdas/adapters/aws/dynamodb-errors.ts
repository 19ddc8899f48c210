/** A conditional write lost: the item was not as the condition required (by name, as SDK and emulators agree). */
export const isConditionFailure = (error: unknown): boolean =>
  (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
