//! Differential property tests: the fast matcher (`sigmatag-matcher`, on `serde_json::Value`
//! and on raw JSON bytes) must agree with the reference oracle (`sigmatag-reference`) on
//! generated rules and records.
//!
//! Rules are generated as a small spec (search identifiers, field tests, a condition tree)
//! that is turned either directly into the typed AST or into YAML text parsed by the loader.
//! Records are built over a small shared vocabulary of field names, from values derived
//! from the rule's own values (case-flipped, wrapped, dash-swapped, base64/UTF-16 encoded,
//! IPs around the CIDRs, timestamps, numbers and numeric strings), so that a good share of
//! the cases are matches; each property asserts that share so it cannot silently degenerate.
//!
//! Cases per property: `SIGMATAG_PROPTEST_CASES`, else `PROPTEST_CASES`, else 10 000.
//! `SIGMATAG_PROPTEST_EXPLORE=1` logs every disagreement (with the rule as YAML and the
//! records) instead of stopping and shrinking at the first; run with `--nocapture`.

use std::cell::Cell;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value as Json};
use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};
use sigmatag_rule::{
    parse::check_modifiers, parse_rules, Alternative, Condition, Detection, FieldTest, LoadOptions,
    Location, LogSource, Modifier, Quantifier, Rule, SearchId, Value,
};

// ---------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------

/// Field names rules test and records carry (two dotted, for the flat split lookup).
const FIELDS: &[&str] = &[
    "Image",
    "CommandLine",
    "EventID",
    "a.b",
    "Ip",
    "Ts",
    "p.q.r",
];

/// Search identifier names (two start with `_`, which `them` skips).
const NAMES: &[&str] = &["sel", "sel_x", "selection_img", "filter", "_aux", "_sel2"];

/// Pieces of rule strings.
const ATOMS: &[&str] = &[
    "cmd.exe",
    "C:\\Windows\\Temp\\",
    "\\iexpress.exe",
    "IEXPRESS.exe",
    " /n ",
    "-q",
    "/c",
    "évé",
    "ΣΑΣ",
    "σας",
    "K",
    "\u{212A}",
    "İ",
    "😀",
    ".sed",
    "Temp",
    "a",
    "AB",
    "10",
    "1.5",
    "true",
    "ß",
    "ẞ",
];

/// Wildcards, escapes and dashes mixed into rule strings.
const SPECIALS: &[&str] = &[
    "*", "*", "?", "\\*", "\\?", "\\\\", "\\", "\\\\*", "\\\\\\*", "-", "/", " -",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    10,
    -5,
    2,
    5,
    6,
    13,
    45,
    2024,
    4688,
    9_007_199_254_740_993,
];
const FLOATS: &[f64] = &[1.5, -0.5, 0.0, 10.0, 1e20, 9_007_199_254_740_992.0, 2.5e-3];
const TIME_INTS: &[i64] = &[0, 1, 2, 5, 6, 12, 13, 31, 45, 53, 2021, 2024];

const REGEXES: &[&str] = &[
    "cmd\\.exe",
    "^C:",
    "(?i)temp",
    "a.b",
    "^x$",
    "é+",
    "[0-9]+",
    "\\d{2}",
    "\\bσ",
    "^\\s",
    "Σ",
    "(?s)a.b",
    "1\\.5",
    "^true$",
    "[[:alpha:]]{3}",
];

/// Regexes both engines must reject (syntax error, look-around, backreference).
const BAD_REGEXES: &[&str] = &["(", "(?=a)", "a\\1", "(?<!x)y"];

/// Strings that some regexes above match (and some they do not).
const REGEX_SAMPLES: &[&str] = &[
    "CMD.EXE", "cmd.exe", "c:\\x", "C:\\x", "TEMP", "a\nb", "axb", "x", "y\nx\nz", "éé", "ÉÉ",
    "42", "σας", "ΣΑΣ", " lead", "abc",
];

const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "192.168.1.0/24",
    "fe80::/10",
    "::1",
    "2001:db8::/32",
    "10.1.2.3",
    "0.0.0.0/0",
    "10.0.0.1/8",
    "::ffff:10.0.0.0/104",
];

/// Networks both engines must reject.
const BAD_CIDRS: &[&str] = &[
    "10.0.0.0/33",
    "x",
    " 10.0.0.0/8",
    "10.0.0.0/ 8",
    "10.0.0.0/+8",
    "fe80::/129",
];

const IPS: &[&str] = &[
    "10.1.2.3",
    "11.0.0.1",
    "192.168.1.77",
    "192.168.2.1",
    "fe80::1",
    "FE80::abcd",
    "2001:db8::5",
    "2001:db9::5",
    "::1",
    " 10.1.2.3",
    "10.1.2.3 ",
    "10.1.2.3/8",
    "::ffff:10.1.2.3",
    "010.1.2.3",
];

const TIMESTAMPS: &[&str] = &[
    "2024-02-05T13:45:10Z",
    "2024-02-05 13:45",
    "2024-02-05",
    "2021-01-03T00:00:00.123+02:00",
    "2026-12-31T23:59:59.5-05:00",
    "2024-12-30T06:02:00Z",
    "2024-02-30T10:00:00Z",
    "2024-13-01",
    "2024-02-05T25:00:00Z",
    "2024-02-05T13:45xyz",
    "2024-02-05t13:45:10z",
    " 2024-02-05T13:45:10Z",
    "2024-02-05T13:45:10",
];

/// Numeric strings and other edge texts compared with numbers.
const NUMERIC_STRINGS: &[&str] = &[
    "1", "01", "1.0", " 1", "+1", "1e0", "-5", "10", "0x10", "inf", "NaN", "1e400", ".5", "5.",
    "2024", "",
];

/// Every modifier name the loader knows.
const ALL_MODS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "exists",
    "cased",
    "neq",
    "windash",
    "re",
    "i",
    "m",
    "s",
    "base64",
    "base64offset",
    "utf16le",
    "wide",
    "utf16be",
    "utf16",
    "lt",
    "lte",
    "gt",
    "gte",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "cidr",
    "fieldref",
];

// ---------------------------------------------------------------------------------------
// Rule spec
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct TestSpec {
    field: Option<String>,
    mods: Vec<&'static str>,
    values: Vec<Value>,
    /// Render a single value as a scalar (not a one-element list) in YAML.
    scalar: bool,
}

impl TestSpec {
    fn key(&self) -> String {
        let mut k = self.field.clone().unwrap_or_default();
        for m in &self.mods {
            k.push('|');
            k.push_str(m);
        }
        k
    }
}

#[derive(Debug, Clone)]
enum AltSpec {
    Map(Vec<TestSpec>),
    Keyword(Value),
}

#[derive(Debug, Clone)]
enum Shape {
    /// `sel: {field: value, ...}`
    Map(Vec<TestSpec>),
    /// `sel: [ {map}, 'keyword', ... ]`
    List(Vec<AltSpec>),
    /// `sel: 'keyword'`
    Keyword(Value),
}

