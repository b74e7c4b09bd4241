/** AccessTokenVerifier: checks sessiond's EdDSA access (and ID) tokens locally against GetJwks. */

import { createLocalJWKSet, errors, jwtVerify, type JWTPayload } from "jose";

import type { SessionClient } from "./client.js";

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
}

/**
 * Verifies tokens without a call per token: the JWKS is fetched once with GetJwks and
 * again when a token names a key it lacks. Rejects (with jose's errors) a bad
 * signature, another algorithm than EdDSA, an expired token, or another issuer or
 * audience.
 */
export class AccessTokenVerifier {
  readonly #client: SessionClient;
  readonly #options: Required<VerifierOptions>;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #fetchedAt = -Infinity;

  constructor(client: SessionClient, options: VerifierOptions) {
    this.#client = client;
    this.#options = { issuer: "sessiond", refetchCooldownMs: 30_000, ...options };
  }

  /** The verified claims of `token`. */
  async verify(token: string): Promise<AccessTokenClaims> {
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
