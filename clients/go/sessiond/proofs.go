// The DPoP proof (RFC 9449) the Verifier demands with an access token whose claims carry
// cnf.jkt (docs/binding.md): the checks, in the server's order, and the memory of the
// proof ids already used.

package sessiond

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// ProofError is a bound token refused for its proof; it wraps ErrInvalidToken. Reason
// is named as sessiond names it: PROOF_MISSING, PROOF_MALFORMED, PROOF_TYPE_INVALID,
// ALGORITHM_NOT_ALLOWED, KEY_INVALID, SIGNATURE_INVALID, KEY_MISMATCH, REPLAYED,
// TOKEN_HASH_MISMATCH, ISSUED_AT_OUT_OF_WINDOW or REQUEST_MISMATCH.
type ProofError struct {
	Reason string
	Detail string
}

func (e *ProofError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidToken, e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrInvalidToken) hold.
func (e *ProofError) Unwrap() error { return ErrInvalidToken }

// ProofRequest is what a request that came with a bound access token brings to prove
// it: its DPoP proof (the DPoP header), and its method and absolute URL.
type ProofRequest struct {
	Proof  string
	Method string
	URL    string
}

// The largest proof accepted (as the server: 4 KiB) and the longest jti.
const (
	maxProofBytes = 4096
	maxJTIBytes   = 128
)

// proofHeader and proofClaims are what a proof says.
type proofHeader struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	JWK *struct {
		DeviceJWK
		D *string `json:"d"` // a private key: refused
	} `json:"jwk"`
}

