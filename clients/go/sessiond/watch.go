// Watcher: one WatchSessions stream that remembers its last cursor, so it can be resumed.

package sessiond

import (
	"context"

	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

// Watcher reads one WatchSessions stream. Close it when done.
type Watcher struct {
	stream sessionpb.SessionService_WatchSessionsClient
	cancel context.CancelFunc
	cursor uint64
	seen   bool
}

// Watch streams the events of userID's sessions ("": every user's) from now on: first a
// CAUGHT_UP event carrying the current cursor, then live events.
func (c *Client) Watch(ctx context.Context, userID string) (*Watcher, error) {
	return c.watch(ctx, &sessionpb.WatchSessionsRequest{UserId: userID})
}

// WatchAfter resumes a watch: every event of userID's sessions after afterCursor (the
// last cursor received, Watcher.Cursor), in order, no gaps, no duplicates, then live
// events.
func (c *Client) WatchAfter(ctx context.Context, afterCursor uint64, userID string) (*Watcher, error) {
	return c.watch(ctx, &sessionpb.WatchSessionsRequest{AfterCursor: &afterCursor, UserId: userID})
}

func (c *Client) watch(ctx context.Context, request *sessionpb.WatchSessionsRequest) (*Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Stub.WatchSessions(ctx, request)
	if err != nil {
		cancel()
		return nil, callError(err)
	}
	return &Watcher{stream: stream, cancel: cancel}, nil
}

// Recv returns the next event, CAUGHT_UP markers included ("every event up to this
// cursor was sent"). Its errors are *Error: OutOfRange for a cursor older than the
// server keeps (drop cached answers and Watch again), ResourceExhausted or Unavailable
// when the server cut the stream (resume with WatchAfter from Cursor).
func (w *Watcher) Recv() (*sessionpb.SessionEvent, error) {
	event, err := w.stream.Recv()
	if err != nil {
		return nil, callError(err)
	}
	w.cursor, w.seen = event.Cursor, true
	return event, nil
}

// Cursor is the cursor of the last event received, and whether there was one.
func (w *Watcher) Cursor() (uint64, bool) {
	return w.cursor, w.seen
}

// Close ends the stream.
func (w *Watcher) Close() {
	w.cancel()
}
