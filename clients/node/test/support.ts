/** What the test files share: the server under test, a client, fresh user ids, failures as SessionError. */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after } from "node:test";

import { SessionClient, SessionError, type Session } from "sessiond-client";

/**
 * A client of the server under test, closed after the file's tests. `cargo test --test
 * node_client` starts the server and names it in SESSIOND_ADDR; by hand, run
 * `cargo run` and export SESSIOND_ADDR=127.0.0.1:50051.
 */
export function connect(): SessionClient {
  const addr = process.env.SESSIOND_ADDR ?? "";
  assert.ok(
    addr,
    "SESSIOND_ADDR is not set: run `cargo test --test node_client`, or start sessiond " +
      "and export SESSIOND_ADDR=127.0.0.1:50051",
  );
  const client = new SessionClient(addr);
  after(() => client.close());
  return client;
}

/** A user no other test (or earlier run against the same server) has used. */
export function newUserId(): string {
  return `ts-${randomUUID()}`;
}

/** The SessionError `call` rejects with (fails the test if it resolves). */
export async function failure(call: Promise<unknown>): Promise<SessionError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof SessionError, `not a SessionError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

/** Seconds a check may be off by when the server's clock runs (`cargo run`). */
const SLACK_SECONDS = 5n;

/** `actual` is `expected` seconds, or at most SLACK_SECONDS off. */
export function assertAbout(actual: bigint, expected: number): void {
  const want = BigInt(expected);
  assert.ok(
    want - SLACK_SECONDS <= actual && actual <= want + SLACK_SECONDS,
    `${actual} is not about ${expected}`,
  );
}

/** Seconds from the session's start to its expiry. */
export function lifetimeSeconds(session: Session | undefined): bigint {
  assert.ok(session?.createdAt && session.expiresAt, "a session with its timestamps");
  return session.expiresAt.seconds - session.createdAt.seconds;
}
