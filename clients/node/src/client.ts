/** SessionClient: typed calls of session.v1.SessionService over gRPC (HTTP/2, plaintext or TLS). */

import { create } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { JSONWebKeySet } from "jose";

import type { DeviceKey } from "./device_key.js";
import { mappingErrors, SessionError } from "./errors.js";
import {
  ExtendRequestSchema,
  GetJwksRequestSchema,
  LogoutRequestSchema,
  RefreshAllForUserRequestSchema,
  RefreshRequestSchema,
  RotateSigningKeyRequestSchema,
  SessionService,
  StartRequestSchema,
  WatchSessionsRequestSchema,
  WhoamiRequestSchema,
  type ExtendResponse,
  type LogoutResponse,
  type RefreshAllForUserResponse,
  type RefreshResponse,
  type SessionEvent,
  type StartResponse,
  type WhoamiResponse,
} from "./gen/session/v1/session_pb.js";

/** Deadline of every unary call unless the client is made with another one. */
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface ClientOptions {
  /** Deadline of each unary call in milliseconds (0: none). Streams have none. */
  timeoutMs?: number;
  /** Options of the HTTP/2 connection (`ca`, `cert`, `key` for TLS with an https URL). */
  http2?: ConstructorParameters<typeof Http2SessionManager>[2];
}

export interface StartOptions {
  /** A configured policy group; unset: `default`. */
  group?: string;
  /** Lifespan in seconds, overriding the group's. */
  ttlSeconds?: number;
  /** Login context (device, ip, user agent...). */
  metadata?: Record<string, string>;
  /** Enrichment data (roles, tenant...), also the `attrs` claim of access tokens. */
  attributes?: Record<string, string>;
  /** Free-form scope that Refresh may require. */
  scope?: string;
  /** Also return an `idToken` (when the group issues access tokens). */
  issueIdToken?: boolean;
  /** The user's id in the caller's system (an e-mail...). */
  externalUserId?: string;
  /**
   * Binds the session to this device key (docs/binding.md): its Refresh (and Whoami in
   * an `every_call` group) then needs a proof signed by it, `deviceKey` of those calls.
   */
  deviceKey?: DeviceKey;
}

/** A DPoP proof for a bound session's call: signed here, or forwarded. Name at most one. */
export interface ProofOptions {
  /** The session's device key: the call carries a proof signed by it (`dpop` metadata). */
  deviceKey?: DeviceKey;
  /** A proof the service's own client sent with its request, passed on to sessiond. */
  forwardedProof?: ForwardedProof;
}

/**
 * A proof a service received (its client's `DPoP` header) with the method and absolute
 * URL of the request it came with: sent as `dpop`, `dpop-method` and `dpop-url`.
 */
export interface ForwardedProof {
  proof: string;
  method: string;
  url: string;
}

export interface RefreshOptions extends ProofOptions {
  /** The scope the session must have been started in (a mismatch: UNAUTHENTICATED). */
  scope?: string;
  /** Also return an `idToken`. */
  issueIdToken?: boolean;
}

/** Which sessions Logout ends: name exactly one of the four targets. */
export interface LogoutOptions {
  sessionToken?: string;
  sessionId?: string;
  /** With a session token or id: every active session of that session's user. */
  allForUser?: boolean;
  /** With `allForUser`: keep this session ("log out my other devices"). */
  exceptSessionId?: string;
  /** Every active session of this user (needs the LogoutAll permission). */
  userId?: string;
  /** As `userId`, by the external id given to Start. */
  externalUserId?: string;
}

export interface WatchOptions {
  /** Resume after this cursor (the last one received); unset: from now on. */
  afterCursor?: bigint;
  /** Only this user's events (CAUGHT_UP markers always come). */
  userId?: string;
  /** Aborting it ends the stream. */
  signal?: AbortSignal;
}

/** Whoami's options: a proof where the session's group asks one on every call. */
export type WhoamiOptions = ProofOptions;

/** The ErrorInfo reason of a refusal that asks the proof to carry the server's nonce. */
const NONCE_REQUIRED = "NONCE_REQUIRED";

