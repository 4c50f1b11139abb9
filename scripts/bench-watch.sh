#!/usr/bin/env bash
# Sizing figures for `faultline watch`: lines/s per core and peak memory
# while it follows a node's pod logs. The speed kit's corpus is cut into
# 8 pod log files in the kubelet layout; `faultline watch --files
# --read-existing` reads them from their start (as after an outage) and
# the run ends when /metrics shows every line read. CPU time and peak RSS
# come from /proc.
#
#   scripts/bench-watch.sh [SIZE]      (default 256M)
#
# Needs python3 and curl; the corpus generator comes from the speed kit
# in ../shared/perf (or $PERF_KIT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${PERF_KIT:-$ROOT/../shared/perf}"
SIZE="${1:-256M}"
WORK="${WORK:-/tmp/logsig-perf}"
CORPUS="$WORK/corpus-$SIZE-s20260216.log"
mkdir -p "$WORK"
if [[ ! -s "$CORPUS" ]]; then
  python3 "$KIT/gen_corpus.py" --size "$SIZE" --seed 20260216 --out "$CORPUS" >&2
fi
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p faultline >&2
BIN="$ROOT/target/release/faultline"
TREE="$WORK/watch-tree"
rm -rf "$TREE"
LINES=$(wc -l < "$CORPUS")
BYTES=$(stat -c %s "$CORPUS")
# 8 pods, a part of the corpus each, whole lines.
split -n l/8 -d "$CORPUS" "$WORK/part-"
for i in 0 1 2 3 4 5 6 7; do
  dir="$TREE/bench_pod-${i}_0000000${i}/app"
  mkdir -p "$dir"
  mv "$WORK/part-0$i" "$dir/0.log"
done
PORT=$((20000 + RANDOM % 20000))
"$BIN" watch --files "$TREE/*/*/*.log" --read-existing --format json \
  --listen "127.0.0.1:$PORT" > /dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
start=$(date +%s.%N)
while :; do
  read_lines=$( (curl -s "http://127.0.0.1:$PORT/metrics" || true) \
    | awk '/^faultline_lines_total\{source="file"\}/ {print $2}')
  [[ "${read_lines:-0}" -ge "$LINES" ]] && break
  sleep 0.05
done
end=$(date +%s.%N)
ticks=$(getconf CLK_TCK)
cpu=$(awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$PID/stat")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
kill -TERM $PID; wait $PID || true
awk -v l="$LINES" -v b="$BYTES" -v s="$start" -v e="$end" -v c="$cpu" -v r="$rss" 'BEGIN {
  wall = e - s
  printf "lines %d, %.0f MB in %.2f s wall, %.2f s CPU\n", l, b / 1e6, wall, c
  printf "throughput: %.0f lines/s, %.0f MB/s (wall); %.0f lines/s per CPU-second\n", l / wall, b / 1e6 / wall, l / c
  printf "peak RSS: %.1f MiB\n", r / 1024
}'
