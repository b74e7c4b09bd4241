// Device-bound sessions (docs/binding.md) against the real server: Start binds, Refresh
// and Whoami sign proofs (with the nonce round trip), a call without the key is refused
// with its reason, a proof made with Go's crypto directly is accepted, and the Verifier
// demands a proof of the key a cnf access token names. Needs the groups
// `cargo test --test testsuite go_client` configures: default (access tokens), every
// (proof_on_use = "every_call") and nonce (require_nonce = true).

package sessiond_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sessiond/sessiond/clients/go/sessiond"
	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

// newKey is a fresh Ed25519 device key.
func newKey(t *testing.T) *sessiond.DeviceKey {
	t.Helper()
	key, err := sessiond.GenerateDeviceKey()
	ok(t, err)
	return key
}

// proof is key's proof for method url with token, at now.
func proof(t *testing.T, key *sessiond.DeviceKey, method, url, token string) string {
	t.Helper()
	made, err := key.Proof(method, url, token, sessiond.ProofOptions{})
	ok(t, err)
	return made
}

// wantReason fails unless err is an Unauthenticated call error with that binding reason.
func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if got := sessiond.ReasonOf(err); got != reason || failure(t, err).Status() != "UNAUTHENTICATED" {
		t.Fatalf("want UNAUTHENTICATED %s, got %v (reason %q)", reason, err, got)
	}
}

func TestThumbprintIsRFC7638s(t *testing.T) {
	// RFC 8037 A.3: the thumbprint of the Ed25519 key of A.2.
	jwk := sessiond.DeviceJWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	if got := sessiond.Thumbprint(jwk); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("thumbprint %s", got)
	}
}

func TestAKeySurvivesItsPEM(t *testing.T) {
	p256, err := sessiond.GenerateDeviceKeyP256()
	ok(t, err)
	for _, key := range []*sessiond.DeviceKey{newKey(t), p256} {
		text, err := key.PEM()
		ok(t, err)
		loaded, err := sessiond.ParseDeviceKeyPEM(text)
		ok(t, err)
		if loaded.Thumbprint() != key.Thumbprint() || loaded.Alg() != key.Alg() {
			t.Errorf("%s key changed through its PEM", key.Alg())
		}
	}
}

func TestStartBindsAndRefreshSignsWithTheKey(t *testing.T) {
	client, ctx := connect(t)
	p256, err := sessiond.GenerateDeviceKeyP256()
	ok(t, err)
	for _, key := range []*sessiond.DeviceKey{newKey(t), p256} {
		started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{DeviceKey: key})
		ok(t, err)
		if started.Session.DeviceKeyThumbprint != key.Thumbprint() {
			t.Fatalf("bound to %q, not %q", started.Session.DeviceKeyThumbprint, key.Thumbprint())
		}
		rotated, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{DeviceKey: key})
		ok(t, err)
		_, err = client.Refresh(ctx, rotated.RefreshToken, sessiond.RefreshOptions{DeviceKey: key})
		ok(t, err)
	}
}

func TestARefreshWithoutTheKeyIsRefusedAsProofMissing(t *testing.T) {
	client, ctx := connect(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{DeviceKey: newKey(t)})
	ok(t, err)

	_, err = client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	wantReason(t, err, "PROOF_MISSING")

	_, err = client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{DeviceKey: newKey(t)})
	wantReason(t, err, "KEY_MISMATCH")
}

func TestANonceTheGroupAsksForIsFetchedAndUsed(t *testing.T) {
	client, ctx := connect(t)
	key := newKey(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{Group: "nonce", DeviceKey: key})
	ok(t, err)
	// Without the server's nonce a proof is refused, with the nonce the client retries with.
	refreshPath := "http://sessiond.test/session.v1.SessionService/Refresh"
	bare := metadata.AppendToOutgoingContext(ctx, "dpop", proof(t, key, "POST", refreshPath, started.RefreshToken))
	var trailer metadata.MD
	_, err = client.Stub.Refresh(bare, &sessionpb.RefreshRequest{RefreshToken: started.RefreshToken}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.Unauthenticated || len(trailer.Get("dpop-nonce")) != 1 {
		t.Fatalf("a proof without a nonce: %v, dpop-nonce %v", err, trailer.Get("dpop-nonce"))
	}

	rotated, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{DeviceKey: key})
	ok(t, err)
	_, err = client.Refresh(ctx, rotated.RefreshToken, sessiond.RefreshOptions{DeviceKey: key})
	ok(t, err)
}

