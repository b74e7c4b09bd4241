/** A bound session's access token (`cnf.jkt`) verified locally only with its request's DPoP proof. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeJwt } from "jose";

import { AccessTokenVerifier, DeviceKey, ProofError, type ProofFailure } from "sessiond-client";
import { connect, newUserId } from "./support.js";

const client = connect();
const verifier = new AccessTokenVerifier(client, { audience: "default" });

/** The request a resource server received, the token with it. */
const REQUEST = { method: "GET", url: "https://api.example/orders" };

/** The `cnf.jkt` of an access token, read without verifying it. */
function jktOf(token: string): string | undefined {
  return (decodeJwt(token).cnf as { jkt?: string } | undefined)?.jkt;
}

/** A bound session's access token, and its device key. */
async function boundToken(): Promise<{ key: DeviceKey; token: string }> {
  const key = await DeviceKey.generate();
  const started = await client.start(newUserId(), { deviceKey: key });
  assert.equal(jktOf(started.accessToken), await key.thumbprint(), "cnf.jkt is the key's thumbprint");
  return { key, token: started.accessToken };
}

/** `verification` rejects with a ProofError of `reason`. */
async function refusedFor(verification: Promise<unknown>, reason: ProofFailure): Promise<void> {
  await assert.rejects(verification, (error) => error instanceof ProofError && error.reason === reason);
}

test("a bound token verifies with its device's proof of the request", async () => {
  const { key, token } = await boundToken();
  // Query and fragment are not compared.
  const proof = await key.proof({ ...REQUEST, url: `${REQUEST.url}?page=2#top`, token });

  const claims = await verifier.verify(token, { ...REQUEST, proof });
  assert.equal(claims.cnf?.jkt, await key.thumbprint());
});

test("a bound token without a proof, or with another key's, is refused", async () => {
  const { token } = await boundToken();
  const thief = await DeviceKey.generate("ES256");

  await refusedFor(verifier.verify(token), "PROOF_MISSING");
  await refusedFor(verifier.verify(token, { ...REQUEST, proof: "" }), "PROOF_MISSING");
  const foreign = await thief.proof({ ...REQUEST, token });
  await refusedFor(verifier.verify(token, { ...REQUEST, proof: foreign }), "KEY_MISMATCH");
});

test("a proof is used once, for its own request, token and time", async () => {
  const { key, token } = await boundToken();
  const proof = await key.proof({ ...REQUEST, token });
  await verifier.verify(token, { ...REQUEST, proof });

  await refusedFor(verifier.verify(token, { ...REQUEST, proof }), "REPLAYED");
  const elsewhere = await key.proof({ ...REQUEST, token });
  await refusedFor(verifier.verify(token, { method: "POST", url: REQUEST.url, proof: elsewhere }), "REQUEST_MISMATCH");
  const otherToken = await key.proof({ ...REQUEST, token: `${token}x` });
  await refusedFor(verifier.verify(token, { ...REQUEST, proof: otherToken }), "TOKEN_HASH_MISMATCH");
  const old = await key.proof({ ...REQUEST, token, issuedAt: Math.floor(Date.now() / 1000) - 120 });
  await refusedFor(verifier.verify(token, { ...REQUEST, proof: old }), "ISSUED_AT_OUT_OF_WINDOW");
  await refusedFor(verifier.verify(token, { ...REQUEST, proof: "not.a.jws" }), "PROOF_MALFORMED");
});

test("a bearer token ignores a proof", async () => {
  const started = await client.start(newUserId());
  assert.equal(jktOf(started.accessToken), undefined);
  const claims = await verifier.verify(started.accessToken, { ...REQUEST, proof: "anything" });
  assert.equal(claims.sid, started.session?.sessionId);
});
