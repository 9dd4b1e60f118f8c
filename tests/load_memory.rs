//! Peak memory with every active SigmaHQ rule loaded: loading and compiling the 3,780 rules,
//! then tagging the real process-creation events through the CLI loop, stays under 64 MB of
//! resident memory (the target of the "Speed" issue; docs/performance.md).
//!
//! This file holds one test so that its process measures nothing else. Linux only (reads
//! `VmHWM` from `/proc/self/status`). Reads `../shared/corpus` (or `$SIGMATAG_SHARED/corpus`);
//! fails under `CI=true` when it is missing.

use std::path::PathBuf;

use sigmatag::{load, tag_fragments, tag_stream};
use sigmatag_matcher::Pipeline;
use sigmatag_suite::{example_load_options, shared_dir, ACTIVE_RULE_DIRS};

/// Peak resident memory of this process so far, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn all_active_rules_stay_under_64_mb() {
    if peak_rss_kib().is_none() {
        eprintln!("skipped: no /proc/self/status VmHWM on this system");
        return;
    }
    let Some(shared) = shared_dir("corpus/sigmahq") else {
        return;
    };
    let before = peak_rss_kib().unwrap();
    let dirs: Vec<PathBuf> = ACTIVE_RULE_DIRS
        .iter()
        .map(|d| shared.join("corpus/sigmahq").join(d))
        .collect();
    let opts = example_load_options();
    let loaded = load(&dirs, Pipeline::flat(), &opts).unwrap();
    assert_eq!(loaded.set.len(), 3780, "{:?}", loaded.rejected.first());
    let after_load = peak_rss_kib().unwrap();

    let events = std::fs::read(shared.join("corpus/events/process_creation.jsonl")).unwrap();
    let fragments = tag_fragments(&loaded.set);
    let stats = tag_stream(
        &loaded.set,
        &events[..],
        std::io::sink(),
        b"\"sigma\"",
        &fragments,
    )
    .unwrap();
    assert_eq!(stats.records, 1350);
    assert!(stats.matched > 0);
    drop(events);
    let peak = peak_rss_kib().unwrap();
    eprintln!(
        "peak RSS: {} MiB at start, {} MiB after loading 3,780 rules, {} MiB after tagging",
        before >> 10,
        after_load >> 10,
        peak >> 10
    );
    assert!(peak < 64 << 10, "peak RSS {} MiB", peak >> 10);
}
