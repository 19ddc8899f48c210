/** The error codes of the operations API, by HTTP status (ops-api.md, Transport and auth). */
export const API_ERRORS = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  Conflict: 409,
  PayloadTooLarge: 413,
} as const;
export type ApiErrorCode = keyof typeof API_ERRORS;

/**
 * A refusal the API answers as `{"error": {"code", "message"}}` with its status: the use cases throw it, the
 * router turns it into the answer. The message names what is wrong and where (the parameter, the file).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }

  get status(): number {
    return API_ERRORS[this.code];
  }
}
