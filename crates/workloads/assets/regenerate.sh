#!/usr/bin/env bash
# Regenerates the bytecode files of this folder from their sources (see README.md).
# Needs node and npm with access to the npm registry. Run from anywhere.
set -euo pipefail
assets="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent @openzeppelin/contracts@4.9.6 @uniswap/v2-core@1.0.1 @uniswap/v2-periphery@1.1.0-beta.0 >/dev/null
for pkg in openzeppelin-contracts-4.9.6 uniswap-v2-core-1.0.1 uniswap-v2-periphery-1.1.0-beta.0; do
  mkdir "$pkg" && tar xzf "$pkg.tgz" -C "$pkg"
done
npm init -y >/dev/null
npm install --silent --no-audit --no-fund solc@0.8.28 >/dev/null
node "$assets/build.js" "$work" "$assets"
