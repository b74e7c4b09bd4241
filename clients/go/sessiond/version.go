// The client's version and the sessiond versions it works with.

package sessiond

// Version is this client's release (its module tag is clients/go/v + Version).
const Version = "0.1.0"

// ServerVersions are the sessiond server versions this client works with (a semver
// range): the calls, fields and errors of session.v1 as sessiond 0.1 serves them.
const ServerVersions = ">=0.1.0 <0.2.0"