#[derive(Debug, Clone)]
enum CondSpec {
    Id(usize),
    Not(Box<CondSpec>),
    And(Vec<CondSpec>),
    Or(Vec<CondSpec>),
    /// `quantifier of pattern`; the pattern is `them`, `*`, or built from the name at the
    /// index (`Exact`, `Prefix` = first 3 characters + `*`, `Suffix` = `*` + last 2).
    Of(&'static str, PatSpec),
}

#[derive(Debug, Clone, Copy)]
enum PatSpec {
    Them,
    Star,
    Exact(usize),
    Prefix(usize),
    Suffix(usize),
}

fn pattern_text(names: &[&str], p: PatSpec) -> String {
    let char_prefix = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let char_suffix = |s: &str, n: usize| {
        let v: Vec<char> = s.chars().collect();
        v[v.len().saturating_sub(n)..].iter().collect::<String>()
    };
    match p {
        // (`them` over only `_` names selects nothing, which the loader rejects.)
        PatSpec::Them if names.iter().all(|n| n.starts_with('_')) => "*".into(),
        PatSpec::Them => "them".into(),
        PatSpec::Star => "*".into(),
        PatSpec::Exact(i) => names[i].to_string(),
        PatSpec::Prefix(i) => format!("{}*", char_prefix(names[i], 3)),
        PatSpec::Suffix(i) => format!("*{}", char_suffix(names[i], 2)),
    }
}

#[derive(Debug, Clone)]
struct RuleSpec {
    searches: Vec<(&'static str, Shape)>,
    conds: Vec<CondSpec>,
}

// ---------------------------------------------------------------------------------------
// Strategies: rules
// ---------------------------------------------------------------------------------------

fn flip_case(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().collect::<Vec<_>>()
            } else {
                c.to_uppercase().collect::<Vec<_>>()
            }
        })
        .collect()
}

fn str_pattern() -> BoxedStrategy<String> {
    let part = prop_oneof![
        5 => prop::sample::select(ATOMS).prop_map(String::from),
        3 => prop::sample::select(SPECIALS).prop_map(String::from),
        1 => prop::sample::select(ATOMS).prop_map(flip_case),
    ];
    prop::collection::vec(part, 1..=3)
        .prop_map(|v| v.concat())
        .boxed()
}

/// A literal string (no wildcards) for encoding modifiers; rarely one with a wildcard.
fn literal_str() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(ATOMS), 1..=2).prop_map(|v| v.concat()),
        1 => str_pattern(),
    ]
    .boxed()
}

fn int_value() -> BoxedStrategy<Value> {
    prop::sample::select(INTS).prop_map(Value::Int).boxed()
}

fn num_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => int_value(),
        1 => prop::sample::select(FLOATS).prop_map(Value::Float),
    ]
    .boxed()
}

fn any_value() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => str_pattern().prop_map(Value::Str),
        1 => Just(Value::Str(String::new())),
        2 => int_value(),
        1 => prop::sample::select(FLOATS).prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn opt(m: &'static str, p: f64) -> BoxedStrategy<Option<&'static str>> {
    prop::option::weighted(p, Just(m)).boxed()
}

fn position() -> BoxedStrategy<Option<&'static str>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some("contains")),
        1 => Just(Some("startswith")),
        1 => Just(Some("endswith")),
    ]
    .boxed()
}

fn field() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        9 => prop::sample::select(FIELDS).prop_map(|f| Some(f.to_string())),
        1 => Just(None),
    ]
    .boxed()
}

fn values(v: BoxedStrategy<Value>) -> BoxedStrategy<Vec<Value>> {
    prop::collection::vec(v, 1..=3).boxed()
}

