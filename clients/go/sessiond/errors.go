// Error: the one error type the client's calls return, carrying the call's gRPC status.

package sessiond

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call: the gRPC status code and the server's message, which names the
// offending field for InvalidArgument. The README's error table lists which call fails
// with which code. status.Code(err) and status.FromError(err) read it too.
//
// A call refused for a device-bound session's binding (docs/binding.md) also carries
// Reason ("PROOF_MISSING", "NONCE_REQUIRED", ...) and Details, sessiond's
// google.rpc.ErrorInfo; ReasonOf reads it.
type Error struct {
	Code    codes.Code
	Message string
	Reason  string            // ErrorInfo reason (domain "sessiond"); empty: none
	Details map[string]string // ErrorInfo metadata (e.g. "nonce")
}

func (e *Error) Error() string {
	return fmt.Sprintf("sessiond: %s: %s", e.Status(), e.Message)
}

// Status is the code's gRPC name: codes.InvalidArgument is "INVALID_ARGUMENT".
func (e *Error) Status() string {
	var name strings.Builder
	previous := rune(0)
	for _, r := range e.Code.String() {
		if unicode.IsLower(previous) && unicode.IsUpper(r) {
			name.WriteByte('_')
		}
		name.WriteRune(unicode.ToUpper(r))
		previous = r
	}
	return name.String()
}

// GRPCStatus makes the error a gRPC status again (status.FromError, status.Code).
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// CodeOf is the gRPC code of err: its Error's, OK for nil, Unknown for any other error.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var callErr *Error
	if errors.As(err, &callErr) {
		return callErr.Code
	}
	return codes.Unknown
}

// callError is err (from a generated stub) as an *Error; nil stays nil.
func callError(err error) error {
	if err == nil {
		return nil
	}
	got, _ := status.FromError(err) // not a status: Unknown with err's text
	callErr := &Error{Code: got.Code(), Message: got.Message()}
	for _, detail := range got.Proto().GetDetails() {
		if strings.HasSuffix(detail.GetTypeUrl(), "/google.rpc.ErrorInfo") {
			reason, domain, metadata := decodeErrorInfo(detail.GetValue())
			if domain == errorDomain {
				callErr.Reason, callErr.Details = reason, metadata
			}
		}
	}
	return callErr
}

// ReasonOf is the binding reason of a refused call's error ("PROOF_MISSING", ...), or
// "" when it has none.
func ReasonOf(err error) string {
	var callErr *Error
	if errors.As(err, &callErr) {
		return callErr.Reason
	}
	return ""
}
