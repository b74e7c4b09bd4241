// Verifier: checks sessiond's EdDSA access (and ID) tokens locally, with crypto/ed25519,
// against the keys GetJwks publishes.

package sessiond

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrInvalidToken wraps every reason Verify refuses a token.
var ErrInvalidToken = errors.New("invalid token")

// JWKS is a JSON Web Key Set (RFC 7517) as GetJwks returns it.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key; sessiond's are Ed25519 (kty OKP, crv Ed25519, RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
}

// Claims are what a verified token says.
type Claims struct {
	Issuer    string            `json:"iss"`
	Audience  audience          `json:"aud"`
	Subject   string            `json:"sub"` // the user id
	SessionID string            `json:"sid"`
	Group     string            `json:"group"`
	Attrs     map[string]string `json:"attrs"` // the session's attributes at signing
	IssuedAt  int64             `json:"iat"`
	ExpiresAt int64             `json:"exp"`
	ID        string            `json:"jti"`
	AuthTime  int64             `json:"auth_time,omitempty"` // ID tokens only
	// Confirmation is set when the session is bound to a device key (RFC 7800 cnf):
	// the token is then only good with a DPoP proof of that key (VerifyRequest).
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a bound session's access token.
type Confirmation struct {
	JKT string `json:"jkt"` // the device key's RFC 7638 thumbprint
}

// DefaultMaxProofSkew is how far a DPoP proof's iat may be from the verifier's clock.
const DefaultMaxProofSkew = 60 * time.Second

// audience is the aud claim: one string, or a list of them (RFC 7519).
type audience []string

func (a *audience) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(data, (*[]string)(a))
}

// Verifier verifies tokens without a call per token: the JWKS is fetched once, and again
// when a token names a key it lacks (the server rotated), at most once per
// RefetchCooldown so forged key ids cannot turn every verification into a call.
type Verifier struct {
	client          *Client
	Audience        string        // the group's audience (by default its name)
	Issuer          string        // the server's jwt_issuer ("sessiond")
	RefetchCooldown time.Duration // 30 s unless changed
	// MaxProofSkew is how far a proof's iat may be from Now (DefaultMaxProofSkew);
	// proof ids are remembered twice as long, to refuse a replay.
	MaxProofSkew time.Duration
	Now          func() time.Time

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
	proofs    proofMemory
}

// NewVerifier verifies tokens for audience issued by the default issuer "sessiond".
func NewVerifier(client *Client, audience string) *Verifier {
	return &Verifier{
		client:          client,
		Audience:        audience,
		Issuer:          "sessiond",
		RefetchCooldown: 30 * time.Second,
		MaxProofSkew:    DefaultMaxProofSkew,
		Now:             time.Now,
	}
}

// Verify returns the claims of token if it is signed (EdDSA) by a published key, not
// expired, and for the verifier's issuer and audience; otherwise an error wrapping
// ErrInvalidToken (or the GetJwks call's error). A token bound to a device key (cnf) is
// refused with a *ProofError PROOF_MISSING: verify it with VerifyRequest.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return v.VerifyRequest(ctx, token, ProofRequest{})
}

// VerifyRequest is Verify for a token that came with request: when the token is bound
// to a device key (its claims carry cnf.jkt), request must carry a DPoP proof of that
// key for its method and URL, with ath the hash of token, iat within MaxProofSkew and
// a jti not used before; a failure is a *ProofError. A token without cnf ignores it.
func (v *Verifier) VerifyRequest(ctx context.Context, token string, request ProofRequest) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not three dot-separated parts", ErrInvalidToken)
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidToken, err)
	}
	if header.Alg != "EdDSA" {
		return nil, fmt.Errorf("%w: algorithm %q is not EdDSA", ErrInvalidToken, header.Alg)
	}
	key, err := v.key(ctx, header.Kid)
	if err != nil {
		return nil, err
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), signature) {
		return nil, fmt.Errorf("%w: the signature does not verify", ErrInvalidToken)
	}
	var claims Claims
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if err := v.check(&claims); err != nil {
		return nil, err
	}
	if claims.Confirmation != nil {
		if err := v.checkProof(request, claims.Confirmation.JKT, token, v.Now()); err != nil {
			return nil, err
		}
	}
	return &claims, nil
}

// check refuses claims that are expired or for another issuer or audience.
func (v *Verifier) check(claims *Claims) error {
	if v.Now().Unix() >= claims.ExpiresAt {
		return fmt.Errorf("%w: expired at %d", ErrInvalidToken, claims.ExpiresAt)
	}
	if claims.Issuer != v.Issuer {
		return fmt.Errorf("%w: issuer %q, not %q", ErrInvalidToken, claims.Issuer, v.Issuer)
	}
	for _, aud := range claims.Audience {
		if aud == v.Audience {
			return nil
		}
	}
	return fmt.Errorf("%w: audience %q lacks %q", ErrInvalidToken, claims.Audience, v.Audience)
}

// key is the public key kid names, fetching the JWKS when it is unknown (and the
// cooldown allows).
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if key, ok := v.keys[kid]; ok {
		return key, nil
	}
	if v.keys != nil && v.Now().Sub(v.fetchedAt) < v.RefetchCooldown {
		return nil, fmt.Errorf("%w: unknown key id %q", ErrInvalidToken, kid)
	}
	jwks, err := v.client.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	v.keys, v.fetchedAt = ed25519Keys(jwks), v.Now()
	if key, ok := v.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("%w: unknown key id %q", ErrInvalidToken, kid)
}

// ed25519Keys are the set's well-formed Ed25519 keys by key id; others are passed over.
func ed25519Keys(jwks *JWKS) map[string]ed25519.PublicKey {
	keys := make(map[string]ed25519.PublicKey, len(jwks.Keys))
	for _, jwk := range jwks.Keys {
		x, err := base64.RawURLEncoding.DecodeString(jwk.X)
		if jwk.Kty == "OKP" && jwk.Crv == "Ed25519" && err == nil && len(x) == ed25519.PublicKeySize {
			keys[jwk.Kid] = ed25519.PublicKey(x)
		}
	}
	return keys
}

// decodeSegment decodes one base64url JSON part of a token into into.
func decodeSegment(segment string, into any) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}
