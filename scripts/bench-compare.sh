#!/usr/bin/env bash
# Puts `faultline count` beside ripgrep, GNU grep and Hyperscan on the same
# generated corpus, in one run, using the speed kit in ../shared/perf (or
# $PERF_KIT). Builds faultline in release mode first.
#
#   scripts/bench-compare.sh [-s 1G] [-r 5] [extra run_baselines.sh options]
#
# Needs: ripgrep, libhyperscan-dev, gcc, pkg-config, python3
# (run_baselines.sh --install installs them on Debian).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIT="${PERF_KIT:-$ROOT/../shared/perf}"
[[ -x "$KIT/run_baselines.sh" || -f "$KIT/run_baselines.sh" ]] || {
  echo "speed kit not found at $KIT (set PERF_KIT)" >&2; exit 2; }
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p faultline >&2
BIN="$ROOT/target/release/faultline"
if [[ $# -eq 0 ]]; then set -- -s 1G -r 5; fi
exec bash "$KIT/run_baselines.sh" "$@" \
  --cmd "faultline=$BIN count --stats --patterns {sigs} {corpus}" \
  --cmd "faultline-1thread=$BIN count --stats --threads 1 --patterns {sigs} {corpus}"
