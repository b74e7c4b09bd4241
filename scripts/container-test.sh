#!/usr/bin/env bash
# Builds the sessiond image the way docs/deploy.md's prebuilt path does (release
# binaries, the Dockerfile's `prebuilt` target) and proves what that page promises:
# read-only root, non-root uid, data on a volume, API key callers, health, a clean
# SIGTERM stop, data kept across containers, and the refusal to serve 0.0.0.0 without
# callers. Never pulls: the Debian base is made here from Debian's packages and kept
# between runs as localhost/debian:bookworm-slim. Prints "N passed, N failed"; removes
# every container, volume and image it made (not the base).
# Needs podman (runc, cgroupfs), mmdebstrap, python3; run as root (.ci/run sets it up).
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
base_image=localhost/debian:bookworm-slim
run="sessiond-ct-$$"
image="localhost/sessiond:$version-$run"
volume="$run-data"
work="$(mktemp -d)"
containers=()

cleanup() {
  for container in "${containers[@]}"; do
    podman rm --force --ignore --volumes --time 0 "$container" >/dev/null 2>&1 || true
  done
  podman volume rm --force "$volume" >/dev/null 2>&1 || true
  podman rmi --force "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
# check NAME COMMAND...: one pass or fail, by the command's exit status.
check() {
  local name="$1"
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# The binaries, with line tables stripped (symbols kept): release, as users ship them;
# SESSIOND_CONTAINER_PROFILE=debug takes the ones `cargo test` built (what .ci/run does:
# a cold release build would add ~9 minutes to CI, and what this proves, the image's
# user, volume, ports, signals and health check, is the same for both).
profile="${SESSIOND_CONTAINER_PROFILE:-release}"
case "$profile" in
  release) cargo build --release --locked --bin sessiond --bin sessionctl ;;
  # Up to date after `cargo test` (then this only checks), with the test run's features.
  debug) cargo test --locked --no-run --quiet ;;
  *) echo "SESSIOND_CONTAINER_PROFILE must be release or debug" >&2; exit 2 ;;
esac
mkdir -p target/container
for binary in sessiond sessionctl; do
  objcopy --strip-debug "target/$profile/$binary" "target/container/$binary"
done
ctl=target/container/sessionctl

# The base: Debian bookworm's minbase with the slim image's exclusions (no docs, man
# pages or locales; merged /usr without the usrmerge package), about the size of
# debian:bookworm-slim. Made once, then reused.
if ! podman image exists "$base_image"; then
  mmdebstrap --quiet --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/base.tar" http://deb.debian.org/debian >"$work/mmdebstrap.log" 2>&1 ||
    { cat "$work/mmdebstrap.log"; exit 1; }
  podman import --quiet "$work/base.tar" "$base_image" >/dev/null
  rm -f "$work/base.tar"
fi

# summary: the one result line; the exit status says whether all passed.
summary() {
  echo "$passed passed, $failed failed (${SECONDS}s)"
  [[ "$failed" -eq 0 ]]
}

if ! podman build --quiet --pull=never --format docker --target prebuilt \
  --build-arg BINARIES=target/container --tag "$image" . >/dev/null; then
  fail "the image builds (Dockerfile, target prebuilt)"
  summary
  exit 1
fi
pass "the image builds (Dockerfile, target prebuilt)"
megabytes() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1 / 1e6}'; }
echo "image $image: $(megabytes "$image") MB uncompressed; base $(megabytes "$base_image") MB"

# One caller with an API key; the server gets only its hash, from a mounted file.
api_key="$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
key_hash="$(printf %s "$api_key" | sha256sum | cut -d ' ' -f 1)"
cat >"$work/sessiond.toml" <<EOF
[[callers]]
name = "container-test"
api_key_sha256 = "$key_hash"
calls = ["*"]
EOF
chmod 0644 "$work/sessiond.toml"
podman volume create "$volume" >/dev/null

