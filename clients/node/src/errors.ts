/** SessionError: the one error type the client throws, carrying the call's gRPC status. */

import { Code, ConnectError } from "@connectrpc/connect";

export { Code };

/**
 * A failed call. `code` is the gRPC status code (Connect's `Code` numbers are gRPC's:
 * `Code.Unauthenticated === 16`), `status` its gRPC name (`"UNAUTHENTICATED"`) and
 * `detail` the server's message, which names the offending field for
 * `INVALID_ARGUMENT`. The README's error table lists which call fails with which.
 */
export class SessionError extends Error {
  override readonly name = "SessionError";
  readonly code: Code;
  readonly status: string;
  readonly detail: string;

  constructor(code: Code, detail: string, options?: ErrorOptions) {
    const status = grpcStatusName(code);
    super(`${status}: ${detail}`, options);
    this.code = code;
    this.status = status;
    this.detail = detail;
  }

  /** `reason` (whatever a call threw or rejected with) as a SessionError. */
  static from(reason: unknown): SessionError {
    if (reason instanceof SessionError) {
      return reason;
    }
    const error = ConnectError.from(reason);
    return new SessionError(error.code, error.rawMessage, { cause: reason });
  }
}

/** The gRPC name of `code`: `Code.InvalidArgument` is `"INVALID_ARGUMENT"`. */
export function grpcStatusName(code: Code): string {
  const name = Code[code] ?? `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** The result of `call()`, or a SessionError for whatever it rejects with. */
export async function mappingErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (reason) {
    throw SessionError.from(reason);
  }
}
