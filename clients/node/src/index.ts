/** The package's public surface: the client, its error, the token verifier and the messages. */

export {
  DEFAULT_TIMEOUT_MS,
  SessionClient,
  type ClientOptions,
  type LogoutOptions,
  type RefreshOptions,
  type StartOptions,
  type WatchOptions,
} from "./client.js";
export { Code, SessionError, grpcStatusName } from "./errors.js";
export { AccessTokenVerifier, type AccessTokenClaims, type VerifierOptions } from "./access_tokens.js";
export * from "./gen/session/v1/session_pb.js";
