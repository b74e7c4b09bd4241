// Signed access tokens verified locally (crypto/ed25519) against GetJwks, across a key rotation.

package sessiond_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/clients/go/sessiond"
)

// kidOf is the key id in token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	ok(t, err)
	var header struct {
		Kid string `json:"kid"`
	}
	ok(t, json.Unmarshal(raw, &header))
	return header.Kid
}

func TestAccessTokenVerifiesWithThePublishedKeys(t *testing.T) {
	client, ctx := connect(t)
	userID := newUserID(t)
	started, err := client.Start(ctx, userID, sessiond.StartOptions{
		Attributes: map[string]string{"role": "admin"},
	})
	ok(t, err)
	if started.AccessToken == "" {
		t.Fatal("the server issues no access tokens: set access_token_ttl")
	}

	claims, err := sessiond.NewVerifier(client, "default").Verify(ctx, started.AccessToken)
	ok(t, err)

	if claims.Subject != userID || claims.SessionID != started.Session.SessionId ||
		claims.Group != "default" || claims.Attrs["role"] != "admin" || len(claims.Attrs) != 1 {
		t.Errorf("claims %+v", claims)
	}
	if expiresIn := started.AccessTokenExpiresInSeconds; expiresIn <= 0 || expiresIn > 300 {
		t.Errorf("access token expires in %d s", expiresIn)
	}
}

func TestTokensVerifyAcrossAKeyRotation(t *testing.T) {
	client, ctx := connect(t)
	userID := newUserID(t)
	verifier := sessiond.NewVerifier(client, "default")
	// No cooldown: the key appears right after the verifier fetched the JWKS.
	verifier.RefetchCooldown = 0
	before, err := client.Start(ctx, userID, sessiond.StartOptions{})
	ok(t, err)
	_, err = verifier.Verify(ctx, before.AccessToken)
	ok(t, err)

	kid, err := client.RotateSigningKey(ctx)
	ok(t, err)
	after, err := client.Refresh(ctx, before.RefreshToken, sessiond.RefreshOptions{})
	ok(t, err)

	if kidOf(t, after.AccessToken) != kid || kidOf(t, before.AccessToken) == kid {
		t.Errorf("new key %s; tokens signed by %s, then %s", kid, kidOf(t, before.AccessToken), kidOf(t, after.AccessToken))
	}
	for _, token := range []string{after.AccessToken, before.AccessToken} {
		claims, err := verifier.Verify(ctx, token)
		ok(t, err)
		if claims.Subject != userID {
			t.Errorf("subject %s", claims.Subject)
		}
	}
}

func TestForgedOrForeignTokenDoesNotVerify(t *testing.T) {
	client, ctx := connect(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{})
	ok(t, err)
	parts := strings.Split(started.AccessToken, ".")
	forged := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]

	if _, err := sessiond.NewVerifier(client, "default").Verify(ctx, forged); !errors.Is(err, sessiond.ErrInvalidToken) {
		t.Errorf("forged token: %v", err)
	}
	if _, err := sessiond.NewVerifier(client, "billing").Verify(ctx, started.AccessToken); !errors.Is(err, sessiond.ErrInvalidToken) {
		t.Errorf("token of another audience: %v", err)
	}
}
