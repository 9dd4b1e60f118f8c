//! Index triggers must never hide a match: numbers written in non-canonical form, regexes
//! found through inner literals, conjunctive clauses, one-byte literals; nor may a scratch
//! (and its value memo) carry one rule set's atoms into another's results.

use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};

fn set(rule: &str) -> RuleSet {
    let rules: Vec<_> = sigmatag_rule::parse_rules(rule, "inline", &Default::default())
        .into_iter()
        .map(|r| r.expect("rule parses"))
        .collect();
    let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn both(set: &RuleSet, record: &str) -> (bool, bool) {
    let mut a = set.scratch();
    let mut b = set.scratch();
    let indexed = !set
        .match_record(&JsonBytes(record.as_bytes()), &mut a)
        .expect("record")
        .is_empty();
    let direct = !set
        .match_record_unindexed(&JsonBytes(record.as_bytes()), &mut b)
        .expect("record")
        .is_empty();
    (indexed, direct)
}

const HEAD: &str = "title: t\nid: x\nlogsource: {product: windows}\ndetection:\n";

#[test]
fn integers_in_any_json_spelling() {
    let s = set(&format!(
        "{HEAD}  sel:\n    EventID: 4688\n  condition: sel\n"
    ));
    for (record, want) in [
        (r#"{"EventID": 4688}"#, true),
        (r#"{"EventID": 4688.0}"#, true),
        (r#"{"EventID": 4.688e3}"#, true),
        (r#"{"EventID": "4688"}"#, true),
        (r#"{"EventID": 46880}"#, false),
        (r#"{"EventID": 4689}"#, false),
        (r#"{"Other": 4688}"#, false),
    ] {
        assert_eq!(both(&s, record), (want, want), "{record}");
    }
    let zero = set(&format!("{HEAD}  sel:\n    Level: 0\n  condition: sel\n"));
    assert_eq!(both(&zero, r#"{"Level": -0}"#), (true, true));
    assert_eq!(both(&zero, r#"{"Level": 0}"#), (true, true));
}

#[test]
fn regexes_through_inner_literals_and_clauses() {
    let s = set(&format!(
        "{HEAD}  sel:\n    CommandLine|re: 'cmd.{{0,5}}(?:/c|/r).+powershell'\n  other:\n    Image|endswith: '\\cmd.exe'\n  condition: sel and other\n"
    ));
    for (record, want) in [
        (
            r#"{"CommandLine": "cmd /c echo x | powershell", "Image": "C:\\x\\cmd.exe"}"#,
            true,
        ),
        (
            r#"{"CommandLine": "cmd /c echo x | powershell", "Image": "C:\\x\\a.exe"}"#,
            false,
        ),
        (
            r#"{"CommandLine": "cmd /k echo x | powershell", "Image": "C:\\x\\cmd.exe"}"#,
            false,
        ),
        (
            r#"{"CommandLine": "CMD /C POWERSHELL", "Image": "cmd.exe"}"#,
            false,
        ),
    ] {
        assert_eq!(both(&s, record), (want, want), "{record}");
    }
    let backtick = set(&format!(
        "{HEAD}  sel:\n    CommandLine|re: '\\w+`\\w+'\n  condition: sel\n"
    ));
    assert_eq!(
        both(&backtick, r#"{"CommandLine": "IN`V`oke"}"#),
        (true, true)
    );
    assert_eq!(
        both(&backtick, r#"{"CommandLine": "invoke"}"#),
        (false, false)
    );
}

#[test]
fn one_byte_literals_still_match() {
    let s = set(&format!(
        "{HEAD}  sel:\n    CommandLine|contains: ' '\n    Image|endswith: 'x'\n  condition: sel\n"
    ));
    assert_eq!(
        both(&s, r#"{"CommandLine": "a b", "Image": "x"}"#),
        (true, true)
    );
    assert_eq!(
        both(&s, r#"{"CommandLine": "ab", "Image": "x"}"#),
        (false, false)
    );
}

/// A scratch made for one rule set and used with another is remade for it: the memo of the
/// first set (whose atom ids mean other literals in the second) must not leak into the
/// second's results, nor may its smaller tables panic.
#[test]
fn a_scratch_of_another_set_is_remade() {
    let first = set(&format!(
        "{HEAD}  sel:\n    CommandLine|contains: 'mimikatz'\n  condition: sel\n"
    ));
    let second = set(&format!(
        "{HEAD}  sel:\n    CommandLine|contains: 'psexec'\n  condition: sel\n"
    ));
    let record =
        r#"{"CommandLine": "c:\\tools\\mimikatz.exe privilege::debug", "Image": "c:\\x.exe"}"#;
    let mut s = first.scratch();
    // Twice, so that the first set's memo holds the command line.
    for _ in 0..2 {
        let hits = first
            .match_record(&JsonBytes(record.as_bytes()), &mut s)
            .unwrap();
        assert_eq!(hits, &[0]);
    }
    let hits = second
        .match_record(&JsonBytes(record.as_bytes()), &mut s)
        .unwrap()
        .to_vec();
    let fresh = second
        .match_record(&JsonBytes(record.as_bytes()), &mut second.scratch())
        .unwrap()
        .to_vec();
    assert_eq!(hits, fresh);
    assert!(hits.is_empty());
    // And back.
    let hits = first
        .match_record(&JsonBytes(record.as_bytes()), &mut s)
        .unwrap();
    assert_eq!(hits, &[0]);
}

/// Short literals no rule registers on are searched for only when a triggered rule's other
/// clauses or a candidate's tests need them: found right in secondary clauses, under `not`,
/// in arrays and numbers, shared by two rules, and forgotten between records (one scratch
/// over a sequence where they hold and do not, in turn).
#[test]
fn short_literals_found_on_demand() {
    let rules = format!(
        "{HEAD}  launcher:\n    CommandLine|contains: 'powershell'\n  flag:\n    CommandLine|contains: ' -e'\n  condition: launcher and flag\n---\n\
         title: t2\nid: y\nlogsource: {{product: windows}}\ndetection:\n  launcher:\n    CommandLine|contains: 'rundll32'\n  flag:\n    CommandLine|contains:\n      - ' -e'\n      - '/q'\n  filter:\n    Port|contains: '44'\n  condition: launcher and flag and not filter\n"
    );
    let s = set(&rules);
    let mut scratch = s.scratch();
    let mut direct = s.scratch();
    let records = [
        (r#"{"CommandLine": "powershell -enc AAAA"}"#, vec![0]),
        (r#"{"CommandLine": "powershell.exe x"}"#, vec![]),
        (r#"{"CommandLine": ["x", "POWERSHELL -E y"]}"#, vec![0]),
        (r#"{"CommandLine": "rundll32 /q", "Port": 8080}"#, vec![1]),
        (r#"{"CommandLine": "rundll32 /q", "Port": 443}"#, vec![]),
        (
            r#"{"CommandLine": "rundll32 -e powershell -e", "Port": "44"}"#,
            vec![0],
        ),
        (r#"{"CommandLine": "rundll32 x", "Port": 1}"#, vec![]),
        (
            r#"{"CommandLine": "powershell -e rundll32", "Port": 1}"#,
            vec![0, 1],
        ),
        (r#"{"CommandLine": "powershell rundll32 /Q"}"#, vec![1]),
    ];
    for _ in 0..2 {
        for (record, want) in &records {
            let got = s
                .match_record(&JsonBytes(record.as_bytes()), &mut scratch)
                .expect("record")
                .to_vec();
            let unindexed = s
                .match_record_unindexed(&JsonBytes(record.as_bytes()), &mut direct)
                .expect("record")
                .to_vec();
            assert_eq!(&got, want, "{record}");
            assert_eq!(got, unindexed, "{record}");
        }
    }
}
