//! Fuzz target: the condition parser.
//!
//! Input: the first line lists search identifiers (space separated), the rest is the
//! condition text. Properties: no panic, no stack overflow (nesting is bounded); an
//! accepted condition names only listed identifiers; an error's offset lies inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigmatag_rule::condition::parse_condition;
use sigmatag_rule::Condition;

fn names(c: &Condition, out: &mut Vec<String>) {
    match c {
        Condition::Id(n) => out.push(n.clone()),
        Condition::Not(x) => names(x, out),
        Condition::And(xs) | Condition::Or(xs) => xs.iter().for_each(|x| names(x, out)),
        Condition::Of { ids, .. } => out.extend(ids.iter().cloned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, cond) = text.split_once('\n').unwrap_or(("sel filter _aux", text));
    let ids: Vec<String> = head
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    match parse_condition(cond, &ids) {
        Ok(c) => {
            let mut used = Vec::new();
            names(&c, &mut used);
            assert!(!used.is_empty(), "a condition that names nothing: {cond:?}");
            for n in used {
                assert!(ids.contains(&n), "condition names {n:?}, not among {ids:?}");
            }
        }
        Err(e) => assert!(e.offset <= cond.len(), "offset {} past the text", e.offset),
    }
});
