#!/usr/bin/env python3
"""Copies a few mainnet blocks from ../shared/fixtures/mainnet into samples/mainnet, with only
the bytecodes their pre-states need, in the same folder format. Run from the repository root:
    python3 scripts/make-samples.py 4864590 12520364 ...
"""
import json, os, shutil, sys

src = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "mainnet")
dst = os.path.join(os.path.dirname(__file__), "..", "samples", "mainnet")
numbers = [int(n) for n in sys.argv[1:]]
index = {e["number"]: e for e in json.load(open(os.path.join(src, "index.json")))}
for sub in ("blocks", "bytecodes"):
    shutil.rmtree(os.path.join(dst, sub), ignore_errors=True)
os.makedirs(os.path.join(dst, "blocks"))
needed = set()
for n in numbers:
    shutil.copytree(os.path.join(src, "blocks", str(n)), os.path.join(dst, "blocks", str(n)))
    pre = json.load(open(os.path.join(src, "blocks", str(n), "pre_state.json")))
    needed |= {a["code_hash"] for a in pre.values() if "code_hash" in a}
json.dump([index[n] for n in numbers], open(os.path.join(dst, "index.json"), "w"), indent=1)
shutil.copy(os.path.join(src, "block_hashes.json"), dst)
os.makedirs(os.path.join(dst, "bytecodes"))
for digit in "0123456789abcdef":
    shard = json.load(open(os.path.join(src, "bytecodes", digit + ".json")))
    keep = {h: c for h, c in shard.items() if h in needed}
    if keep:
        json.dump(keep, open(os.path.join(dst, "bytecodes", digit + ".json"), "w"))
print(f"{len(numbers)} blocks, {len(needed)} codes -> {dst}")
