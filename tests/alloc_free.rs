//! The hot path allocates nothing: after a warm-up pass, matching real events against the
//! whole SigmaHQ process_creation rule set (and all Windows rules) makes zero heap
//! allocations, proven with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sigmatag_matcher::{JsonBytes, MemoSize, Pipeline, RuleSet};
use sigmatag_rule::{LoadOptions, Rule};
use sigmatag_suite::{active_rules, shared_corpus};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(|c| c.get())
}

fn check(keep: &dyn Fn(&Rule) -> bool, mapping: &str, events: &str) {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let (rules, files) = active_rules(&shared, &LoadOptions::default());
    let rules: Vec<Rule> = rules.into_iter().filter(|r| keep(r)).collect();
    let (set, rejected) = RuleSet::compile(&rules, Pipeline::preset(mapping).unwrap());
    let loaded = sigmatag::Loaded {
        set,
        rejected,
        files,
    };
    assert!(loaded.set.len() > 10);
    let text = std::fs::read(shared.join("corpus/events").join(events)).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    // The default value memo (after the warm-up every long value is found there), one so
    // small that values are scanned and remembered all the time, and none.
    let memos = [
        ("default memo", MemoSize::DEFAULT),
        (
            "tiny memo",
            MemoSize {
                entries: 16,
                bytes: 2048,
                atoms: 256,
            },
        ),
        ("no memo", MemoSize::OFF),
    ];
    let mut matched = 0usize;
    for (name, memo) in memos {
        let mut scratch = loaded.set.scratch_with_memo(memo);
        // Warm-up: buffers grow to the largest record, regex caches fill.
        for l in &lines {
            let _ = loaded.set.match_record(&JsonBytes(l), &mut scratch);
        }
        let memo_before = scratch.memo_counts();
        let mut pass_matched = 0usize;
        let before = allocations();
        for l in &lines {
            if let Ok(hits) = loaded.set.match_record(&JsonBytes(l), &mut scratch) {
                pass_matched += hits.len();
            }
        }
        let after = allocations();
        let memo_after = scratch.memo_counts();
        eprintln!(
            "{} rejected; {} rules x {} records, {name}: {} matches, {} allocations after \
             warm-up; memo found {} and remembered {} long values",
            loaded.rejected.len(),
            loaded.set.len(),
            lines.len(),
            pass_matched,
            after - before,
            memo_after.0 - memo_before.0,
            memo_after.1 - memo_before.1,
        );
        assert_eq!(after - before, 0, "allocations on the hot path ({name})");
        matched += pass_matched;
        if name == "tiny memo" {
            assert!(
                memo_after.1 > memo_before.1,
                "the tiny memo keeps remembering"
            );
        }
    }
    assert!(matched > 0, "the workload must exercise matches");
}

#[test]
fn process_creation_rules_allocate_nothing() {
    // Every Windows process_creation rule of the active folders.
    let keep = |r: &Rule| {
        r.logsource.category.as_deref() == Some("process_creation")
            && r.logsource.product.as_deref() == Some("windows")
    };
    check(&keep, "evtx", "process_creation.jsonl");
}

#[test]
fn all_windows_rules_allocate_nothing() {
    check(
        &|r: &Rule| r.logsource.product.as_deref() == Some("windows"),
        "evtx",
        "windows-evtx.jsonl",
    );
}
