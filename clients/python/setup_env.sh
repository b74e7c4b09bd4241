#!/usr/bin/env bash
# Makes the Python client usable from a fresh checkout:
#   1. a venv at clients/python/.venv (python3 -m venv; $PYTHON picks another python),
#   2. requirements.txt installed into it (again only when requirements.txt changes),
#   3. stubs generated from proto/ into clients/python/sessiond_client/_gen/ (again only
#      when proto/, requirements.txt or this script change).
# The venv's python then imports `sessiond_client` from any directory. Idempotent, safe
# to run from any cwd and from two processes at once. Needs network only for step 2.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
root="$(cd "$here/../.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="$here/.venv"
package="$here/sessiond_client"
gen="$package/_gen"

# Two `cargo test` runs may start this together: one setup at a time.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.setup.lock"
  flock 9
fi

# 1. The venv (made again if missing or broken, e.g. its python was removed).
if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    rm -rf "$venv"
    echo "setup_env.sh: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  fi
fi
vpython="$venv/bin/python"

# sha256 of the given files' contents, in order (portable: no sha256sum on macOS).
hash_files() {
  "$python" -c 'import hashlib, sys
h = hashlib.sha256()
for path in sys.argv[1:]:
    h.update(path.encode() + b"\0")
    with open(path, "rb") as f:
        h.update(f.read())
print(h.hexdigest())' "$@"
}

# 2. The requirements.
req_hash="$(hash_files "$here/requirements.txt")"
req_stamp="$venv/.requirements.sha256"
if [[ "$(cat "$req_stamp" 2>/dev/null || true)" != "$req_hash" ]]; then
  "$vpython" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$req_hash" >"$req_stamp"
fi

# `import sessiond_client` works in the venv wherever it runs.
site="$("$vpython" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
echo "$here" >"$site/sessiond_client.pth"

# 3. The stubs.
protos=()
while IFS= read -r proto; do protos+=("$proto"); done < <(find proto -name '*.proto' | LC_ALL=C sort)
gen_hash="$(hash_files "$here/requirements.txt" "$script" "${protos[@]}")"
gen_stamp="$gen/.proto.sha256"
if [[ "$(cat "$gen_stamp" 2>/dev/null || true)" != "$gen_hash" ]]; then
  tmp="$(mktemp -d "$package/.gen.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # google/protobuf/*.proto (timestamp.proto) ship inside grpc_tools.
  include="$("$vpython" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
  "$vpython" -m grpc_tools.protoc -I proto -I "$include" \
    --python_out="$tmp" --grpc_python_out="$tmp" --pyi_out="$tmp" "${protos[@]}"

  # protoc writes imports of our own protos as top-level packages
  # (`from session.v1 import session_pb2`); make them subpackages of
  # sessiond_client._gen so nothing named `session` lands on sys.path. Every directory
  # becomes a regular package.
  "$vpython" - "$tmp" proto <<'PY'
import os, re, sys
out, proto_root = sys.argv[1], sys.argv[2]
tops = sorted(d for d in os.listdir(proto_root) if os.path.isdir(os.path.join(proto_root, d)))
pattern = re.compile(r"^(from|import) (%s)\." % "|".join(map(re.escape, tops)), re.M)
for folder, _, files in os.walk(out):
    open(os.path.join(folder, "__init__.py"), "a").close()
    for name in files:
        if name.endswith((".py", ".pyi")):
            path = os.path.join(folder, name)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(pattern.sub(r"\1 sessiond_client._gen.\2.", text))
PY

  chmod 755 "$tmp"
  echo "$gen_hash" >"$tmp/.proto.sha256"
  rm -rf "$gen"
  mv "$tmp" "$gen"
  trap - EXIT
fi
