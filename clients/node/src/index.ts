/** The package's public surface: the client, its error, the token verifier and the messages. */

export {
  DEFAULT_TIMEOUT_MS,
  SessionClient,
  type ClientOptions,
  type ForwardedProof,
  type LogoutOptions,
  type ProofOptions,
  type RefreshOptions,
  type StartOptions,
  type WatchOptions,
  type WhoamiOptions,
} from "./client.js";
export { DeviceKey, PROOF_TYPE, tokenHash, type DeviceKeyAlgorithm, type ProofTarget } from "./device_key.js";
export { ProofError, sameTarget, type ProofFailure, type ProofRequest } from "./proof_checker.js";
export { Code, SessionError, grpcStatusName, type SessionErrorOptions } from "./errors.js";
export { AccessTokenVerifier, type AccessTokenClaims, type VerifierOptions } from "./access_tokens.js";
export * from "./gen/session/v1/session_pb.js";
