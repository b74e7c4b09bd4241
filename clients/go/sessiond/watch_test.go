// WatchSessions through the client: live events, then a watch resumed from a cursor.

package sessiond_test

import (
	"testing"

	"github.com/sessiond/sessiond/clients/go/sessiond"
	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

// nextEvents are the next count session events of watcher, passing over CAUGHT_UP markers.
func nextEvents(t *testing.T, watcher *sessiond.Watcher, count int) []*sessionpb.SessionEvent {
	t.Helper()
	var events []*sessionpb.SessionEvent
	for len(events) < count {
		event, err := watcher.Recv()
		ok(t, err)
		if event.Kind != sessionpb.SessionEventKind_SESSION_EVENT_KIND_CAUGHT_UP {
			events = append(events, event)
		}
	}
	return events
}

func TestWatchResumedFromTheLastCursorGetsEveryEventAfterIt(t *testing.T) {
	client, ctx := connect(t)
	userID := newUserID(t)
	live, err := client.Watch(ctx, userID)
	ok(t, err)
	opening, err := live.Recv()
	ok(t, err)
	if opening.Kind != sessionpb.SessionEventKind_SESSION_EVENT_KIND_CAUGHT_UP {
		t.Fatalf("the stream opened with %v", opening)
	}

	started, err := client.Start(ctx, userID, sessiond.StartOptions{})
	ok(t, err)
	startedEvent := nextEvents(t, live, 1)[0]
	if startedEvent.Kind != sessionpb.SessionEventKind_SESSION_EVENT_KIND_STARTED ||
		startedEvent.SessionId != started.Session.SessionId || startedEvent.Cursor <= opening.Cursor {
		t.Fatalf("want STARTED of %s after cursor %d, got %v", started.Session.SessionId, opening.Cursor, startedEvent)
	}
	cursor, _ := live.Cursor()
	live.Close() // the watcher goes away...

	// ...while the session changes.
	refreshed, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)
	_, err = client.Logout(ctx, sessiond.LogoutOptions{SessionToken: refreshed.SessionToken})
	ok(t, err)

	resumed, err := client.WatchAfter(ctx, cursor, userID)
	ok(t, err)
	defer resumed.Close()
	missed := nextEvents(t, resumed, 2)

	want := []sessionpb.SessionEventKind{
		sessionpb.SessionEventKind_SESSION_EVENT_KIND_REFRESHED,
		sessionpb.SessionEventKind_SESSION_EVENT_KIND_REVOKED,
	}
	previous := cursor
	for i, event := range missed {
		if event.Kind != want[i] || event.SessionId != startedEvent.SessionId || event.Cursor <= previous {
			t.Errorf("missed event %d: want %v of %s after cursor %d, got %v",
				i, want[i], startedEvent.SessionId, previous, event)
		}
		previous = event.Cursor
	}
}
