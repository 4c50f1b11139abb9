#!/usr/bin/env python3
"""Assigns every corpus source to the `dev` or `test` split, once.

The split is by source (a URL, or `capture:PROGRAM/FAULT`), so all snippets
from one page land on the same side. A source's side is fixed by the first
byte of the SHA-256 of its text: even is `dev`, odd is `test`. Sources
already in tests/corpus/split.tsv keep their side; new ones are appended.
Signatures may be written from `dev` only; `test` is only ever scored.

    scripts/corpus-split.py            # add new sources to split.tsv
"""
import glob
import hashlib
import os
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus")
SPLIT = os.path.join(ROOT, "split.tsv")


def side(source: str) -> str:
    return "dev" if hashlib.sha256(source.encode()).digest()[0] % 2 == 0 else "test"


def main() -> int:
    known = {}
    if os.path.exists(SPLIT):
        for line in open(SPLIT, encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            source, split = line.rstrip("\n").split("\t")
            known[source] = split
    added = 0
    files = sorted(glob.glob(os.path.join(ROOT, "*", "*.yaml")))
    for path in files:
        for snippet in yaml.safe_load(open(path, encoding="utf-8"))["snippets"]:
            source = snippet["source"]
            if source not in known:
                known[source] = side(source)
                added += 1
    with open(SPLIT, "w", encoding="utf-8") as out:
        out.write("# source\tsplit (dev: rules may be written from it; test: only scored). See scripts/corpus-split.py.\n")
        for source in sorted(known):
            out.write(f"{source}\t{known[source]}\n")
    print(f"{added} new source(s); {len(known)} in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
