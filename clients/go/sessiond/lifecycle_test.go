// The session lifecycle, refresh grace and reuse, and typed errors, against a real sessiond.

package sessiond_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sessiond/sessiond/clients/go/sessiond"
	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

func TestSessionLivesFromStartToLogout(t *testing.T) {
	client, ctx := connect(t)
	userID := newUserID(t)
	started, err := client.Start(ctx, userID, sessiond.StartOptions{
		TTL:        10 * time.Minute,
		Metadata:   map[string]string{"device": "laptop"},
		Attributes: map[string]string{"role": "admin"},
	})
	ok(t, err)
	session := started.Session
	if session.UserId != userID || session.Group != "default" ||
		session.State != sessionpb.SessionState_SESSION_STATE_ACTIVE || session.TtlSeconds != 600 {
		t.Fatalf("unexpected session %v", session)
	}
	if session.Metadata["device"] != "laptop" || session.Attributes["role"] != "admin" {
		t.Errorf("metadata %v, attributes %v", session.Metadata, session.Attributes)
	}
	if !strings.HasPrefix(started.SessionToken, "st_") || !strings.HasPrefix(started.RefreshToken, "rt_") {
		t.Errorf("tokens %q, %q", started.SessionToken, started.RefreshToken)
	}
	assertAbout(t, started.ExpiresInSeconds, 600)
	sessionID := session.SessionId

	me, err := client.Whoami(ctx, started.SessionToken)
	ok(t, err)
	if me.Session.SessionId != sessionID {
		t.Errorf("whoami: session %s, want %s", me.Session.SessionId, sessionID)
	}
	assertAbout(t, me.ExpiresInSeconds, 600)

	// Refresh rotates both tokens; the old session token stops working.
	refreshed, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)
	if refreshed.Session.SessionId != sessionID || refreshed.SessionToken == started.SessionToken ||
		refreshed.RefreshToken == started.RefreshToken {
		t.Fatalf("refresh did not rotate the pair of %s: %v", sessionID, refreshed)
	}
	_, err = client.Whoami(ctx, started.SessionToken)
	if code := failure(t, err).Code; code != codes.Unauthenticated {
		t.Errorf("old session token: %s", code)
	}
	_, err = client.Whoami(ctx, refreshed.SessionToken)
	ok(t, err)

	extended, err := client.Extend(ctx, sessionID, time.Hour)
	ok(t, err)
	if !extended.Extended {
		t.Error("not extended")
	}
	assertAbout(t, lifetimeSeconds(extended.Session), 3600)

	all, err := client.RefreshAllForUser(ctx, userID, 2*time.Hour)
	ok(t, err)
	if all.RefreshedCount != 1 || len(all.Sessions) != 1 || all.Sessions[0].SessionId != sessionID {
		t.Fatalf("refresh all: %v", all)
	}
	assertAbout(t, lifetimeSeconds(all.Sessions[0]), 7200)

	// Logout ends it; a retry is harmless.
	logout, err := client.Logout(ctx, sessiond.LogoutOptions{SessionToken: refreshed.SessionToken})
	ok(t, err)
	if logout.RevokedCount != 1 {
		t.Errorf("logout revoked %d", logout.RevokedCount)
	}
	_, err = client.Whoami(ctx, refreshed.SessionToken)
	if code := failure(t, err).Code; code != codes.Unauthenticated {
		t.Errorf("after logout: %s", code)
	}
	again, err := client.Logout(ctx, sessiond.LogoutOptions{SessionID: sessionID})
	ok(t, err)
	if again.RevokedCount != 0 {
		t.Errorf("second logout revoked %d", again.RevokedCount)
	}
}

func TestRefreshRetriedWithinGraceGetsTheSamePair(t *testing.T) {
	client, ctx := connect(t)
	userID := newUserID(t)
	started, err := client.Start(ctx, userID, sessiond.StartOptions{})
	ok(t, err)
	first, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)

	// The answer was lost; the client retries with the same refresh token.
	retry, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)

	if retry.SessionToken != first.SessionToken || retry.RefreshToken != first.RefreshToken {
		t.Fatal("a retry within the grace window got another pair")
	}
	me, err := client.Whoami(ctx, retry.SessionToken)
	ok(t, err)
	if me.Session.UserId != userID {
		t.Errorf("whoami: user %s", me.Session.UserId)
	}
}

func TestRefreshTokenReusedAfterItsSuccessorRevokesTheSession(t *testing.T) {
	client, ctx := connect(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{})
	ok(t, err)
	refreshed, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)
	// The successor is in use, so the grace window is closed: the old token coming back
	// now can only be a stolen copy.
	_, err = client.Whoami(ctx, refreshed.SessionToken)
	ok(t, err)

	_, err = client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})

	if reuse := failure(t, err); reuse.Code != codes.Unauthenticated || reuse.Status() != "UNAUTHENTICATED" {
		t.Errorf("reuse: %v", reuse)
	}
	// The whole session is revoked: the fresh pair is dead too.
	_, err = client.Whoami(ctx, refreshed.SessionToken)
	if code := failure(t, err).Code; code != codes.Unauthenticated {
		t.Errorf("successor session token: %s", code)
	}
	_, err = client.Refresh(ctx, refreshed.RefreshToken, sessiond.RefreshOptions{})
	if code := failure(t, err).Code; code != codes.Unauthenticated {
		t.Errorf("successor refresh token: %s", code)
	}
}

func TestErrorsCarryTheGRPCStatusAndTheServersDetail(t *testing.T) {
	client, ctx := connect(t)

	_, err := client.Whoami(ctx, "not-a-token")
	malformed := failure(t, err)
	if malformed.Code != codes.InvalidArgument || malformed.Status() != "INVALID_ARGUMENT" ||
		!strings.Contains(malformed.Message, "session_token") {
		t.Errorf("malformed token: %v", malformed)
	}
	if status.Code(err) != codes.InvalidArgument || sessiond.CodeOf(err) != codes.InvalidArgument {
		t.Errorf("status.Code %s, CodeOf %s", status.Code(err), sessiond.CodeOf(err))
	}

	_, err = client.Extend(ctx, "00000000-0000-7000-8000-000000000000", 0)
	if unknown := failure(t, err); unknown.Code != codes.NotFound || unknown.Status() != "NOT_FOUND" {
		t.Errorf("unknown session: %v", unknown)
	}
}