fn collect_mods(parts: &[Option<&'static str>]) -> Vec<&'static str> {
    parts.iter().flatten().copied().collect()
}

fn field_test() -> BoxedStrategy<TestSpec> {
    // Plain strings, numbers, booleans, null, with the string modifiers.
    let plain = (
        field(),
        position(),
        opt("windash", 0.2),
        opt("all", 0.2),
        opt("cased", 0.2),
        opt("neq", 0.1),
        values(any_value()),
    )
        .prop_map(|(f, p, w, a, c, n, v)| {
            let mods = collect_mods(&[p, w, a, c, n]);
            // The loader allows null only with `all` / `cased` (the random family below
            // still produces the invalid combinations).
            let v = if mods.iter().all(|m| matches!(*m, "all" | "cased")) {
                v
            } else {
                v.into_iter()
                    .map(|x| {
                        if x == Value::Null {
                            Value::Str(String::new())
                        } else {
                            x
                        }
                    })
                    .collect()
            };
            (f, mods, v)
        });
    // Encodings.
    let enc = (
        field(),
        prop_oneof![3 => Just(Some("contains")), 1 => Just(Some("startswith")), 1 => Just(Some("endswith")), 1 => Just(None)],
        opt("windash", 0.15),
        prop::sample::select(vec![None, Some("utf16le"), Some("wide"), Some("utf16be"), Some("utf16")]),
        prop::sample::select(vec![None, Some("base64"), Some("base64"), Some("base64offset"), Some("base64offset")]),
        opt("all", 0.1),
        values(prop_oneof![6 => literal_str().prop_map(Value::Str), 1 => int_value()].boxed()),
    )
        .prop_map(|(f, p, w, u, b, a, v)| {
            let u = if u.is_none() && b.is_none() { Some("wide") } else { u };
            // `base64offset` needs `contains` and values of 2 bytes or more.
            let (p, v) = if b == Some("base64offset") {
                let v = v
                    .into_iter()
                    .map(|x| if x.to_text().len() < 2 { Value::Str("cmd".into()) } else { x })
                    .collect();
                (Some("contains"), v)
            } else {
                (p, v)
            };
            (f, collect_mods(&[p, w, u, b, a]), v)
        });
    let re = (
        field(),
        opt("i", 0.3),
        opt("m", 0.3),
        opt("s", 0.3),
        opt("all", 0.1),
        opt("neq", 0.1),
        values(
            prop_oneof![
                20 => prop::sample::select(REGEXES),
                1 => prop::sample::select(BAD_REGEXES),
            ]
            .prop_map(|s| Value::Str(s.into()))
            .boxed(),
        ),
    )
        .prop_map(|(f, i, m, s, a, n, v)| (f, collect_mods(&[Some("re"), i, m, s, a, n]), v));
    let cidr = (
        field(),
        opt("all", 0.1),
        opt("neq", 0.15),
        values(
            prop_oneof![
                15 => prop::sample::select(CIDRS),
                1 => prop::sample::select(BAD_CIDRS),
            ]
            .prop_map(|s| Value::Str(s.into()))
            .boxed(),
        ),
    )
        .prop_map(|(f, a, n, v)| (f, collect_mods(&[Some("cidr"), a, n]), v));
    let exists = (prop::sample::select(FIELDS), any::<bool>())
        .prop_map(|(f, b)| (Some(f.to_string()), vec!["exists"], vec![Value::Bool(b)]));
    let fieldref = (
        prop::sample::select(FIELDS),
        position(),
        opt("cased", 0.2),
        opt("all", 0.1),
        opt("neq", 0.15),
        values(
            prop::sample::select(FIELDS)
                .prop_map(|s| Value::Str(s.into()))
                .boxed(),
        ),
    )
        .prop_map(|(f, p, c, a, n, v)| {
            (
                Some(f.to_string()),
                collect_mods(&[Some("fieldref"), p, c, a, n]),
                v,
            )
        });
    let cmp = (
        field(),
        prop::sample::select(vec!["lt", "lte", "gt", "gte"]),
        opt("all", 0.1),
        values(num_value()),
    )
        .prop_map(|(f, c, a, v)| (f, collect_mods(&[Some(c), a]), v));
    let time = (
        field(),
        prop::sample::select(vec!["minute", "hour", "day", "week", "month", "year"]),
        prop::sample::select(vec![None, None, None, Some("lt"), Some("gte")]),
        opt("all", 0.1),
        opt("neq", 0.1),
        values(
            prop_oneof![
                5 => prop::sample::select(TIME_INTS).prop_map(Value::Int),
                1 => Just(Value::Float(13.0)),
            ]
            .boxed(),
        ),
    )
        .prop_map(|(f, t, c, a, n, v)| {
            let n = if c.is_some() { None } else { n }; // neq excludes lt/gt/...
            (f, collect_mods(&[Some(t), c, a, n]), v)
        });
    // Anything goes: exercises the validation of both engines.
    let random = (
        field(),
        prop::collection::vec(prop::sample::select(ALL_MODS), 1..=2),
        values(any_value()),
    );
    let plain_typed = (
        prop::sample::select(FIELDS),
        opt("neq", 0.15),
        opt("cased", 0.15),
        values(prop_oneof![2 => num_value(), 1 => any::<bool>().prop_map(Value::Bool), 1 => Just(Value::Null)].boxed()),
    )
        .prop_map(|(f, n, c, v)| {
            let v = if n.is_some() {
                v.into_iter()
                    .map(|x| if x == Value::Null { Value::Int(0) } else { x })
                    .collect()
            } else {
                v
            };
            (Some(f.to_string()), collect_mods(&[n, c]), v)
        });
    (
        prop_oneof![
            24 => plain,
            8 => plain_typed,
            10 => enc,
            8 => re,
            6 => cidr,
            4 => exists,
            6 => fieldref,
            6 => cmp,
            8 => time,
            // About one test in 80 is an arbitrary, usually invalid, modifier chain.
            1 => random,
        ],
        any::<bool>(),
    )
        .prop_map(|((field, mods, values), scalar)| TestSpec {
            field,
            mods,
            values,
            scalar,
        })
        .boxed()
}

fn test_map() -> BoxedStrategy<Vec<TestSpec>> {
    prop::collection::vec(field_test(), 1..=3)
        .prop_map(|tests| {
            // A YAML map cannot repeat a key.
            let mut seen = Vec::new();
            tests
                .into_iter()
                .filter(|t| {
                    let k = t.key();
                    let new = !seen.contains(&k);
                    seen.push(k);
                    new
                })
                .collect()
        })
        .boxed()
}

fn keyword() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => str_pattern().prop_map(Value::Str),
        1 => int_value(),
        1 => Just(Value::Float(1.5)),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
    .boxed()
}

fn shape() -> BoxedStrategy<Shape> {
    let alt = prop_oneof![
        3 => test_map().prop_map(AltSpec::Map),
        1 => keyword().prop_map(AltSpec::Keyword),
    ];
    prop_oneof![
        6 => test_map().prop_map(Shape::Map),
        2 => prop::collection::vec(alt, 1..=3).prop_map(Shape::List),
        1 => keyword().prop_map(Shape::Keyword),
    ]
    .boxed()
}

fn cond(n: usize, depth: u32) -> BoxedStrategy<CondSpec> {
    let leaf = prop_oneof![
        4 => (0..n).prop_map(CondSpec::Id),
        1 => (
            prop::sample::select(vec!["1", "any", "all", "2", "3"]),
            prop_oneof![
                3 => Just(PatSpec::Them),
                1 => Just(PatSpec::Star),
                1 => (0..n).prop_map(PatSpec::Exact),
                2 => (0..n).prop_map(PatSpec::Prefix),
                1 => (0..n).prop_map(PatSpec::Suffix),
            ]
        )
            .prop_map(|(q, p)| CondSpec::Of(q, p)),
    ]
    .boxed();
    if depth == 0 {
        return leaf;
    }
    let sub = cond(n, depth - 1);
    prop_oneof![
        3 => leaf,
        1 => sub.clone().prop_map(|c| CondSpec::Not(Box::new(c))),
        2 => prop::collection::vec(sub.clone(), 2..=3).prop_map(CondSpec::And),
        2 => prop::collection::vec(sub, 2..=3).prop_map(CondSpec::Or),
    ]
    .boxed()
}

fn rule_spec() -> BoxedStrategy<RuleSpec> {
    // Built once (no `prop_flat_map`): four identifiers are generated and the first `n`
    // kept; condition indexes are taken modulo `n`.
    (
        1usize..=4,
        prop::sample::subsequence(NAMES, 4).prop_shuffle(),
        prop::collection::vec(shape(), 4),
        prop::collection::vec(cond(4, 2), 1..=2),
    )
        .prop_map(|(n, names, shapes, conds)| {
            fn clamp(c: CondSpec, n: usize) -> CondSpec {
                let p = |p: PatSpec| match p {
                    PatSpec::Exact(i) => PatSpec::Exact(i % n),
                    PatSpec::Prefix(i) => PatSpec::Prefix(i % n),
                    PatSpec::Suffix(i) => PatSpec::Suffix(i % n),
                    other => other,
                };
                match c {
                    CondSpec::Id(i) => CondSpec::Id(i % n),
                    CondSpec::Not(x) => CondSpec::Not(Box::new(clamp(*x, n))),
                    CondSpec::And(xs) => {
                        CondSpec::And(xs.into_iter().map(|x| clamp(x, n)).collect())
                    }
                    CondSpec::Or(xs) => CondSpec::Or(xs.into_iter().map(|x| clamp(x, n)).collect()),
                    CondSpec::Of(q, pat) => CondSpec::Of(q, p(pat)),
                }
            }
            RuleSpec {
                searches: names.into_iter().zip(shapes).take(n).collect(),
                conds: conds.into_iter().map(|c| clamp(c, n)).collect(),
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Spec -> AST and spec -> YAML
// ---------------------------------------------------------------------------------------

fn pattern_ids(names: &[&str], pat: &str) -> Vec<String> {
    let sel = |n: &&&str| -> bool {
        if pat == "them" {
            !n.starts_with('_')
        } else if let Some(prefix) = pat.strip_suffix('*') {
            if let Some(p) = prefix.strip_prefix('*') {
                n.contains(p)
            } else {
                n.starts_with(prefix)
            }
        } else if let Some(suffix) = pat.strip_prefix('*') {
            n.ends_with(suffix)
        } else {
            **n == pat
        }
    };
    names.iter().filter(sel).map(|n| n.to_string()).collect()
}

fn cond_ast(names: &[&str], c: &CondSpec) -> Option<Condition> {
    Some(match c {
        CondSpec::Id(i) => Condition::Id(names[*i].to_string()),
        CondSpec::Not(x) => Condition::Not(Box::new(cond_ast(names, x)?)),
        CondSpec::And(xs) => Condition::And(
            xs.iter()
                .map(|x| cond_ast(names, x))
                .collect::<Option<_>>()?,
        ),
        CondSpec::Or(xs) => Condition::Or(
            xs.iter()
                .map(|x| cond_ast(names, x))
                .collect::<Option<_>>()?,
        ),
        CondSpec::Of(q, p) => {
            let ids = pattern_ids(names, &pattern_text(names, *p));
            if ids.is_empty() {
                return None; // the loader rejects a pattern that selects nothing
            }
            let quantifier = match *q {
                "all" => Quantifier::All,
                "any" => Quantifier::AtLeast(1),
                n => Quantifier::AtLeast(n.parse().expect("a count")),
            };
            Condition::Of { quantifier, ids }
        }
    })
}

fn test_ast(t: &TestSpec) -> FieldTest {
    FieldTest {
        field: t.field.clone(),
        modifiers: t
            .mods
            .iter()
            .map(|m| Modifier::from_name(m).expect("known modifier"))
            .collect(),
        values: t.values.clone(),
        loc: Location::default(),
    }
}

/// The AST of a spec, or `None` when the loader would reject it.
fn spec_ast(spec: &RuleSpec) -> Option<Rule> {
    let names: Vec<&str> = spec.searches.iter().map(|(n, _)| *n).collect();
    let mut search_ids = Vec::new();
    for (name, shape) in &spec.searches {
        let alternatives = match shape {
            Shape::Map(tests) => vec![Alternative::AllOf(tests.iter().map(test_ast).collect())],
            Shape::List(alts) => alts
                .iter()
                .map(|a| match a {
                    AltSpec::Map(tests) => Alternative::AllOf(tests.iter().map(test_ast).collect()),
                    AltSpec::Keyword(v) => Alternative::Keyword(v.clone()),
                })
                .collect(),
            Shape::Keyword(v) => vec![Alternative::Keyword(v.clone())],
        };
        for alt in &alternatives {
            match alt {
                Alternative::Keyword(Value::Null) => return None,
                Alternative::Keyword(_) => {}
                Alternative::AllOf(tests) => {
                    for t in tests {
                        check_modifiers(t).ok()?;
                    }
                }
            }
        }
        search_ids.push(SearchId {
            name: name.to_string(),
            alternatives,
            loc: Location::default(),
        });
    }
    let mut conds = spec
        .conds
        .iter()
        .map(|c| cond_ast(&names, c))
        .collect::<Option<Vec<_>>>()?;
    let condition = if conds.len() == 1 {
        conds.pop().expect("one")
    } else {
        Condition::Or(conds)
    };
    Some(Rule {
        title: "generated".into(),
        id: String::new(),
        name: None,
        status: None,
        description: None,
        license: None,
        author: None,
        references: Vec::new(),
        date: None,
        modified: None,
        tags: Vec::new(),
        level: None,
        falsepositives: Vec::new(),
        fields: Vec::new(),
        scope: Vec::new(),
        related: Vec::new(),
        logsource: LogSource::default(),
        detection: Detection {
            search_ids,
            condition,
            timeframe: None,
        },
        source: "proptest".into(),
    })
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Str(s) => yaml_quote(s),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
    }
}

fn yaml_map(out: &mut String, tests: &[TestSpec], indent: usize) {
    let pad = " ".repeat(indent);
    for t in tests {
        let key = yaml_quote(&t.key());
        if t.scalar && t.values.len() == 1 {
            let _ = writeln!(out, "{pad}{key}: {}", yaml_scalar(&t.values[0]));
        } else {
            let _ = writeln!(out, "{pad}{key}:");
            for v in &t.values {
                let _ = writeln!(out, "{pad}  - {}", yaml_scalar(v));
            }
        }
    }
}

fn cond_text(names: &[&str], c: &CondSpec) -> String {
    // Precedence: or 0 < and 1 < not 2 < x of / id 3; parenthesise only where needed.
    fn level(c: &CondSpec) -> u8 {
        match c {
            CondSpec::Or(_) => 0,
            CondSpec::And(_) => 1,
            CondSpec::Not(_) => 2,
            _ => 3,
        }
    }
    fn go(names: &[&str], c: &CondSpec, min: u8) -> String {
        let s = match c {
            CondSpec::Id(i) => names[*i].to_string(),
            CondSpec::Not(x) => format!("not {}", go(names, x, 2)),
            CondSpec::And(xs) => xs
                .iter()
                .map(|x| go(names, x, 2))
                .collect::<Vec<_>>()
                .join(" and "),
            CondSpec::Or(xs) => xs
                .iter()
                .map(|x| go(names, x, 1))
                .collect::<Vec<_>>()
                .join(" or "),
            CondSpec::Of(q, p) => format!("{q} of {}", pattern_text(names, *p)),
        };
        if level(c) < min {
            format!("({s})")
        } else {
            s
        }
    }
    go(names, c, 0)
}

fn spec_yaml(spec: &RuleSpec) -> String {
    let names: Vec<&str> = spec.searches.iter().map(|(n, _)| *n).collect();
    let mut out = String::from(
        "title: generated\nid: 5d1e6a0c-0000-4000-8000-000000000000\nlogsource:\n  product: windows\ndetection:\n",
    );
    for (name, shape) in &spec.searches {
        match shape {
            Shape::Map(tests) => {
                let _ = writeln!(out, "  {name}:");
                yaml_map(&mut out, tests, 4);
            }
            Shape::Keyword(v) => {
                let _ = writeln!(out, "  {name}: {}", yaml_scalar(v));
            }
            Shape::List(alts) => {
                let _ = writeln!(out, "  {name}:");
                for a in alts {
                    match a {
                        AltSpec::Keyword(v) => {
                            let _ = writeln!(out, "    - {}", yaml_scalar(v));
                        }
                        AltSpec::Map(tests) => {
                            let mut m = String::new();
                            yaml_map(&mut m, tests, 6);
                            out.push_str("    - ");
                            out.push_str(&m[6..]);
                        }
                    }
                }
            }
        }
    }
    if spec.conds.len() == 1 {
        let _ = writeln!(
            out,
            "  condition: {}",
            yaml_quote(&cond_text(&names, &spec.conds[0]))
        );
    } else {
        out.push_str("  condition:\n");
        for c in &spec.conds {
            let _ = writeln!(out, "    - {}", yaml_quote(&cond_text(&names, c)));
        }
    }
    out.push_str("level: high\n");
    out
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// Concrete texts a rule string pattern could stand for (wildcards filled in two ways,
/// escapes resolved per the spec table).
fn literalize(p: &str) -> Vec<String> {
    let fills: [(&str, &str); 2] = [("", "a"), ("Xé\\", "é")];
    fills
        .iter()
        .map(|(star, one)| {
            let chars: Vec<char> = p.chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while i < chars.len() {
                match chars[i] {
                    '\\' if matches!(chars.get(i + 1), Some('*' | '?' | '\\')) => {
                        out.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    '*' => out.push_str(star),
                    '?' => out.push_str(one),
                    c => out.push(c),
                }
                i += 1;
            }
            out
        })
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// Record strings derived from one concrete text.
fn derive_texts(l: &str, out: &mut Vec<Json>) {
    let s = |x: String| Json::String(x);
    out.push(s(l.to_string()));
    out.push(s(l.to_uppercase()));
    out.push(s(l.to_lowercase()));
    out.push(s(flip_case(l)));
    out.push(s(format!("C:\\x {l} y")));
    out.push(s(format!("pre{l}")));
    out.push(s(format!("{l}.exe")));
    for d in ['/', '-', '–', '—', '―'] {
        if l.contains(['-', '/']) {
            out.push(s(l.replace(['-', '/'], &d.to_string())));
        }
    }
    for k in 0..3 {
        let mut b = " ".repeat(k).into_bytes();
        b.extend_from_slice(l.as_bytes());
        out.push(s(format!("xx{}yy", b64(&b))));
    }
    out.push(s(b64(l.as_bytes())));
    out.push(s(b64(&utf16le(l))));
    out.push(s(format!("ab{}", b64(&utf16le(&format!("x{l}"))))));
    let mut bom = vec![0xFF, 0xFE];
    bom.extend(utf16le(l));
    out.push(s(b64(&bom)));
    out.push(s(b64(&utf16be(l))));
    out.push(s(String::from_utf16_lossy(
        &l.encode_utf16()
            .flat_map(|u| {
                let [lo, hi] = u.to_le_bytes();
                [u16::from(lo), u16::from(hi)]
            })
            .collect::<Vec<_>>(),
    )));
}

fn derive_number(v: &Value, out: &mut Vec<Json>) {
    match v {
        Value::Int(n) => {
            out.push(json!(n));
            out.push(Json::String(n.to_string()));
            out.push(json!(n.wrapping_add(1)));
            out.push(json!(n.wrapping_sub(1)));
            out.push(json!(*n as f64));
            out.push(Json::String(format!("0{n}")));
            out.push(Json::String(format!("{n}.0")));
            out.push(Json::String(format!(" {n}")));
        }
        Value::Float(f) => {
            out.push(json!(f));
            out.push(json!(f + 1.0));
            out.push(Json::String(f.to_string()));
            out.push(Json::String(format!("{f:e}")));
        }
        Value::Bool(b) => {
            out.push(json!(b));
            out.push(Json::String(b.to_string().to_uppercase()));
            out.push(Json::String(flip_case(&b.to_string())));
        }
        _ => {}
    }
}

fn spec_tests(spec: &RuleSpec) -> Vec<&TestSpec> {
    let mut out = Vec::new();
    for (_, shape) in &spec.searches {
        match shape {
            Shape::Map(ts) => out.extend(ts.iter()),
            Shape::List(alts) => {
                for a in alts {
                    if let AltSpec::Map(ts) = a {
                        out.extend(ts.iter());
                    }
                }
            }
            Shape::Keyword(_) => {}
        }
    }
    out
}

fn spec_keywords(spec: &RuleSpec) -> Vec<&Value> {
    let mut out = Vec::new();
    for (_, shape) in &spec.searches {
        match shape {
            Shape::Keyword(v) => out.push(v),
            Shape::List(alts) => {
                for a in alts {
                    if let AltSpec::Keyword(v) = a {
                        out.push(v);
                    }
                }
            }
            Shape::Map(_) => {}
        }
    }
    out
}

/// Values a record may hold: derived from the rule's values (so that matches happen) and
/// a fixed set of edge values.
fn value_pools(spec: &RuleSpec) -> (Vec<Json>, Vec<Json>) {
    let mut derived = Vec::new();
    let add_value = |v: &Value, t: Option<&TestSpec>, out: &mut Vec<Json>| {
        let mods = t.map(|t| t.mods.clone()).unwrap_or_default();
        let has = |m: &str| mods.contains(&m);
        match v {
            Value::Str(_) if has("re") => {
                out.extend(REGEX_SAMPLES.iter().map(|s| json!(s)));
            }
            Value::Str(_) if has("cidr") => {
                out.extend(IPS.iter().map(|s| json!(s)));
            }
            Value::Str(_) if has("fieldref") => {}
            Value::Str(p) => {
                for l in literalize(p) {
                    derive_texts(&l, out);
                }
            }
            Value::Int(_)
                if mods.iter().any(|m| {
                    matches!(*m, "minute" | "hour" | "day" | "week" | "month" | "year")
                }) =>
            {
                out.extend(TIMESTAMPS.iter().map(|s| json!(s)));
            }
            Value::Int(n)
                if mods.iter().any(|m| {
                    matches!(
                        *m,
                        "contains"
                            | "startswith"
                            | "endswith"
                            | "base64"
                            | "base64offset"
                            | "wide"
                            | "utf16le"
                            | "utf16be"
                            | "utf16"
                            | "windash"
                    )
                }) =>
            {
                derive_texts(&n.to_string(), out);
            }
            other => derive_number(other, out),
        }
    };
    for t in spec_tests(spec) {
        for v in &t.values {
            add_value(v, Some(t), &mut derived);
        }
    }
    for v in spec_keywords(spec) {
        add_value(v, None, &mut derived);
    }
    let mut general: Vec<Json> = vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(10),
        json!(1.5),
        json!(-0.0),
        json!(1e20),
        json!(9_007_199_254_740_992.0),
        json!(18_446_744_073_709_551_615u64),
        json!(true),
        json!(false),
        Json::Null,
        json!(""),
        json!("cmd.exe"),
        json!("C:\\Windows\\Temp\\iexpress.exe /n /q x.sed"),
        json!("TRUE"),
    ];
    general.extend(NUMERIC_STRINGS.iter().map(|s| json!(s)));
    general.extend(TIMESTAMPS.iter().take(4).map(|s| json!(s)));
    general.extend(IPS.iter().take(3).map(|s| json!(s)));
    (derived, general)
}

#[derive(Debug, Clone, Copy)]
enum Placement {
    Direct,
    Array,
    NestedArray,
    Nested,
    DeepNested,
    ArrayOfObjects,
    ObjectValue,
    Null,
}

fn insert(obj: &mut Map<String, Json>, key: &str, v: Json) {
    // Merge objects so that `a.b` and `a.c` can both be nested under `a`.
    match (obj.get_mut(key), v) {
        (Some(Json::Object(old)), Json::Object(new)) => {
            for (k, x) in new {
                old.insert(k, x);
            }
        }
        (_, v) => {
            obj.insert(key.to_string(), v);
        }
    }
}

fn build_record(entries: Vec<(String, Placement, Json, Json)>) -> Json {
    let mut obj = Map::new();
    for (f, p, v1, v2) in entries {
        let split = f.split_once('.');
        match (p, split) {
            (Placement::Direct, _) => insert(&mut obj, &f, v1),
            (Placement::Array, _) => insert(&mut obj, &f, json!([v1, v2])),
            (Placement::NestedArray, _) => insert(&mut obj, &f, json!([[v1], [], v2])),
            (Placement::Nested, Some((h, t))) => insert(&mut obj, h, json!({ t: v1 })),
            (Placement::Nested, None) => insert(&mut obj, &f, json!({ "x": v1 })),
            (Placement::DeepNested, None) => insert(&mut obj, &f, v1),
            (Placement::DeepNested, Some(_)) => {
                // Every dot is a level: `p.q.r` -> {"p": {"q": {"r": v}}}.
                let mut parts: Vec<&str> = f.split('.').collect();
                let last = parts.pop().expect("one part");
                let mut v = json!({ last: v1 });
                while parts.len() > 1 {
                    v = json!({ parts.pop().expect("a part"): v });
                }
                insert(&mut obj, parts[0], v)
            }
            (Placement::ArrayOfObjects, Some((h, t))) => {
                insert(&mut obj, h, json!([{ t: v1 }, { t: v2 }]))
            }
            (Placement::ArrayOfObjects, None) => insert(&mut obj, &f, json!([{ "x": v1 }, v2])),
            (Placement::ObjectValue, _) => insert(&mut obj, &f, json!({ "k": v1 })),
            (Placement::Null, _) => insert(&mut obj, &f, Json::Null),
        }
    }
    Json::Object(obj)
}

/// A record as random choices; [`Pools::record`] turns it into JSON with the values of
/// the rule(s) under test. (Generating indexes rather than values keeps the strategies
/// independent of the rule: no `prop_flat_map`, cheap generation, simple shrinking.)
#[derive(Debug, Clone)]
struct Recipe(Vec<(usize, Placement, Pick, Pick)>);

/// A leaf value: from the rule-derived pool (mostly) or the general one, by index.
#[derive(Debug, Clone, Copy)]
struct Pick {
    derived: bool,
    i: usize,
}

fn recipe() -> BoxedStrategy<Recipe> {
    let placement = prop_oneof![
        12 => Just(Placement::Direct),
        2 => Just(Placement::Array),
        1 => Just(Placement::NestedArray),
        2 => Just(Placement::Nested),
        1 => Just(Placement::DeepNested),
        2 => Just(Placement::ArrayOfObjects),
        1 => Just(Placement::ObjectValue),
        1 => Just(Placement::Null),
    ];
    let pick =
        (prop::bool::weighted(0.75), any::<usize>()).prop_map(|(derived, i)| Pick { derived, i });
    prop::collection::vec((any::<usize>(), placement, pick.clone(), pick), 0..=5)
        .prop_map(Recipe)
        .boxed()
}

/// Field names and values records are built from, for a set of rules.
struct Pools {
    fields: Vec<String>,
    derived: Vec<Json>,
    general: Vec<Json>,
}

impl Pools {
    fn new(specs: &[&RuleSpec]) -> Pools {
        let mut fields: Vec<String> = FIELDS.iter().map(|s| s.to_string()).collect();
        fields.push("Other".into());
        let mut derived = Vec::new();
        let mut general = Vec::new();
        for spec in specs {
            // Fields the rule tests get picked more often.
            for t in spec_tests(spec) {
                if let Some(f) = &t.field {
                    fields.push(f.clone());
                    fields.push(f.clone());
                }
            }
            let (d, g) = value_pools(spec);
            derived.extend(d);
            if general.is_empty() {
                general = g;
            }
        }
        if general.is_empty() {
            general = value_pools(&RuleSpec {
                searches: Vec::new(),
                conds: Vec::new(),
            })
            .1;
        }
        Pools {
            fields,
            derived,
            general,
        }
    }

    fn leaf(&self, p: Pick) -> Json {
        if p.derived && !self.derived.is_empty() {
            self.derived[p.i % self.derived.len()].clone()
        } else {
            self.general[p.i % self.general.len()].clone()
        }
    }

    fn record(&self, r: &Recipe) -> Json {
        build_record(
            r.0.iter()
                .map(|(f, p, a, b)| {
                    (
                        self.fields[f % self.fields.len()].clone(),
                        *p,
                        self.leaf(*a),
                        self.leaf(*b),
                    )
                })
                .collect(),
        )
    }

    fn records(&self, rs: &[Recipe]) -> Vec<Json> {
        rs.iter().map(|r| self.record(r)).collect()
    }
}

fn case() -> BoxedStrategy<(RuleSpec, Vec<Recipe>)> {
    (rule_spec(), prop::collection::vec(recipe(), 3)).boxed()
}

/// Several rules compiled into one set (exercises the cross-rule index and shared slots).
fn rule_set_case() -> BoxedStrategy<(Vec<RuleSpec>, Vec<Recipe>)> {
    (
        prop::collection::vec(rule_spec(), 2..=4),
        prop::collection::vec(recipe(), 3),
    )
        .boxed()
}

/// One field test (or keyword) in a one-identifier rule, with more records: a denser probe
/// of value semantics (wildcards, escapes, folding, encodings, numbers, times).
fn single_test_case() -> BoxedStrategy<(RuleSpec, Vec<Recipe>)> {
    let spec = prop_oneof![
        6 => field_test().prop_map(|t| Shape::Map(vec![t])),
        1 => keyword().prop_map(Shape::Keyword),
    ]
    .prop_map(|shape| RuleSpec {
        searches: vec![("sel", shape)],
        conds: vec![CondSpec::Id(0)],
    });
    (spec, prop::collection::vec(recipe(), 8)).boxed()
}

// ---------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    rules: Cell<u64>,
    skipped: Cell<u64>,
    evaluated: Cell<u64>,
    matched: Cell<u64>,
}

impl Stats {
    fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }

    fn report_and_check(&self, name: &str) {
        let (rules, skipped, evaluated, matched) = (
            self.rules.get(),
            self.skipped.get(),
            self.evaluated.get(),
            self.matched.get(),
        );
        let frac = matched as f64 / evaluated.max(1) as f64;
        eprintln!(
            "{name}: {rules} rules generated, {skipped} skipped (rejected), {evaluated} rule/record pairs compared, {matched} matches ({:.1}%)",
            frac * 100.0
        );
        assert!(
            frac >= 0.20,
            "{name}: only {:.1}% of compared cases are matches; the generators degenerated",
            frac * 100.0
        );
        assert!(
            frac <= 0.80,
            "{name}: {:.1}% of compared cases are matches; the generators degenerated",
            frac * 100.0
        );
        let skip = skipped as f64 / rules.max(1) as f64;
        assert!(
            skip <= 0.40,
            "{name}: {:.1}% of generated rules were skipped",
            skip * 100.0
        );
    }
}

/// Compiles the rule in both engines and compares them on every record.
fn compare(rule: &Rule, records: &[Json], stats: &Stats) -> Result<(), TestCaseError> {
    let reference = sigmatag_reference::validate(rule);
    let (set, errors) = RuleSet::compile(std::slice::from_ref(rule), Pipeline::flat());
    match (&reference, errors.first()) {
        (Err(_), Some(_)) => {
            Stats::bump(&stats.skipped);
            return Err(TestCaseError::reject("both engines reject the rule"));
        }
        (Ok(()), Some(e)) => {
            return Err(TestCaseError::fail(format!(
                "the matcher rejects a rule the reference accepts: {e}"
            )))
        }
        (Err(e), None) => {
            return Err(TestCaseError::fail(format!(
                "the reference rejects a rule the matcher accepts: {e}"
            )))
        }
        (Ok(()), None) => {}
    }
    let mut scratch = set.scratch();
    for rec in records {
        let want = sigmatag_reference::matches(rule, rec)
            .map_err(|e| TestCaseError::fail(format!("reference error: {e}")))?;
        let on_value = set
            .match_record(rec, &mut scratch)
            .map_err(|e| TestCaseError::fail(format!("matcher (Value) error: {e}")))?
            .contains(&0);
        let bytes = serde_json::to_vec(rec).expect("serialisable");
        let on_bytes = set
            .match_record(&JsonBytes(&bytes), &mut scratch)
            .map_err(|e| TestCaseError::fail(format!("matcher (bytes) error: {e}")))?
            .contains(&0);
        let unindexed = set
            .match_record_unindexed(&JsonBytes(&bytes), &mut scratch)
            .map_err(|e| TestCaseError::fail(format!("matcher (bytes) error: {e}")))?
            .contains(&0);
        if unindexed != on_bytes {
            return Err(TestCaseError::fail(format!(
                "indexed and unindexed matching disagree on record {rec}: indexed {on_bytes}, unindexed {unindexed}"
            )));
        }
        let escaped = escaped_json(rec);
        let on_escaped = set
            .match_record(&JsonBytes(&escaped), &mut scratch)
            .map_err(|e| TestCaseError::fail(format!("matcher (escaped bytes) error: {e}")))?
            .contains(&0);
        if on_escaped != on_bytes {
            return Err(TestCaseError::fail(format!(
                "the matcher answers differently on the same record written with escapes: {} -> {on_escaped}, plain {on_bytes}",
                String::from_utf8_lossy(&escaped)
            )));
        }
        Stats::bump(&stats.evaluated);
        if want {
            Stats::bump(&stats.matched);
        }
        if want != on_value || want != on_bytes {
            return Err(TestCaseError::fail(format!(
                "disagreement on record {rec}: reference {want}, matcher(Value) {on_value}, matcher(JsonBytes) {on_bytes}"
            )));
        }
    }
    Ok(())
}

/// The same JSON written differently: pretty-printed, with `\/`, `\u` escapes for some
/// ASCII letters (in keys too) and surrogate pairs for non-BMP characters.
fn escaped_json(v: &Json) -> Vec<u8> {
    let text = serde_json::to_string_pretty(v).expect("json");
    let mut out = String::with_capacity(text.len() * 2);
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if !in_string {
            in_string = c == '"';
            out.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_string = false;
                out.push(c);
            }
            '/' => out.push_str("\\/"),
            'a' | 'E' | 'p' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) > 0xFFFF => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04X}", u);
                }
            }
            c => out.push(c),
        }
    }
    let back: Json = serde_json::from_str(&out).expect("escaped JSON is valid");
    assert_eq!(&back, v, "escaping changed the record");
    out.into_bytes()
}