func TestWhoamiInAnEveryCallGroupNeedsTheKey(t *testing.T) {
	client, ctx := connect(t)
	key := newKey(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{Group: "every", DeviceKey: key})
	ok(t, err)

	_, err = client.Whoami(ctx, started.SessionToken)
	wantReason(t, err, "PROOF_MISSING")
	me, err := client.WhoamiWith(ctx, started.SessionToken, sessiond.WhoamiOptions{DeviceKey: key})
	ok(t, err)
	// A service forwards the proof its own client sent with GET /orders?page=2.
	forwarded := &sessiond.ForwardedProof{
		Proof:  proof(t, key, "GET", "https://app.example/orders?page=2", started.SessionToken),
		Method: "GET",
		URL:    "https://APP.example:443/orders",
	}
	_, err = client.WhoamiWith(ctx, started.SessionToken, sessiond.WhoamiOptions{Forwarded: forwarded})
	ok(t, err)

	if me.Session.SessionId != started.Session.SessionId {
		t.Errorf("session %s, not %s", me.Session.SessionId, started.Session.SessionId)
	}
}

// TestAProofMadeWithGoCryptoDirectlyIsAccepted builds the JWS by hand (crypto/ed25519,
// encoding/json), not with the client's DeviceKey: what any Go program could send.
func TestAProofMadeWithGoCryptoDirectlyIsAccepted(t *testing.T) {
	client, ctx := connect(t)
	public, private, err := ed25519.GenerateKey(rand.Reader)
	ok(t, err)
	encode := base64.RawURLEncoding.EncodeToString
	jwk := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": encode(public)}
	jwkJSON, err := json.Marshal(jwk)
	ok(t, err)
	started, err := client.Stub.Start(ctx, &sessionpb.StartRequest{UserId: newUserID(t), DeviceKey: string(jwkJSON)})
	ok(t, err)
	tokenHash := sha256.Sum256([]byte(started.RefreshToken))
	header, err := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk})
	ok(t, err)
	claims, err := json.Marshal(map[string]any{
		"jti": encode([]byte(newUserID(t))), "iat": time.Now().Unix(), "htm": "POST",
		"htu": "https://anywhere/session.v1.SessionService/Refresh", "ath": encode(tokenHash[:]),
	})
	ok(t, err)
	input := encode(header) + "." + encode(claims)
	jws := input + "." + encode(ed25519.Sign(private, []byte(input)))

	signed := metadata.AppendToOutgoingContext(ctx, "dpop", jws)
	_, err = client.Stub.Refresh(signed, &sessionpb.RefreshRequest{RefreshToken: started.RefreshToken})
	ok(t, err)
}

func TestTheVerifierDemandsAProofForABoundToken(t *testing.T) {
	client, ctx := connect(t)
	key := newKey(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{DeviceKey: key})
	ok(t, err)
	token, url := started.AccessToken, "https://api.example/orders"
	verifier := sessiond.NewVerifier(client, "default")
	good := sessiond.ProofRequest{Proof: proof(t, key, "GET", url, token), Method: "GET", URL: url + "?page=1"}

	claims, err := verifier.VerifyRequest(ctx, token, good)
	ok(t, err)
	if claims.Confirmation == nil || claims.Confirmation.JKT != key.Thumbprint() {
		t.Fatalf("cnf %+v, not the key's thumbprint", claims.Confirmation)
	}
	old, err := key.Proof("GET", url, token, sessiond.ProofOptions{IssuedAt: time.Now().Add(-10 * time.Minute)})
	ok(t, err)
	cases := []struct {
		request sessiond.ProofRequest
		reason  string
	}{
		{sessiond.ProofRequest{}, "PROOF_MISSING"},
		{good, "REPLAYED"},
		{sessiond.ProofRequest{Proof: proof(t, newKey(t), "GET", url, token), Method: "GET", URL: url}, "KEY_MISMATCH"},
		{sessiond.ProofRequest{Proof: proof(t, key, "POST", url, token), Method: "GET", URL: url}, "REQUEST_MISMATCH"},
		{sessiond.ProofRequest{Proof: proof(t, key, "GET", url, "another"), Method: "GET", URL: url}, "TOKEN_HASH_MISMATCH"},
		{sessiond.ProofRequest{Proof: old, Method: "GET", URL: url}, "ISSUED_AT_OUT_OF_WINDOW"},
		{sessiond.ProofRequest{Proof: "a.b", Method: "GET", URL: url}, "PROOF_MALFORMED"},
	}
	for _, refused := range cases {
		_, err := verifier.VerifyRequest(ctx, token, refused.request)
		var proofErr *sessiond.ProofError
		if !errors.As(err, &proofErr) || proofErr.Reason != refused.reason || !errors.Is(err, sessiond.ErrInvalidToken) {
			t.Errorf("want %s, got %v", refused.reason, err)
		}
	}
}

func TestTheVerifierIgnoresAProofForAnUnboundToken(t *testing.T) {
	client, ctx := connect(t)
	started, err := client.Start(ctx, newUserID(t), sessiond.StartOptions{})
	ok(t, err)
	verifier := sessiond.NewVerifier(client, "default")
	foreign := sessiond.ProofRequest{Proof: proof(t, newKey(t), "GET", "https://x/", started.AccessToken), Method: "GET", URL: "https://y/"}

	_, err = verifier.Verify(ctx, started.AccessToken)
	ok(t, err)
	_, err = verifier.VerifyRequest(ctx, started.AccessToken, foreign)
	ok(t, err)
}
