//! Fuzz target: the rule loader (YAML -> typed rules -> compiled set), on arbitrary text.
//!
//! Properties: nothing panics, hangs or exhausts memory; every rule the parser accepts
//! either compiles or is rejected with a reason; a rejection always names a location;
//! the reference oracle's validation of a rule never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigmatag_matcher::{Pipeline, RuleSet};
use sigmatag_rule::{parse_rules, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut rules = Vec::new();
    for r in parse_rules(text, "fuzz.yml", &LoadOptions::default()) {
        match r {
            Ok(rule) => rules.push(rule),
            Err(e) => {
                assert!(
                    e.loc.line >= 1 && e.loc.col >= 1,
                    "error without location: {e}"
                );
                assert!(!e.reason.is_empty(), "error without reason: {e}");
            }
        }
    }
    if rules.is_empty() {
        return;
    }
    for rule in &rules {
        let _ = sigmatag_reference::validate(rule);
    }
    // One pipeline per input (compiling is the slow part): flat, or evtx for its logsource
    // variants, chosen by the input's length.
    let pipeline = if data.len() % 2 == 0 {
        Pipeline::flat()
    } else {
        Pipeline::preset("evtx").expect("preset")
    };
    {
        let (set, errors) = RuleSet::compile(&rules, pipeline);
        assert_eq!(set.len() + errors.len(), rules.len());
        for e in &errors {
            assert!(!e.reason.is_empty(), "compile error without reason: {e}");
        }
        // Exercise the compiled set once so its regexes/patterns are actually used.
        let mut scratch = set.scratch();
        let _ = set.match_record(
            &sigmatag_matcher::JsonBytes(
                br#"{"Image":"C:\\x\\iexpress.exe","CommandLine":"a /n b","EventID":1}"#,
            ),
            &mut scratch,
        );
    }
});
