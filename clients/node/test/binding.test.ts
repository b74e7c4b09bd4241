/** Device-bound sessions: bound at Start, proofs on Refresh and Whoami, the nonce round trip. */

import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { test } from "node:test";

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from "jose";

import { Code, DeviceKey } from "sessiond-client";
import { connect, failure, newUserId } from "./support.js";

const client = connect();

/** The URL of one of the service's methods on the server under test. */
function methodUrl(method: "Refresh" | "Whoami"): string {
  return `${client.baseUrl}/session.v1.SessionService/${method}`;
}

test("a session bound at Start refreshes with its device's proof", async () => {
  const key = await DeviceKey.generate();
  const started = await client.start(newUserId(), { deviceKey: key });
  assert.equal(started.session?.deviceKeyThumbprint, await key.thumbprint());

  const refreshed = await client.refresh(started.refreshToken, { deviceKey: key });
  assert.equal(refreshed.session?.sessionId, started.session?.sessionId);
  // Whoami needs no proof where the group asks it on Refresh only (the default).
  assert.equal((await client.whoami(refreshed.sessionToken)).session?.sessionId, started.session?.sessionId);
});

test("a refresh without the device key is refused with PROOF_MISSING", async () => {
  const key = await DeviceKey.generate();
  const started = await client.start(newUserId(), { deviceKey: key });

  const refused = await failure(client.refresh(started.refreshToken));
  assert.equal(refused.code, Code.Unauthenticated);
  assert.equal(refused.reason, "PROOF_MISSING");
  // Another device's key is no better; the session's own still works.
  const other = await DeviceKey.generate();
  assert.equal((await failure(client.refresh(started.refreshToken, { deviceKey: other }))).reason, "KEY_MISMATCH");
  assert.ok((await client.refresh(started.refreshToken, { deviceKey: key })).sessionToken);
});

test("a P-256 key kept as PKCS#8 PEM signs after it is loaded again", async () => {
  const pem = await (await DeviceKey.generate("ES256")).exportPkcs8Pem();
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
  const started = await client.start(newUserId(), { deviceKey: await DeviceKey.fromPkcs8Pem(pem) });

  const loaded = await DeviceKey.fromPkcs8Pem(pem);
  assert.equal(loaded.algorithm, "ES256");
  assert.equal(started.session?.deviceKeyThumbprint, await loaded.thumbprint());
  assert.ok((await client.refresh(started.refreshToken, { deviceKey: loaded })).sessionToken);
});

test("a group that wants nonces gets the client's retry with one", async () => {
  const key = await DeviceKey.generate();
  const started = await client.start(newUserId(), { group: "nonce", deviceKey: key });

  // A proof without a nonce is refused, and the refusal hands one out.
  const proof = await key.proof({ method: "POST", url: methodUrl("Refresh"), token: started.refreshToken });
  const refused = await failure(
    client.refresh(started.refreshToken, { forwardedProof: { proof, method: "POST", url: methodUrl("Refresh") } }),
  );
  assert.equal(refused.reason, "NONCE_REQUIRED");
  assert.ok(refused.metadata.get("dpop-nonce"), "the nonce in dpop-nonce");
  assert.equal(refused.reasonMetadata["nonce"], refused.metadata.get("dpop-nonce"));

  // The client takes the nonce and tries again, once.
  const refreshed = await client.refresh(started.refreshToken, { deviceKey: key });
  assert.equal(refreshed.session?.sessionId, started.session?.sessionId);
});

test("Whoami in an every_call group needs the device's proof", async () => {
  const key = await DeviceKey.generate();
  const started = await client.start(newUserId(), { group: "every", deviceKey: key });

  assert.equal((await failure(client.whoami(started.sessionToken))).reason, "PROOF_MISSING");
  const me = await client.whoami(started.sessionToken, { deviceKey: key });
  assert.equal(me.session?.sessionId, started.session?.sessionId);

  // A service forwards its own client's proof with that client's request.
  const request = { method: "GET", url: "https://app.example/api/me?tab=1" };
  const proof = await key.proof({ ...request, token: started.sessionToken });
  const forwarded = await client.whoami(started.sessionToken, { forwardedProof: { proof, ...request } });
  assert.equal(forwarded.session?.sessionId, started.session?.sessionId);
});

test("a proof made with jose alone, not through the client, is accepted", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  const started = await client.stub.start({ userId: newUserId(), deviceKey: JSON.stringify(jwk) });
  assert.equal(started.session?.deviceKeyThumbprint, await calculateJwkThumbprint(jwk));

  const proof = await new SignJWT({
    jti: randomUUID(),
    htm: "POST",
    htu: methodUrl("Refresh"),
    ath: createHash("sha256").update(started.refreshToken).digest("base64url"),
  })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk })
    .setIssuedAt()
    .sign(privateKey);
  const refreshed = await client.stub.refresh({ refreshToken: started.refreshToken }, { headers: { dpop: proof } });
  assert.equal(refreshed.session?.sessionId, started.session?.sessionId);
});
