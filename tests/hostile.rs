//! Hostile input: records and rules built to break a log-path component. Each case states
//! its expected outcome, checked through the CLI's contract (`sigmatag tag`): a record is
//! written out byte-identical (counted as unparsable when it cannot be read) or tagged by
//! splicing; a rule is loaded or rejected with a reason. No case can hang: every input is
//! finite and every engine on the path is linear-time or bounded by a documented limit, so
//! a regression shows up as a CI timeout, not as a flaky wall-clock assertion.
//!
//! See docs/security.md for the threat model and the limits table.

use sigmatag::{cap_rules, splice_tag, tag_fragments, MAX_RULES};
use sigmatag_matcher::json::{MAX_DEPTH, MAX_RECORD_BYTES};
use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};
use sigmatag_rule::{parse_rules, LoadOptions, Rule, RuleError};

const RULES: &str = r#"
title: hostile records
id: 00000000-0000-0000-0000-00000000000a
logsource: {product: windows}
detection:
  sel_img:
    Image|endswith: '\iexpress.exe'
  sel_cli:
    CommandLine|contains|windash: ' /n '
  condition: all of sel_*
level: high
---
title: keywords
id: 00000000-0000-0000-0000-00000000000b
logsource: {product: windows}
detection:
  keywords:
    - 'evil'
  condition: keywords
---
title: odd field names
id: 00000000-0000-0000-0000-00000000000c
logsource: {product: windows}
detection:
  dotted:
    a.b: 'x'
  spaced:
    'key with spaces': 'v'
  big:
    Big: '18446744073709551616123'
  condition: dotted or spaced or big
---
title: catastrophic-looking regexes
id: 00000000-0000-0000-0000-00000000000d
logsource: {product: windows}
detection:
  sel:
    - R|re: '(a+)+$'
    - R|re: '(a|aa)*b'
    - R|re: '(.*a){20}x'
  condition: sel
"#;

const SEED: usize = 0;
const KEYWORD: usize = 1;
const ODD: usize = 2;
const REGEX: usize = 3;

struct Cli {
    set: RuleSet,
    fragments: Vec<Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Written byte-identical, no rule matched.
    Unchanged,
    /// Written byte-identical and counted as unparsable.
    Unparsable,
    /// Tagged with these rules.
    Tagged(Vec<u32>),
}

fn cli() -> Cli {
    let rules: Vec<Rule> = parse_rules(RULES, "hostile.yml", &LoadOptions::default())
        .into_iter()
        .map(|r| r.expect("fixture rule loads"))
        .collect();
    let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
    assert!(errors.is_empty(), "{errors:?}");
    let fragments = tag_fragments(&set);
    Cli { set, fragments }
}

impl Cli {
    /// One line through the CLI's contract (as `sigmatag tag` does it): the line out and
    /// what happened. Checks the byte-level guarantees on the way.
    fn run(&self, line: &[u8]) -> Outcome {
        let mut scratch = self.set.scratch();
        let mut out = Vec::new();
        let outcome = match self.set.match_record(&JsonBytes(line), &mut scratch) {
            Ok([]) => {
                out.extend_from_slice(line);
                Outcome::Unchanged
            }
            Ok(hits) => {
                splice_tag(line, b"\"sigma\"", hits, &self.fragments, &mut out);
                Outcome::Tagged(hits.to_vec())
            }
            Err(_) => {
                out.extend_from_slice(line);
                Outcome::Unparsable
            }
        };
        match &outcome {
            Outcome::Tagged(_) => {
                // Nothing of the original line is lost: it is the output minus the splice.
                let close = line.iter().rposition(|b| *b == b'}').expect("an object");
                assert_eq!(&out[..close], &line[..close], "prefix changed");
                assert!(out.ends_with(&line[close..]), "suffix changed");
                assert!(out.len() > line.len());
            }
            _ => assert_eq!(out, line, "an untagged line must be byte-identical"),
        }
        outcome
    }
}

fn tagged(rules: &[usize]) -> Outcome {
    Outcome::Tagged(rules.iter().map(|r| *r as u32).collect())
}

const MATCH: &str = r#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress.exe /N /Q /M C:\\ProgramData\\x.sed"}"#;

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

#[test]
fn baseline_record_is_tagged() {
    assert_eq!(cli().run(MATCH.as_bytes()), tagged(&[SEED]));
}

