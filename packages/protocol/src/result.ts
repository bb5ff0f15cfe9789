/**
 * The three result words of DTM and how they travel over each transport.
 * Anything that is not one of them is an error that will be retried.
 */
export const Result = {
  Success: 'SUCCESS',
  Failure: 'FAILURE',
  Ongoing: 'ONGOING',
} as const;
export type Result = (typeof Result)[keyof typeof Result];

/** HTTP status codes for the result words. */
export const HttpStatus = {
  Success: 200,
  Failure: 409,
  Ongoing: 425,
  Error: 500,
} as const;

/** gRPC status codes for the result words. */
export const GrpcCode = {
  Ok: 0,
  FailedPrecondition: 9,
  Aborted: 10,
} as const;

/** JSON-RPC error codes for the result words. */
export const JsonRpcCode = {
  Failure: -32901,
  Ongoing: -32902,
} as const;

/**
 * DTM's message rule: cut one trailing " FAILURE" (or " ONGOING") and append it again,
 * so a message never carries the word twice.
 */
export function withResultSuffix(message: string, word: 'FAILURE' | 'ONGOING'): string {
  const suffix = ` ${word}`;
  const base = message.endsWith(suffix) ? message.slice(0, -suffix.length) : message;
  return `${base}${suffix}`;
}

/**
 * How a plain HTTP branch reply is read (spec §5.4, order matters): 425 or a body containing
 * ONGOING → ONGOING; else 409 or a body containing FAILURE → FAILURE; else any status but 200 → error;
 * else SUCCESS.
 */
export function classifyHttpReply(status: number, body: string): Result | 'ERROR' {
  if (status === HttpStatus.Ongoing || body.includes(Result.Ongoing)) return Result.Ongoing;
  if (status === HttpStatus.Failure || body.includes(Result.Failure)) return Result.Failure;
  if (status !== HttpStatus.Success) return 'ERROR';
  return Result.Success;
}
