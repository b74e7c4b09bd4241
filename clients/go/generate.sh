#!/usr/bin/env bash
# Generates the Go stubs of proto/ into sessiond/sessionpb/ (committed), with Debian's
# protoc, protoc-gen-go and protoc-gen-go-grpc (bookworm: protoc 3.21, protoc-gen-go
# 1.28, protoc-gen-go-grpc 1.33; the versions are written into the files, so another
# toolchain shows up as a diff).
#   clients/go/generate.sh           rewrite sessiond/sessionpb/
#   clients/go/generate.sh --check   exit 1 if sessiond/sessionpb/ differs from proto/
# The contract is proto/session/ (Envoy's protos, for the server's reflection, are in
# third_party/, not proto/). Its protos name no go_package (they are the server's contract, not
# Go's); protoc's M options map each one to the stubs' import path in this module.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
module="$(sed -n 's/^module //p' "$here/go.mod")"
package="$module/sessiond/sessionpb"
gen="$here/sessiond/sessionpb"

mappings=()
protos=()
while IFS= read -r proto; do
  protos+=("$proto")
  mappings+=("M$proto=$package")
done < <(cd "$root/proto" && find session -name '*.proto' | LC_ALL=C sort)
go_opt="$(IFS=,; echo "${mappings[*]}")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# google/protobuf/timestamp.proto comes from Debian's libprotobuf-dev in /usr/include.
protoc -I "$root/proto" -I /usr/include \
  --go_out="$tmp" --go_opt="$go_opt" \
  --go-grpc_out="$tmp" --go-grpc_opt="$go_opt" \
  "${protos[@]}"

if [[ "${1:-}" == --check ]]; then
  if ! diff -ru "$gen" "$tmp/$package"; then
    echo "generate.sh: clients/go/sessiond/sessionpb/ does not match proto/;" \
      "run clients/go/generate.sh and commit the result" >&2
    exit 1
  fi
  echo "clients/go/sessiond/sessionpb/ matches proto/"
else
  rm -rf "$gen"
  mv "$tmp/$package" "$gen"
fi
