#!/usr/bin/env python3
"""Scores faultline on one split of the evaluation corpus, with details.

The score of record is `cargo test` (crates/faultline/tests/corpus.rs),
which scores the `test` split and prints only its table. This script is
for writing signatures from the `dev` split: it lists every missed failure
and every false positive of the split it is given, with the lines.

    scripts/corpus-score.py [--split dev] [--binary target/release/faultline]
                            [--signatures signatures] [--family NAME] [-v]

Each snippet is written to a file of its own and all are replayed in one
run. A failure snippet counts as found when a hit has one of its classes;
a healthy snippet is a false positive when it has any hit at all.
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "tests", "corpus")


def load(split):
    sides = {}
    for line in open(os.path.join(CORPUS, "split.tsv"), encoding="utf-8"):
        if not line.startswith("#") and line.strip():
            source, side = line.rstrip("\n").split("\t")
            sides[source] = side
    for path in sorted(glob.glob(os.path.join(CORPUS, "*", "*.yaml"))):
        for n, snippet in enumerate(yaml.safe_load(open(path, encoding="utf-8"))["snippets"]):
            if sides.get(snippet["source"]) == split:
                lines = snippet["lines"]
                if isinstance(lines, list):
                    lines = "\n".join(lines)
                snippet["text"] = lines if lines.endswith("\n") else lines + "\n"
                snippet["where"] = f"{os.path.relpath(path, ROOT)}#{n}"
                yield snippet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="dev")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "faultline"))
    ap.add_argument("--signatures", default=None, help="a signature directory to add (replaces built-ins by id)")
    ap.add_argument("--family", default=None)
    ap.add_argument("-v", action="store_true", help="also list found failures with the signatures that found them")
    args = ap.parse_args()
    if args.split == "test":
        print("the test split is only scored, never read: use cargo test", file=sys.stderr)
        return 2
    snippets = [s for s in load(args.split) if not args.family or s["family"] == args.family]
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(snippets):
            with open(os.path.join(tmp, f"{i}.log"), "w", encoding="utf-8") as f:
                f.write(s["text"])
        cmd = [args.binary, "replay", "--format", "json", "--year", "2024"]
        if args.signatures:
            cmd += ["--signatures", args.signatures]
        out = subprocess.run(cmd + [tmp], capture_output=True, text=True)
        if out.returncode not in (0, 1):
            print(out.stderr, file=sys.stderr)
            return 2
    hits = collections.defaultdict(list)
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if record.get("type") == "hit":
            name = os.path.basename(record["origin"].rsplit(":", 1)[0])
            hits[int(name.split(".")[0])].append(record)
    table = collections.defaultdict(lambda: [0, 0, 0, 0])
    for i, s in enumerate(snippets):
        row = table[s["family"]]
        found = hits.get(i, [])
        if s["expect"] == "failure":
            row[0] += 1
            good = [h for h in found if h["class"] in s["class"]]
            if good:
                row[1] += 1
                if args.v:
                    print(f"FOUND {s['where']} by {sorted({h['signature'] for h in good})}")
            else:
                print(f"\nMISSED {s['where']} [{s['program']}] want {s['class']} got {sorted({h['signature']+':'+h['class'] for h in found})}\n  {s['source']}\n  {s['says']}")
                for l in s["text"].splitlines()[:12]:
                    print("    | " + l[:300])
        else:
            row[2] += 1
            if found:
                row[3] += 1
                print(f"\nFALSE POSITIVE {s['where']} [{s['program']}] {sorted({h['signature'] for h in found})}\n  {s['source']}\n  {s['says']}")
                for h in found[:5]:
                    print("    | " + h["line"][:300])
    print(f"\n{'family':<14} {'failures':>8} {'found':>6} {'recall':>7} {'healthy':>8} {'false+':>7}")
    for family in sorted(table):
        f, found, h, fp = table[family]
        print(f"{family:<14} {f:>8} {found:>6} {100 * found / max(f, 1):>6.1f}% {h:>8} {fp:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
