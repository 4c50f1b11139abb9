#!/usr/bin/env bash
# Soak: `faultline watch` for MINUTES on pod log files written at RATE
# lines/s (4 files, rotated by rename every minute), with a planted
# failure every 2 s carrying a unique marker, and a test Loki flapping
# between healthy and HTTP 500 every 30 s. RSS and CPU are sampled every
# 10 s. At the end: planted failures reported (each must be reported
# exactly once), peak and final RSS, and an SVG chart of RSS over time.
#
#   scripts/soak.sh [MINUTES] [RATE]      (default 30, 20000)
#
# Writes soak-*.csv, soak-rss.svg and the summary under $OUT (default
# /tmp/faultline-soak). Not run by CI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-30}"
RATE="${2:-20000}"
OUT="${OUT:-/tmp/faultline-soak}"
rm -rf "$OUT"; mkdir -p "$OUT/pods"
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p faultline -p faultline-testkit --examples >&2
BIN="$ROOT/target/release/faultline"
LOKI_PORT=$((20000 + RANDOM % 20000))
"$ROOT/target/release/examples/flapping-loki" "$LOKI_PORT" 30 > "$OUT/loki.url" &
LOKI=$!
METRICS=$((20000 + RANDOM % 20000))
"$BIN" watch --files "$OUT/pods/*/*/*.log" --loki "http://127.0.0.1:$LOKI_PORT" \
  --loki-poll 1s --format json --listen "127.0.0.1:$METRICS" --state-dir "$OUT/state" \
  > "$OUT/records.jsonl" 2> "$OUT/faultline.err" &
WATCH=$!
trap 'kill $WATCH $LOKI $WRITER 2>/dev/null || true' EXIT
sleep 1
# The writer: RATE lines/s over 4 containers, a failure every 2 s.
python3 - "$OUT" "$RATE" "$MINUTES" > "$OUT/planted.txt" <<'PY' &
import os, sys, time
out, rate, minutes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
dirs = [f"{out}/pods/soak_app-{i}_0000{i}/app" for i in range(4)]
for d in dirs: os.makedirs(d, exist_ok=True)
files = [open(f"{d}/0.log", "a") for d in dirs]
end = time.time() + minutes * 60
tick, planted, n, rotated, last_plant = 0.05, 0, 0, time.time(), 0.0
healthy = '{ts} stdout F GET /healthz 200 {n}\n'
failure = '{ts} stderr F {stamp} UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system (soak-{k})\n'
while time.time() < end:
    start = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(start))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(start))
    per = max(1, int(rate * tick / 4))
    for f in files:
        f.write("".join(healthy.format(ts=ts, n=n + i) for i in range(per)))
        n += per
    if start - last_plant >= 2:
        last_plant = start
        files[planted % 4].write(failure.format(ts=ts, stamp=stamp, k=planted))
        print(f"soak-{planted}", flush=True)
        planted += 1
    for f in files: f.flush()
    if start - rotated >= 60:
        for i, d in enumerate(dirs):
            files[i].close()
            os.rename(f"{d}/0.log", f"{d}/0.log.{int(start)}")
            files[i] = open(f"{d}/0.log", "a")
            # Keep two rotated files, as the kubelet does.
            old = sorted(x for x in os.listdir(d) if x.startswith("0.log."))
            for x in old[:-2]: os.remove(f"{d}/{x}")
        rotated = start
    time.sleep(max(0, tick - (time.time() - start)))
PY
WRITER=$!
echo "seconds,rss_kib,cpu_seconds" > "$OUT/soak-samples.csv"
ticks=$(getconf CLK_TCK)
begin=$(date +%s)
while kill -0 $WRITER 2>/dev/null; do
  sleep 10
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$WATCH/status")
  cpu=$(awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$WATCH/stat")
  echo "$(( $(date +%s) - begin )),$rss,$cpu" >> "$OUT/soak-samples.csv"
done
sleep 5
peak=$(awk '/VmHWM/ {print $2}' "/proc/$WATCH/status")
kill -TERM $WATCH; wait $WATCH || true
planted=$(wc -l < "$OUT/planted.txt")
python3 - "$OUT" "$planted" "$peak" "$MINUTES" "$RATE" <<'PY'
import json, re, sys, collections
out, planted, peak, minutes, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
seen = collections.Counter()
for line in open(f"{out}/records.jsonl"):
    r = json.loads(line)
    if r.get("type") == "hit":
        m = re.search(r"\(soak-(\d+)\)", r.get("line", ""))
        if m: seen[int(m.group(1))] += 1
once = sum(1 for k in range(planted) if seen[k] == 1)
missing = [k for k in range(planted) if seen[k] == 0]
twice = [k for k, c in seen.items() if c > 1]
samples = [l.strip().split(",") for l in open(f"{out}/soak-samples.csv")][1:]
xs = [int(s[0]) for s in samples]; ys = [int(s[1]) / 1024 for s in samples]
w, h, pad = 720, 300, 50
mx, my = max(xs or [1]), max(max(ys or [1]), 64) * 1.1
pts = " ".join(f"{pad + x / mx * (w - 2 * pad):.1f},{h - pad - y / my * (h - 2 * pad):.1f}" for x, y in zip(xs, ys))
limit = h - pad - 64 / my * (h - 2 * pad)
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{w/2}" y="20" text-anchor="middle">faultline watch RSS, {minutes} min at {rate} lines/s (MiB)</text>
<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="black"/>
<line x1="{pad}" y1="{limit:.1f}" x2="{w-pad}" y2="{limit:.1f}" stroke="red" stroke-dasharray="4"/>
<text x="{w-pad}" y="{limit-4:.1f}" text-anchor="end" fill="red">64 MiB goal</text>
<polyline fill="none" stroke="steelblue" stroke-width="2" points="{pts}"/>
<text x="{pad}" y="{h-pad+16}">0</text><text x="{w-pad}" y="{h-pad+16}" text-anchor="end">{mx} s</text>
<text x="{pad-4}" y="{h-pad}" text-anchor="end">0</text><text x="{pad-4}" y="{pad+4}" text-anchor="end">{my:.0f}</text>
</svg>'''
open(f"{out}/soak-rss.svg", "w").write(svg)
print(f"planted {planted}, reported once {once}, missing {len(missing)}, more than once {len(twice)}")
print(f"RSS: first {ys[0] if ys else 0:.1f} MiB, last {ys[-1] if ys else 0:.1f} MiB, peak {peak/1024:.1f} MiB; CPU {samples[-1][2] if samples else 0} s")
PY
