//! A fixed amount of work for instruction-counting profilers (`valgrind --tool=callgrind`):
//! loads workload A's rules and matches `process_creation.jsonl` `SIGMATAG_PASSES` times
//! (default 5), then tags it once through the CLI loop.
//!
//! ```text
//! cargo bench -p sigmatag-bench --bench profile --no-run
//! valgrind --tool=callgrind target/release/deps/profile-<hash>
//! ```

use std::path::PathBuf;

use sigmatag::{load, tag_fragments, tag_stream};
use sigmatag_matcher::{JsonBytes, MemoSize, Pipeline};

fn main() {
    let shared = std::env::var_os("SIGMATAG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let rules = std::env::var("SIGMATAG_RULES")
        .unwrap_or_else(|_| "corpus/sigmahq/rules/windows/process_creation".into());
    let events = std::env::var("SIGMATAG_EVENTS")
        .unwrap_or_else(|_| "corpus/events/process_creation.jsonl".into());
    let passes: usize = std::env::var("SIGMATAG_PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5);
    let Ok(text) = std::fs::read(shared.join(&events)) else {
        eprintln!("no events at {}", shared.join(&events).display());
        return;
    };
    let loaded = load(
        &[shared.join(&rules)],
        Pipeline::preset(&std::env::var("SIGMATAG_MAPPING").unwrap_or_else(|_| "evtx".into()))
            .expect("preset"),
        &Default::default(),
    )
    .expect("rules");
    let set = &loaded.set;
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    // SIGMATAG_MEMO: "off", or "entries,bytes,atoms" (the value memo's sizes).
    let memo = match std::env::var("SIGMATAG_MEMO").ok().as_deref() {
        None => MemoSize::DEFAULT,
        Some("off") => MemoSize::OFF,
        Some(v) => {
            let n: Vec<usize> = v
                .split(',')
                .map(|x| x.parse().expect("SIGMATAG_MEMO"))
                .collect();
            MemoSize {
                entries: n[0],
                bytes: n[1],
                atoms: n[2],
            }
        }
    };
    let mut scratch = set.scratch_with_memo(memo);
    let (mut hits, mut evaluated) = (0usize, 0usize);
    let mut per_rule = vec![0usize; set.len()];
    for _ in 0..passes {
        for l in &lines {
            if let Ok(h) = set.match_record(&JsonBytes(l), &mut scratch) {
                hits += h.len();
            }
            evaluated += scratch.last_evaluated();
            for r in scratch.last_candidates() {
                per_rule[*r as usize] += 1;
            }
        }
    }
    let mut top: Vec<(usize, usize)> = per_rule.iter().copied().enumerate().collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (r, n) in top.iter().take(12) {
        println!(
            "evaluated for {:5.1}% of records: {} ({})",
            *n as f64 * 100.0 / (lines.len() * passes) as f64,
            set.info(*r).title,
            set.info(*r).source
        );
    }
    if std::env::var_os("SIGMATAG_TIME").is_some() {
        // Matching alone, best of 25 timed passes (the minimum is the figure least disturbed
        // by other work on the machine).
        let mut best = f64::MAX;
        for _ in 0..25 {
            let t = std::time::Instant::now();
            for l in &lines {
                let _ = set.match_record(&JsonBytes(l), &mut scratch);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "matching alone, best of 25 passes: {:.0} ns/record, {:.0} records/s",
            best * 1e9 / lines.len() as f64,
            lines.len() as f64 / best
        );
    }
    if std::env::var_os("SIGMATAG_SLOW").is_some() {
        // The slowest records (best of 9 timings each), with the rules evaluated for them.
        let mut t: Vec<(u64, usize)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let best = (0..9)
                    .map(|_| {
                        let t0 = std::time::Instant::now();
                        let _ = set.match_record(&JsonBytes(l), &mut scratch);
                        t0.elapsed().as_nanos() as u64
                    })
                    .min()
                    .unwrap_or(0);
                (best, i)
            })
            .collect();
        t.sort_unstable();
        let p = |q: f64| t[((t.len() - 1) as f64 * q) as usize].0;
        println!(
            "per record (best of 9): p50 {} ns, p99 {} ns, max {} ns",
            p(0.5),
            p(0.99),
            p(1.0)
        );
        let slow: Vec<&[u8]> = t
            .iter()
            .rev()
            .take(t.len() / 50)
            .map(|&(_, i)| lines[i])
            .collect();
        println!("slowest 2%: {}", set.debug_time_phases(&slow, memo));
        print!("slowest 2%, {}", set.debug_rule_costs(&slow, memo));
        for &(ns, i) in t.iter().rev().take(8) {
            let _ = set.match_record(&JsonBytes(lines[i]), &mut scratch);
            let names: Vec<&str> = scratch
                .last_candidates()
                .iter()
                .map(|r| set.info(*r as usize).title.as_str())
                .collect();
            println!("{ns} ns, {} bytes, evaluated {names:?}", lines[i].len());
        }
    }
    if std::env::var_os("SIGMATAG_RULE_COSTS").is_some() {
        print!("{}", set.debug_rule_costs(&lines, memo));
    }
    if std::env::var_os("SIGMATAG_PHASES").is_some() {
        println!("{}", set.debug_time_phases(&lines, memo));
    }
    if std::env::var_os("SIGMATAG_STATS").is_some() {
        println!("{}", set.debug_index_stats(&lines, memo));
    }
    let (memo_hits, memo_misses) = scratch.memo_counts();
    println!(
        "value memo: {memo_hits} long values found remembered, {memo_misses} scanned ({:.1}% found)",
        memo_hits as f64 * 100.0 / (memo_hits + memo_misses).max(1) as f64
    );
    let mut out = Vec::with_capacity(text.len() * 2);
    let fragments = tag_fragments(set);
    // SIGMATAG_TAG_PASSES: how many times to run the CLI's tag loop over the events (default 1;
    // more to profile the end-to-end path).
    let tag_passes: usize = std::env::var("SIGMATAG_TAG_PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    for _ in 1..tag_passes {
        out.clear();
        tag_stream(set, &text[..], &mut out, b"\"sigma\"", &fragments).expect("tag");
    }
    out.clear();
    let stats = tag_stream(set, &text[..], &mut out, b"\"sigma\"", &fragments).expect("tag");
    println!(
        "{} rules, {} records x {passes}: {hits} hits, {:.1} rules evaluated per record; tagged {}",
        set.len(),
        lines.len(),
        evaluated as f64 / (lines.len() * passes) as f64,
        stats.matched
    );
}
