/**
 * A service's whole use of sessiond in one file, importing only the package: log in,
 * check the session, verify the access token locally, refresh, log out. Run it against
 * a server: `SESSIOND_ADDR=127.0.0.1:50051 node build-test/examples/quickstart.js`.
 */

import { AccessTokenVerifier, Code, SessionClient, SessionError } from "sessiond-client";

const client = new SessionClient(process.env.SESSIOND_ADDR ?? "127.0.0.1:50051");
try {
  const started = await client.start("quickstart-user", { attributes: { role: "reader" } });
  const me = await client.whoami(started.sessionToken);
  const verifier = new AccessTokenVerifier(client, { audience: "default" });
  const claims = await verifier.verify(started.accessToken);
  const next = await client.refresh(started.refreshToken);
  const ended = await client.logout({ sessionToken: next.sessionToken });
  try {
    await client.whoami(next.sessionToken);
    throw new Error("a logged-out session still answers Whoami");
  } catch (error) {
    if (!(error instanceof SessionError && error.code === Code.Unauthenticated)) throw error;
  }
  console.log(
    `quickstart: ok (session ${me.session?.sessionId}, token for ${claims.sub}, ` +
      `${ended.revokedCount} revoked)`,
  );
} finally {
  client.close();
}
