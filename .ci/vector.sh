#!/usr/bin/env bash
# Vector routes (issue 6): the Lua module under a real lua5.4, the adapter core on vrl
# values, the `sigmatag serve` sidecar over loopback. Called from .ci/run; also runs alone.
# `.ci/vector.sh install` only installs lua5.4: the workspace test step (`cargo test
# --workspace`) runs tests/lua54.rs too and, under CI=true, fails without the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)
step() { echo "== vector: $* ($(( $(date +%s) - start ))s)"; }

step "lua5.4"
if ! command -v lua5.4 >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq lua5.4 >/dev/null
fi
lua5.4 -v
[ "${1:-}" = install ] && exit 0

step "format of the out-of-tree sigma_tag transform (not built: it compiles all of Vector)"
rustfmt --edition 2021 --check plugin/vector-transform/src/main.rs

step "adapter core on vrl values, Lua module under lua5.4"
cargo test --release -p sigmatag-vector -p sigmatag-vector-lua

step "sidecar over loopback"
cargo test --release -p sigmatag --test serve

step "done"
