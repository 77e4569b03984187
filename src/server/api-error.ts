/**
 * Errors as OpenAI's API answers them: an HTTP status and
 * {"error": {"message", "type", "param", "code"}}, which the `openai` client turns into its
 * BadRequestError, AuthenticationError, RateLimitError, ... classes.
 */

type ApiErrorType = "invalid_request_error" | "authentication_error" | "rate_limit_error" | "server_error" | "timeout_error";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request parameter (named in `param`, as OpenAI does) */
export function badParam(param: string, message: string, code: string | null = "invalid_value"): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}
