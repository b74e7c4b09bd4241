/** Signed access tokens verified locally (jose) against GetJwks, across a key rotation. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeProtectedHeader, errors } from "jose";

import { AccessTokenVerifier } from "sessiond-client";
import { connect, newUserId } from "./support.js";

const client = connect();

test("an access token verifies with the published keys", async () => {
  const userId = newUserId();
  const started = await client.start(userId, { attributes: { role: "admin" } });
  assert.ok(started.accessToken, "the server issues no access tokens: set access_token_ttl");

  const claims = await new AccessTokenVerifier(client, { audience: "default" }).verify(started.accessToken);

  assert.equal(claims.sub, userId);
  assert.equal(claims.sid, started.session?.sessionId);
  assert.equal(claims.group, "default");
  assert.deepEqual(claims.attrs, { role: "admin" });
  assert.ok(0n < started.accessTokenExpiresInSeconds && started.accessTokenExpiresInSeconds <= 300n);
});

test("tokens verify across a key rotation", async () => {
  const userId = newUserId();
  // No cooldown: the key appears right after the verifier fetched the JWKS.
  const verifier = new AccessTokenVerifier(client, { audience: "default", refetchCooldownMs: 0 });
  const before = await client.start(userId);
  assert.equal((await verifier.verify(before.accessToken)).sub, userId);

  const kid = await client.rotateSigningKey();
  const after = await client.refresh(before.refreshToken);

  assert.equal(decodeProtectedHeader(after.accessToken).kid, kid);
  assert.notEqual(decodeProtectedHeader(before.accessToken).kid, kid);
  assert.equal((await verifier.verify(after.accessToken)).sub, userId);
  assert.equal((await verifier.verify(before.accessToken)).sub, userId);
});

test("a forged or foreign token does not verify", async () => {
  const started = await client.start(newUserId());
  const verifier = new AccessTokenVerifier(client, { audience: "default" });
  const [header, payload, signature] = started.accessToken.split(".");
  const forged = `${header}.${payload!.slice(0, -2)}AA.${signature}`;

  await assert.rejects(verifier.verify(forged), errors.JWSSignatureVerificationFailed);
  const otherAudience = new AccessTokenVerifier(client, { audience: "billing" });
  await assert.rejects(otherAudience.verify(started.accessToken), errors.JWTClaimValidationFailed);
});
