#!/usr/bin/env bash
# Unpacks the compressed test suites of ../shared/fixtures into .fixtures-unpacked/ (ignored by
# git). Idempotent: an archive already unpacked (marker file present) is skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="${LANES_FIXTURES:-$here/../shared/fixtures}"
out="$here/.fixtures-unpacked"
mkdir -p "$out"
if ! command -v zstd >/dev/null 2>&1; then
  echo "zstd is missing: install it (apt-get install -y zstd)" >&2
  exit 1
fi
unpack() {
  local archive="$1" dest="$2"
  local marker="$dest/.unpacked-$(basename "$archive")"
  [ -f "$marker" ] && return 0
  mkdir -p "$dest"
  zstd -dc --long=27 "$archive" | tar -x -C "$dest"
  touch "$marker"
}
# In parallel, except archives that unpack into the same folders (tar racing tar on a shared
# parent directory fails): those go one after the other. A failure fails the script.
pids=()
unpack "$fixtures/ethereum-tests/legacy/GeneralStateTests-v13.3-multifork.tar.zst" "$out/v13.3" &
pids+=($!)
{
  unpack "$fixtures/eest/state_tests.tar.zst" "$out/eest"
  unpack "$fixtures/eest/state_tests_static.tar.zst" "$out/eest"
} &
pids+=($!)
{
  unpack "$fixtures/eest/blockchain_tests.tar.zst" "$out/eest"
  unpack "$fixtures/eest/blockchain_tests_static.tar.zst" "$out/eest"
} &
pids+=($!)
for pid in "${pids[@]}"; do
  wait "$pid"
done
echo "$out"
