#!/usr/bin/env bash
# Runs faultline's fuzz targets (fuzz/, cargo-fuzz on the nightly
# toolchain), each for SECONDS, from seed corpora built out of the
# repository's own fixtures and signature examples. Prints, per target, the
# executions run and whether it stayed clean; a crash leaves its input in
# fuzz/artifacts/<target>/ (make it a regression test).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 20 s, every target)
#
# Needs: rustup's nightly toolchain and `cargo install cargo-fuzz`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-20}"
shift || true
cd "$ROOT/fuzz"
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
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
# A gzip and a zstd member of the fixture for the archive readers.
gzip -c "${LOGS[0]}" | head -c 65536 > corpus/archive/seed-gz
if command -v zstd >/dev/null; then zstd -q -c "${LOGS[0]}" | head -c 65536 > corpus/archive/seed-zst; fi
tar -cf - -C "$FIX" events.json | head -c 65536 > corpus/archive/seed-tar

set -o pipefail
printf '%-22s %14s %10s\n' target executions result
for target in "${TARGETS[@]}"; do
  log="$(mktemp)"
  if cargo +nightly fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1; then
    result=clean
  else
    result="CRASH (see fuzz/artifacts/$target)"
  fi
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
  [[ -z "$runs" ]] && runs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  printf '%-22s %14s %10s\n' "$target" "${runs:-?}" "$result"
  [[ "$result" == clean ]] || { tail -40 "$log" >&2; }
  rm -f "$log"
done