/**
 * Calls a sessiond server over one HTTP/2 connection.
 *
 * `target` is `host:port` (plaintext, as the server speaks without `[tls]`) or a URL
 * (`https://host:port` for TLS). Every failed call rejects with a {@link SessionError}
 * carrying the gRPC status. Call {@link close} when done.
 */
export class SessionClient {
  /** The generated client, for the calls this wrapper does not cover. */
  readonly stub: Client<typeof SessionService>;
  readonly timeoutMs: number;
  /** The server's URL (`http://host:port` for a bare `host:port`): proofs' `htu` start with it. */
  readonly baseUrl: string;
  readonly #connection: Http2SessionManager;

  constructor(target: string, options: ClientOptions = {}) {
    const baseUrl = (target.includes("://") ? target : `http://${target}`).replace(/\/+$/, "");
    this.baseUrl = baseUrl;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#connection = new Http2SessionManager(baseUrl, undefined, options.http2);
    const transport = createGrpcTransport({ baseUrl, sessionManager: this.#connection });
    this.stub = createClient(SessionService, transport);
  }

  /** Closes the connection; calls and streams in flight fail. */
  close(): void {
    this.#connection.abort();
  }

  /** Opens an ACTIVE session for `userId`; resolves to it with its two tokens. */
  start(userId: string, options: StartOptions = {}): Promise<StartResponse> {
    const { ttlSeconds, deviceKey, ...rest } = options;
    const request = create(StartRequestSchema, {
      ...rest,
      userId,
      ttlSeconds: int64(ttlSeconds),
      deviceKey: deviceKey?.publicJwkJson() ?? "",
    });
    return mappingErrors(() => this.stub.start(request, this.#unary()));
  }

  /**
   * Validates a session token; resolves to its (ACTIVE) session. A bound session in an
   * `every_call` group needs a proof: `deviceKey`, or the client's `forwardedProof`.
   */
  whoami(sessionToken: string, options: WhoamiOptions = {}): Promise<WhoamiResponse> {
    const request = create(WhoamiRequestSchema, { sessionToken });
    return this.#proven("Whoami", sessionToken, options, (call) => this.stub.whoami(request, call));
  }

  /**
   * Trades a refresh token for a new session token and refresh token.
   *
   * Safe to retry with the same token when an answer is lost: within the group's
   * `refresh_grace` (default 30 s), and while the successor is unused, the same token
   * gets the very same successor pair again. Once the successor was used (Whoami or
   * Refresh), the old token coming back is theft: the session is revoked and the call
   * fails UNAUTHENTICATED.
   *
   * A bound session's refresh needs its `deviceKey` (or a `forwardedProof`); without
   * one it fails UNAUTHENTICATED with `reason` `PROOF_MISSING`.
   */
  refresh(refreshToken: string, options: RefreshOptions = {}): Promise<RefreshResponse> {
    const { deviceKey, forwardedProof, ...fields } = options;
    const request = create(RefreshRequestSchema, { ...fields, refreshToken });
    const proof = { deviceKey, forwardedProof };
    return this.#proven("Refresh", refreshToken, proof, (call) => this.stub.refresh(request, call));
  }

  /**
   * Keep-alive: the session's expiry becomes now plus `keepAliveSeconds` (unset: the
   * group's lifespan). `extended` is false outside the group's extend window.
   */
  extend(sessionId: string, keepAliveSeconds?: number): Promise<ExtendResponse> {
    const request = create(ExtendRequestSchema, { sessionId, keepAliveSeconds: int64(keepAliveSeconds) });
    return mappingErrors(() => this.stub.extend(request, this.#unary()));
  }

  /** Ends the named session(s); `revokedCount` counts those this call ended. */
  logout(target: LogoutOptions): Promise<LogoutResponse> {
    const request = create(LogoutRequestSchema, target);
    return mappingErrors(() => this.stub.logout(request, this.#unary()));
  }

  /** Extends every active session of `userId` by Extend's rules (NOT_FOUND: none). */
  refreshAllForUser(userId: string, keepAliveSeconds?: number): Promise<RefreshAllForUserResponse> {
    const request = create(RefreshAllForUserRequestSchema, { userId, keepAliveSeconds: int64(keepAliveSeconds) });
    return mappingErrors(() => this.stub.refreshAllForUser(request, this.#unary()));
  }

  /** The keys that verify access and ID tokens (a JWKS of Ed25519 keys). */
  async getJwks(): Promise<JSONWebKeySet> {
    const request = create(GetJwksRequestSchema);
    const response = await mappingErrors(() => this.stub.getJwks(request, this.#unary()));
    return JSON.parse(response.jwksJson) as JSONWebKeySet;
  }

  /** Signs new tokens with a new key; resolves to its key id. */
  async rotateSigningKey(): Promise<string> {
    const request = create(RotateSigningKeyRequestSchema);
    const response = await mappingErrors(() => this.stub.rotateSigningKey(request, this.#unary()));
    return response.kid;
  }

  /**
   * Session events, in cursor order, until the stream ends or `signal` aborts. Without
   * `afterCursor` the stream opens with a CAUGHT_UP event carrying the current cursor;
   * with the last cursor received it resumes with every event after it, no gaps, no
   * duplicates. A cursor older than the server keeps fails OUT_OF_RANGE (drop cached
   * answers and watch again without one); UNAVAILABLE and RESOURCE_EXHAUSTED mean
   * "resume from the last cursor". Leaving a `for await` loop closes the stream.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<SessionEvent, void, undefined> {
    const { signal, ...fields } = options;
    const request = create(WatchSessionsRequestSchema, fields);
    try {
      yield* this.stub.watchSessions(request, { signal });
    } catch (reason) {
      throw SessionError.from(reason);
    }
  }

  /**
   * `call` with the proof `options` ask for: none, a forwarded one, or one signed with
   * the device key for POST of `method`'s URL and `token`. A refusal with reason
   * NONCE_REQUIRED is retried once, the new proof carrying the nonce the server sent
   * (`dpop-nonce` metadata, or ErrorInfo's `nonce`).
   */
  async #proven<T>(
    method: "Refresh" | "Whoami",
    token: string,
    options: ProofOptions,
    call: (options: { timeoutMs?: number; headers: Headers }) => Promise<T>,
  ): Promise<T> {
    const { deviceKey, forwardedProof } = options;
    if (deviceKey !== undefined && forwardedProof !== undefined) {
      throw new TypeError("name one of deviceKey and forwardedProof, not both");
    }
    if (deviceKey === undefined) {
      const headers = new Headers();
      if (forwardedProof !== undefined) {
        headers.set("dpop", forwardedProof.proof);
        headers.set("dpop-method", forwardedProof.method);
        headers.set("dpop-url", forwardedProof.url);
      }
      return mappingErrors(() => call({ ...this.#unary(), headers }));
    }
    const url = `${this.baseUrl}/${SessionService.typeName}/${method}`;
    const attempt = async (nonce?: string): Promise<T> => {
      const proof = await deviceKey.proof({ method: "POST", url, token, nonce });
      return mappingErrors(() => call({ ...this.#unary(), headers: new Headers({ dpop: proof }) }));
    };
    try {
      return await attempt();
    } catch (error) {
      const nonce = error instanceof SessionError ? nonceAsked(error) : undefined;
      if (nonce === undefined) {
        throw error;
      }
      return attempt(nonce);
    }
  }

  /** Call options of a unary call: the client's deadline. */
  #unary(): { timeoutMs?: number } {
    return this.timeoutMs > 0 ? { timeoutMs: this.timeoutMs } : {};
  }
}

/** The nonce a NONCE_REQUIRED refusal hands out, if `error` is one. */
function nonceAsked(error: SessionError): string | undefined {
  if (error.code !== Code.Unauthenticated || error.reason !== NONCE_REQUIRED) {
    return undefined;
  }
  return error.metadata.get("dpop-nonce") ?? error.reasonMetadata["nonce"];
}

/** `seconds` as an int64 field's value; unset stays unset. */
function int64(seconds: number | undefined): bigint | undefined {
  return seconds === undefined ? undefined : BigInt(seconds);
}
