//! One case per spec feature: each escaping-table row, each modifier, each condition form,
//! null / empty / exists, numbers, booleans, arrays and keywords. Every case runs through the
//! matcher (on JSON bytes and on `serde_json::Value`) and through the reference oracle, and
//! all three must give the expected answer. `docs/rule-support.md` points here.

use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};
use sigmatag_rule::{parse_rules, LoadOptions};

/// Builds a rule from a detection body (YAML, indented by 4) and a condition.
fn rule_text(detection: &str, condition: &str) -> String {
    format!("title: case\nid: case-1\nlogsource: {{product: test}}\ndetection:\n{detection}\n    condition: {condition}\n")
}

fn eval(detection: &str, condition: &str, record: &str) -> bool {
    let text = rule_text(detection, condition);
    let rules: Vec<_> = parse_rules(&text, "case", &LoadOptions::default())
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("rule rejected: {e}\n{text}")))
        .collect();
    let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
    assert!(errors.is_empty(), "{errors:?}");
    let mut scratch = set.scratch();
    let bytes = set
        .match_record(&JsonBytes(record.as_bytes()), &mut scratch)
        .unwrap()
        .len()
        == 1;
    let value: serde_json::Value = serde_json::from_str(record).unwrap();
    let tree = set.match_record(&value, &mut scratch).unwrap().len() == 1;
    let reference = sigmatag_reference::matches(&rules[0], &value).unwrap();
    assert_eq!(bytes, tree, "bytes vs tree for {record}\n{text}");
    assert_eq!(
        bytes, reference,
        "matcher vs reference for {record}\n{text}"
    );
    bytes
}

fn rejected(detection: &str, condition: &str) -> String {
    let text = rule_text(detection, condition);
    let mut out = Vec::new();
    for r in parse_rules(&text, "case", &LoadOptions::default()) {
        match r {
            Err(e) => out.push(e.reason),
            Ok(rule) => {
                let (_, errors) = RuleSet::compile(&[rule], Pipeline::flat());
                out.extend(errors.into_iter().map(|e| e.reason));
            }
        }
    }
    assert!(!out.is_empty(), "expected a rejection:\n{text}");
    out.join("; ")
}

/// `field: value` as a one-selection rule, evaluated on `record`.
fn sel(key: &str, value: &str, record: &str) -> bool {
    eval(&format!("    sel:\n        {key}: {value}"), "sel", record)
}

