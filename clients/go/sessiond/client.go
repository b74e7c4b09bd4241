// Package sessiond is a client of sessiond's session.v1.SessionService: typed calls over
// the generated stubs (package sessionpb, generated from proto/ by generate.sh and
// committed), errors as *Error with the gRPC code, resumable watches, and local
// access-token verification.
package sessiond

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sessiond/sessiond/clients/go/sessiond/sessionpb"
)

// DefaultTimeout is the deadline of every unary call unless Client.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Client calls a sessiond server over one gRPC connection. Close it when done.
type Client struct {
	conn *grpc.ClientConn
	// Stub is the generated client, for the calls this wrapper does not cover.
	Stub sessionpb.SessionServiceClient
	// Timeout bounds each unary call (0: only the caller's context does). Watches have none.
	Timeout time.Duration
	// BaseURL is what a device key's proofs name as their htu base ("http://" + the
	// target unless changed); the server compares only the path.
	BaseURL string
	nonces  nonceCache
}

// Dial connects to target ("host:port"). Without options the connection is plaintext,
// as the server speaks without [tls]; pass grpc.WithTransportCredentials for TLS.
func Dial(target string, options ...grpc.DialOption) (*Client, error) {
	if len(options) == 0 {
		options = []grpc.DialOption{grpc.WithInsecure()}
	}
	conn, err := grpc.Dial(target, options...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:    conn,
		Stub:    sessionpb.NewSessionServiceClient(conn),
		Timeout: DefaultTimeout,
		BaseURL: "http://" + target,
	}, nil
}

// Close closes the connection; calls and watches in flight fail.
func (c *Client) Close() error {
	return c.conn.Close()
}

// StartOptions are Start's optional fields.
type StartOptions struct {
	Group          string            // a configured policy group; empty: "default"
	TTL            time.Duration     // lifespan (whole seconds); 0: the group's
	Metadata       map[string]string // login context (device, ip, user agent...)
	Attributes     map[string]string // enrichment data; the access token's attrs claim
	Scope          string            // free-form scope that Refresh may require
	IssueIDToken   bool              // also return an id_token
	ExternalUserID string            // the user's id in the caller's system
	// DeviceKey binds the session to this key (docs/binding.md): its Refresh needs it.
	DeviceKey *DeviceKey
}

// Start opens an ACTIVE session for userID and returns it with its two tokens.
func (c *Client) Start(ctx context.Context, userID string, options StartOptions) (*sessionpb.StartResponse, error) {
	request := &sessionpb.StartRequest{
		UserId:         userID,
		Group:          options.Group,
		TtlSeconds:     optionalSeconds(options.TTL),
		Metadata:       options.Metadata,
		Attributes:     options.Attributes,
		Scope:          options.Scope,
		IssueIdToken:   options.IssueIDToken,
		ExternalUserId: options.ExternalUserID,
	}
	if options.DeviceKey != nil {
		request.DeviceKey = options.DeviceKey.PublicJWKJSON()
	}
	return call(ctx, c, c.Stub.Start, request)
}

// Whoami validates a session token and returns its (ACTIVE) session.
func (c *Client) Whoami(ctx context.Context, sessionToken string) (*sessionpb.WhoamiResponse, error) {
	return call(ctx, c, c.Stub.Whoami, &sessionpb.WhoamiRequest{SessionToken: sessionToken})
}

// WhoamiOptions prove a bound session on Whoami, which a group with proof_on_use =
// "every_call" asks for: one of them.
type WhoamiOptions struct {
	DeviceKey *DeviceKey      // signs a proof for this call (the device calls sessiond)
	Forwarded *ForwardedProof // the proof a service's own client sent it, passed on
}

// WhoamiWith is Whoami with a proof of the session's device key.
func (c *Client) WhoamiWith(ctx context.Context, sessionToken string, options WhoamiOptions) (*sessionpb.WhoamiResponse, error) {
	request := &sessionpb.WhoamiRequest{SessionToken: sessionToken}
	if forwarded := options.Forwarded; forwarded != nil {
		ctx = metadata.AppendToOutgoingContext(ctx,
			proofKey, forwarded.Proof, methodKey, forwarded.Method, urlKey, forwarded.URL)
	}
	return boundCall(ctx, c, c.Stub.Whoami, "Whoami", request, sessionToken, options.DeviceKey)
}

