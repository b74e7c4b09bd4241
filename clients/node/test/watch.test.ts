/** WatchSessions through the client: live events, then a watch resumed from a cursor. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { SessionEventKind, type SessionEvent } from "sessiond-client";
import { connect, newUserId } from "./support.js";

const client = connect();

/** The next `count` session events of `stream`, passing over CAUGHT_UP markers. */
async function nextEvents(stream: AsyncIterator<SessionEvent>, count: number): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  while (events.length < count) {
    const item = await stream.next();
    assert.ok(!item.done, "the stream ended early");
    if (item.value.kind !== SessionEventKind.CAUGHT_UP) {
      events.push(item.value);
    }
  }
  return events;
}

// A missing event would leave the stream waiting: fail instead.
test("a watch resumed from the last cursor gets every event after it", { timeout: 30_000 }, async () => {
  const userId = newUserId();
  const live = client.watch({ userId });
  const opening = await live.next();
  assert.ok(!opening.done);
  assert.equal(opening.value.kind, SessionEventKind.CAUGHT_UP);

  const started = await client.start(userId);
  const [startedEvent] = await nextEvents(live, 1);
  assert.ok(startedEvent);
  assert.equal(startedEvent.kind, SessionEventKind.STARTED);
  assert.equal(startedEvent.sessionId, started.session?.sessionId);
  assert.ok(startedEvent.cursor > opening.value.cursor);
  await live.return(); // the watcher goes away...

  // ...while the session changes.
  const refreshed = await client.refresh(started.refreshToken);
  await client.logout({ sessionToken: refreshed.sessionToken });

  const resumed = client.watch({ userId, afterCursor: startedEvent.cursor });
  const missed = await nextEvents(resumed, 2);
  await resumed.return();

  assert.deepEqual(
    missed.map((event) => event.kind),
    [SessionEventKind.REFRESHED, SessionEventKind.REVOKED],
  );
  assert.ok(missed.every((event) => event.sessionId === startedEvent.sessionId));
  assert.ok(startedEvent.cursor < missed[0]!.cursor && missed[0]!.cursor < missed[1]!.cursor);
});
