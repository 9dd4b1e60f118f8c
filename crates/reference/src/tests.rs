//! Unit tests: one per escaping-table row, per modifier, per condition form, and the seed
//! rule.

use serde_json::{json, Value as Json};
use sigmatag_rule::{parse_rules, LoadOptions, Rule};

use crate::{matches, search_id_matches, validate};

/// A rule whose `detection:` block is `det` (written without the outer indentation).
fn rule(det: &str) -> Rule {
    let body: String = det.lines().map(|l| format!("    {l}\n")).collect();
    let text = format!("title: t\nlogsource: {{product: x}}\ndetection:\n{body}");
    parse_rules(&text, "test", &LoadOptions::default())
        .remove(0)
        .unwrap_or_else(|e| panic!("rule did not parse: {e}\n{text}"))
}

/// `sel: {key: value}` with `condition: sel`.
fn sel(key: &str, value: &str) -> Rule {
    rule(&format!("sel:\n    {key}: {value}\ncondition: sel"))
}

fn m(r: &Rule, record: Json) -> bool {
    matches(r, &record).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn f(v: &str) -> Json {
    json!({ "F": v })
}

// ---------------------------------------------------------------- escaping table

#[test]
fn escape_star_is_literal_star() {
    let r = sel("F", r"'a\*b'");
    assert!(m(&r, f("a*b")));
    assert!(!m(&r, f("axb")));
    assert!(!m(&r, f("ab")));
}

#[test]
fn escape_question_is_literal_question() {
    let r = sel("F", r"'a\?b'");
    assert!(m(&r, f("a?b")));
    assert!(!m(&r, f("axb")));
}

#[test]
fn double_backslash_is_one_backslash() {
    let r = sel("F", r"'a\\b'");
    assert!(m(&r, f(r"a\b")));
    assert!(!m(&r, f(r"a\\b")));
}

#[test]
fn backslash_before_other_char_is_literal() {
    let r = sel("F", r"'C:\Windows\x.exe'");
    assert!(m(&r, f(r"C:\Windows\x.exe")));
    assert!(!m(&r, f(r"C:Windowsx.exe")));
}

#[test]
fn backslash_at_end_is_literal() {
    let r = sel("F", r"'dir\'");
    assert!(m(&r, f(r"dir\")));
    assert!(!m(&r, f("dir")));
}

#[test]
fn escaped_backslash_then_wildcard() {
    let r = sel("F", r"'a\\*'");
    assert!(m(&r, f(r"a\")));
    assert!(m(&r, f(r"a\xyz")));
    assert!(!m(&r, f("a")));
    assert!(!m(&r, f("axyz")));
}

#[test]
fn three_backslashes_and_star_are_backslash_and_literal_star() {
    let r = sel("F", r"'a\\\*'");
    assert!(m(&r, f(r"a\*")));
    assert!(!m(&r, f(r"a\x")));
    assert!(!m(&r, f(r"a\")));
}

#[test]
fn four_backslashes_are_two() {
    let r = sel("F", r"'a\\\\b'");
    assert!(m(&r, f(r"a\\b")));
    assert!(!m(&r, f(r"a\b")));
}

#[test]
fn three_backslashes_before_plain_char_are_two() {
    let r = sel("F", r"'a\\\b'");
    assert!(m(&r, f(r"a\\b")));
    assert!(!m(&r, f(r"a\b")));
}

#[test]
fn star_matches_any_run_including_empty() {
    let r = sel("F", "'a*c'");
    assert!(m(&r, f("ac")));
    assert!(m(&r, f("abbbc")));
    assert!(!m(&r, f("abd")));
}

#[test]
fn question_matches_exactly_one_scalar() {
    let r = sel("F", "'a?c'");
    assert!(m(&r, f("abc")));
    assert!(m(&r, f("aäc")));
    assert!(!m(&r, f("ac")));
    assert!(!m(&r, f("abbc")));
}

// ---------------------------------------------------------------- case

#[test]
fn case_insensitive_by_default() {
    let r = sel("F", "'cmd.exe'");
    assert!(m(&r, f("CMD.EXE")));
    assert!(m(&r, f("Cmd.Exe")));
    let r = sel("F", "'ÄÖÜ'");
    assert!(m(&r, f("äöü")));
}

#[test]
fn final_sigma_folds() {
    let r = sel("F", "'ΟΔΟΣ'");
    assert!(m(&r, f("οδος")));
    assert!(m(&r, f("οδοσ")));
}

#[test]
fn folding_is_simple_not_full() {
    // 'İ' lowercases to two characters: left unchanged. 'ß' is not 'ss'.
    assert!(!m(&sel("F", "'İ'"), f("i")));
    assert!(m(&sel("F", "'İ'"), f("İ")));
    assert!(!m(&sel("F", "'straße'"), f("STRASSE")));
}

#[test]
fn cased_is_case_sensitive() {
    let r = sel("F|cased", "'cmd.exe'");
    assert!(m(&r, f("cmd.exe")));
    assert!(!m(&r, f("CMD.EXE")));
    let r = sel("F|contains|cased", "'Md'");
    assert!(m(&r, f("cMd.exe")));
    assert!(!m(&r, f("cmd.exe")));
}

// ---------------------------------------------------------------- contains / startswith / endswith / lists

#[test]
fn plain_value_is_whole_value() {
    let r = sel("F", "'abc'");
    assert!(m(&r, f("abc")));
    assert!(!m(&r, f("xabc")));
    assert!(!m(&r, f("abcx")));
}

#[test]
fn contains_modifier() {
    let r = sel("F|contains", "'b?c'");
    assert!(m(&r, f("xxbXcyy")));
    assert!(!m(&r, f("xxbcyy")));
}

#[test]
fn startswith_modifier() {
    let r = sel("F|startswith", "'abc'");
    assert!(m(&r, f("abcdef")));
    assert!(!m(&r, f("xabc")));
}

#[test]
fn endswith_modifier() {
    let r = sel("F|endswith", r"'\cmd.exe'");
    assert!(m(&r, f(r"C:\Windows\cmd.exe")));
    assert!(!m(&r, f(r"C:\Windows\cmd.exe.bak")));
}

#[test]
fn list_is_or() {
    let r = sel("F", "['a', 'b']");
    assert!(m(&r, f("a")));
    assert!(m(&r, f("b")));
    assert!(!m(&r, f("c")));
}

#[test]
fn all_modifier_is_and() {
    let r = sel("F|contains|all", "['a', 'b']");
    assert!(m(&r, f("xaxbx")));
    assert!(!m(&r, f("xax")));
    let single = sel("F|contains|all", "'a'");
    assert!(m(&single, f("xa")));
    assert!(!m(&single, f("x")));
}

#[test]
fn map_is_and() {
    let r = rule("sel:\n    A: 'x'\n    B: 'y'\ncondition: sel");
    assert!(m(&r, json!({"A": "x", "B": "y"})));
    assert!(!m(&r, json!({"A": "x", "B": "z"})));
    assert!(!m(&r, json!({"A": "x"})));
}

#[test]
fn list_of_maps_is_or() {
    let r = rule("sel:\n    - A: 'x'\n    - B: 'y'\ncondition: sel");
    assert!(m(&r, json!({"A": "x"})));
    assert!(m(&r, json!({"B": "y"})));
    assert!(!m(&r, json!({"A": "y", "B": "x"})));
}

// ---------------------------------------------------------------- null, empty, exists

#[test]
fn null_is_missing_or_json_null() {
    let r = sel("F", "null");
    assert!(m(&r, json!({})));
    assert!(m(&r, json!({"F": null})));
    assert!(!m(&r, json!({"F": ""})));
    assert!(!m(&r, json!({"F": []})));
    assert!(!m(&r, json!({"F": [null]})));
    assert!(!m(&r, json!({"F": "x"})));
}

#[test]
fn empty_string_is_empty_value() {
    let r = sel("F", "''");
    assert!(m(&r, f("")));
    assert!(!m(&r, f("x")));
    assert!(!m(&r, json!({})));
    assert!(!m(&r, json!({"F": null})));
}

#[test]
fn exists_true_and_false() {
    let yes = sel("F|exists", "true");
    let no = sel("F|exists", "false");
    for (rec, present) in [
        (json!({"F": "x"}), true),
        (json!({"F": null}), true),
        (json!({"F": []}), true),
        (json!({"G": "x"}), false),
        (json!({"F.x": 1}), false),
    ] {
        assert_eq!(m(&yes, rec.clone()), present, "{rec}");
        assert_eq!(m(&no, rec.clone()), !present, "{rec}");
    }
}

// ---------------------------------------------------------------- numbers, booleans, arrays, objects

#[test]
fn rule_integer() {
    let r = sel("EventID", "1");
    assert!(m(&r, json!({"EventID": 1})));
    assert!(m(&r, json!({"EventID": "1"})));
    assert!(m(&r, json!({"EventID": 1.0})));
    assert!(!m(&r, json!({"EventID": "01"})));
    assert!(!m(&r, json!({"EventID": "1.0"})));
    assert!(!m(&r, json!({"EventID": 2})));
    assert!(!m(&r, json!({"EventID": true})));
}

#[test]
fn rule_integer_large_is_exact() {
    let r = sel("N", "9007199254740993");
    assert!(m(&r, json!({"N": 9007199254740993_i64})));
    assert!(!m(&r, json!({"N": 9007199254740992_i64})));
    assert!(!m(&r, json!({"N": 9007199254740992.0})));
}

#[test]
fn rule_float() {
    let r = sel("F", "1.5");
    assert!(m(&r, json!({"F": 1.5})));
    assert!(m(&r, f("1.5")));
    assert!(m(&r, f("1.50")));
    assert!(m(&r, f("15e-1")));
    assert!(!m(&r, f("abc")));
    assert!(!m(&r, json!({"F": 1})));
}

#[test]
fn string_test_on_number_uses_its_text() {
    assert!(m(&sel("F", "'1'"), json!({"F": 1})));
    assert!(!m(&sel("F", "'1'"), json!({"F": 1.0})));
    assert!(m(&sel("F", "'1.0'"), json!({"F": 1.0})));
    assert!(m(&sel("F|startswith", "'12'"), json!({"F": 123})));
}

#[test]
fn rule_boolean() {
    let r = sel("F", "true");
    assert!(m(&r, json!({"F": true})));
    assert!(m(&r, f("true")));
    assert!(m(&r, f("TRUE")));
    assert!(!m(&r, json!({"F": false})));
    assert!(!m(&r, json!({"F": 1})));
    assert!(!m(&r, f("yes")));
    // A string rule value against a boolean compares with its text.
    assert!(m(&sel("F", "'true'"), json!({"F": true})));
    assert!(!m(&sel("F", "'false'"), json!({"F": true})));
}

#[test]
fn arrays_match_any_element_flattened() {
    let r = sel("F", "'b'");
    assert!(m(&r, json!({"F": ["a", "b"]})));
    assert!(m(&r, json!({"F": ["a", ["c", ["b"]]]})));
    assert!(!m(&r, json!({"F": ["a", "c"]})));
    assert!(!m(&r, json!({"F": []})));
}

#[test]
fn objects_match_no_string_test() {
    let r = sel("F", "'*'");
    assert!(m(&r, f("")));
    assert!(!m(&r, json!({"F": {"a": "b"}})));
    assert!(!m(&r, json!({"F": null})));
    assert!(!m(&r, json!({})));
}

// ---------------------------------------------------------------- flat lookup

#[test]
fn flat_lookup_tries_every_split() {
    let r = sel("a.b.c", "'x'");
    assert!(m(&r, json!({"a.b.c": "x"})));
    assert!(m(&r, json!({"a": {"b.c": "x"}})));
    assert!(m(&r, json!({"a.b": {"c": "x"}})));
    assert!(m(&r, json!({"a": {"b": {"c": "x"}}})));
    assert!(!m(&r, json!({"a": {"b": {"d": "x"}}})));
    // Paths pass through arrays (arrays of objects are flattened).
    assert!(m(&r, json!({"a": [{"b": {"c": "x"}}]})));
    assert!(m(
        &r,
        json!({"a": [[{"b": {"c": "y"}}], {"b": {"c": "x"}}]})
    ));
    assert!(!m(&r, json!({"a": [{"b": {"c": "y"}}]})));
    // Values of all paths are combined.
    assert!(m(&r, json!({"a.b.c": "y", "a": {"b": {"c": "x"}}})));
}

#[test]
fn field_names_are_case_sensitive() {
    assert!(!m(&sel("Image", "'x'"), json!({"image": "x"})));
}

// ---------------------------------------------------------------- windash

#[test]
fn windash_expands_flag_dashes() {
    let r = sel("F|windash|contains", "' -n '");
    for s in ["a -n b", "a /n b", "a –n b", "a —n b", "a ―n b", "A /N B"] {
        assert!(m(&r, f(s)), "{s}");
    }
    assert!(!m(&r, f("a \\n b")));
    assert!(!m(&r, f("a n b")));
}

#[test]
fn windash_leaves_non_flag_dashes() {
    // Preceded by a word character: not a flag.
    let r = sel("F|windash", "'a-b'");
    assert!(m(&r, f("a-b")));
    assert!(!m(&r, f("a/b")));
    // Followed by a non-word character: not a flag.
    let r = sel("F|windash", "'x - y'");
    assert!(!m(&r, f("x / y")));
    // Start of the value counts as non-word.
    let r = sel("F|windash", "'/q'");
    assert!(m(&r, f("-q")));
    assert!(m(&r, f("—q")));
}

#[test]
fn windash_with_too_many_positions_is_an_error() {
    let r = sel("F|windash", "'-a -b -c -d -e -f'");
    assert!(matches(&r, &f("x")).is_err());
    let ok = sel("F|windash", "'-a -b -c -d -e'");
    assert!(m(&ok, f("/a –b —c ―d -e")));
}

// ---------------------------------------------------------------- encodings

#[test]
fn base64_modifier() {
    assert_eq!(crate::encode::base64(b"cmd"), "Y21k");
    assert_eq!(crate::encode::base64(b"ab"), "YWI=");
    assert_eq!(crate::encode::base64(b"a"), "YQ==");
    assert_eq!(crate::encode::base64(b""), "");
    let r = sel("F|base64", "'cmd'");
    assert!(m(&r, f("Y21k")));
    assert!(!m(&r, f("y21k")));
    assert!(!m(&r, f("xY21k")));
    let r = sel("F|base64|contains", "'cmd'");
    assert!(m(&r, f("xxY21kxx")));
    assert!(!m(&r, f("xxY21Kxx")));
}

#[test]
fn base64offset_modifier() {
    assert_eq!(
        crate::encode::base64_offsets(b"foobar"),
        ["Zm9vYmFy", "Zvb2Jhc", "mb29iYX"]
    );
    assert_eq!(crate::encode::base64_offsets(b"a"), ["Y", "", "h"]);
    let r = sel("F|base64offset|contains", "'foobar'");
    assert!(m(&r, f("__Zm9vYmFy__")));
    assert!(m(&r, f("__Zvb2Jhc__")));
    assert!(m(&r, f("__mb29iYX__")));
    assert!(!m(&r, f("__MB29IYX__")));
    assert!(!m(&r, f("foobar")));
}

#[test]
fn utf16le_and_wide_modifiers() {
    for key in ["F|utf16le", "F|wide"] {
        let r = sel(key, "'cmd'");
        assert!(m(&r, f("c\0m\0d\0")), "{key}");
        assert!(!m(&r, f("cmd")), "{key}");
        assert!(!m(&r, f("C\0M\0D\0")), "{key}");
    }
    let r = sel("F|wide|contains", "'md'");
    assert!(m(&r, f("xc\0m\0d\0y")));
}

#[test]
fn utf16be_modifier() {
    let r = sel("F|utf16be|startswith", "'cm'");
    assert!(m(&r, f("\0c\0m\0d")));
    assert!(!m(&r, f("c\0m\0d\0")));
}

#[test]
fn utf16_modifier_has_bom() {
    // FF FE is never part of a UTF-8 string, so utf16 alone cannot match a JSON string...
    let r = sel("F|utf16", "'cmd'");
    assert!(!m(&r, f("\u{ff}\u{fe}c\0m\0d\0")));
    // ...but it can once base64-encoded.
    let r = sel("F|utf16|base64", "'cmd'");
    assert!(m(&r, f("//5jAG0AZAA=")));
}

#[test]
fn wide_then_base64offset() {
    let r = sel("F|wide|base64offset|contains", "'cmd'");
    for s in ["..YwBtAGQA..", "..MAbQBkA..", "..jAG0AZA.."] {
        assert!(m(&r, f(s)), "{s}");
    }
    assert!(!m(&r, f("..Y21k..")));
}

#[test]
fn wildcards_in_encoded_values_are_errors() {
    let r = sel("F|base64|contains", "'cm*'");
    assert!(matches(&r, &f("x")).is_err());
    let r = sel("F|wide", "'c?d'");
    assert!(matches(&r, &f("x")).is_err());
    // An escaped wildcard is a literal character.
    let r = sel("F|base64", r"'a\*'");
    assert!(m(&r, f(&crate::encode::base64(b"a*"))));
}

// ---------------------------------------------------------------- re

#[test]
fn re_is_unanchored_and_case_sensitive() {
    let r = sel("F|re", "'c.d'");
    assert!(m(&r, f("xxcmdxx")));
    assert!(!m(&r, f("xxCMDxx")));
    let anchored = sel("F|re", "'^cmd$'");
    assert!(m(&anchored, f("cmd")));
    assert!(!m(&anchored, f("xcmd")));
}

#[test]
fn re_flags() {
    assert!(m(&sel("F|re|i", "'^cmd$'"), f("CMD")));
    assert!(!m(&sel("F|re", "'^b$'"), f("a\nb")));
    assert!(m(&sel("F|re|m", "'^b$'"), f("a\nb")));
    assert!(!m(&sel("F|re", "'a.b'"), f("a\nb")));
    assert!(m(&sel("F|re|s", "'a.b'"), f("a\nb")));
}

#[test]
fn re_applies_to_numbers_and_booleans() {
    assert!(m(&sel("F|re", r"'^\d+$'"), json!({"F": 42})));
    assert!(m(&sel("F|re", "'^tr'"), json!({"F": true})));
    assert!(!m(&sel("F|re", "'.'"), json!({"F": null})));
}

#[test]
fn invalid_regex_is_an_error() {
    let r = sel("F|re", "'a('");
    let e = matches(&r, &f("x")).unwrap_err();
    assert!(e.message.contains("invalid regex"), "{e}");
    // Record-independent: also when the field is missing.
    assert!(matches(&r, &json!({})).is_err());
}

// ---------------------------------------------------------------- cidr

#[test]
fn cidr_v4() {
    let r = sel("Ip|cidr", "'10.0.0.0/8'");
    assert!(m(&r, json!({"Ip": "10.1.2.3"})));
    assert!(!m(&r, json!({"Ip": "11.1.2.3"})));
    assert!(!m(&r, json!({"Ip": "not an ip"})));
    assert!(!m(&r, json!({"Ip": "::ffff:10.1.2.3"})));
    let r = sel("Ip|cidr", "'192.168.1.128/25'");
    assert!(m(&r, json!({"Ip": "192.168.1.200"})));
    assert!(!m(&r, json!({"Ip": "192.168.1.127"})));
    let all = sel("Ip|cidr", "'0.0.0.0/0'");
    assert!(m(&all, json!({"Ip": "1.2.3.4"})));
}

#[test]
fn cidr_v6() {
    let r = sel("Ip|cidr", "'fe80::/10'");
    assert!(m(&r, json!({"Ip": "fe80::1"})));
    assert!(m(&r, json!({"Ip": "FEBF::1"})));
    assert!(!m(&r, json!({"Ip": "fec0::1"})));
    assert!(!m(&r, json!({"Ip": "10.0.0.1"})));
}

#[test]
fn invalid_cidr_is_an_error() {
    assert!(matches(&sel("Ip|cidr", "'10.0.0.0/33'"), &json!({})).is_err());
    assert!(matches(&sel("Ip|cidr", "'10.0.0/8'"), &json!({})).is_err());
    assert!(matches(&sel("Ip|cidr", "'::/129'"), &json!({})).is_err());
}

// ---------------------------------------------------------------- lt / lte / gt / gte / neq

#[test]
fn numeric_comparisons() {
    let rec = |v: Json| json!({ "N": v });
    assert!(m(&sel("N|lt", "5"), rec(json!(4))));
    assert!(!m(&sel("N|lt", "5"), rec(json!(5))));
    assert!(m(&sel("N|lte", "5"), rec(json!(5))));
    assert!(!m(&sel("N|lte", "5"), rec(json!(5.5))));
    assert!(m(&sel("N|gt", "5"), rec(json!(5.5))));
    assert!(!m(&sel("N|gt", "5"), rec(json!(5))));
    assert!(m(&sel("N|gte", "5"), rec(json!(5))));
    assert!(!m(&sel("N|gte", "5"), rec(json!(4.999))));
    assert!(m(&sel("N|gt", "1.5"), rec(json!(2))));
}

#[test]
fn numeric_comparisons_on_strings() {
    assert!(m(&sel("N|gt", "5"), json!({"N": "10"})));
    assert!(m(&sel("N|lt", "5"), json!({"N": "-1.5e0"})));
    assert!(!m(&sel("N|gt", "5"), json!({"N": "ten"})));
    assert!(!m(&sel("N|gt", "5"), json!({"N": " 10"})));
    assert!(!m(&sel("N|gt", "0"), json!({"N": true})));
    assert!(!m(&sel("N|gt", "0"), json!({})));
}

#[test]
fn neq_modifier() {
    let r = sel("F|neq", "['a', 'b']");
    assert!(m(&r, f("c")));
    assert!(!m(&r, f("a")));
    assert!(!m(&r, f("B")));
    assert!(m(&r, json!({})));
    assert!(m(&r, json!({"F": null})));
    let n = sel("N|neq", "1");
    assert!(m(&n, json!({"N": 2})));
    assert!(!m(&n, json!({"N": "1"})));
}

// ---------------------------------------------------------------- time parts

#[test]
fn time_parts_equal() {
    let ts = json!({"T": "2024-02-29T13:45:07.123+05:00"});
    assert!(m(&sel("T|year", "2024"), ts.clone()));
    assert!(!m(&sel("T|year", "2023"), ts.clone()));
    assert!(m(&sel("T|month", "2"), ts.clone()));
    assert!(m(&sel("T|day", "29"), ts.clone()));
    assert!(m(&sel("T|hour", "13"), ts.clone())); // as written, no conversion
    assert!(!m(&sel("T|hour", "8"), ts.clone()));
    assert!(m(&sel("T|minute", "45"), ts.clone()));
    assert!(m(&sel("T|week", "9"), ts));
}

#[test]
fn time_part_iso_week() {
    assert_eq!(crate::time::iso_week(2021, 1, 3), 53);
    assert_eq!(crate::time::iso_week(2024, 12, 30), 1);
    assert_eq!(crate::time::iso_week(2026, 3, 15), 11);
    assert_eq!(crate::time::iso_week(2020, 12, 31), 53);
    assert!(m(&sel("T|week", "53"), json!({"T": "2021-01-03"})));
}

#[test]
fn time_part_shapes() {
    let hour = sel("T|hour", "9");
    assert!(m(&hour, json!({"T": "2024-01-01 09:00"})));
    assert!(m(&hour, json!({"T": "2024-01-01T09:00:00Z"})));
    assert!(!m(&hour, json!({"T": "2024-01-01"})));
    assert!(!m(&hour, json!({"T": "2024-01-01T09:00:00 junk"})));
    assert!(!m(&hour, json!({"T": "2024-13-01T09:00:00"})));
    assert!(m(&sel("T|day", "1"), json!({"T": "2024-01-01"})));
    assert!(!m(&sel("T|day", "1"), json!({"T": 20240101})));
}

#[test]
fn time_part_with_comparison() {
    let r = sel("T|hour|gte", "18");
    assert!(m(&r, json!({"T": "2024-01-01T19:00:00Z"})));
    assert!(!m(&r, json!({"T": "2024-01-01T17:59:59Z"})));
    let r = sel("T|month|lt", "3");
    assert!(m(&r, json!({"T": "2024-02-10"})));
    assert!(!m(&r, json!({"T": "2024-03-10"})));
}

// ---------------------------------------------------------------- fieldref

#[test]
fn fieldref_equality() {
    let r = sel("A|fieldref", "'B'");
    assert!(m(&r, json!({"A": "x", "B": "X"})));
    assert!(!m(&r, json!({"A": "x", "B": "y"})));
    assert!(!m(&r, json!({"A": "x"})));
    assert!(m(&r, json!({"A": ["p", "q"], "B": ["r", "q"]})));
    let cased = sel("A|fieldref|cased", "'B'");
    assert!(!m(&cased, json!({"A": "x", "B": "X"})));
}

#[test]
fn fieldref_contains_is_literal() {
    let r = sel("A|fieldref|contains", "'B'");
    assert!(m(&r, json!({"A": "foo-bar-baz", "B": "BAR"})));
    assert!(!m(&r, json!({"A": "foo-bar-baz", "B": "b*z"})));
    assert!(m(&r, json!({"A": "x b*z y", "B": "b*z"})));
    assert!(m(
        &sel("A|fieldref|startswith", "'B'"),
        json!({"A": "abc", "B": "ab"})
    ));
    assert!(!m(
        &sel("A|fieldref|endswith", "'B'"),
        json!({"A": "abc", "B": "ab"})
    ));
}

#[test]
fn fieldref_neq() {
    let r = sel("A|fieldref|neq", "'B'");
    assert!(m(&r, json!({"A": "x", "B": "y"})));
    assert!(!m(&r, json!({"A": "x", "B": "x"})));
    assert!(m(&r, json!({"A": "x"})));
    assert!(m(&r, json!({"B": "x"})));
}

// ---------------------------------------------------------------- keywords

#[test]
fn keyword_contains_in_any_leaf() {
    let r = rule("kw:\n    - 'evil'\ncondition: kw");
    assert!(m(&r, json!({"a": {"b": ["x", "an EVIL thing"]}})));
    assert!(!m(&r, json!({"evil": "x"})));
    assert!(!m(&r, json!({"a": "good"})));
}

#[test]
fn keyword_searches_numbers_and_booleans() {
    let r = rule("kw:\n    - 4624\ncondition: kw");
    assert!(m(&r, json!({"id": 14624})));
    assert!(!m(&r, json!({"id": 4625})));
    let r = rule("kw:\n    - 'rue'\ncondition: kw");
    assert!(m(&r, json!({"flag": true})));
}

#[test]
fn keyword_list_is_or() {
    let r = rule("kw:\n    - 'alpha'\n    - 'beta'\ncondition: kw");
    assert!(m(&r, json!({"x": "beta"})));
    assert!(!m(&r, json!({"x": "gamma"})));
}

#[test]
fn fieldless_all_keyword() {
    let r = rule("kw:\n    '|all':\n        - 'alpha'\n        - 'beta'\ncondition: kw");
    assert!(m(&r, json!({"x": "alpha", "y": ["beta"]})));
    assert!(m(&r, json!({"x": "beta alpha"})));
    assert!(!m(&r, json!({"x": "alpha"})));
}

#[test]
fn fieldless_keyword_honours_modifiers() {
    let r = rule("kw:\n    '|startswith': 'abc'\ncondition: kw");
    assert!(m(&r, json!({"x": "ABCdef"})));
    assert!(!m(&r, json!({"x": "xabc"})));
    let r = rule("kw:\n    '|re': '^a.c$'\ncondition: kw");
    assert!(m(&r, json!({"x": "q", "y": "abc"})));
    assert!(!m(&r, json!({"x": "abcd"})));
}

// ---------------------------------------------------------------- conditions

const TWO: &str = "a:\n    A: 'x'\nb:\n    B: 'y'\n";

fn cond(c: &str) -> Rule {
    rule(&format!("{TWO}condition: {c}"))
}

fn rec(a: bool, b: bool) -> Json {
    json!({"A": if a { "x" } else { "-" }, "B": if b { "y" } else { "-" }})
}

fn truth_table(c: &str, want: [bool; 4]) {
    let r = cond(c);
    let got = [
        m(&r, rec(false, false)),
        m(&r, rec(false, true)),
        m(&r, rec(true, false)),
        m(&r, rec(true, true)),
    ];
    assert_eq!(got, want, "condition {c}");
}

#[test]
fn condition_id() {
    truth_table("a", [false, false, true, true]);
}

#[test]
fn condition_not() {
    truth_table("not a", [true, true, false, false]);
}

#[test]
fn condition_and() {
    truth_table("a and b", [false, false, false, true]);
}

#[test]
fn condition_or() {
    truth_table("a or b", [false, true, true, true]);
}

#[test]
fn condition_precedence() {
    truth_table("not a and b", [false, true, false, false]);
    truth_table("not (a or b)", [true, false, false, false]);
}

#[test]
fn condition_one_of() {
    truth_table("1 of them", [false, true, true, true]);
    truth_table("any of them", [false, true, true, true]);
}

#[test]
fn condition_n_of() {
    let r = rule("s1:\n    A: 'x'\ns2:\n    B: 'y'\ns3:\n    C: 'z'\ncondition: 2 of s*");
    assert!(!m(&r, json!({"A": "x"})));
    assert!(m(&r, json!({"A": "x", "C": "z"})));
    assert!(m(&r, json!({"A": "x", "B": "y", "C": "z"})));
}

#[test]
fn condition_all_of() {
    truth_table("all of them", [false, false, false, true]);
    let r = rule("s1:\n    A: 'x'\ns2:\n    B: 'y'\n_f:\n    C: 'z'\ncondition: all of them");
    assert!(m(&r, json!({"A": "x", "B": "y"})));
}

#[test]
fn condition_list_is_or() {
    let r = rule(&format!("{TWO}condition:\n    - a\n    - b"));
    assert!(m(&r, rec(true, false)));
    assert!(m(&r, rec(false, true)));
    assert!(!m(&r, rec(false, false)));
}

#[test]
fn search_id_matches_single_identifier() {
    let r = cond("a and b");
    let a = &r.detection.search_ids[0];
    assert!(search_id_matches(a, &rec(true, false)).unwrap());
    assert!(!search_id_matches(a, &rec(false, true)).unwrap());
}

#[test]
fn non_object_record_is_an_error() {
    assert!(matches(&cond("a"), &json!(["x"])).is_err());
    assert!(validate(&cond("a")).is_ok());
}

// ---------------------------------------------------------------- seed rule

fn seed() -> Rule {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/seed/proc_creation_win_iexpress_susp_paths.yml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_rules(&text, path, &LoadOptions::default())
        .remove(0)
        .expect("seed rule parses")
}

fn proc(image: &str, cmd: &str) -> Json {
    json!({ "Image": image, "CommandLine": cmd })
}

#[test]
fn seed_rule_matches_suspicious_sed_path() {
    let r = seed();
    let img = r"C:\Windows\System32\iexpress.exe";
    assert!(m(
        &r,
        proc(img, r"iexpress.exe /N /Q /M C:\ProgramData\x.sed")
    ));
    assert!(m(
        &r,
        proc(img, r"iexpress.exe -N /Q /M C:\ProgramData\x.sed")
    ));
    assert!(m(
        &r,
        proc(img, r"iexpress.exe –N /Q /M C:\ProgramData\x.sed")
    ));
    assert!(m(
        &r,
        proc(
            r"C:\WINDOWS\SYSTEM32\IEXPRESS.EXE",
            r"IEXPRESS.EXE /N /Q /M C:\ProgramData\x.sed"
        )
    ));
    assert!(m(
        &r,
        json!({"OriginalFileName": "iexpress.exe", "CommandLine": r"x /n /q c:\windows\temp\a.sed"})
    ));
}

#[test]
fn seed_rule_rejects_benign_path_and_other_image() {
    let r = seed();
    let img = r"C:\Windows\System32\iexpress.exe";
    assert!(!m(
        &r,
        proc(img, r"iexpress.exe /N /Q /M C:\Users\me\Documents\x.sed")
    ));
    assert!(!m(
        &r,
        proc(
            r"C:\Windows\System32\cmd.exe",
            r"iexpress.exe /N /Q /M C:\ProgramData\x.sed"
        )
    ));
    // ' /n ' needs a flag: 'a/n' is not one.
    assert!(!m(
        &r,
        proc(img, r"iexpress.exe a/n /Q /M C:\ProgramData\x.sed")
    ));
}
