#!/usr/bin/env bash
# Proves the module offline, as far as this machine allows (no module proxy here, so
# GOPATH mode against Debian's gRPC and protobuf sources in /usr/share/gocode):
#   1. the committed stubs match proto/ (generate.sh --check);
#   2. in a temp GOPATH outside the checkout, a copy of the module sits at its module
#      path; `go vet` and `go test` run on it against $SESSIOND_ADDR;
#   3. examples/quickstart, copied to a package of its own there (example.com/quickstart),
#      imports the client by its module path, builds and runs against $SESSIOND_ADDR;
#   4. go.mod parses in module mode (`go list -m`, proxy off).
# Extra arguments go to `go test` (e.g. -run TestLifecycle). The build cache is Go's
# default one (~/.cache/go-build), so re-runs are quick.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${SESSIOND_ADDR:?set SESSIOND_ADDR to the server under test (host:port)}"
gocode="${GOCODE:-/usr/share/gocode}"

# gRPC's codec goes through github.com/golang/protobuf: its v1.3 (Debian's
# golang-github-golang-protobuf-1-3-dev, which golang-google-grpc-dev may pull in) panics
# on protoc-gen-go's APIv2 messages; v1.5 wraps APIv2.
if ! grep -qs 'google.golang.org/protobuf' "$gocode/src/github.com/golang/protobuf/proto/proto.go"; then
  echo "test-gopath.sh: $gocode has no github.com/golang/protobuf v1.5; on Debian:" \
    "apt-get install golang-github-golang-protobuf-1-5-dev" >&2
  exit 1
fi

"$here/generate.sh" --check

module="$(sed -n 's/^module //p' "$here/go.mod")"
gopath="$(mktemp -d "${TMPDIR:-/tmp}/sessiond-go.XXXXXX")"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/$module" "$gopath/src/example.com/quickstart"
cp -r "$here/go.mod" "$here/sessiond" "$gopath/src/$module/"
cp "$here/examples/quickstart/main.go" "$gopath/src/example.com/quickstart/"

export GO111MODULE=off GOPATH="$gopath:$gocode" GOFLAGS=
cd "$gopath"
go vet "$module/sessiond" example.com/quickstart
go test -count=1 -v -timeout=120s "$@" "$module/sessiond"
go build -o "$gopath/quickstart" example.com/quickstart
"$gopath/quickstart"

cd "$here"
GO111MODULE=on GOPROXY=off GOFLAGS=-mod=mod go list -m
