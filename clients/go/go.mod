// The Go client of sessiond. The module lives in the clients/go folder of the sessiond
// repository; its package is .../clients/go/sessiond, the generated stubs (committed)
// .../clients/go/sessiond/sessionpb. Releases are tagged clients/go/vX.Y.Z.
module github.com/sessiond/sessiond/clients/go

go 1.19

// The lowest versions it is built and tested against (Debian bookworm's packages, see
// README.md: no module proxy is reachable where it is tested, so there is no go.sum).
require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