type proofClaims struct {
	JTI   string   `json:"jti"`
	IAT   *float64 `json:"iat"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	ATH   string   `json:"ath"`
	Nonce string   `json:"nonce"`
}

// proofMemory remembers used proof ids (per key) until their iat can no longer pass.
type proofMemory struct {
	mu       sync.Mutex
	seen     map[string]time.Time
	prunedAt time.Time
}

// checkProof is nil if request's proof proves possession of the key jkt for that
// request, made with token at now; else the *ProofError naming the first failure.
func (v *Verifier) checkProof(request ProofRequest, jkt, token string, now time.Time) error {
	refuse := func(reason, format string, args ...any) error {
		return &ProofError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if request.Proof == "" {
		return refuse("PROOF_MISSING", "the token is bound to a key (cnf) and came without a proof")
	}
	if request.Method == "" || request.URL == "" {
		return refuse("REQUEST_MISMATCH", "a bound token's proof needs the request's method and URL")
	}
	parts := strings.Split(request.Proof, ".")
	if len(request.Proof) > maxProofBytes || len(parts) != 3 {
		return refuse("PROOF_MALFORMED", "not a compact JWS of at most 4 KiB")
	}
	var header proofHeader
	if decodeSegment(parts[0], &header) != nil {
		return refuse("PROOF_MALFORMED", "the header is not a JSON object")
	}
	if header.Typ != "dpop+jwt" {
		return refuse("PROOF_TYPE_INVALID", "typ %q is not dpop+jwt", header.Typ)
	}
	if header.Alg != "EdDSA" && header.Alg != "ES256" {
		return refuse("ALGORITHM_NOT_ALLOWED", "alg %q is not EdDSA or ES256", header.Alg)
	}
	if header.JWK == nil || header.JWK.D != nil {
		return refuse("KEY_INVALID", "jwk is not a public key")
	}
	if (header.Alg == "EdDSA") != (header.JWK.Kty == "OKP") {
		return refuse("ALGORITHM_NOT_ALLOWED", "alg %s does not fit a %s key", header.Alg, header.JWK.Kty)
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return refuse("PROOF_MALFORMED", "the signature is not base64url")
	}
	verified, err := verifyWithJWK(header.JWK.DeviceJWK, []byte(parts[0]+"."+parts[1]), signature)
	if err != nil {
		return refuse("KEY_INVALID", "%v", err)
	}
	if !verified {
		return refuse("SIGNATURE_INVALID", "the signature does not verify with the proof's jwk")
	}
	var claims proofClaims
	if decodeSegment(parts[1], &claims) != nil {
		return refuse("PROOF_MALFORMED", "the claims are not a JSON object")
	}
	if Thumbprint(header.JWK.DeviceJWK) != jkt {
		return refuse("KEY_MISMATCH", "the proof's key is not the one the token is bound to")
	}
	return v.checkClaims(claims, request, jkt, token, now)
}

// checkClaims checks a signed proof's claims against the request, then remembers its id.
func (v *Verifier) checkClaims(claims proofClaims, request ProofRequest, jkt, token string, now time.Time) error {
	refuse := func(reason, format string, args ...any) error {
		return &ProofError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if claims.JTI == "" || len(claims.JTI) > maxJTIBytes || claims.IAT == nil ||
		claims.HTM == "" || claims.HTU == "" || claims.ATH == "" {
		return refuse("PROOF_MALFORMED", "jti, iat, htm, htu or ath is missing")
	}
	skew := v.MaxProofSkew
	if skew <= 0 {
		skew = DefaultMaxProofSkew
	}
	issuedAt := time.Unix(int64(*claims.IAT), 0)
	if issuedAt.Sub(now) > skew || now.Sub(issuedAt) > skew {
		return refuse("ISSUED_AT_OUT_OF_WINDOW", "iat is more than %v away", skew)
	}
	if claims.ATH != TokenHash(token) {
		return refuse("TOKEN_HASH_MISMATCH", "ath is the hash of another token")
	}
	if claims.HTM != request.Method || !SameTarget(claims.HTU, request.URL) {
		return refuse("REQUEST_MISMATCH", "the proof is for %s %s, not %s %s",
			claims.HTM, claims.HTU, request.Method, request.URL)
	}
	memory := &v.proofs
	memory.mu.Lock()
	defer memory.mu.Unlock()
	if memory.seen == nil {
		memory.seen = map[string]time.Time{}
	}
	id := jkt + " " + claims.JTI
	if until, seen := memory.seen[id]; seen && until.After(now) {
		return refuse("REPLAYED", "this proof was already used")
	}
	if now.Sub(memory.prunedAt) > skew { // forget expired ids now and then
		for seen, until := range memory.seen {
			if !until.After(now) {
				delete(memory.seen, seen)
			}
		}
		memory.prunedAt = now
	}
	memory.seen[id] = now.Add(2 * skew)
	return nil
}

// verifyWithJWK verifies signature over input with a public Ed25519 or P-256 JWK; an
// error says the JWK is no such key.
func verifyWithJWK(jwk DeviceJWK, input, signature []byte) (bool, error) {
	x, err := base64.RawURLEncoding.DecodeString(jwk.X)
	if err != nil {
		return false, fmt.Errorf("x is not base64url")
	}
	switch {
	case jwk.Kty == "OKP" && jwk.Crv == "Ed25519":
		if len(x) != ed25519.PublicKeySize {
			return false, fmt.Errorf("x is not an Ed25519 key")
		}
		return ed25519.Verify(ed25519.PublicKey(x), input, signature), nil
	case jwk.Kty == "EC" && jwk.Crv == "P-256":
		y, err := base64.RawURLEncoding.DecodeString(jwk.Y)
		if err != nil || len(x) != 32 || len(y) != 32 {
			return false, fmt.Errorf("x and y are not a P-256 point")
		}
		public := ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		if !public.Curve.IsOnCurve(public.X, public.Y) {
			return false, fmt.Errorf("the point is not on P-256")
		}
		if len(signature) != 64 {
			return false, nil
		}
		digest := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(signature[:32]), new(big.Int).SetBytes(signature[32:])
		return ecdsa.Verify(&public, digest[:], r, s), nil
	}
	return false, fmt.Errorf("kty %q crv %q is not Ed25519 or P-256", jwk.Kty, jwk.Crv)
}

// SameTarget is whether a proof's htu names the request at url (RFC 9449 §4.3): query
// and fragment ignored, scheme and host case-insensitive, default ports dropped; a url
// that is only a path matches any absolute htu with that path.
func SameTarget(htu, url string) bool {
	if strings.HasPrefix(url, "/") {
		_, rest, absolute := strings.Cut(normalizedURL(htu), "://")
		at := strings.IndexByte(rest, '/')
		return absolute && at >= 0 && rest[at:] == normalizedURL(url)
	}
	return normalizedURL(htu) == normalizedURL(url)
}

func normalizedURL(uri string) string {
	if at := strings.IndexAny(uri, "?#"); at >= 0 {
		uri = uri[:at]
	}
	scheme, rest, absolute := strings.Cut(uri, "://")
	if !absolute {
		return uri
	}
	authority, path := rest, "/"
	if at := strings.IndexByte(rest, '/'); at >= 0 {
		authority, path = rest[:at], rest[at:]
	}
	scheme, authority = strings.ToLower(scheme), strings.ToLower(authority)
	defaultPort := map[string]string{"https": ":443", "http": ":80"}[scheme]
	if defaultPort != "" {
		authority = strings.TrimSuffix(authority, defaultPort)
	}
	return scheme + "://" + authority + path
}
