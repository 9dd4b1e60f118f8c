//! The byte counts a regex test checks before the regex runs (`regex_lits::byte_counts`) are
//! necessary conditions: no value a SigmaHQ regex matches may lack them. Checked for every
//! `|re` value of the active SigmaHQ rules that yields counts, against every string value
//! of the process-creation events and of every fifth event of `windows-evtx.jsonl`. Reads
//! `../shared` (see `tests/support`).

use sigmatag_matcher::RegexCountCheck;
use sigmatag_rule::{Alternative, Modifier, Rule, Value};
use sigmatag_suite::{active_rules, example_load_options, shared_corpus};

/// Every `|re` pattern of `rules`, with its `|i`, `|m` and `|s` flags.
fn regexes(rules: &[Rule]) -> Vec<(String, [bool; 3])> {
    let mut out = Vec::new();
    for rule in rules {
        for id in &rule.detection.search_ids {
            for alt in &id.alternatives {
                let Alternative::AllOf(tests) = alt else {
                    continue;
                };
                for t in tests.iter().filter(|t| t.has(Modifier::Re)) {
                    let flags = [
                        t.has(Modifier::ReIgnoreCase),
                        t.has(Modifier::ReMultiLine),
                        t.has(Modifier::ReDotAll),
                    ];
                    for v in &t.values {
                        if let Value::Str(p) = v {
                            out.push((p.clone(), flags));
                        }
                    }
                }
            }
        }
    }
    out
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[test]
fn byte_counts_hold_for_every_match_on_real_values() {
    let Some(shared) = shared_corpus() else {
        return;
    };
    let (rules, _) = active_rules(&shared, &example_load_options());
    let mut patterns = regexes(&rules);
    patterns.sort();
    patterns.dedup();
    let checks: Vec<(String, RegexCountCheck)> = patterns
        .iter()
        .filter_map(|(p, [i, m, s])| RegexCountCheck::new(p, *i, *m, *s).map(|c| (p.clone(), c)))
        .collect();
    eprintln!(
        "{} regexes in the rules, {} with byte counts",
        patterns.len(),
        checks.len()
    );
    assert!(checks.len() >= 10, "too few regexes with counts to test");
    let mut values = Vec::new();
    let events = shared.join("corpus/events");
    for (file, step) in [("process_creation.jsonl", 1), ("windows-evtx.jsonl", 5)] {
        let text = std::fs::read_to_string(events.join(file)).expect("events");
        for line in text.lines().filter(|l| !l.is_empty()).step_by(step) {
            let v: serde_json::Value = serde_json::from_str(line).expect("event");
            strings(&v, &mut values);
        }
    }
    values.sort();
    values.dedup();
    let (mut matched, mut rejected) = (0usize, 0usize);
    for (p, c) in &checks {
        for v in &values {
            let (is_match, holds) = c.check(v.as_bytes());
            assert!(
                holds || !is_match,
                "{p:?} matches {v:?} without its counted bytes"
            );
            matched += usize::from(is_match);
            rejected += usize::from(!holds);
        }
    }
    eprintln!(
        "{} distinct values: {matched} matches (all hold the counts), {rejected} rejected by the counts alone",
        values.len()
    );
    assert!(matched > 0 && rejected > 0);
}
