#!/usr/bin/env bash
# The Redis servers the Redis test suites run against: one standalone server on
# 127.0.0.1:6390 and a 3-master Redis Cluster (no replicas) on 127.0.0.1:7101-7103, all
# in-memory only (no RDB, no AOF), bound to loopback, their working dirs under
# ${SESSIOND_REDIS_TEST_DIR:-$PWD/target/redis-test}.
#
#   scripts/redis-test-env.sh start   # idempotent: a healthy env is left as it is
#   eval "$(scripts/redis-test-env.sh env)"
#   cargo test                        # now also builds and runs the Redis suites
#   scripts/redis-test-env.sh stop
#
# Needs redis-server and redis-cli on PATH (Debian: apt-get install redis-server).
set -euo pipefail

DIR="${SESSIOND_REDIS_TEST_DIR:-$PWD/target/redis-test}"
HOST=127.0.0.1
STANDALONE_PORT=6390
CLUSTER_PORTS=(7101 7102 7103)
ALL_PORTS=("$STANDALONE_PORT" "${CLUSTER_PORTS[@]}")
# How long to wait for a server to answer, or the cluster to become ok (tenths of a second).
PATIENCE_TENTHS=300

usage() {
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
}

cli() { # cli PORT ARGS...
  local port="$1"
  shift
  redis-cli -h "$HOST" -p "$port" "$@"
}

answers() { # answers PORT: true when a server answers PING there
  [[ "$(cli "$1" ping 2>/dev/null)" == "PONG" ]]
}

cluster_ok() { # cluster_ok PORT: that node sees the whole cluster ok
  local info
  info="$(cli "$1" cluster info 2>/dev/null | tr -d '\r')" || return 1
  grep -qx 'cluster_state:ok' <<<"$info" &&
    grep -qx "cluster_known_nodes:${#CLUSTER_PORTS[@]}" <<<"$info" &&
    grep -qx 'cluster_slots_assigned:16384' <<<"$info"
}

healthy() {
  answers "$STANDALONE_PORT" || return 1
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    cluster_ok "$port" || return 1
  done
}

require_tools() {
  local tool
  for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || {
      echo "$0: $tool not found on PATH (Debian: apt-get install redis-server)" >&2
      exit 1
    }
  done
}

pid_alive() { # pid_alive PIDFILE: its process runs (a zombie left unreaped counts as gone)
  [[ -s "$1" ]] || return 1
  local pid state
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 0
  [[ "$state" != Z ]]
}

stop_one() { # stop_one PORT: shut down our server on PORT (and whatever answers there)
  local port="$1" pidfile="$DIR/$1/redis.pid" i
  cli "$port" shutdown nosave >/dev/null 2>&1 || true
  for ((i = 0; i < PATIENCE_TENTHS; i++)); do
    if ! pid_alive "$pidfile" && ! answers "$port"; then
      return 0
    fi
    sleep 0.1
  done
  if pid_alive "$pidfile"; then
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    sleep 0.2
  fi
  if answers "$port"; then
    echo "$0: a server on $HOST:$port does not stop" >&2
    return 1
  fi
}

stop_all() {
  local port
  for port in "${ALL_PORTS[@]}"; do
    stop_one "$port"
  done
  rm -rf "$DIR"
}

launch() { # launch PORT [EXTRA ARGS...]
  local port="$1"
  shift
  local dir="$DIR/$port"
  mkdir -p "$dir"
  redis-server \
    --port "$port" \
    --bind "$HOST" \
    --daemonize yes \
    --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" \
    --dir "$dir" \
    --save "" \
    --appendonly no \
    "$@"
}

wait_for() { # wait_for WHAT COMMAND...: retry COMMAND until it succeeds (bounded)
  local what="$1" i
  shift
  for ((i = 0; i < PATIENCE_TENTHS; i++)); do
    if "$@"; then
      return 0
    fi
    sleep 0.1
  done
  echo "$0: $what: not within $((PATIENCE_TENTHS / 10)) s; logs under $DIR" >&2
  local log
  for log in "$DIR"/*/redis.log; do
    [[ -f "$log" ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  return 1
}

start() {
  require_tools
  if healthy; then
    echo "redis test env already running (standalone $HOST:$STANDALONE_PORT, cluster $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]})"
    return 0
  fi
  # Leftovers of an earlier run (or a half-started one): stop them, wipe their state.
  stop_all
  mkdir -p "$DIR"

  launch "$STANDALONE_PORT"
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    launch "$port" \
      --cluster-enabled yes \
      --cluster-config-file "$DIR/$port/nodes.conf" \
      --cluster-node-timeout 5000
  done
  for port in "${ALL_PORTS[@]}"; do
    wait_for "redis-server on $HOST:$port answering" answers "$port"
  done

  local nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do
    nodes+=("$HOST:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
    >"$DIR/cluster-create.log" 2>&1 || {
    echo "$0: redis-cli --cluster create failed:" >&2
    cat "$DIR/cluster-create.log" >&2
    exit 1
  }
  for port in "${CLUSTER_PORTS[@]}"; do
    wait_for "cluster_state:ok on $HOST:$port" cluster_ok "$port"
  done
  echo "redis test env started (standalone $HOST:$STANDALONE_PORT, cluster $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}, dir $DIR)"
}

status() {
  if healthy; then
    echo "running and healthy"
  else
    echo "not running (or not healthy)"
    return 1
  fi
}

print_env() {
  local urls=() port
  for port in "${CLUSTER_PORTS[@]}"; do
    urls+=("redis://$HOST:$port")
  done
  echo "export SESSIOND_TEST_REDIS_URL=redis://$HOST:$STANDALONE_PORT"
  echo "export SESSIOND_TEST_REDIS_CLUSTER_URLS=$(IFS=,; echo "${urls[*]}")"
}

[[ $# -eq 1 ]] || usage
case "$1" in
  start) start ;;
  stop)
    require_tools
    stop_all
    ;;
  status) status ;;
  env) print_env ;;
  *) usage ;;
esac
