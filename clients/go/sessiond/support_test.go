// What the test files share: the server under test, a client, fresh user ids, call errors.

package sessiond_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sessiond/sessiond/clients/go/sessiond"
	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

// connect returns a client of the server under test, closed after the test.
// `cargo test --test go_client` starts the server and names it in SESSIOND_ADDR; by
// hand, run `cargo run` and export SESSIOND_ADDR=127.0.0.1:50051.
func connect(t *testing.T) (*sessiond.Client, context.Context) {
	t.Helper()
	addr := os.Getenv("SESSIOND_ADDR")
	if addr == "" {
		t.Fatal("SESSIOND_ADDR is not set: run `cargo test --test go_client`, or start " +
			"sessiond and export SESSIOND_ADDR=127.0.0.1:50051")
	}
	client, err := sessiond.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(func() {
		cancel()
		client.Close()
	})
	return client, ctx
}

// newUserID is a user no other test (or earlier run against the same server) has used.
func newUserID(t *testing.T) string {
	t.Helper()
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	return "go-" + hex.EncodeToString(random)
}

// ok fails the test on err.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// failure is err as the *sessiond.Error of a failed call (fails the test otherwise).
func failure(t *testing.T, err error) *sessiond.Error {
	t.Helper()
	var callErr *sessiond.Error
	if !errors.As(err, &callErr) {
		t.Fatalf("want a *sessiond.Error, got %v", err)
	}
	return callErr
}

// slackSeconds is how far a check may be off when the server's clock runs (`cargo run`).
const slackSeconds = 5

// assertAbout fails unless actual is within slackSeconds of expected.
func assertAbout(t *testing.T, actual int64, expected int64) {
	t.Helper()
	if actual < expected-slackSeconds || actual > expected+slackSeconds {
		t.Errorf("%d is not about %d", actual, expected)
	}
}

// lifetimeSeconds is the time from the session's start to its expiry.
func lifetimeSeconds(session *sessionpb.Session) int64 {
	return session.GetExpiresAt().GetSeconds() - session.GetCreatedAt().GetSeconds()
}
