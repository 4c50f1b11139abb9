#!/usr/bin/env bash
# Runs faultline's fuzz targets (fuzz/, cargo-fuzz) from seed corpora
# built out of the repository's own fixtures
# and signature examples. Prints, per target, the executions run, their
# rate and whether it stayed clean; a crash leaves its input in
# fuzz/artifacts/<target>/ (make it a regression test).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#       a smoke run: each target for SECONDS (default 20) under
#       AddressSanitizer, inputs up to 64 KiB, built unoptimised (about
#       3 minutes on 2 cores instead of 13; what CI runs).
#   scripts/fuzz.sh --runs N [--sanitizer none] [--max-len BYTES] [TARGET...]
#       the long campaign: each target until N executions (e.g. 10000000),
#       built optimised.
#       Without a sanitizer (safe Rust; debug assertions stay on) and with
#       inputs up to 4 KiB a target runs several times faster.
#
# Needs `cargo install cargo-fuzz`, and rustup's nightly toolchain if it is
# there; otherwise the one toolchain there is, with RUSTC_BOOTSTRAP=1 so it
# takes the -Z flags cargo-fuzz passes (sanitizer, coverage).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH=20
RUNS=""
SANITIZER=address
# Smoke runs build unoptimised: the build, not the run, is what takes time.
BUILD_FLAGS=(--dev --debug-assertions)
MAX_LEN=65536
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; MAX_LEN=4096; BUILD_FLAGS=(--debug-assertions); shift 2 ;;
    --sanitizer) SANITIZER="$2"; shift 2 ;;
    --max-len) MAX_LEN="$2"; shift 2 ;;
    --help|-h) sed -n '2,20p' "$0"; exit 0 ;;
    [0-9]*) SECONDS_EACH="$1"; shift ;;
    *) break ;;
  esac
done
cd "$ROOT/fuzz"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi

# Seeds: real inputs of each kind from the repository (cut at 64 KiB:
# `head` closing the pipe early is expected here).
set +o pipefail
seed() {  # target, files...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [[ -f "$f" ]] && head -c 65536 "$f" > "$dir/seed-$(basename "$f")-$(cksum < "$f" | cut -d' ' -f1)"
  done
  return 0
}
FIX="$ROOT/fixtures/incident-2026-02-28"
mapfile -t LOGS < <(find "$FIX" -name '*.log' | head -40)
seed formats "${LOGS[@]}" "$FIX/node/talos-519-vmy/dmesg.log" "$FIX/node/talos-519-vmy/kubelet.log"
seed signature_file "$ROOT"/signatures/*.yaml
seed watch_config "$ROOT/examples/faultline.yaml"
mkdir -p corpus/loki_response
printf '{"status":"success","data":{"resultType":"streams","result":[{"stream":{"pod":"loki-0"},"values":[["1771470247000000000","one"],["1771470248000000000","two",{"trace_id":"x"}]]}],"stats":{}}}' > corpus/loki_response/seed-query-range
printf '{"streams":[{"stream":{"pod":"loki-0"},"values":[["1771470247000000000","one"]]}],"dropped_entries":[{"labels":{},"timestamp":"1"}]}' > corpus/loki_response/seed-tail
seed kubernetes_frames "$FIX/events.json" "$FIX/inventory.json"
seed archive "${LOGS[@]:0:4}"
mkdir -p corpus/push_body corpus/matcher_differential
printf '{"streams":[{"stream":{"namespace":"monitoring","pod":"loki-0"},"values":[["1771470247000000000","level=error msg=\\"read-only file system\\""]]}]}' \
  > corpus/push_body/seed-json
printf 'Read-only file system\t(?P<dev>sd[a-z]+)\tEXT4-fs.*error\n2026-02-19T03:04:07Z stderr F EXT4-fs (sdb): error: remounting Read-only file system\n{"msg":"could not write \\"x\\": Read-only file system"}\r\n' \
  > corpus/matcher_differential/seed-1
# From every signature: for the differential target its pattern, then its
# examples and near-misses as the buffer; for the format decoders those
# lines alone (real lines of many formats). The files' single-quoted YAML
# is read with a regex, good enough for seeds. libFuzzer runs every seed
# before its time limit counts, and each differential seed compiles a
# matcher (slow under AddressSanitizer): a short run seeds the
# differential target from every fourth signature, a long one from all.
if command -v python3 >/dev/null; then
  python3 - "$([[ -n "$RUNS" ]] && echo 1 || echo 4)" "$ROOT"/signatures/*.yaml <<'PY'
import re, sys, zlib
quoted = r"'((?:[^']|'')*)'"
every = int(sys.argv[1])
def write(target, text):
    data = text.encode()[:65536]
    open(f"corpus/{target}/seed-{zlib.crc32(data):08x}", "wb").write(data)
n = 0
for path in sys.argv[2:]:
    text = open(path, encoding="utf-8").read()
    for block in re.split(r"\n  - id: ", text)[1:]:
        pattern = re.search(r"^    match: " + quoted, block, re.M)
        lines = [l.replace("''", "'") for l in re.findall(r"- line: " + quoted, block)]
        if not pattern or not lines:
            continue
        write("formats", "\n".join(lines) + "\n")
        n += 1
        if n % every == 0:
            write("matcher_differential", pattern.group(1).replace("''", "'") + "\n" + "\n".join(lines) + "\n")
PY
fi
# A gzip and a zstd member of the fixture for the archive readers.
gzip -c "${LOGS[0]}" | head -c 65536 > corpus/archive/seed-gz
if command -v zstd >/dev/null; then zstd -q -c "${LOGS[0]}" | head -c 65536 > corpus/archive/seed-zst; fi
tar -cf - -C "$FIX" events.json | head -c 65536 > corpus/archive/seed-tar

set -o pipefail
if [[ -n "$RUNS" ]]; then
  # Long runs: mutation depth 40 keeps the differential target's compiled
  # patterns in use (its mutator changes the buffer more than the
  # patterns); inputs may be as long as allowed from the start.
  LIMIT=(-runs="$RUNS" -mutate_depth=40 -len_control=0)
else
  LIMIT=(-max_total_time="$SECONDS_EACH")
fi
# --debug-assertions keeps overflow checks and debug_assert!s in the build.
# (`cargo fuzz build` takes one target, or none for all of them.)
if [[ $# -eq 0 ]]; then BUILD=(); else BUILD=("${TARGETS[@]}"); fi
for target in "${BUILD[@]:-}"; do
  "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" -s "$SANITIZER" ${target:+"$target"} >/dev/null 2>&1 \
    || "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" -s "$SANITIZER" ${target:+"$target"}
done
printf '%-22s %14s %10s %8s  %s\n' target executions exec/s seconds result
status=0
for target in "${TARGETS[@]}"; do
  log="$(mktemp)"
  started=$(date +%s)
  if "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" -s "$SANITIZER" "$target" "corpus/$target" -- \
      "${LIMIT[@]}" -rss_limit_mb=4096 -max_len="$MAX_LEN" -print_final_stats=1 >"$log" 2>&1; then
    result=clean
  else
    result="CRASH (see fuzz/artifacts/$target)"
    status=1
  fi
  took=$(( $(date +%s) - started ))
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  [[ -z "$runs" ]] && runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
  [[ -z "$runs" ]] && runs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  printf '%-22s %14s %10s %8s  %s\n' "$target" "${runs:-?}" "${rate:-?}" "$took" "$result"
  [[ "$result" == clean ]] || { tail -40 "$log" >&2; }
  rm -f "$log"
done
exit "$status"
