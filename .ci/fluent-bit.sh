#!/usr/bin/env bash
# The Fluent Bit plugins: build the filter_wasm module (wasm32-wasip1, release) and the
# native filter (.so), then run the host emulator tests (plugin/fluent-bit-tests, a
# workspace of its own so its wasm runtime never enters the core crates' builds).
#   bash .ci/fluent-bit.sh           build + tests (what CI runs)
#   bash .ci/fluent-bit.sh --bench   build + the per-record benchmark (docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)
step() { echo "== fluent-bit: $* ($(( $(date +%s) - start ))s)"; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"

step "toolchain"
rustup target add wasm32-wasip1 >/dev/null

step "filter_wasm module (wasm32-wasip1, release, no debug info)"
CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo build --release --target wasm32-wasip1 -p sigmatag-fluent-bit
wasm="$target/wasm32-wasip1/release/sigmatag_fluent_bit.wasm"
cp "$wasm" "$target/wasm32-wasip1/release/sigmatag.wasm"
ls -l "$target/wasm32-wasip1/release/sigmatag.wasm"

step "native filter (flb-filter_sigmatag.so)"
cargo build --release -p sigmatag-fluent-bit-native
cp "$target/release/libflb_filter_sigmatag.so" "$target/release/flb-filter_sigmatag.so"

export SIGMATAG_WASM="$target/wasm32-wasip1/release/sigmatag.wasm"
export SIGMATAG_FLB_SO="$target/release/flb-filter_sigmatag.so"
tests=(--manifest-path plugin/fluent-bit-tests/Cargo.toml)
if [ "${1:-}" = "--bench" ]; then
  step "benchmark"
  cargo run --release "${tests[@]}" --bin fluent-bit-bench
else
  step "emulator tests: format, lint"
  cargo fmt "${tests[@]}" -- --check
  cargo clippy "${tests[@]}" --all-targets -- -D warnings
  step "emulator tests"
  cargo test --release "${tests[@]}"
fi
step "done"
