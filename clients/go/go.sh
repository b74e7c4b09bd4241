#!/usr/bin/env bash
# Runs the go tool on the Go client, e.g. `clients/go/go.sh test sessiond`, after making
# its stubs. GOPATH mode, no modules and no proxy: GOPATH is this folder (package
# `sessiond` under src/) then /usr/share/gocode, where Debian's golang-google-grpc-dev and
# golang-google-protobuf-dev put gRPC and protobuf. The build cache stays in .cache/.
# The stubs are generated from proto/ into src/sessiond/sessionpb/ (never committed) by
# Debian's protoc, protoc-gen-go and protoc-gen-go-grpc, every run: it takes a moment and
# they can never be stale. Safe to run from any cwd and from two processes at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

gocode="${GOCODE:-/usr/share/gocode}"
export GO111MODULE=off
export GOPATH="$here:$gocode"
export GOCACHE="$here/.cache"

# gRPC's codec goes through github.com/golang/protobuf: its v1.3 (Debian's
# golang-github-golang-protobuf-1-3-dev, which golang-google-grpc-dev may pull in) panics
# on protoc-gen-go's APIv2 messages; v1.5 wraps APIv2.
if ! grep -qs 'google.golang.org/protobuf' "$gocode/src/github.com/golang/protobuf/proto/proto.go"; then
  echo "go.sh: $gocode has no github.com/golang/protobuf v1.5; on Debian:" \
    "apt-get install golang-github-golang-protobuf-1-5-dev" >&2
  exit 1
fi

gen="$here/src/sessiond/sessionpb"
# The protos name no go_package; this maps each one to the stubs' import path.
mappings=()
protos=()
while IFS= read -r proto; do
  protos+=("$proto")
  mappings+=("M$proto=sessiond/sessionpb")
done < <(cd "$root/proto" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
go_opt="$(IFS=,; echo "${mappings[*]}")"

# Two `cargo test` runs may start this together: one generation at a time.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.generate.lock"
  flock 9
fi
tmp="$(mktemp -d "$here/.gen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# google/protobuf/timestamp.proto comes from Debian's libprotobuf-dev in /usr/include.
protoc -I "$root/proto" -I /usr/include \
  --go_out="$tmp" --go_opt="$go_opt" \
  --go-grpc_out="$tmp" --go-grpc_opt="$go_opt" \
  "${protos[@]}"
rm -rf "$gen"
mv "$tmp/sessiond/sessionpb" "$gen"
exec 9>&-

go "$@"
