#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each for a bounded time.
# Fails on any crash, panic, leak, out-of-memory or per-input timeout (libFuzzer's exit code).
#
#   FUZZ_SECONDS   seconds per target (default 45: 4 targets, 2 at a time, ~90 s of fuzzing)
#   FUZZ_JOBS      targets run side by side (default 2, the CI machine's cores)
#   FUZZ_TARGETS   space-separated subset (default: every target, `cargo fuzz list`)
#
# Seeds: fuzz/seeds/<target>/ (small, synthetic, committed). When ../shared (or
# $SIGMATAG_SHARED) is present, a deterministic sample of SigmaHQ rules and real events is
# added to the working corpus at run time (fuzz/corpus/, git-ignored, never committed).
# Crashes land in fuzz/artifacts/<target>/; reproduce with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${FUZZ_SECONDS:-45}
jobs=${FUZZ_JOBS:-2}
start=$(date +%s)
say() { echo "== fuzz: $* ($(( $(date +%s) - start ))s)"; }

say "toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    # Cached by CI's cargo home; only installed when missing.
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz --version

cd fuzz
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

say "build"
# Release with debug assertions and AddressSanitizer (cargo-fuzz's defaults).
cargo +nightly fuzz build

say "seeds"
shared=${SIGMATAG_SHARED:-$root/../shared}
for t in $targets; do
    mkdir -p "corpus/$t"
done
if [ -d "$shared/corpus/sigmahq/rules" ]; then
    # Every 40th SigmaHQ rule (sorted, so the sample is stable) for the rule loader.
    find "$shared/corpus/sigmahq/rules" -name '*.yml' | sort | awk 'NR % 40 == 1' |
        while read -r f; do cp "$f" "corpus/rule_yaml/sigmahq-$(basename "$f")" 2>/dev/null || true; done
    # Their conditions, as inputs of the condition target (identifiers on the first line).
    n=0
    find "$shared/corpus/sigmahq/rules" -name '*.yml' | sort | awk 'NR % 40 == 1' |
        while read -r f; do
            cond=$(grep -m1 -E '^\s+condition:' "$f" | sed -E 's/^\s+condition:\s*//') || continue
            ids=$(awk '/^detection:/{d=1;next} d&&/^[^ ]/{d=0} d&&/^    [A-Za-z0-9_]+:/{sub(/^ +/,"");sub(/:.*/,"");printf "%s ",$0}' "$f")
            n=$((n + 1))
            printf '%s\n%s' "$ids" "$cond" > "corpus/condition/sigmahq-$n"
        done
fi
if [ -d "$shared/corpus/events" ]; then
    # 100 evenly spaced lines of each event file, one record per corpus file.
    for ev in "$shared"/corpus/events/*.jsonl; do
        total=$(wc -l < "$ev")
        step=$(( total / 100 + 1 ))
        awk -v s="$step" -v b="$(basename "$ev" .jsonl)" -v dir="corpus/json_record" \
            'NR % s == 1 && length($0) < 65536 { f = dir "/" b "-" NR; printf "%s", $0 > f; close(f) }' "$ev"
    done
fi

run_one() {
    local t=$1
    local max_len=4096
    [ "$t" = rule_yaml ] && max_len=65536
    [ "$t" = json_record ] && max_len=65536
    mkdir -p "artifacts/$t"
    # -timeout: one input taking over 10 s counts as a hang; -rss_limit_mb bounds memory.
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 >"target/logs/$t.log" 2>&1
}

mkdir -p target/logs
say "run ${secs}s per target, $jobs at a time: $(echo $targets)"
pids=()
names=()
failed=0
for t in $targets; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        if ! wait "${pids[0]}"; then failed=1; echo "FAILED: ${names[0]}"; fi
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then failed=1; echo "FAILED: ${names[$i]}"; fi
done

for t in $targets; do
    execs=$(grep -m1 'stat::number_of_executed_units' "target/logs/$t.log" | awk '{print $2}' || true)
    echo "   $t: ${execs:-?} executions"
done
if [ "$failed" -ne 0 ]; then
    for t in $targets; do
        if grep -qE 'ERROR: libFuzzer|panicked|deadly signal|==ERROR|Test unit written' "target/logs/$t.log"; then
            echo "---- fuzz/target/logs/$t.log (tail) ----"
            tail -n 60 "target/logs/$t.log"
            ls -l "artifacts/$t" || true
        fi
    done
    say "FAILED: a target crashed (artifacts in fuzz/artifacts/, logs in fuzz/target/logs/)"
    exit 1
fi
say "done, no crash"
