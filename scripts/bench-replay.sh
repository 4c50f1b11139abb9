#!/usr/bin/env bash
# Times `faultline replay --format json` end to end (read, match, date,
# label, order, print) on the speed kit's generated corpus, beside
# `rg -c -f` and `faultline count` on the same file, and reports MB/s and
# the maximum resident memory of each run.
#
#   scripts/bench-replay.sh [SIZE] [RUNS]      (default 1G, 3)
#
# Needs python3 and ripgrep; the corpus generator comes from the speed kit
# in ../shared/perf (or $PERF_KIT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${PERF_KIT:-$ROOT/../shared/perf}"
SIZE="${1:-1G}"
RUNS="${2:-3}"
WORK="${WORK:-/tmp/logsig-perf}"
CORPUS="$WORK/corpus-$SIZE-s20260216.log"
mkdir -p "$WORK"
if [[ ! -s "$CORPUS" ]]; then
  python3 "$KIT/gen_corpus.py" --size "$SIZE" --seed 20260216 --out "$CORPUS" >&2
fi
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p faultline >&2
BIN="$ROOT/target/release/faultline"
BYTES=$(stat -c %s "$CORPUS")
cat "$CORPUS" > /dev/null

run() {  # name, command...: best wall time of RUNS, and its max RSS
  local name=$1; shift
  local best="" rss=""
  for ((i = 0; i < RUNS; i++)); do
    local out
    # replay and rg exit 1 when they find something: not a failure here
    out=$( { /usr/bin/time -f '%e %M' "$@" > /dev/null || true; } 2>&1 | tail -1 )
    local t=${out% *} m=${out#* }
    if [[ -z "$best" ]] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; rss=$m; fi
  done
  awk -v n="$name" -v t="$best" -v b="$BYTES" -v m="$rss" \
    'BEGIN{printf "%-34s %8.2f s %8.0f MB/s %8.1f MiB max RSS\n", n, t, b/t/1e6, m/1024}'
}

echo "# corpus: $CORPUS ($BYTES bytes), best of $RUNS"
run "faultline replay --format json" "$BIN" replay --format json "$CORPUS"
run "faultline replay --threads 1" "$BIN" replay --threads 1 --format json "$CORPUS"
run "faultline count (kit patterns)" "$BIN" count --patterns "$KIT/signatures.txt" "$CORPUS"
run "rg -c -f (kit patterns)" rg --no-config -c -f "$KIT/signatures.txt" "$CORPUS"