# start_server NAME: runs the image as documented, ports on loopback only. Podman's
# complaints about missing systemd (health check timers) go to a file.
start_server() {
  containers+=("$1")
  podman run --detach --name "$1" --read-only --cap-drop ALL \
    --security-opt no-new-privileges \
    --volume "$volume:/data" \
    --volume "$work/sessiond.toml:/etc/sessiond/sessiond.toml:ro" \
    --env SESSIOND_CONFIG=/etc/sessiond/sessiond.toml \
    --publish 127.0.0.1::50051 --publish 127.0.0.1::9090 \
    "$image" >/dev/null 2>>"$work/podman.err" &&
    grpc="$(podman port "$1" 50051/tcp)" &&
    admin="$(podman port "$1" 9090/tcp)"
}
grpc=127.0.0.1:1
admin=127.0.0.1:1

# wait_serving: until health answers SERVING (a fresh start opens sled first).
wait_serving() {
  for _ in $(seq 1 60); do
    "$ctl" --addr "$grpc" --timeout 2 health >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# json_field FIELD...: a field of the JSON on stdin, by a path of keys.
json_field() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[key]
print(value)' "$@"
}

first="$run-first"
check "the image runs read-only with a volume and a mounted config" start_server "$first"
check "health answers SERVING on the published gRPC port" wait_serving

session_token=""
start_json="$(SESSIOND_API_KEY="$api_key" "$ctl" --addr "$grpc" --json start alice)" &&
  session_token="$(json_field session_token <<<"$start_json")" || true
whoami_state() {
  SESSIOND_API_KEY="$api_key" SESSIOND_SESSION_TOKEN="$session_token" \
    "$ctl" --addr "$grpc" --json whoami | json_field session state
}
check "Start and Whoami with the API key" \
  test "$(whoami_state 2>/dev/null)" = ACTIVE

refused() {
  local status=0
  "$ctl" --addr "$grpc" start bob 2>"$work/no-key.err" >/dev/null || status=$?
  [[ "$status" -eq 1 ]] && grep -q '^error: UNAUTHENTICATED' "$work/no-key.err"
}
check "a call without the API key is UNAUTHENTICATED" refused

check "the image's HEALTHCHECK reports healthy" podman healthcheck run "$first"

runs_as_uid() {
  local pid
  pid="$(podman inspect --format '{{.State.Pid}}' "$first")"
  [[ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$pid/status")" == "65532655326553265532" ]]
}
check "sessiond runs as uid 65532" runs_as_uid

# The check is made in Python: `| grep -q` stops reading at the first match, and a
# scrape larger than the pipe's buffer then fails the writer with a broken pipe.
metrics() {
  python3 -c 'import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
sys.exit(0 if any(line.startswith("sessiond_calls_total") for line in text.splitlines()) else 1)' \
    "http://$admin/metrics"
}
check "the admin port serves metrics" metrics

# A clean stop within the stop timeout: SIGKILL after it would leave exit code 137.
stopped_cleanly() {
  podman stop --time 10 "$first" >/dev/null 2>>"$work/podman.err" &&
    [[ "$(podman inspect --format '{{.State.ExitCode}}' "$first")" == 0 ]] &&
    podman logs "$first" 2>&1 | grep 'stopped' >/dev/null
}
check "podman stop (SIGTERM) drains and exits 0" stopped_cleanly

no_secret_logged() { ! podman logs "$first" 2>&1 | grep -F -e "$api_key" -e "$session_token" >/dev/null; }
check "neither the API key nor the token reaches the log" no_secret_logged

second="$run-second"
start_server "$second" && wait_serving || true
check "a new container on the same volume still validates the session" \
  test "$(whoami_state 2>/dev/null)" = ACTIVE

# No config: 0.0.0.0 and no callers, so sessiond must refuse to start (exit 2).
insecure="$run-insecure"
containers+=("$insecure")
refuses_insecure() {
  local status=0
  podman run --name "$insecure" --read-only "$image" >"$work/insecure.out" 2>&1 || status=$?
  [[ "$status" -eq 2 ]] &&
    grep -q 'refusing to listen on 0.0.0.0:50051 with no callers configured' "$work/insecure.out"
}
check "0.0.0.0 without callers or --allow-insecure refuses to start" refuses_insecure

versions_match() {
  [[ "$(podman run --rm --entrypoint sessionctl "$image" --version 2>>"$work/podman.err")" == "sessionctl $version" ]] &&
    [[ "$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$image")" == "$version" ]]
}
check "sessionctl --version and the OCI label say $version" versions_match

summary
