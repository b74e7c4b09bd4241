/** ProofChecker: verifies the DPoP proof that comes with a bound (`cnf.jkt`) access token. */

import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK, type JWK } from "jose";

import { PROOF_TYPE, tokenHash, type DeviceKeyAlgorithm } from "./device_key.js";

/** Why a proof was refused: the reasons sessiond itself gives (docs/binding.md). */
export type ProofFailure =
  | "PROOF_MISSING"
  | "PROOF_MALFORMED"
  | "PROOF_TYPE_INVALID"
  | "ALGORITHM_NOT_ALLOWED"
  | "KEY_INVALID"
  | "SIGNATURE_INVALID"
  | "KEY_MISMATCH"
  | "REPLAYED"
  | "TOKEN_HASH_MISMATCH"
  | "ISSUED_AT_OUT_OF_WINDOW"
  | "REQUEST_MISMATCH";

/** A bound token's proof refused; `reason` says which check failed. */
export class ProofError extends Error {
  override readonly name = "ProofError";
  readonly reason: ProofFailure;

  constructor(reason: ProofFailure, message: string) {
    super(`${reason}: ${message}`);
    this.reason = reason;
  }
}

/** The request a token came with: its `DPoP` header, its method and absolute URL. */
export interface ProofRequest {
  /** The request's `DPoP` header; unset or empty: no proof. */
  proof?: string | undefined;
  /** The request's HTTP method (`GET`...), compared with `htm`. */
  method: string;
  /** The request's absolute URL, compared with `htu` without query and fragment. */
  url: string;
}

/** The longest proof read, as sessiond's limit. */
const MAX_PROOF_BYTES = 4096;
/** The longest `jti`, as sessiond's limit. */
const MAX_JTI_BYTES = 128;

/** The key type and curve each allowed algorithm signs with. */
const KEY_OF: Record<DeviceKeyAlgorithm, { kty: string; crv: string }> = {
  EdDSA: { kty: "OKP", crv: "Ed25519" },
  ES256: { kty: "EC", crv: "P-256" },
};

/**
 * Checks proofs as RFC 9449 §4.3 says, in sessiond's order, and remembers each accepted
 * `jti` (per key, in this process's memory) for twice the skew, so a proof is used once.
 */
export class ProofChecker {
  readonly #maxSkewSeconds: number;
  /** `jkt.jti` of accepted proofs, to the time (ms) they may be forgotten; insertion order is that order. */
  readonly #seen = new Map<string, number>();

  constructor(maxSkewSeconds: number) {
    this.#maxSkewSeconds = maxSkewSeconds;
  }

  /** Resolves when `request` proves possession of the key `jkt` names for `token`; else a ProofError. */
  async check(request: ProofRequest | undefined, token: string, jkt: string): Promise<void> {
    const proof = request?.proof;
    if (!request || !proof) {
      throw new ProofError("PROOF_MISSING", "the token is bound to a key and came without a proof");
    }
    if (proof.length > MAX_PROOF_BYTES) {
      throw new ProofError("PROOF_MALFORMED", "the proof is too large");
    }
    const header = readHeader(proof);
    if (header.typ !== PROOF_TYPE) {
      throw new ProofError("PROOF_TYPE_INVALID", `typ is not ${PROOF_TYPE}`);
    }
    const alg = header.alg;
    if (alg !== "EdDSA" && alg !== "ES256") {
      throw new ProofError("ALGORITHM_NOT_ALLOWED", "alg is not EdDSA or ES256");
    }
    const jwk = publicJwk(header.jwk, alg);
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(proof, await importJWK(jwk, alg), { algorithms: [alg] }));
    } catch {
      throw new ProofError("SIGNATURE_INVALID", "the signature does not verify with the proof's jwk");
    }
    const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
    if (thumbprint !== jkt) {
      throw new ProofError("KEY_MISMATCH", "the proof's key is not the one the token is bound to");
    }
    const claims = readClaims(payload);
    const nowMs = Date.now();
    if (Math.abs(claims.iat - nowMs / 1000) > this.#maxSkewSeconds) {
      throw new ProofError("ISSUED_AT_OUT_OF_WINDOW", "iat is too far from now");
    }
    if (claims.htm !== request.method || !sameTarget(claims.htu, request.url)) {
      throw new ProofError("REQUEST_MISMATCH", "htm or htu name another request");
    }
    if (claims.ath !== tokenHash(token)) {
      throw new ProofError("TOKEN_HASH_MISMATCH", "ath is the hash of another token");
    }
    this.#remember(`${thumbprint}.${claims.jti}`, nowMs);
  }

  /** Records `key` as used, or refuses it as a replay; forgets what is past the window. */
  #remember(key: string, nowMs: number): void {
    for (const [seen, forgetAt] of this.#seen) {
      if (forgetAt > nowMs) {
        break;
      }
      this.#seen.delete(seen);
    }
    if (this.#seen.has(key)) {
      throw new ProofError("REPLAYED", "this proof was used before");
    }
    this.#seen.set(key, nowMs + 2 * this.#maxSkewSeconds * 1000);
  }
}

/** The protected header of a compact JWS, or PROOF_MALFORMED. */
function readHeader(proof: string): Record<string, unknown> {
  try {
    return decodeProtectedHeader(proof) as Record<string, unknown>;
  } catch {
    throw new ProofError("PROOF_MALFORMED", "not a compact JWS with a JSON header");
  }
}

/** The header's `jwk` when it is a public key of `alg`'s type; else KEY_INVALID or ALGORITHM_NOT_ALLOWED. */
function publicJwk(value: unknown, alg: DeviceKeyAlgorithm): JWK {
  if (typeof value !== "object" || value === null || Array.isArray(value) || "d" in value) {
    throw new ProofError("KEY_INVALID", "jwk is not a public key");
  }
  const jwk = value as JWK;
  const fits = (want: { kty: string; crv: string }): boolean => jwk.kty === want.kty && jwk.crv === want.crv;
  if (fits(KEY_OF[alg])) {
    return jwk;
  }
  if (Object.values(KEY_OF).some(fits)) {
    throw new ProofError("ALGORITHM_NOT_ALLOWED", "alg does not fit the key");
  }
  throw new ProofError("KEY_INVALID", "jwk is not an Ed25519 or P-256 public key");
}

interface ProofClaims {
  jti: string;
  iat: number;
  htm: string;
  htu: string;
  ath: string;
}

/** The claims a proof must have, or PROOF_MALFORMED. */
function readClaims(payload: Uint8Array): ProofClaims {
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  } catch {
    throw new ProofError("PROOF_MALFORMED", "the claims are not JSON");
  }
  const { jti, iat, htm, htu, ath } = claims ?? {};
  const strings = [jti, htm, htu, ath].every((claim) => typeof claim === "string" && claim.length > 0);
  if (!strings || typeof iat !== "number" || (jti as string).length > MAX_JTI_BYTES) {
    throw new ProofError("PROOF_MALFORMED", "a claim is missing (jti, iat, htm, htu, ath)");
  }
  return claims as unknown as ProofClaims;
}

/**
 * Whether `htu` names `url`: without query and fragment, scheme and host
 * case-insensitive, without the scheme's default port (WHATWG URL's normalisation).
 */
export function sameTarget(htu: string, url: string): boolean {
  const bare = (text: string): string | undefined => {
    try {
      const parsed = new URL(text);
      return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
    } catch {
      return undefined;
    }
  };
  const target = bare(url);
  return target !== undefined && bare(htu) === target;
}
