#!/usr/bin/env bash
# Runs every test of Lanes, from a clean clone, with ../shared/fixtures beside the repository:
#   1. formatting, clippy and rustdoc (warnings are errors);
#   2. one release build shared by every later step;
#   3. unit and integration tests (synthetic blocks, the randomized differential test);
#   4. every state-test suite through the parallel engine at 2 threads, then a seeded sample of
#      a fifth of every suite at 1, 4 and 8 threads;
#   5. every blockchain-test suite imported block by block at 2 threads;
#   6. every mainnet block replayed at 1, 2, 4 and 8 threads, and with the parallel engine's
#      in-order windows forced every 3 transactions;
#   7. the lanes engine: a seeded sample of every state-test suite, every blockchain-test suite,
#      and every mainnet block replayed at 2 and 4 threads;
#   8. a smoke run of the benchmark harness (small blocks, one round) so that it cannot rot.
# Exits non-zero on the first failing step; the last line sums the cases of all steps.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures="${LANES_FIXTURES:-$(pwd)/../shared/fixtures}"
unpacked="$(scripts/unpack-fixtures.sh)"
logs="$(mktemp -d)"
lanes=target/release/lanes
step=0
run() {
  step=$((step + 1))
  local name="$1"; shift
  echo "== [$step] $name: $*"
  local started=$SECONDS
  if ! "$@" 2>&1 | tee "$logs/$step.log"; then
    echo "== [$step] $name FAILED"
    exit 1
  fi
  echo "== [$step] $name ok ($((SECONDS - started)) s)"
}

run fmt cargo fmt --all -- --check
run clippy cargo clippy --release --workspace --all-targets --locked -- -D warnings
run doc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
run build cargo build --release --workspace --all-targets --locked
run cargo-test cargo test --release --workspace --locked

suites=(
  "$fixtures/ethereum-tests/GeneralStateTests"
  "$unpacked/v13.3/GeneralStateTests"
  "$unpacked/eest/state_tests"
)
for suite in "${suites[@]}"; do
  run "statetest $(basename "$(dirname "$suite")")/$(basename "$suite")" "$lanes" statetest --threads 2 "$suite"
done
for threads in 1 4 8; do
  run "statetest sample threads=$threads" "$lanes" statetest --threads "$threads" --sample 0.22 --seed "$threads" "${suites[@]}"
done
# Blockchain tests: whole blocks imported, the transactions through the parallel engine. EEST
# invalid blocks must be rejected by the very rule the fixture names (--strict-exceptions);
# ethereum/tests' retesteth fixtures break a second rule first in some blocks (see README).
mapfile -t eest_forks < <(ls -d "$unpacked"/eest/blockchain_tests/*/ | grep -v '/static/$')
run "blocktest eest/blockchain_tests" "$lanes" blocktest --threads 2 --strict-exceptions "${eest_forks[@]}"
run "blocktest eest/blockchain_tests_static" "$lanes" blocktest --threads 2 --strict-exceptions "$unpacked/eest/blockchain_tests/static"
for suite in ValidBlocks InvalidBlocks TransitionTests; do
  run "blocktest ethereum-tests/$suite" "$lanes" blocktest --threads 2 "$fixtures/ethereum-tests/BlockchainTests/$suite"
done
run "blocktest mainnet (whole blocks)" "$lanes" blocktest --threads 2 "$fixtures/mainnet"
for threads in 1 2 4 8; do
  run "replay threads=$threads" "$lanes" replay --threads "$threads" --samples 1 "$fixtures/mainnet"
done
# The throttle's in-order windows, forced every few transactions on every mainnet block.
run "replay in-order windows" "$lanes" replay --threads 2 --samples 1 --in-order-every 3 "$fixtures/mainnet"

# The lanes engine (the adaptive policy runs it on blocks of 2,048 transactions or more, which
# the suites above do not have): every case forced onto it.
run "statetest lanes sample" "$lanes" statetest --engine lanes --threads 2 --sample 0.22 --seed 5 "${suites[@]}"
run "blocktest lanes eest" "$lanes" blocktest --engine lanes --threads 2 --strict-exceptions "${eest_forks[@]}" "$unpacked/eest/blockchain_tests/static"
run "blocktest lanes ethereum-tests, mainnet" "$lanes" blocktest --engine lanes --threads 2 \
  "$fixtures/ethereum-tests/BlockchainTests/ValidBlocks" "$fixtures/ethereum-tests/BlockchainTests/InvalidBlocks" \
  "$fixtures/ethereum-tests/BlockchainTests/TransitionTests" "$fixtures/mainnet"
for threads in 2 4; do
  run "replay lanes threads=$threads" "$lanes" replay --engine lanes --threads "$threads" --samples 1 "$fixtures/mainnet"
done

run "bench smoke" "$lanes" bench --workload raw-transfers erc20 uniswap hot-30 chain \
  --gas 3000000 --samples 1 --threads 1 2 --memory \
  --json "$logs/bench.json" --plot "$logs/bench.svg" "$(pwd)/samples/mainnet/blocks/19929064"
test -s "$logs/bench.json" && test -s "$logs/bench.svg"
run "bench smoke lanes" "$lanes" bench --engine lanes --workload raw-transfers erc20 hot-30 \
  --gas 3000000 --samples 1 --threads 2

# Sum the closing lines: cargo's "N passed; N failed", the statetest "N passed, N failed",
# and the replay summary "N blocks, N passed, N failed".
passed=0; failed=0
for log in "$logs"/*.log; do
  while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    grep -Eo '([0-9]+) passed[;,] ([0-9]+) failed' "$log" | sed -E 's/([0-9]+) passed[;,] ([0-9]+) failed/\1 \2/'
  )
done
echo "all steps ok"
echo "lanes: $passed passed, $failed failed"