// RefreshOptions are Refresh's optional fields.
type RefreshOptions struct {
	Scope        string // the scope the session must have (a mismatch: Unauthenticated)
	IssueIDToken bool   // also return an id_token
	// DeviceKey signs the proof a bound session's Refresh needs (the key it was started
	// with); a server nonce asked for is fetched and the call retried once with it.
	DeviceKey *DeviceKey
}

// Refresh trades a refresh token for a new session token and refresh token.
//
// Safe to retry with the same token when an answer is lost: within the group's
// refresh_grace (default 30 s), and while the successor is unused, the same token gets
// the very same successor pair again. Once the successor was used (Whoami or Refresh),
// the old token coming back is theft: the session is revoked and the call fails
// Unauthenticated.
func (c *Client) Refresh(ctx context.Context, refreshToken string, options RefreshOptions) (*sessionpb.RefreshResponse, error) {
	request := &sessionpb.RefreshRequest{RefreshToken: refreshToken, Scope: options.Scope, IssueIdToken: options.IssueIDToken}
	return boundCall(ctx, c, c.Stub.Refresh, "Refresh", request, refreshToken, options.DeviceKey)
}

// Extend is a keep-alive: the session's expiry becomes now plus keepAlive (0: the
// group's lifespan). Extended is false outside the group's extend window.
func (c *Client) Extend(ctx context.Context, sessionID string, keepAlive time.Duration) (*sessionpb.ExtendResponse, error) {
	request := &sessionpb.ExtendRequest{SessionId: sessionID, KeepAliveSeconds: optionalSeconds(keepAlive)}
	return call(ctx, c, c.Stub.Extend, request)
}

// LogoutOptions name the sessions Logout ends: exactly one of SessionToken, SessionID,
// UserID and ExternalUserID.
type LogoutOptions struct {
	SessionToken    string
	SessionID       string
	AllForUser      bool   // with a session: every active session of its user
	ExceptSessionID string // with AllForUser: keep this one ("log out my other devices")
	UserID          string // every active session of this user (LogoutAll permission)
	ExternalUserID  string // as UserID, by the external id given to Start
}

// Logout ends the named sessions; RevokedCount counts those this call ended.
func (c *Client) Logout(ctx context.Context, target LogoutOptions) (*sessionpb.LogoutResponse, error) {
	request := &sessionpb.LogoutRequest{
		SessionToken:    target.SessionToken,
		SessionId:       target.SessionID,
		AllForUser:      target.AllForUser,
		ExceptSessionId: target.ExceptSessionID,
		UserId:          target.UserID,
		ExternalUserId:  target.ExternalUserID,
	}
	return call(ctx, c, c.Stub.Logout, request)
}

// RefreshAllForUser extends every active session of userID by Extend's rules
// (NotFound: none).
func (c *Client) RefreshAllForUser(ctx context.Context, userID string, keepAlive time.Duration) (*sessionpb.RefreshAllForUserResponse, error) {
	request := &sessionpb.RefreshAllForUserRequest{UserId: userID, KeepAliveSeconds: optionalSeconds(keepAlive)}
	return call(ctx, c, c.Stub.RefreshAllForUser, request)
}

// JWKS returns the keys that verify access and ID tokens (GetJwks).
func (c *Client) JWKS(ctx context.Context) (*JWKS, error) {
	response, err := call(ctx, c, c.Stub.GetJwks, &sessionpb.GetJwksRequest{})
	if err != nil {
		return nil, err
	}
	var keys JWKS
	if err := json.Unmarshal([]byte(response.JwksJson), &keys); err != nil {
		return nil, err
	}
	return &keys, nil
}

// RotateSigningKey makes the server sign new tokens with a new key; returns its key id.
func (c *Client) RotateSigningKey(ctx context.Context) (string, error) {
	response, err := call(ctx, c, c.Stub.RotateSigningKey, &sessionpb.RotateSigningKeyRequest{})
	if err != nil {
		return "", err
	}
	return response.Kid, nil
}

// unary is a unary method of the generated stub.
type unary[Request, Response any] func(context.Context, Request, ...grpc.CallOption) (Response, error)

// call makes one unary call of the stub's method, bounded by the client's Timeout, and
// returns its error as an *Error.
func call[Request, Response any](ctx context.Context, c *Client, method unary[Request, Response], request Request) (Response, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	response, err := method(ctx, request)
	return response, callError(err)
}

// optionalSeconds is d in whole seconds, or unset for 0.
func optionalSeconds(d time.Duration) *int64 {
	if d == 0 {
		return nil
	}
	seconds := int64(d / time.Second)
	return &seconds
}