fn cases_per_property() -> u32 {
    ["SIGMATAG_PROPTEST_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .unwrap_or(10_000)
}

fn describe(spec: &RuleSpec, records: &[Json]) -> String {
    format!(
        "--- rule (YAML) ---\n{}--- records ---\n{}",
        spec_yaml(spec),
        records
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn run_property<V: std::fmt::Debug + Clone>(
    name: &str,
    strategy: BoxedStrategy<V>,
    show: impl Fn(&V) -> String,
    test: impl Fn(&V, &Stats) -> Result<(), TestCaseError>,
) {
    let n = cases_per_property();
    let mut config = Config::with_cases(n);
    config.max_global_rejects = n.saturating_mul(2);
    config.max_shrink_iters = 20_000;
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "tests/proptest_reference.proptest-regressions",
    )));
    // `SIGMATAG_PROPTEST_EXPLORE=1`: report every disagreement instead of stopping at the
    // first (a debugging aid; the property then never fails on a disagreement).
    let explore = std::env::var_os("SIGMATAG_PROPTEST_EXPLORE").is_some();
    let stats = Stats::default();
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |case| {
        Stats::bump(&stats.rules);
        let outcome = test(&case, &stats);
        match outcome {
            Err(TestCaseError::Fail(why)) if explore => {
                eprintln!("DISAGREEMENT {name}: {why}\n{}\n", show(&case));
                Ok(())
            }
            Err(TestCaseError::Fail(why)) => {
                Err(TestCaseError::fail(format!("{why}\n{}", show(&case))))
            }
            other => other,
        }
    });
    match result {
        Ok(()) => {
            eprintln!("{name}: {n} cases in {:.1?}", started.elapsed());
            stats.report_and_check(name)
        }
        Err(TestError::Fail(why, case)) => {
            panic!("{name}: {why}\nminimal input: {case:?}")
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Rules built directly as AST.
#[test]
fn ast_rules_matcher_agrees_with_reference() {
    let show = |(s, r): &(RuleSpec, Vec<Recipe>)| describe(s, &Pools::new(&[s]).records(r));
    run_property("ast", case(), show, |(spec, recipes), stats| {
        let records = &Pools::new(&[spec]).records(recipes);
        let Some(rule) = spec_ast(spec) else {
            Stats::bump(&stats.skipped);
            return Err(TestCaseError::reject("invalid per the loader"));
        };
        compare(&rule, records, stats)
    });
}

/// Several rules in one set: `match_record` (indexed and not) must return exactly the rules
/// the reference says match.
#[test]
fn rule_sets_matcher_agrees_with_reference() {
    let show = |(specs, recipes): &(Vec<RuleSpec>, Vec<Recipe>)| {
        let records = Pools::new(&specs.iter().collect::<Vec<_>>()).records(recipes);
        let mut out = String::new();
        for (i, s) in specs.iter().enumerate() {
            let _ = writeln!(out, "--- rule {i} ---\n{}", spec_yaml(s));
        }
        let _ = writeln!(out, "--- records ---");
        for r in &records {
            let _ = writeln!(out, "{r}");
        }
        out
    };
    run_property("set", rule_set_case(), show, |(specs, recipes), stats| {
        let records = &Pools::new(&specs.iter().collect::<Vec<_>>()).records(recipes);
        // Keep the rules the loader and the reference accept; the matcher must accept the
        // same ones.
        let rules: Vec<Rule> = specs
            .iter()
            .filter_map(spec_ast)
            .filter(|r| sigmatag_reference::validate(r).is_ok())
            .collect();
        if rules.is_empty() {
            Stats::bump(&stats.skipped);
            return Err(TestCaseError::reject("no valid rule"));
        }
        let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
        prop_assert!(
            errors.is_empty(),
            "the matcher rejects rules the reference accepts: {:?}",
            errors
        );
        prop_assert_eq!(set.len(), rules.len());
        let mut scratch = set.scratch();
        for rec in records {
            let want: Vec<u32> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| sigmatag_reference::matches(r, rec).unwrap_or(false))
                .map(|(i, _)| i as u32)
                .collect();
            let bytes = serde_json::to_vec(rec).expect("json");
            let on_value = set.match_record(rec, &mut scratch).expect("value").to_vec();
            let on_bytes = set
                .match_record(&JsonBytes(&bytes), &mut scratch)
                .expect("bytes")
                .to_vec();
            let unindexed = set
                .match_record_unindexed(rec, &mut scratch)
                .expect("value")
                .to_vec();
            for _ in &rules {
                Stats::bump(&stats.evaluated);
            }
            for _ in &want {
                Stats::bump(&stats.matched);
            }
            prop_assert!(
                want == on_value && want == on_bytes && want == unindexed,
                "rule set disagreement on {}: reference {:?}, matcher(Value) {:?}, matcher(JsonBytes) {:?}, unindexed {:?}",
                rec, want, on_value, on_bytes, unindexed
            );
        }
        Ok(())
    });
}

/// Single field tests as AST, eight records each.
#[test]
fn single_field_tests_matcher_agrees_with_reference() {
    let show = |(s, r): &(RuleSpec, Vec<Recipe>)| describe(s, &Pools::new(&[s]).records(r));
    run_property(
        "single",
        single_test_case(),
        show,
        |(spec, recipes), stats| {
            let records = &Pools::new(&[spec]).records(recipes);
            let Some(rule) = spec_ast(spec) else {
                Stats::bump(&stats.skipped);
                return Err(TestCaseError::reject("invalid per the loader"));
            };
            compare(&rule, records, stats)
        },
    );
}

/// Rules rendered to YAML and read by the loader; the loaded rule must also mean what the
/// spec means (same reference answers as the directly built AST).
#[test]
fn yaml_rules_matcher_agrees_with_reference() {
    let show = |(s, r): &(RuleSpec, Vec<Recipe>)| describe(s, &Pools::new(&[s]).records(r));
    run_property("yaml", case(), show, |(spec, recipes), stats| {
        let records = &Pools::new(&[spec]).records(recipes);
        let text = spec_yaml(spec);
        let mut parsed = parse_rules(&text, "proptest.yml", &LoadOptions::default());
        prop_assert_eq!(parsed.len(), 1);
        let ast = spec_ast(spec);
        let rule = match parsed.pop().expect("one") {
            Ok(r) => r,
            Err(e) => {
                prop_assert!(
                    ast.is_none(),
                    "the loader rejects a rule whose AST passes its checks: {}",
                    e
                );
                Stats::bump(&stats.skipped);
                return Err(TestCaseError::reject("loader rejects"));
            }
        };
        let Some(ast) = ast else {
            return Err(TestCaseError::fail(
                "the loader accepts a rule whose AST fails its checks",
            ));
        };
        for rec in records {
            let a = sigmatag_reference::matches(&ast, rec).ok();
            let b = sigmatag_reference::matches(&rule, rec).ok();
            prop_assert_eq!(a, b, "loaded rule differs from the spec on {}", rec);
        }
        compare(&rule, records, stats)
    });
}

// ---------------------------------------------------------------------------------------
// The seed rule, pinned
// ---------------------------------------------------------------------------------------

fn seed_rule() -> Option<Rule> {
    let dir = sigmatag_suite::shared_dir("seed")?;
    let path = dir.join("seed/proc_creation_win_iexpress_susp_paths.yml");
    let text = std::fs::read_to_string(&path).expect("seed rule readable");
    let mut rules = parse_rules(&text, &path.display().to_string(), &LoadOptions::default());
    assert_eq!(rules.len(), 1);
    Some(rules.pop().expect("one").expect("the seed rule loads"))
}

fn both_engines(rule: &Rule, record: &Json) -> bool {
    let (set, errors) = RuleSet::compile(std::slice::from_ref(rule), Pipeline::flat());
    assert!(errors.is_empty(), "{errors:?}");
    let mut scratch = set.scratch();
    let want = sigmatag_reference::matches(rule, record).expect("reference evaluates");
    let on_value = set
        .match_record(record, &mut scratch)
        .expect("Value")
        .contains(&0);
    let bytes = serde_json::to_vec(record).expect("json");
    let on_bytes = set
        .match_record(&JsonBytes(&bytes), &mut scratch)
        .expect("bytes")
        .contains(&0);
    assert_eq!(
        (want, on_value, on_bytes),
        (want, want, want),
        "engines disagree on {record}"
    );
    want
}

#[test]
fn seed_rule_pinned_both_engines() {
    let Some(rule) = seed_rule() else { return };
    assert_eq!(rule.id, "b2b048b0-7857-4380-b0fb-d3f0ab820b71");
    let names: Vec<&str> = rule
        .detection
        .search_ids
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["selection_img", "selection_cli", "selection_paths"]);
    let hit = json!({
        "Image": "C:\\Windows\\System32\\iexpress.exe",
        "CommandLine": "iexpress.exe /n /q /m C:\\ProgramData\\pkg.sed",
    });
    assert!(both_engines(&rule, &hit));
    // OriginalFileName instead of Image, case-insensitively, windash variants of ' /n '.
    for dash in ["-", "/", "–", "—", "―"] {
        let r = json!({
            "OriginalFileName": "iexpress.EXE",
            "CommandLine": format!("x.exe {dash}N /Q c:\\windows\\temp\\a.sed"),
        });
        assert!(both_engines(&rule, &r), "{r}");
    }
    let misses = [
        // No suspicious path.
        json!({"Image": "C:\\Windows\\System32\\iexpress.exe", "CommandLine": "iexpress.exe /n /q D:\\pkg.sed"}),
        // Not iexpress.
        json!({"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /n C:\\ProgramData\\x"}),
        // '/n' glued to a word is not a flag, and no ' /n ' at all.
        json!({"Image": "C:\\iexpress.exe", "CommandLine": "iexpress.exe a/n C:\\Temp\\x"}),
        // Field names are case-sensitive.
        json!({"image": "C:\\iexpress.exe", "CommandLine": "iexpress.exe /n C:\\Temp\\x"}),
        json!({}),
    ];
    for r in &misses {
        assert!(!both_engines(&rule, r), "{r}");
    }
    // Arrays contribute each element; a dotted lookup is not involved here.
    let arr = json!({
        "Image": ["x", "C:\\Windows\\iexpress.exe"],
        "CommandLine": ["nothing", "iexpress /n \\AppData\\Local\\Temp\\x.sed"],
    });
    assert!(both_engines(&rule, &arr));
}