#[test]
fn invalid_utf8_passes_through_unparsable() {
    let c = cli();
    // Expected: byte-identical, counted as unparsable (never "fixed" to U+FFFD and tagged).
    for line in [
        &b"{\"Image\":\"\xff\xfe\",\"k\":\"evil\"}"[..],
        b"{\"k\":\"evil \xc3\x28\"}",
        b"{\"k\":\"evil\xed\xa0\x80\"}", // a UTF-8-encoded surrogate
        b"{\"k\":\"evil\xf8\x88\x80\x80\x80\"}",
        b"\xef\xbb\xbf{\"k\":\"evil\"}", // a BOM is not JSON either
    ] {
        assert_eq!(c.run(line), Outcome::Unparsable, "{line:?}");
    }
}

#[test]
fn truncated_json_passes_through_unparsable() {
    let c = cli();
    // Expected: every proper prefix of a matching record is unparsable and byte-identical.
    let full = MATCH.as_bytes();
    for n in 0..full.len() {
        assert_eq!(
            c.run(&full[..n]),
            Outcome::Unparsable,
            "prefix of {n} bytes"
        );
    }
    assert_eq!(c.run(full), tagged(&[SEED]));
}

#[test]
fn duplicate_keys_are_all_seen() {
    let c = cli();
    // Expected: the matcher sees every occurrence of a key (docs/security.md), so the
    // malicious value cannot be hidden behind a benign duplicate, in either order.
    let evil = r#""CommandLine":"iexpress.exe /N /Q /M C:\\ProgramData\\x.sed""#;
    let benign = r#""CommandLine":"notepad.exe""#;
    let img = r#""Image":"C:\\x\\iexpress.exe""#;
    for line in [
        format!("{{{img},{benign},{evil}}}"),
        format!("{{{img},{evil},{benign}}}"),
        format!("{{{evil},{img},{benign},{benign}}}"),
    ] {
        assert_eq!(c.run(line.as_bytes()), tagged(&[SEED]), "{line}");
    }
    // Also under a field nobody reads first.
    assert_eq!(c.run(br#"{"k":"fine","k":"evil"}"#), tagged(&[KEYWORD]));
}

#[test]
fn deep_nesting_is_bounded() {
    let c = cli();
    // Expected: up to MAX_DEPTH (128) nested containers are read; deeper is unparsable
    // (the reader's recursion stops at the limit, so 1,000,000 levels cannot overflow the stack).
    let nest = |levels: usize| {
        // The top-level object is level 1.
        let inner = levels - 1;
        format!(
            "{{\"k\":{}\"evil\"{}}}",
            "[".repeat(inner),
            "]".repeat(inner)
        )
    };
    assert_eq!(c.run(nest(MAX_DEPTH).as_bytes()), tagged(&[KEYWORD]));
    assert_eq!(c.run(nest(MAX_DEPTH + 1).as_bytes()), Outcome::Unparsable);
    let huge = format!("{{\"k\":{}", "[".repeat(1_000_000));
    assert_eq!(c.run(huge.as_bytes()), Outcome::Unparsable);
    let objects = "{\"a\":".repeat(1_000_000);
    assert_eq!(c.run(objects.as_bytes()), Outcome::Unparsable);
}

#[test]
fn ten_megabyte_strings_are_matched() {
    let c = cli();
    // Expected: a 10 MB value is within the 16 MiB record limit and is matched normally.
    let pad = "A".repeat(10_000_000);
    let line = format!(
        r#"{{"Image":"C:\\x\\iexpress.exe","CommandLine":"{pad} /n C:\\ProgramData\\x.sed"}}"#
    );
    assert!(line.len() < MAX_RECORD_BYTES);
    assert_eq!(c.run(line.as_bytes()), tagged(&[SEED]));
    let key = format!(r#"{{"{pad}":"evil"}}"#);
    assert_eq!(c.run(key.as_bytes()), tagged(&[KEYWORD]));
}

#[test]
fn records_over_the_size_limit_pass_through_unparsable() {
    let c = cli();
    // Expected: a record over 16 MiB is not read at all: byte-identical, unparsable, even
    // though it would match.
    let pad = "A".repeat(MAX_RECORD_BYTES);
    let line = format!(r#"{{"k":"evil","pad":"{pad}"}}"#);
    assert_eq!(c.run(line.as_bytes()), Outcome::Unparsable);
    let mut scratch = c.set.scratch();
    let err = c
        .set
        .match_record(&JsonBytes(line.as_bytes()), &mut scratch)
        .unwrap_err();
    assert!(err.to_string().contains("16 MiB"), "{err}");
}

#[test]
fn nan_and_infinity_are_not_json() {
    let c = cli();
    // Expected: unparsable, byte-identical (JSON has no NaN/Infinity literals).
    for line in [
        r#"{"k":"evil","n":NaN}"#,
        r#"{"k":"evil","n":Infinity}"#,
        r#"{"k":"evil","n":-Infinity}"#,
        r#"{"k":"evil","n":nan}"#,
        r#"{"k":"evil","n":+1}"#,
        r#"{"k":"evil","n":0x10}"#,
        r#"{"k":"evil","n":.5}"#,
    ] {
        assert_eq!(c.run(line.as_bytes()), Outcome::Unparsable, "{line}");
    }
}

#[test]
fn numbers_beyond_u64_keep_their_text() {
    let c = cli();
    // Expected: read (not an error); a number's text is as written (docs/semantics.md).
    assert_eq!(c.run(br#"{"Big":18446744073709551616123}"#), tagged(&[ODD]));
    for line in [
        r#"{"k":"evil","n":18446744073709551616}"#,
        r#"{"k":"evil","n":-99999999999999999999999999999999999999999}"#,
        r#"{"k":"evil","n":1e400}"#,
        r#"{"k":"evil","n":-1e-400}"#,
        r#"{"k":"evil","n":123456789012345678901234567890.5e99999}"#,
    ] {
        assert_eq!(c.run(line.as_bytes()), tagged(&[KEYWORD]), "{line}");
    }
}

#[test]
fn null_bytes() {
    let c = cli();
    // Expected: an escaped NUL is text like any other; a raw NUL (a control character) is
    // not JSON: unparsable, byte-identical.
    assert_eq!(c.run(br#"{"k":"a\u0000evil"}"#), tagged(&[KEYWORD]));
    assert_eq!(c.run(b"{\"k\":\"a\0evil\"}"), Outcome::Unparsable);
    assert_eq!(c.run(b"{\"k\":\"evil\"}\0"), Outcome::Unparsable);
    assert_eq!(c.run(b"{\"k\0\":\"evil\"}"), Outcome::Unparsable);
}

#[test]
fn lone_surrogates_read_as_replacement_character() {
    let c = cli();
    // Expected: read, each lone surrogate decoded as U+FFFD; the line itself is not changed
    // (the tag is spliced into the original bytes, the escape stays as written).
    for line in [
        r#"{"k":"\ud800 evil"}"#,
        r#"{"k":"evil \udc00"}"#,
        r#"{"k":"\udbff\udbff evil"}"#,
        r#"{"\ud800":"evil"}"#,
    ] {
        assert_eq!(c.run(line.as_bytes()), tagged(&[KEYWORD]), "{line}");
    }
    // A surrogate pair is one character.
    assert_eq!(
        c.run(r#"{"k":"\ud83d\ude00evil"}"#.as_bytes()),
        tagged(&[KEYWORD])
    );
}

#[test]
fn keys_with_dots_and_spaces() {
    let c = cli();
    // Expected: `a.b` is the top-level key "a.b" and the nested path a -> b; a key with
    // spaces is an ordinary key.
    assert_eq!(c.run(br#"{"a.b":"x"}"#), tagged(&[ODD]));
    assert_eq!(c.run(br#"{"a":{"b":"x"}}"#), tagged(&[ODD]));
    assert_eq!(c.run(br#"{"a":{"b":"y"},"a.b":"z"}"#), Outcome::Unchanged);
    assert_eq!(c.run(br#"{"key with spaces":"v"}"#), tagged(&[ODD]));
    assert_eq!(c.run(br#"{"keywithspaces":"v"}"#), Outcome::Unchanged);
    assert_eq!(c.run(br#"{"key with spaces ":"v"}"#), Outcome::Unchanged);
}

#[test]
fn catastrophic_looking_regexes_run_in_linear_time() {
    let c = cli();
    // Expected: these classic backtracking killers are accepted (the engine is
    // linear-time) and finish on a 1 MB adversarial value; the first one matches.
    let line = format!(r#"{{"R":"{}!"}}"#, "a".repeat(1_000_000));
    assert_eq!(c.run(line.as_bytes()), Outcome::Unchanged);
    let line = format!(r#"{{"R":"{}"}}"#, "a".repeat(1_000_000));
    assert_eq!(c.run(line.as_bytes()), tagged(&[REGEX]));
}

// ---------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------

fn rule_with(detection: &str) -> String {
    format!("title: hostile\nid: 00000000-0000-0000-0000-0000000000ff\nlogsource: {{product: windows}}\ndetection:\n{detection}")
}

/// Loads one rule text the way the CLI does (parse, then compile); returns the rejection.
fn reject(text: &str) -> RuleError {
    let mut rules = Vec::new();
    for r in parse_rules(text, "hostile.yml", &LoadOptions::default()) {
        match r {
            Ok(rule) => rules.push(rule),
            Err(e) => return e,
        }
    }
    let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
    assert_eq!(set.len(), 0, "the rule loaded");
    errors.into_iter().next().expect("a rejection")
}

fn loads(text: &str) -> usize {
    let rules: Vec<Rule> = parse_rules(text, "hostile.yml", &LoadOptions::default())
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("rejected: {e}")))
        .collect();
    let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
    assert!(errors.is_empty(), "{errors:?}");
    set.len()
}

fn assert_reason(e: &RuleError, what: &str) {
    assert!(e.reason.contains(what), "expected '{what}' in: {e}");
    assert_eq!(e.source, "hostile.yml");
    assert!(e.loc.line >= 1 && e.loc.col >= 1, "no location: {e}");
}

#[test]
fn regex_over_the_compiled_size_limit_is_rejected() {
    // Expected: rejected naming the regex; the 16 MiB compiled-size limit, not memory, stops it.
    let e = reject(&rule_with(
        "  sel:\n    F|re: '(?:\\w{100}){100}\\w{100}'\n  condition: sel\n",
    ));
    assert!(e.reason.to_lowercase().contains("regex"), "{e}");
    assert!(e.path.contains("F|re"), "{e}");
    // Look-around and backreferences do not exist in a linear-time engine.
    let e = reject(&rule_with("  sel:\n    F|re: '(?=a)a'\n  condition: sel\n"));
    assert!(
        e.reason.to_lowercase().contains("regex") || e.reason.contains("look"),
        "{e}"
    );
    let e = reject(&rule_with("  sel:\n    F|re: '(a)\\1'\n  condition: sel\n"));
    assert!(
        e.reason.to_lowercase().contains("regex") || e.reason.contains("backreference"),
        "{e}"
    );
}

#[test]
fn hundred_thousand_item_lists() {
    // Expected: exactly 100,000 values load; 100,001 are rejected with the limit.
    let list = |n: usize| {
        let mut s = String::from("  sel:\n    F|contains:\n");
        for i in 0..n {
            s.push_str(&format!("      - v{i}\n"));
        }
        s.push_str("  condition: sel\n");
        rule_with(&s)
    };
    assert_eq!(loads(&list(100_000)), 1);
    let e = reject(&list(100_001));
    assert_reason(&e, "more than 100000 values");
    // The same as a keyword list.
    let mut kw = String::from("  keywords:\n");
    for i in 0..100_001 {
        kw.push_str(&format!("    - k{i}\n"));
    }
    kw.push_str("  condition: keywords\n");
    assert_reason(&reject(&rule_with(&kw)), "more than 100000 values");
}

#[test]
fn unknown_modifiers_are_rejected() {
    // Expected: rejected, naming the modifier, at its line.
    let e = reject(&rule_with(
        "  sel:\n    Image|endswith|nosuchthing: x\n  condition: sel\n",
    ));
    assert_reason(&e, "nosuchthing");
    assert_eq!(e.loc.line, 6);
    let e = reject(&rule_with("  sel:\n    'Image|': x\n  condition: sel\n"));
    assert!(!e.reason.is_empty());
}

#[test]
fn conditions_referencing_missing_selections_are_rejected() {
    // Expected: rejected naming the identifier or pattern, never a silent `false`.
    let e = reject(&rule_with(
        "  sel:\n    F: x\n  condition: sel and not missing\n",
    ));
    assert_reason(&e, "missing");
    let e = reject(&rule_with(
        "  sel:\n    F: x\n  condition: 1 of nothing_*\n",
    ));
    assert_reason(&e, "nothing_*");
    let e = reject(&rule_with("  _sel:\n    F: x\n  condition: all of them\n"));
    assert!(!e.reason.is_empty());
    // Condition nesting is bounded: 100,000 parentheses are an error, not a stack overflow.
    let deep = format!("{}sel{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = reject(&rule_with(&format!(
        "  sel:\n    F: x\n  condition: '{deep}'\n"
    )));
    assert!(
        e.reason.contains("deeper") || e.reason.contains("longer"),
        "{e}"
    );
    let nots = format!("{}sel", "not ".repeat(10_000));
    let e = reject(&rule_with(&format!(
        "  sel:\n    F: x\n  condition: '{nots}'\n"
    )));
    assert!(e.reason.contains("deeper"), "{e}");
}

#[test]
fn cyclic_and_unknown_aliases_are_rejected() {
    // Expected: an alias to an anchor still being defined (a cycle) or to no anchor is a
    // YAML error with its location.
    let e = reject(&rule_with("  sel: &a\n    F: *a\n  condition: sel\n"));
    assert_reason(&e, "anchor");
    let e = reject(&rule_with("  sel:\n    F: *nowhere\n  condition: sel\n"));
    assert!(!e.reason.is_empty(), "{e}");
}

#[test]
fn billion_laughs_is_rejected() {
    // Expected: rejected by the node budget (1,000,000) before the expansion is built.
    let mut text = rule_with("  sel:\n    F: x\n  condition: sel\n");
    text.push_str("x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*x{p}"); 10].join(", ");
        text.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    assert_reason(&reject(&text), "alias");
    // Few nodes, many bytes: one 1 MiB scalar aliased 100 times is over the 64 MiB budget.
    let mut text = rule_with("  sel:\n    F: x\n  condition: sel\n");
    text.push_str(&format!("big: &big '{}'\nrefs: [", "x".repeat(1 << 20)));
    text.push_str(&"*big, ".repeat(100));
    text.push_str("]\n");
    assert_reason(&reject(&text), "bytes of text");
}

#[test]
fn deeply_nested_yaml_is_rejected() {
    // Expected: rejected (YAML nesting limit 64); this input used to overflow the stack
    // inside the YAML library's recursive loader (found while building the fuzz targets).
    let text = format!("title: t\nx:\n  {}y\n", "- ".repeat(500_000));
    assert_reason(&reject(&text), "deeper than 64");
    let flow = format!("title: t\nx: {}y{}\n", "[".repeat(200), "]".repeat(200));
    assert!(!reject(&flow).reason.is_empty());
}

#[test]
fn oversized_rule_files_are_rejected() {
    // Expected: a file over 4 MiB is rejected as a whole, before parsing.
    let mut text = rule_with("  sel:\n    F: x\n  condition: sel\n");
    text.push_str(&format!("description: '{}'\n", "x".repeat(4 * 1024 * 1024)));
    assert_reason(&reject(&text), "larger than");
}

#[test]
fn windash_explosion_is_rejected() {
    // Expected: more than 5 flag positions would be 5^6+ variants: rejected at load.
    let e = reject(&rule_with(
        "  sel:\n    F|windash|contains: ' -a -b -c -d -e -f'\n  condition: sel\n",
    ));
    assert!(e.reason.contains("windash"), "{e}");
}

#[test]
fn rule_count_limit_rejects_the_excess() {
    // Expected: the rules beyond the limit are rejected, each with its id and the limit as
    // the reason; the first ones load.
    assert_eq!(MAX_RULES, 100_000);
    let text = (0..5)
        .map(|i| format!("title: r{i}\nid: id-{i}\nlogsource: {{product: windows}}\ndetection:\n  sel:\n    F: x\n  condition: sel\n"))
        .collect::<Vec<_>>()
        .join("---\n");
    let mut rules: Vec<Rule> = parse_rules(&text, "many.yml", &LoadOptions::default())
        .into_iter()
        .map(|r| r.expect("loads"))
        .collect();
    assert_eq!(rules.len(), 5);
    let rejected = cap_rules(&mut rules, 3);
    assert_eq!(rules.len(), 3);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].rule_id.as_deref(), Some("id-3"));
    assert!(
        rejected[1].reason.contains("more than 3 rules"),
        "{}",
        rejected[1]
    );
    assert_eq!(rejected[1].source, "many.yml");
    assert!(cap_rules(&mut rules, 3).is_empty());
}
