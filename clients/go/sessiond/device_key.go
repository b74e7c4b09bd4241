// DeviceKey: the key a device-bound session (docs/binding.md) is bound to, and the DPoP
// proofs (RFC 9449) it signs, with the standard library only (crypto/ed25519,
// crypto/ecdsa, encoding/json, encoding/base64).

package sessiond

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// DeviceKey is a device's private key, Ed25519 or P-256, that signs DPoP proofs. Keep it
// on the device (PEM to store it, ParseDeviceKeyPEM to load it back); only its public
// JWK goes to the server, at Start.
type DeviceKey struct {
	signer crypto.Signer
	jwk    DeviceJWK
}

// DeviceJWK is a device's public key as a JWK: Ed25519 (kty OKP) or P-256 (kty EC).
type DeviceJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
}

// GenerateDeviceKey makes a new Ed25519 device key from the OS random generator.
func GenerateDeviceKey() (*DeviceKey, error) {
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewDeviceKey(private)
}

// GenerateDeviceKeyP256 makes a new P-256 device key (proofs signed ES256).
func GenerateDeviceKeyP256() (*DeviceKey, error) {
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewDeviceKey(private)
}

// NewDeviceKey wraps an ed25519.PrivateKey or a P-256 *ecdsa.PrivateKey.
func NewDeviceKey(private crypto.Signer) (*DeviceKey, error) {
	switch key := private.(type) {
	case ed25519.PrivateKey:
		public, _ := key.Public().(ed25519.PublicKey) // an ed25519 key's public key is one
		return &DeviceKey{signer: key, jwk: DeviceJWK{Kty: "OKP", Crv: "Ed25519", X: b64(public)}}, nil
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return nil, errors.New("sessiond: a device key is Ed25519 or P-256")
		}
		jwk := DeviceJWK{Kty: "EC", Crv: "P-256", X: b64(key.X.FillBytes(make([]byte, 32))),
			Y: b64(key.Y.FillBytes(make([]byte, 32)))}
		return &DeviceKey{signer: key, jwk: jwk}, nil
	}
	return nil, errors.New("sessiond: a device key is Ed25519 or P-256")
}

// ParseDeviceKeyPEM loads a private key in PEM: PKCS#8 (as PEM writes it, and
// sessionctl --device-key and openssl do), or SEC1 ("EC PRIVATE KEY") for P-256.
func ParseDeviceKeyPEM(data []byte) (*DeviceKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("sessiond: no PEM block in the device key")
	}
	if block.Type == "EC PRIVATE KEY" {
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return NewDeviceKey(key)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, isSigner := key.(crypto.Signer)
	if !isSigner {
		return nil, errors.New("sessiond: a device key is Ed25519 or P-256")
	}
	return NewDeviceKey(signer)
}

// PEM is the private key in PKCS#8 PEM ("PRIVATE KEY"), unencrypted: store it 0600.
func (k *DeviceKey) PEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Alg is the JWS algorithm of the key's proofs: "EdDSA" or "ES256".
func (k *DeviceKey) Alg() string {
	if k.jwk.Kty == "EC" {
		return "ES256"
	}
	return "EdDSA"
}

// PublicJWK is the public key as a JWK.
func (k *DeviceKey) PublicJWK() DeviceJWK { return k.jwk }

// PublicJWKJSON is the public JWK in JSON text: StartRequest.device_key.
func (k *DeviceKey) PublicJWKJSON() string {
	text, _ := json.Marshal(k.jwk) // a struct of strings always marshals
	return string(text)
}

// Thumbprint is the key's RFC 7638 SHA-256 thumbprint (base64url): the session's
// binding, Session.device_key_thumbprint and an access token's cnf.jkt.
func (k *DeviceKey) Thumbprint() string { return Thumbprint(k.jwk) }

// Thumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of a public JWK: its
// required members in lexicographic order, no whitespace.
func Thumbprint(jwk DeviceJWK) string {
	var canonical []byte
	if jwk.Kty == "EC" {
		canonical, _ = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{jwk.Crv, jwk.Kty, jwk.X, jwk.Y})
	} else {
		canonical, _ = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{jwk.Crv, jwk.Kty, jwk.X})
	}
	sum := sha256.Sum256(canonical)
	return b64(sum[:])
}

// ProofOptions are a proof's optional claims.
type ProofOptions struct {
	Nonce    string    // the server's nonce, when it asked for one
	IssuedAt time.Time // zero: now
}

// Proof is a DPoP proof (compact JWS) for the request method url made with token (its
// ath; empty: none). The client makes these for its own calls; a device that calls a
// web backend (which forwards it to Whoami, see ForwardedProof) makes one for that
// request: key.Proof("GET", "https://api.example/orders", sessionToken, ProofOptions{}).
func (k *DeviceKey) Proof(method, url, token string, options ProofOptions) (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	issuedAt := options.IssuedAt
	if issuedAt.IsZero() {
		issuedAt = time.Now()
	}
	claims := map[string]any{"jti": b64(id), "iat": issuedAt.Unix(), "htm": method, "htu": url}
	if token != "" {
		claims["ath"] = TokenHash(token)
	}
	if options.Nonce != "" {
		claims["nonce"] = options.Nonce
	}
	header := map[string]any{"typ": "dpop+jwt", "alg": k.Alg(), "jwk": k.jwk}
	return k.sign(header, claims)
}

// sign is the compact JWS of header and claims, signed by the key.
func (k *DeviceKey) sign(header, claims map[string]any) (string, error) {
	headerJSON, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(headerJSON) + "." + b64(claimsJSON)
	var signature []byte
	switch key := k.signer.(type) {
	case ed25519.PrivateKey:
		signature = ed25519.Sign(key, []byte(input))
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return "", err
		}
		// JWS ES256 is r and s, 32 bytes each (RFC 7518 §3.4), not ASN.1.
		signature = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	default:
		return "", fmt.Errorf("sessiond: cannot sign with a %T", key)
	}
	return input + "." + b64(signature), nil
}

// TokenHash is a proof's ath: base64url(SHA-256(the token as presented)).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64(sum[:])
}

// b64 is base64url without padding (RFC 7515 §2).
func b64(data []byte) string { return base64.RawURLEncoding.EncodeToString(data) }