#[test]
fn seed_rule_round_trips_through_generated_yaml_shape() {
    // The renderer used by the YAML property handles the seed's constructs (backslashes,
    // list alternatives, `all of` patterns): the seed rendered from its AST-like spec
    // matches like the seed itself.
    let Some(seed) = seed_rule() else { return };
    let t = |f: &str, mods: &[&'static str], vals: &[&str]| TestSpec {
        field: Some(f.into()),
        mods: mods.to_vec(),
        values: vals.iter().map(|v| Value::Str(v.to_string())).collect(),
        scalar: vals.len() == 1,
    };
    let spec = RuleSpec {
        searches: vec![
            (
                "selection_img",
                Shape::List(vec![
                    AltSpec::Map(vec![t("Image", &["endswith"], &["\\iexpress.exe"])]),
                    AltSpec::Map(vec![t("OriginalFileName", &[], &["IEXPRESS.exe"])]),
                ]),
            ),
            (
                "sel",
                Shape::Map(vec![t("CommandLine", &["contains", "windash"], &[" /n "])]),
            ),
            (
                "sel_x",
                Shape::Map(vec![t(
                    "CommandLine",
                    &["contains"],
                    &[
                        ":\\ProgramData\\",
                        ":\\Temp\\",
                        ":\\Windows\\System32\\Tasks\\",
                        ":\\Windows\\Tasks\\",
                        ":\\Windows\\Temp\\",
                        "\\AppData\\Local\\Temp\\",
                    ],
                )]),
            ),
        ],
        conds: vec![CondSpec::Of("all", PatSpec::Prefix(1))],
    };
    let text = spec_yaml(&spec);
    let rendered = parse_rules(&text, "rendered", &LoadOptions::default())
        .pop()
        .expect("one")
        .expect("rendered seed loads");
    let ast = spec_ast(&spec).expect("valid");
    let records = [
        json!({"Image": "C:\\Windows\\System32\\iexpress.exe", "CommandLine": "iexpress.exe /n /q /m C:\\ProgramData\\pkg.sed"}),
        json!({"OriginalFileName": "iexpress.EXE", "CommandLine": "x.exe —N /Q c:\\windows\\temp\\a.sed"}),
        json!({"Image": "C:\\Windows\\System32\\iexpress.exe", "CommandLine": "iexpress.exe /n /q D:\\pkg.sed"}),
        json!({"Image": "C:\\iexpress.exe", "CommandLine": "iexpress.exe a/n C:\\Temp\\x"}),
    ];
    for r in &records {
        let want = both_engines(&seed, r);
        assert_eq!(both_engines(&rendered, r), want, "{r}");
        assert_eq!(both_engines(&ast, r), want, "{r}");
    }
}
