// Binding on the wire: the proof a bound call carries in its "dpop" metadata, the
// nonce round trip, and the google.rpc.ErrorInfo a refused call reports its reason in.

package sessiond

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
)

// The gRPC metadata of a proof, the request it names when forwarded, and the server
// nonce of a NONCE_REQUIRED refusal; errorDomain is sessiond's ErrorInfo domain.
const (
	proofKey    = "dpop"
	methodKey   = "dpop-method"
	urlKey      = "dpop-url"
	nonceKey    = "dpop-nonce"
	errorDomain = "sessiond"
	servicePath = "/session.v1.SessionService/"
)

// ForwardedProof is a proof a service received from its own client (its DPoP header),
// passed on to Whoami with the method and absolute URL of the request it came with.
type ForwardedProof struct {
	Proof  string
	Method string
	URL    string
}

// nonceCache is the last nonce the server handed out: proofs carry it, which saves the
// round trip while it is fresh.
type nonceCache struct {
	mu    sync.Mutex
	nonce string
}

func (n *nonceCache) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nonce
}

func (n *nonceCache) set(nonce string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nonce = nonce
}

// boundCall makes one unary call of the stub's method rpc with a proof by key for token
// (no proof when key is nil), and retries once with a fresh proof when the server
// answers NONCE_REQUIRED with a nonce.
func boundCall[Request, Response any](ctx context.Context, c *Client, method unary[Request, Response],
	rpc string, request Request, token string, key *DeviceKey) (Response, error) {
	if key == nil {
		return call(ctx, c, method, request)
	}
	response, nonce, err := signedCall(ctx, c, method, rpc, request, token, key)
	if nonce == "" {
		return response, err
	}
	c.nonces.set(nonce)
	response, _, err = signedCall(ctx, c, method, rpc, request, token, key)
	return response, err
}

// signedCall is one call with a fresh proof; nonce is the server's when it refused the
// call with NONCE_REQUIRED.
func signedCall[Request, Response any](ctx context.Context, c *Client, method unary[Request, Response],
	rpc string, request Request, token string, key *DeviceKey) (response Response, nonce string, err error) {
	proof, err := key.Proof("POST", c.BaseURL+servicePath+rpc, token, ProofOptions{Nonce: c.nonces.get()})
	if err != nil {
		return response, "", err
	}
	var trailer metadata.MD
	withTrailer := func(ctx context.Context, request Request, options ...grpc.CallOption) (Response, error) {
		return method(ctx, request, append(options, grpc.Trailer(&trailer))...)
	}
	response, err = call(metadata.AppendToOutgoingContext(ctx, proofKey, proof), c, withTrailer, request)
	if ReasonOf(err) != "NONCE_REQUIRED" {
		return response, "", err
	}
	if values := trailer.Get(nonceKey); len(values) > 0 && values[0] != "" {
		return response, values[0], err
	}
	var callErr *Error
	if errors.As(err, &callErr) { // it is: ReasonOf found its reason
		nonce = callErr.Details["nonce"]
	}
	return response, nonce, err
}

// decodeErrorInfo reads google.rpc.ErrorInfo (reason = 1, domain = 2, metadata = 3, a
// map<string, string>) from its wire form with protowire, so the client needs no
// genproto errdetails package; malformed input yields what was read before it.
func decodeErrorInfo(data []byte) (reason, domain string, entries map[string]string) {
	entries = map[string]string{}
	for len(data) > 0 {
		number, kind, n := protowire.ConsumeTag(data)
		if n < 0 {
			return
		}
		data = data[n:]
		if kind != protowire.BytesType {
			n = protowire.ConsumeFieldValue(number, kind, data)
			if n < 0 {
				return
			}
			data = data[n:]
			continue
		}
		value, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return
		}
		data = data[n:]
		switch number {
		case 1:
			reason = string(value)
		case 2:
			domain = string(value)
		case 3:
			key, entry := decodeMapEntry(value)
			entries[key] = entry
		}
	}
	return
}

// decodeMapEntry reads one map<string, string> entry (key = 1, value = 2).
func decodeMapEntry(data []byte) (key, value string) {
	for len(data) > 0 {
		number, kind, n := protowire.ConsumeTag(data)
		if n < 0 || kind != protowire.BytesType {
			return
		}
		field, m := protowire.ConsumeBytes(data[n:])
		if m < 0 {
			return
		}
		data = data[n+m:]
		if number == 1 {
			key = string(field)
		} else if number == 2 {
			value = string(field)
		}
	}
	return
}
