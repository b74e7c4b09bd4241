/** DeviceKey: a device's private key (Ed25519 or P-256) that binds sessions and signs DPoP proofs. */

import { createHash, createPrivateKey, randomBytes } from "node:crypto";

import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, SignJWT, type JWK, type KeyLike } from "jose";

/** The JWS algorithm of a device key: `EdDSA` (Ed25519) or `ES256` (P-256). */
export type DeviceKeyAlgorithm = "EdDSA" | "ES256";

/** The `typ` of a DPoP proof's header (RFC 9449 §4.2). */
export const PROOF_TYPE = "dpop+jwt";

/** Random bytes in a proof's `jti`. */
const JTI_BYTES = 16;

/** The request a DPoP proof names, and the token sent with it. */
export interface ProofTarget {
  /** The HTTP method (`htm`): `POST` for a gRPC call. */
  method: string;
  /** The absolute URL (`htu`); for a gRPC call, the server's URL and the method's path. */
  url: string;
  /** The token sent with the request; the proof carries its hash (`ath`). */
  token: string;
  /** The server's nonce, when it asked for one (`NONCE_REQUIRED`). */
  nonce?: string | undefined;
  /** The proof's `iat` in seconds; default now. */
  issuedAt?: number;
}

/**
 * A device's key pair. `publicJwk` goes to Start (`deviceKey` of `start`), the private
 * half stays on the device and signs a proof per call. Keep it with
 * {@link exportPkcs8Pem} (the format `sessionctl --device-key` and `openssl genpkey`
 * use) and load it back with {@link DeviceKey.fromPkcs8Pem}.
 */
export class DeviceKey {
  readonly algorithm: DeviceKeyAlgorithm;
  /** The public key as a JWK: `kty`, `crv`, `x` (and `y` for P-256), no private member. */
  readonly publicJwk: Readonly<JWK>;
  readonly #privateKey: KeyLike;

  private constructor(algorithm: DeviceKeyAlgorithm, privateKey: KeyLike, publicJwk: JWK) {
    this.algorithm = algorithm;
    this.#privateKey = privateKey;
    this.publicJwk = Object.freeze(publicJwk);
  }

  /** A new key: Ed25519 (`EdDSA`, the default) or P-256 (`ES256`). */
  static async generate(algorithm: DeviceKeyAlgorithm = "EdDSA"): Promise<DeviceKey> {
    const options = algorithm === "EdDSA" ? { crv: "Ed25519", extractable: true } : { extractable: true };
    const { privateKey } = await generateKeyPair(algorithm, options);
    return DeviceKey.#from(algorithm, privateKey);
  }

  /** The key in a PKCS#8 PEM document ("PRIVATE KEY"), Ed25519 or P-256. */
  static async fromPkcs8Pem(pem: string): Promise<DeviceKey> {
    const algorithm = algorithmOf(pem);
    return DeviceKey.#from(algorithm, await importPKCS8(pem, algorithm, { extractable: true }));
  }

  static async #from(algorithm: DeviceKeyAlgorithm, privateKey: KeyLike): Promise<DeviceKey> {
    const { kty, crv, x, y } = await exportJWK(privateKey);
    const publicJwk: JWK = y === undefined ? { kty, crv, x } : { kty, crv, x, y };
    return new DeviceKey(algorithm, privateKey, publicJwk);
  }

  /** The private key as PKCS#8 PEM, to keep on the device (readable by its owner only). */
  exportPkcs8Pem(): Promise<string> {
    return exportPKCS8(this.#privateKey);
  }

  /** The public JWK as JSON text: what `StartRequest.device_key` takes. */
  publicJwkJson(): string {
    return JSON.stringify(this.publicJwk);
  }

  /** The RFC 7638 SHA-256 thumbprint: the session's `device_key_thumbprint`, a token's `cnf.jkt`. */
  thumbprint(): Promise<string> {
    return calculateJwkThumbprint(this.publicJwk, "sha256");
  }

  /**
   * A DPoP proof for one request: for sessiond's own calls the client makes these; a
   * service that forwards its user's request makes one with that request's method and
   * URL (sent with `dpop-method`/`dpop-url`), or a resource server's verifier checks one.
   */
  proof(target: ProofTarget): Promise<string> {
    const claims: Record<string, string> = {
      jti: randomBytes(JTI_BYTES).toString("base64url"),
      htm: target.method,
      htu: target.url,
      ath: tokenHash(target.token),
    };
    if (target.nonce !== undefined) {
      claims.nonce = target.nonce;
    }
    return new SignJWT(claims)
      .setProtectedHeader({ typ: PROOF_TYPE, alg: this.algorithm, jwk: { ...this.publicJwk } })
      .setIssuedAt(target.issuedAt ?? Math.floor(Date.now() / 1000))
      .sign(this.#privateKey);
  }
}

/** A proof's `ath`: base64url(SHA-256(token)), the token exactly as sent (RFC 9449 §4.2). */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

/** The algorithm of the PKCS#8 key in `pem`; anything but Ed25519 or P-256 is refused. */
function algorithmOf(pem: string): DeviceKeyAlgorithm {
  let key;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (cause) {
    throw new TypeError("not a private key in PKCS#8 PEM", { cause });
  }
  if (key.asymmetricKeyType === "ed25519") {
    return "EdDSA";
  }
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return "ES256";
  }
  throw new TypeError("a device key is Ed25519 or P-256");
}
