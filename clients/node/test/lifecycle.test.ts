/** The session lifecycle, refresh grace and reuse, and typed errors, against a real sessiond. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Code, SessionState } from "sessiond-client";
import { assertAbout, connect, failure, lifetimeSeconds, newUserId } from "./support.js";

const client = connect();

test("a session lives from Start to Logout", async () => {
  const userId = newUserId();
  const started = await client.start(userId, {
    ttlSeconds: 600,
    metadata: { device: "laptop" },
    attributes: { role: "admin" },
  });
  const session = started.session;
  assert.ok(session);
  assert.equal(session.userId, userId);
  assert.equal(session.group, "default");
  assert.equal(session.state, SessionState.ACTIVE);
  assert.equal(session.ttlSeconds, 600n);
  assert.deepEqual(session.metadata, { device: "laptop" });
  assert.deepEqual(session.attributes, { role: "admin" });
  assert.match(started.sessionToken, /^st_/);
  assert.match(started.refreshToken, /^rt_/);
  assertAbout(started.expiresInSeconds, 600);
  const sessionId = session.sessionId;

  const me = await client.whoami(started.sessionToken);
  assert.equal(me.session?.sessionId, sessionId);
  assertAbout(me.expiresInSeconds, 600);

  // Refresh rotates both tokens; the old session token stops working.
  const refreshed = await client.refresh(started.refreshToken);
  assert.equal(refreshed.session?.sessionId, sessionId);
  assert.notEqual(refreshed.sessionToken, started.sessionToken);
  assert.notEqual(refreshed.refreshToken, started.refreshToken);
  assert.equal((await failure(client.whoami(started.sessionToken))).code, Code.Unauthenticated);
  assert.equal((await client.whoami(refreshed.sessionToken)).session?.sessionId, sessionId);

  const extended = await client.extend(sessionId, 3600);
  assert.ok(extended.extended);
  assertAbout(lifetimeSeconds(extended.session), 3600);

  const all = await client.refreshAllForUser(userId, 7200);
  assert.equal(all.refreshedCount, 1);
  assert.deepEqual(
    all.sessions.map((s) => s.sessionId),
    [sessionId],
  );
  assertAbout(lifetimeSeconds(all.sessions[0]), 7200);

  // Logout ends it; a retry is harmless.
  assert.equal((await client.logout({ sessionToken: refreshed.sessionToken })).revokedCount, 1);
  assert.equal((await failure(client.whoami(refreshed.sessionToken))).code, Code.Unauthenticated);
  assert.equal((await client.logout({ sessionId })).revokedCount, 0);
});

test("a refresh retried within the grace window gets the same pair", async () => {
  const userId = newUserId();
  const started = await client.start(userId);
  const first = await client.refresh(started.refreshToken);

  // The answer was lost; the client retries with the same refresh token.
  const retry = await client.refresh(started.refreshToken);

  assert.deepEqual(
    [retry.sessionToken, retry.refreshToken],
    [first.sessionToken, first.refreshToken],
  );
  assert.equal((await client.whoami(retry.sessionToken)).session?.userId, userId);
});

test("a refresh token reused after its successor was used revokes the session", async () => {
  const started = await client.start(newUserId());
  const refreshed = await client.refresh(started.refreshToken);
  // The successor is in use, so the grace window is closed: the old token coming back
  // now can only be a stolen copy.
  await client.whoami(refreshed.sessionToken);

  const reuse = await failure(client.refresh(started.refreshToken));

  assert.equal(reuse.code, Code.Unauthenticated);
  assert.equal(reuse.status, "UNAUTHENTICATED");
  // The whole session is revoked: the fresh pair is dead too.
  assert.equal((await failure(client.whoami(refreshed.sessionToken))).code, Code.Unauthenticated);
  assert.equal((await failure(client.refresh(refreshed.refreshToken))).code, Code.Unauthenticated);
});

test("errors carry the gRPC status and the server's detail", async () => {
  const malformed = await failure(client.whoami("not-a-token"));
  assert.equal(malformed.code, Code.InvalidArgument);
  assert.equal(malformed.status, "INVALID_ARGUMENT");
  assert.match(malformed.detail, /session_token/);

  const unknown = await failure(client.extend("00000000-0000-7000-8000-000000000000"));
  assert.equal(unknown.code, Code.NotFound);
  assert.equal(unknown.status, "NOT_FOUND");
});
