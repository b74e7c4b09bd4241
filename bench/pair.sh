#!/bin/bash
# Paired runs: two sessiond builds up at once, short phases alternating A B, B A, …, so
# both see the same load from the rest of this shared machine; prints, per phase, the
# build, calls/s and server µs of CPU per call, then the median over the pairs of B/A.
#
#   bench/pair.sh CALL PAIRS DIR_A DIR_B      e.g. bench/pair.sh whoami 10 /tmp/before target/release
#
# DIR_A and DIR_B hold a sessiond binary each; sessiond-bench comes from target/release
# (or $BENCH). Phases are 3 s (or $PHASE), 2,000 sessions, no health baseline.
set -euo pipefail
CALL=$1 PAIRS=$2 A=$3 B=$4
BENCH=${BENCH:-target/release/sessiond-bench}
DATA=$(mktemp -d)
"$A/sessiond" --listen 127.0.0.1:52251 --data-dir "$DATA/a" >/dev/null 2>&1 & PID_A=$!
"$B/sessiond" --listen 127.0.0.1:52252 --data-dir "$DATA/b" >/dev/null 2>&1 & PID_B=$!
trap 'kill $PID_A $PID_B 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"' EXIT
sleep 1
phase() { # PORT PID NAME
  "$BENCH" --addr "http://127.0.0.1:$1" --call "$CALL" --duration "${PHASE:-3s}" \
    --sessions 2000 --no-baseline --server-pid "$2" \
    | awk -v name="$3" '/^  rps/ { rps = $2 } /server CPU/ { for (i = 1; i <= NF; i++) if ($i == "µs") cpu = $(i - 1) }
        END { print name, rps, cpu }'
}
for i in $(seq 1 "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then phase 52251 $PID_A A; phase 52252 $PID_B B
  else phase 52252 $PID_B B; phase 52251 $PID_A A; fi
done | tee "$DATA/phases"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pairs() { # FIELD: B/A of that field, one line per pair
  awk -v f="$1" '{ v[$1] = $f } NR % 2 == 0 { print v["B"] / v["A"] }' "$DATA/phases"; }
echo "median of $PAIRS pairs, B/A: calls/s $(pairs 2 | median), CPU per call $(pairs 3 | median)"