#[test]
fn escaping_table() {
    // Plain backslash, single or double.
    assert!(sel("f", r"'C:\Windows\x'", r#"{"f":"C:\\Windows\\x"}"#));
    assert!(sel("f", r"'C:\\Windows\\x'", r#"{"f":"C:\\Windows\\x"}"#));
    // Escaped wildcards are literal.
    assert!(sel("f", r"'a\*b'", r#"{"f":"a*b"}"#));
    assert!(!sel("f", r"'a\*b'", r#"{"f":"axxb"}"#));
    assert!(sel("f", r"'a\?b'", r#"{"f":"a?b"}"#));
    assert!(!sel("f", r"'a\?b'", r#"{"f":"axb"}"#));
    // Backslash then wildcard: `\\*`.
    assert!(sel("f", r"'a\\*'", r#"{"f":"a\\anything"}"#));
    assert!(!sel("f", r"'a\\*'", r#"{"f":"a"}"#));
    // Literal backslash and literal star: `\\\*`.
    assert!(sel("f", r"'a\\\*'", r#"{"f":"a\\*"}"#));
    assert!(!sel("f", r"'a\\\*'", r#"{"f":"a\\b"}"#));
    // Three or four backslashes: a double backslash.
    assert!(sel("f", r"'a\\\\b'", r#"{"f":"a\\\\b"}"#));
    assert!(sel("f", r"'a\\\b'", r#"{"f":"a\\\\b"}"#));
    // Trailing single backslash (18% of SigmaHQ rules end with one).
    assert!(sel("f|endswith", r"'\Temp\'", r#"{"f":"C:\\Temp\\"}"#));
}

#[test]
fn wildcards() {
    assert!(sel("f", "'prog?.exe'", r#"{"f":"progA.exe"}"#));
    assert!(!sel("f", "'prog?.exe'", r#"{"f":"prog.exe"}"#));
    assert!(sel("f", "'prog?.exe'", r#"{"f":"progé.exe"}"#));
    assert!(sel("f", "'a*b*c'", r#"{"f":"AxxBxxC"}"#));
    assert!(!sel("f", "'a*b*c'", r#"{"f":"axxcxxb"}"#));
    assert!(sel("f", "'*'", r#"{"f":""}"#));
}

#[test]
fn case_folding() {
    assert!(sel("f", "'IEXPRESS.exe'", r#"{"f":"iexpress.EXE"}"#));
    assert!(sel("f", "'ÄRGER'", r#"{"f":"ärger"}"#));
    assert!(sel("f", "'ΣΟΦΟΣ'", r#"{"f":"σοφος"}"#));
    assert!(sel("f", "'σοφοσ'", r#"{"f":"σοφος"}"#)); // final sigma folds to sigma
    assert!(sel("f|cased", "'Abc'", r#"{"f":"Abc"}"#));
    assert!(!sel("f|cased", "'Abc'", r#"{"f":"abc"}"#));
    assert!(!sel("f|contains|cased", "'B'", r#"{"f":"abc"}"#));
}

#[test]
fn string_position_modifiers() {
    assert!(sel("f|contains", "'mid'", r#"{"f":"xxMIDxx"}"#));
    assert!(!sel("f|contains", "'mid'", r#"{"f":"xxmixx"}"#));
    assert!(sel("f|startswith", "'ab'", r#"{"f":"abc"}"#));
    assert!(!sel("f|startswith", "'ab'", r#"{"f":"cab"}"#));
    assert!(sel("f|endswith", "'.exe'", r#"{"f":"a.EXE"}"#));
    assert!(!sel("f|endswith", "'.exe'", r#"{"f":"a.exe.bak"}"#));
    assert!(!sel("f", "'abc'", r#"{"f":"abcd"}"#));
}

#[test]
fn lists_and_all() {
    assert!(sel("f", "['a', 'b']", r#"{"f":"b"}"#));
    assert!(!sel("f", "['a', 'b']", r#"{"f":"c"}"#));
    assert!(sel("f|contains|all", "['a', 'b']", r#"{"f":"xaxbx"}"#));
    assert!(!sel("f|contains|all", "['a', 'b']", r#"{"f":"xax"}"#));
    // Maps AND.
    assert!(eval(
        "    sel:\n        a: 1\n        b: 2",
        "sel",
        r#"{"a":1,"b":2}"#
    ));
    assert!(!eval(
        "    sel:\n        a: 1\n        b: 2",
        "sel",
        r#"{"a":1,"b":3}"#
    ));
    // List of maps ORs.
    assert!(eval(
        "    sel:\n        - a: 1\n        - b: 2",
        "sel",
        r#"{"a":0,"b":2}"#
    ));
}

#[test]
fn windash() {
    for flag in ["-n", "/n", "–n", "—n", "―n"] {
        let rec = format!(r#"{{"f":"iexpress.exe {flag} x"}}"#);
        assert!(sel("f|contains|windash", "' /n '", &rec), "{flag}");
    }
    assert!(!sel(
        "f|contains|windash",
        "' /n '",
        r#"{"f":"iexpress.exe +n x"}"#
    ));
    assert!(sel(
        "f|windash|contains",
        "'-enc'",
        r#"{"f":"powershell /enc AAA"}"#
    ));
    assert!(sel("f|endswith|windash", "' -s'", r#"{"f":"svc.exe /s"}"#));
}

#[test]
fn encodings() {
    // base64('cmd') = Y21k
    assert!(sel("f|base64|contains", "'cmd'", r#"{"f":"xxY21kxx"}"#));
    assert!(!sel("f|base64|contains", "'cmd'", r#"{"f":"xxy21kxx"}"#)); // encoded values are cased
    assert!(sel("f|base64", "'cmd'", r#"{"f":"Y21k"}"#));
    // base64offset: 'http://' at offsets 0, 1, 2
    for enc in ["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"] {
        assert!(
            sel(
                "f|base64offset|contains",
                "'http://'",
                &format!(r#"{{"f":"zz{enc}zz"}}"#)
            ),
            "{enc}"
        );
    }
    // utf16le + base64offset: 'cmd' as UTF-16LE = 63 00 6d 00 64 00 -> "YwBtAGQA" at offset 0
    assert!(sel(
        "f|wide|base64offset|contains",
        "'cmd'",
        r#"{"f":"YwBtAGQA"}"#
    ));
    assert!(sel(
        "f|utf16le|base64offset|contains",
        "'cmd'",
        r#"{"f":"YwBtAGQA"}"#
    ));
    // utf16be|base64: 00 63 00 6d 00 64 -> "AGMAbQBk"
    assert!(sel("f|utf16be|base64", "'cmd'", r#"{"f":"AGMAbQBk"}"#));
    // utf16 (BOM FF FE + LE) then base64: "//5jAG0AZAA="
    assert!(sel("f|utf16|base64", "'cmd'", r#"{"f":"//5jAG0AZAA="}"#));
    // utf16le without base64: the record string's bytes are compared.
    assert!(sel(
        "f|utf16le|contains",
        "'ab'",
        r#"{"f":"xa\u0000b\u0000x"}"#
    ));
}

#[test]
fn regex_and_flags() {
    assert!(sel("f|re", "'^a.c$'", r#"{"f":"abc"}"#));
    assert!(!sel("f|re", "'^a.c$'", r#"{"f":"ABC"}"#)); // regexes are case-sensitive
    assert!(sel("f|re|i", "'^a.c$'", r#"{"f":"ABC"}"#));
    assert!(sel("f|re|ignorecase", "'^a.c$'", r#"{"f":"ABC"}"#));
    assert!(sel("f|re", "'b'", r#"{"f":"abc"}"#)); // unanchored search
    assert!(!sel("f|re", "'^b$'", r#"{"f":"a\nb"}"#));
    assert!(sel("f|re|m", "'^b$'", r#"{"f":"a\nb"}"#));
    assert!(sel("f|re|multiline", "'^b$'", r#"{"f":"a\nb"}"#));
    assert!(!sel("f|re", "'a.b'", r#"{"f":"a\nb"}"#));
    assert!(sel("f|re|s", "'a.b'", r#"{"f":"a\nb"}"#));
    assert!(sel("f|re|dotall", "'a.b'", r#"{"f":"a\nb"}"#));
    assert!(sel("f|re", "'^[0-9]{3}$'", r#"{"f":123}"#)); // numbers have text
    assert!(rejected("    sel:\n        f|re: '(?<=a)b'", "sel").contains("regex"));
    assert!(rejected("    sel:\n        f|re: '(a)\\1'", "sel").contains("regex"));
}

#[test]
fn cidr() {
    assert!(sel("ip|cidr", "'10.0.0.0/8'", r#"{"ip":"10.20.30.40"}"#));
    assert!(!sel("ip|cidr", "'10.0.0.0/8'", r#"{"ip":"11.0.0.1"}"#));
    assert!(sel(
        "ip|cidr",
        "['192.168.0.0/16', 'fe80::/10']",
        r#"{"ip":"fe80::1"}"#
    ));
    assert!(!sel("ip|cidr", "'fe80::/10'", r#"{"ip":"10.0.0.1"}"#));
    assert!(!sel("ip|cidr", "'10.0.0.0/8'", r#"{"ip":"not an ip"}"#));
    assert!(rejected("    sel:\n        ip|cidr: '10.0.0.0/40'", "sel").contains("prefix"));
}

#[test]
fn numeric_comparisons() {
    assert!(sel("n|lt", "10", r#"{"n":9}"#));
    assert!(!sel("n|lt", "10", r#"{"n":10}"#));
    assert!(sel("n|lte", "10", r#"{"n":10}"#));
    assert!(sel("n|gt", "10", r#"{"n":"11"}"#));
    assert!(!sel("n|gt", "10", r#"{"n":"x11"}"#));
    assert!(sel("n|gte", "1.5", r#"{"n":1.5}"#));
    assert!(!sel("n|gte", "1.5", r#"{"n":1.25}"#));
}

#[test]
fn neq() {
    assert!(sel("f|neq", "'a'", r#"{"f":"b"}"#));
    assert!(!sel("f|neq", "'a'", r#"{"f":"A"}"#));
    assert!(!sel("f|neq", "['a', 'b']", r#"{"f":"b"}"#));
    assert!(sel("f|neq", "['a', 'b']", r#"{"f":"c"}"#));
    assert!(sel("f|neq", "'a'", r#"{}"#)); // a missing field differs
    assert!(sel("n|neq", "5", r#"{"n":6}"#));
}

#[test]
fn time_parts() {
    let rec = r#"{"t":"2024-02-05T13:45:10.123Z"}"#;
    assert!(sel("t|minute", "45", rec));
    assert!(sel("t|hour", "13", rec));
    assert!(!sel("t|hour", "14", rec));
    assert!(sel("t|day", "5", rec));
    assert!(sel("t|week", "6", rec));
    assert!(sel("t|month", "2", rec));
    assert!(sel("t|year", "2024", rec));
    assert!(sel("t|hour|gte", "12", rec));
    assert!(!sel("t|hour|lt", "12", rec));
    assert!(!sel("t|year", "2024", r#"{"t":"yesterday"}"#));
}

#[test]
fn exists_null_empty() {
    assert!(sel("f|exists", "true", r#"{"f":null}"#));
    assert!(!sel("f|exists", "true", r#"{"g":1}"#));
    assert!(sel("f|exists", "false", r#"{"g":1}"#));
    assert!(sel("f", "null", r#"{"g":1}"#));
    assert!(sel("f", "null", r#"{"f":null}"#));
    assert!(!sel("f", "null", r#"{"f":""}"#));
    assert!(sel("f", "''", r#"{"f":""}"#));
    assert!(!sel("f", "''", r#"{}"#));
    assert!(!sel("f", "''", r#"{"f":null}"#));
    // `not null` as its own selection (the spec's pattern).
    assert!(eval(
        "    sel:\n        a: 1\n    filter:\n        f: null",
        "sel and not filter",
        r#"{"a":1,"f":"x"}"#
    ));
}

#[test]
fn numbers_and_booleans() {
    assert!(sel("EventID", "1", r#"{"EventID":1}"#));
    assert!(sel("EventID", "1", r#"{"EventID":"1"}"#));
    assert!(!sel("EventID", "1", r#"{"EventID":"01"}"#));
    assert!(sel("EventID", "'4688'", r#"{"EventID":4688}"#));
    assert!(sel("EventID", "[4624, 4625]", r#"{"EventID":4625}"#));
    assert!(sel("n", "1.5", r#"{"n":1.5}"#));
    assert!(sel("b", "true", r#"{"b":true}"#));
    assert!(sel("b", "true", r#"{"b":"True"}"#));
    assert!(!sel("b", "true", r#"{"b":false}"#));
    assert!(!sel("b", "false", r#"{"b":null}"#));
}

#[test]
fn arrays_nested_and_dotted_fields() {
    assert!(sel("f", "'b'", r#"{"f":["a","b"]}"#));
    assert!(!sel("f", "'c'", r#"{"f":["a","b"]}"#));
    assert!(sel("a.b", "'x'", r#"{"a":{"b":"x"}}"#));
    assert!(sel("a.b", "'x'", r#"{"a.b":"x"}"#));
    assert!(sel("a.b", "'x'", r#"{"a":[{"b":"y"},{"b":"x"}]}"#));
    assert!(!sel("a", "'x'", r#"{"a":{"b":"x"}}"#)); // objects have no text
}

#[test]
fn keywords() {
    let kw = "    keywords:\n        - 'event::clear'\n        - 'event::drop'";
    assert!(eval(
        kw,
        "keywords",
        r#"{"msg":"mimikatz EVENT::CLEAR done"}"#
    ));
    assert!(eval(kw, "keywords", r#"{"a":{"b":["x","event::drop"]}}"#));
    assert!(!eval(
        kw,
        "keywords",
        r#"{"event::clear":"keys are not searched"}"#
    ));
    let all = "    keywords:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '";
    assert!(eval(
        all,
        "keywords",
        r#"{"a":"Set-OabVirtualDirectory","b":"x -ExternalUrl y"}"#
    ));
    assert!(!eval(all, "keywords", r#"{"a":"Set-OabVirtualDirectory"}"#));
    let re = "    keywords:\n        '|re': '^err[0-9]+$'";
    assert!(eval(re, "keywords", r#"{"a":"err42"}"#));
    assert!(eval(
        "    keywords: 4624",
        "keywords",
        r#"{"id":"logon 4624 ok"}"#
    ));
}

#[test]
fn fieldref() {
    assert!(sel("a|fieldref", "b", r#"{"a":"X","b":"x"}"#));
    assert!(!sel("a|fieldref", "b", r#"{"a":"x","b":"y"}"#));
    assert!(!sel("a|fieldref", "b", r#"{"a":"x"}"#));
    assert!(sel("a|fieldref|startswith", "b", r#"{"a":"xyz","b":"xy"}"#));
    assert!(sel("a|fieldref|neq", "b", r#"{"a":"x","b":"y"}"#));
    assert!(!sel("a|fieldref|cased", "b", r#"{"a":"X","b":"x"}"#));
}

#[test]
fn conditions() {
    let d = "    sel1:\n        a: 1\n    sel2:\n        b: 1\n    filter:\n        c: 1\n    _hidden:\n        d: 1";
    let r = r#"{"a":1,"b":0,"c":0,"d":1}"#;
    assert!(eval(d, "sel1 or sel2", r));
    assert!(!eval(d, "sel1 and sel2", r));
    assert!(eval(d, "sel1 and not filter", r));
    assert!(!eval(d, "not sel1", r));
    assert!(eval(d, "(sel2 or sel1) and not (filter or sel2)", r));
    assert!(eval(d, "sel1 or sel2 and filter", r)); // and binds tighter than or
    assert!(!eval(d, "(sel1 or sel2) and filter", r));
    assert!(eval(d, "1 of sel*", r));
    assert!(eval(d, "any of sel*", r));
    assert!(!eval(d, "all of sel*", r));
    assert!(!eval(d, "2 of sel*", r));
    assert!(eval(d, "2 of *", r)); // sel1 and _hidden
    assert!(eval(d, "1 of *1", r));
    assert!(eval(d, "1 of s*1", r));
    assert!(!eval(d, "all of them", r)); // them skips _hidden; sel2 and filter fail
    assert!(eval(d, "1 of them", r));
    assert!(eval(d, "not 1 of filter*", r));
    assert!(eval(
        "    a:\n        x: 1\n    b:\n        y: 1",
        "[a, b]",
        r#"{"y":1}"#
    )); // list of conditions
}

#[test]
fn rejections_are_precise() {
    assert!(rejected("    sel:\n        f|nosuch: 1", "sel").contains("unknown modifier 'nosuch'"));
    assert!(rejected("    sel:\n        f: 1", "sel and missing")
        .contains("unknown search identifier 'missing'"));
    assert!(
        rejected("    sel:\n        f: 1", "1 of filter*").contains("matches no search identifier")
    );
    assert!(rejected("    sel:\n        f: 1", "sel | count() > 5").contains("aggregation"));
    assert!(rejected("    sel:\n        f|expand: '%missing%'", "sel").contains("'%missing%'"));
    assert!(rejected("    sel:\n        f|i: 'x'", "sel").contains("need the 're' modifier"));
    assert!(rejected("    sel:\n        f|exists: yes", "sel").contains("boolean"));
    assert!(rejected("    sel:\n        f|base64: 'a*'", "sel").contains("wildcards"));
    assert!(rejected("    sel:\n        f|gt: 'x'", "sel").contains("numeric"));
}
