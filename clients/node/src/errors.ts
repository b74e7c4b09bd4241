/** SessionError: the one error type the client throws, carrying the call's gRPC status. */

import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export { Code };

/**
 * A failed call. `code` is the gRPC status code (Connect's `Code` numbers are gRPC's:
 * `Code.Unauthenticated === 16`), `status` its gRPC name (`"UNAUTHENTICATED"`) and
 * `detail` the server's message, which names the offending field for
 * `INVALID_ARGUMENT`. The README's error table lists which call fails with which.
 *
 * A refusal the server explains further carries a google.rpc.ErrorInfo: its `reason`
 * (a device-bound session's `PROOF_MISSING`, `NONCE_REQUIRED`, `BINDING_VIOLATION`...,
 * docs/binding.md) and `reasonMetadata` (`nonce` with `NONCE_REQUIRED`); `metadata`
 * holds the response's headers and trailers (`dpop-nonce`).
 */
export class SessionError extends Error {
  override readonly name = "SessionError";
  readonly code: Code;
  readonly status: string;
  readonly detail: string;
  /** google.rpc.ErrorInfo's `reason`, when the server sent one. */
  readonly reason: string | undefined;
  /** google.rpc.ErrorInfo's `metadata` (empty without one). */
  readonly reasonMetadata: Readonly<Record<string, string>>;
  /** The failed call's response headers and trailers. */
  readonly metadata: Headers;

  constructor(code: Code, detail: string, options?: SessionErrorOptions) {
    const status = grpcStatusName(code);
    super(`${status}${options?.reason ? ` (${options.reason})` : ""}: ${detail}`, options);
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.reason = options?.reason;
    this.reasonMetadata = options?.reasonMetadata ?? {};
    this.metadata = options?.metadata ?? new Headers();
  }

  /** `reason` (whatever a call threw or rejected with) as a SessionError. */
  static from(reason: unknown): SessionError {
    if (reason instanceof SessionError) {
      return reason;
    }
    const error = ConnectError.from(reason);
    const info = errorInfo(error);
    return new SessionError(error.code, error.rawMessage, {
      cause: reason,
      reason: info?.reason,
      reasonMetadata: info?.metadata,
      metadata: error.metadata,
    });
  }
}

/** What a SessionError carries beside its code and message. */
export interface SessionErrorOptions extends ErrorOptions {
  reason?: string | undefined;
  reasonMetadata?: Record<string, string> | undefined;
  metadata?: Headers;
}

/** The type name of google.rpc.ErrorInfo in a status's details. */
const ERROR_INFO = "google.rpc.ErrorInfo";

/**
 * The first google.rpc.ErrorInfo among `error`'s details, decoded by hand (reason = 1,
 * domain = 2, metadata = 3, a map<string, string>) so the package needs no generated
 * google/rpc stubs. A detail that does not decode is passed over.
 */
function errorInfo(error: ConnectError): { reason: string; metadata: Record<string, string> } | undefined {
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== ERROR_INFO) {
      continue;
    }
    try {
      const reader = new BinaryReader(detail.value);
      const info = { reason: "", metadata: {} as Record<string, string> };
      while (reader.pos < reader.len) {
        const [field, wireType] = reader.tag();
        if (field === 1 && wireType === WireType.LengthDelimited) {
          info.reason = reader.string();
        } else if (field === 3 && wireType === WireType.LengthDelimited) {
          const [key, value] = mapEntry(reader.bytes());
          info.metadata[key] = value;
        } else {
          reader.skip(wireType, field);
        }
      }
      return info;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** The key (field 1) and value (field 2) of an encoded map<string, string> entry. */
function mapEntry(bytes: Uint8Array): [string, string] {
  const reader = new BinaryReader(bytes);
  let key = "";
  let value = "";
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      key = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      value = reader.string();
    } else {
      reader.skip(wireType, field);
    }
  }
  return [key, value];
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
