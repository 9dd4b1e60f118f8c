//! The cross-rule index changes no result: for every real event and every rule, indexed
//! matching (candidate rules only, atom bits, the value memo at several sizes) gives exactly
//! the rules that evaluating every rule directly gives.

use sigmatag::load;
use sigmatag_matcher::{JsonBytes, MemoSize, Pipeline};
use sigmatag_suite::{example_load_options, shared_corpus, ACTIVE_RULE_DIRS};

fn compare(
    dirs: Vec<std::path::PathBuf>,
    mapping: &str,
    events: &std::path::Path,
) -> (usize, usize) {
    let opts = example_load_options();
    let loaded = load(&dirs, Pipeline::preset(mapping).unwrap(), &opts).unwrap();
    let set = &loaded.set;
    let text = std::fs::read(events).unwrap();
    let mut a = set.scratch();
    let mut b = set.scratch();
    // The value memo (atoms of long values seen before) with the default sizes, with sizes
    // small enough that entries are evicted and overwritten all the time, and without.
    let mut tiny = set.scratch_with_memo(MemoSize {
        entries: 16,
        bytes: 2048,
        atoms: 256,
    });
    let mut off = set.scratch_with_memo(MemoSize::OFF);
    let (mut records, mut hits) = (0, 0);
    for line in text.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
        let indexed = set.match_record(&JsonBytes(line), &mut a).unwrap().to_vec();
        let direct = set
            .match_record_unindexed(&JsonBytes(line), &mut b)
            .unwrap();
        assert_eq!(
            indexed,
            direct,
            "record {records}: {}",
            String::from_utf8_lossy(line)
        );
        for (name, s) in [("tiny memo", &mut tiny), ("no memo", &mut off)] {
            let got = set.match_record(&JsonBytes(line), s).unwrap();
            assert_eq!(got, &indexed[..], "record {records}, {name}");
        }
        records += 1;
        hits += indexed.len();
    }
    let (found, scanned) = a.memo_counts();
    let (tiny_found, tiny_scanned) = tiny.memo_counts();
    eprintln!(
        "{} rules, {mapping}: {records} records, {hits} rule hits, indexed == direct; \
         long values found in the memo {found} (scanned {scanned}), in the tiny memo \
         {tiny_found} (scanned {tiny_scanned})",
        set.len()
    );
    // The memos were used: these events repeat many of their long values.
    assert!(found > scanned / 2, "{found} {scanned}");
    assert!(tiny_found > 0);
    assert_eq!(off.memo_counts(), (0, 0));
    (records, hits)
}

#[test]
fn windows_rules_evtx_mapping() {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let (records, hits) = compare(
        vec![shared.join("corpus/sigmahq/rules/windows")],
        "evtx",
        &shared.join("corpus/events/windows-evtx.jsonl"),
    );
    assert_eq!(records, 16_794);
    assert!(hits > 1000);
}

#[test]
fn all_active_rules_flat_mapping() {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let dirs = ACTIVE_RULE_DIRS
        .iter()
        .map(|d| shared.join("corpus/sigmahq").join(d))
        .collect();
    let (_, hits) = compare(
        dirs,
        "flat",
        &shared.join("corpus/events/process_creation.jsonl"),
    );
    assert!(hits > 0);
}
