/** AccessTokenVerifier: checks sessiond's EdDSA access (and ID) tokens locally against GetJwks, and a bound token's proof. */

import { createLocalJWKSet, errors, jwtVerify, type JWTPayload } from "jose";

import type { SessionClient } from "./client.js";
import { ProofChecker, ProofError, type ProofRequest } from "./proof_checker.js";

/** The claims of a verified token (an ID token adds `auth_time`). */
export interface AccessTokenClaims extends JWTPayload {
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  /** The session's policy group. */
  group: string;
  /** The session's attributes when the token was signed. */
  attrs?: Record<string, string>;
  iat: number;
  exp: number;
  jti: string;
  /** A bound session's token: the thumbprint of its device key (RFC 7800 `cnf.jkt`). */
  cnf?: { jkt?: string };
}

export interface VerifierOptions {
  /** The group's `audience` (by default the group's name, e.g. `"default"`). */
  audience: string;
  /** The server's `jwt_issuer`; default `"sessiond"`. */
  issuer?: string;
  /**
   * A token signed by a key id the cached JWKS lacks fetches the keys again (the server
   * rotated), at most once per this many milliseconds, so forged key ids cannot turn
   * every verification into a call. Default 30 s.
   */
  refetchCooldownMs?: number;
  /** How far a proof's `iat` may be from this clock, in seconds (sessiond's `max_skew`). Default 60. */
  proofMaxSkewSeconds?: number;
}

/**
 * Verifies tokens without a call per token: the JWKS is fetched once with GetJwks and
 * again when a token names a key it lacks. Rejects (with jose's errors) a bad
 * signature, another algorithm than EdDSA, an expired token, or another issuer or
 * audience. A token of a device-bound session (`cnf.jkt`) verifies only with the DPoP
 * proof of the request it came with (a {@link ProofError} says why not).
 */
export class AccessTokenVerifier {
  readonly #client: SessionClient;
  readonly #options: Required<VerifierOptions>;
  readonly #proofs: ProofChecker;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #fetchedAt = -Infinity;

  constructor(client: SessionClient, options: VerifierOptions) {
    this.#client = client;
    this.#options = { issuer: "sessiond", refetchCooldownMs: 30_000, proofMaxSkewSeconds: 60, ...options };
    this.#proofs = new ProofChecker(this.#options.proofMaxSkewSeconds);
  }

  /**
   * The verified claims of `token`. `request` is the request the token came with: its
   * `DPoP` header as `proof`, its `method` and absolute `url`. A bound token (`cnf`)
   * needs it, and its proof must be signed by the bound key, name this request and
   * token, be recent and not seen before; a bearer token ignores it.
   */
  async verify(token: string, request?: ProofRequest): Promise<AccessTokenClaims> {
    const claims = await this.#verifySigned(token);
    if (claims.cnf !== undefined) {
      const jkt = claims.cnf.jkt;
      if (typeof jkt !== "string") {
        throw new ProofError("KEY_MISMATCH", "the token's cnf names no key thumbprint");
      }
      await this.#proofs.check(request, token, jkt);
    }
    return claims;
  }

  async #verifySigned(token: string): Promise<AccessTokenClaims> {
    const keys = this.#keys ?? (await this.#fetchKeys());
    try {
      return await this.#verifyWith(keys, token);
    } catch (error) {
      const cooledDown = performance.now() - this.#fetchedAt >= this.#options.refetchCooldownMs;
      if (!(error instanceof errors.JWKSNoMatchingKey) || !cooledDown) {
        throw error;
      }
      return this.#verifyWith(await this.#fetchKeys(), token);
    }
  }

  async #fetchKeys(): Promise<ReturnType<typeof createLocalJWKSet>> {
    this.#fetchedAt = performance.now();
    this.#keys = createLocalJWKSet(await this.#client.getJwks());
    return this.#keys;
  }

  async #verifyWith(keys: ReturnType<typeof createLocalJWKSet>, token: string): Promise<AccessTokenClaims> {
    const { payload } = await jwtVerify<AccessTokenClaims>(token, keys, {
      algorithms: ["EdDSA"],
      audience: this.#options.audience,
      issuer: this.#options.issuer,
      requiredClaims: ["sub", "sid", "exp"],
    });
    return payload;
  }
}
