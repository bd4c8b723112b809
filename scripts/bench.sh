#!/usr/bin/env bash
# Regenerates every figure of BENCHMARKS.md with the harness: docs/bench-*.{txt,json,svg}.
#   SAMPLES=7 scripts/bench.sh     (timed rounds per block; default 7)
# Run it on an otherwise idle machine: the speedups are ratios measured in one run, but a
# second process competing for the cores still distorts the parallel side.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures="${LANES_FIXTURES:-$(pwd)/../shared/fixtures}"
samples="${SAMPLES:-7}"
cargo build --release --locked -p lanes-cli
lanes=target/release/lanes
mkdir -p docs
# The built-in gigagas workloads through the adaptive engine (what a node runs), with memory.
"$lanes" bench --threads 1 2 --samples "$samples" --memory \
  --json docs/bench-synthetic.json --plot docs/bench-synthetic.svg | tee docs/bench-synthetic.txt
# The same, always through the parallel engine: the engine itself, also at one thread.
"$lanes" bench --threads 1 2 --samples "$samples" --engine parallel \
  --json docs/bench-synthetic-parallel.json | tee docs/bench-synthetic-parallel.txt
# The same, always through the lanes engine.
"$lanes" bench --threads 1 2 --samples "$samples" --engine lanes \
  --json docs/bench-synthetic-lanes.json | tee docs/bench-synthetic-lanes.txt
# Every mainnet fixture block.
"$lanes" bench "$fixtures/mainnet" --threads 1 2 --samples "$samples" \
  --json docs/bench-mainnet.json --plot docs/bench-mainnet.svg | tee docs/bench-mainnet.txt
