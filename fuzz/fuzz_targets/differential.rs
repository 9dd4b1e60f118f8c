//! Fuzz target: the fast matcher against the reference oracle ("fuzzing the matcher").
//!
//! The input bytes drive a builder (`arbitrary::Unstructured`) that makes one small rule
//! (search identifiers with field tests and keywords over a shared vocabulary, any
//! modifier chain the loader's own check accepts, a random condition tree) and a few
//! records whose values are mostly derived from the rule's own values, so that matches
//! are common. Properties:
//! - the matcher's compiler and the reference's validation accept and reject the same rules;
//! - on every record, reference == matcher on `serde_json::Value` == matcher on the JSON
//!   bytes (`JsonBytes`), as `docs/semantics.md` fixes the semantics.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value as Json};
use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};
use sigmatag_rule::parse::check_modifiers;
use sigmatag_rule::{
    Alternative, Condition, Detection, FieldTest, Location, LogSource, Modifier, Quantifier, Rule,
    SearchId, Value,
};

const FIELDS: &[&str] = &[
    "Image",
    "CommandLine",
    "EventID",
    "a.b",
    "a",
    "Ip",
    "Ts",
    "x y",
];
const NAMES: &[&str] = &["sel", "sel_x", "filter", "_aux"];
const ATOMS: &[&str] = &[
    "cmd.exe",
    "C:\\Windows\\",
    "\\iexpress.exe",
    " /n ",
    "-q",
    "évé",
    "ΣΑΣ",
    "σας",
    "K",
    "\u{212A}",
    "İ",
    "ß",
    "😀",
    "10",
    "1.5",
    "true",
    "a",
    "*",
    "?",
    "\\*",
    "\\?",
    "\\\\",
    "\\",
    "-",
    "/",
    "10.0.0.0/8",
    "fe80::/10",
    "2024-02-05T13:45:10Z",
    "(?i)a.b",
    "^x$",
    "[0-9]+",
];
const MODIFIERS: &[Modifier] = &[
    Modifier::Contains,
    Modifier::StartsWith,
    Modifier::EndsWith,
    Modifier::All,
    Modifier::Exists,
    Modifier::Cased,
    Modifier::Neq,
    Modifier::Windash,
    Modifier::Re,
    Modifier::ReIgnoreCase,
    Modifier::ReMultiLine,
    Modifier::ReDotAll,
    Modifier::Base64,
    Modifier::Base64Offset,
    Modifier::Utf16le,
    Modifier::Utf16be,
    Modifier::Utf16,
    Modifier::Lt,
    Modifier::Lte,
    Modifier::Gt,
    Modifier::Gte,
    Modifier::Minute,
    Modifier::Hour,
    Modifier::Day,
    Modifier::Week,
    Modifier::Month,
    Modifier::Year,
    Modifier::Cidr,
    Modifier::FieldRef,
];

fn small_string(u: &mut Unstructured) -> Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=3)? {
        if u.ratio(3, 4)? {
            s.push_str(u.choose(ATOMS)?);
        } else {
            let c: char = u.arbitrary()?;
            s.push(c);
        }
    }
    Ok(s)
}

fn rule_value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Int(*u.choose(&[0, 1, -1, 10, 13, 45, 2024, 4688, i64::MAX, i64::MIN])?),
        1 => Value::Int(u.arbitrary()?),
        2 => Value::Float(*u.choose(&[1.5, -0.5, 0.0, 10.0, 1e20, 2.5e-3])?),
        3 => Value::Bool(u.arbitrary()?),
        4 => Value::Null,
        _ => Value::Str(small_string(u)?),
    })
}

fn field_test(u: &mut Unstructured, keyword: bool) -> Result<FieldTest> {
    let field = if keyword {
        None
    } else {
        Some(u.choose(FIELDS)?.to_string())
    };
    let mut modifiers = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        modifiers.push(*u.choose(MODIFIERS)?);
    }
    let mut values = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        values.push(if modifiers.contains(&Modifier::FieldRef) {
            Value::Str(u.choose(FIELDS)?.to_string())
        } else {
            rule_value(u)?
        });
    }
    Ok(FieldTest {
        field,
        modifiers,
        values,
        loc: Location::default(),
    })
}

fn condition(u: &mut Unstructured, names: &[String], depth: u32) -> Result<Condition> {
    let pick = if depth >= 3 {
        0
    } else {
        u.int_in_range(0..=4)?
    };
    Ok(match pick {
        0 => Condition::Id(u.choose(names)?.clone()),
        1 => Condition::Not(Box::new(condition(u, names, depth + 1)?)),
        2 | 3 => {
            let items = (0..u.int_in_range(2..=3)?)
                .map(|_| condition(u, names, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if pick == 2 {
                Condition::And(items)
            } else {
                Condition::Or(items)
            }
        }
        _ => {
            let mut ids: Vec<String> = names
                .iter()
                .filter(|_| u.arbitrary().unwrap_or(true))
                .cloned()
                .collect();
            if ids.is_empty() {
                ids.push(names[0].clone());
            }
            let quantifier = if u.arbitrary()? {
                Quantifier::All
            } else {
                Quantifier::AtLeast(u.int_in_range(1..=3)?)
            };
            Condition::Of { quantifier, ids }
        }
    })
}

fn rule(u: &mut Unstructured) -> Result<Option<Rule>> {
    let n = u.int_in_range(1..=NAMES.len())?;
    let mut search_ids = Vec::new();
    for name in &NAMES[..n] {
        let mut alternatives = Vec::new();
        for _ in 0..u.int_in_range(1..=2)? {
            if u.ratio(1, 5)? {
                let v = rule_value(u)?;
                // The loader rejects a null keyword ("null is not a keyword").
                if v == Value::Null {
                    return Ok(None);
                }
                alternatives.push(Alternative::Keyword(v));
            } else {
                let mut tests = Vec::new();
                for _ in 0..u.int_in_range(1..=3)? {
                    let keyword = u.ratio(1, 8)?;
                    let t = field_test(u, keyword)?;
                    // Only rules the loader can produce: its modifier check, and no null in a
                    // field-less test ("null is not a keyword").
                    let null_keyword = t.field.is_none() && t.values.contains(&Value::Null);
                    if null_keyword || check_modifiers(&t).is_err() {
                        return Ok(None);
                    }
                    tests.push(t);
                }
                alternatives.push(Alternative::AllOf(tests));
            }
        }
        search_ids.push(SearchId {
            name: name.to_string(),
            alternatives,
            loc: Location::default(),
        });
    }
    let names: Vec<String> = NAMES[..n].iter().map(|s| s.to_string()).collect();
    let condition = condition(u, &names, 0)?;
    Ok(Some(Rule {
        title: "fuzz".into(),
        id: "fuzz".into(),
        name: None,
        status: None,
        description: None,
        license: None,
        author: None,
        references: vec![],
        date: None,
        modified: None,
        tags: vec![],
        level: None,
        falsepositives: vec![],
        fields: vec![],
        scope: vec![],
        related: vec![],
        logsource: LogSource {
            product: Some("windows".into()),
            ..Default::default()
        },
        detection: Detection {
            search_ids,
            condition,
            timeframe: None,
        },
        source: "fuzz".into(),
    }))
}

fn flip_case(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_lowercase() {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                c.to_lowercase().collect()
            }
        })
        .collect()
}

/// Record values: derived from the rule's texts most of the time.
fn record_value(u: &mut Unstructured, pool: &[String], depth: u32) -> Result<Json> {
    let pick = u.int_in_range(0..=11)?;
    Ok(match pick {
        0..=4 if !pool.is_empty() => {
            let base = u.choose(pool)?.clone();
            let s = match u.int_in_range(0..=4)? {
                0 => base,
                1 => flip_case(&base),
                2 => format!("{}{base}{}", small_string(u)?, small_string(u)?),
                3 => base.replace('\\', ""),
                _ => base.replace(['-', '/'], "\u{2013}"),
            };
            if u.ratio(1, 4)? {
                if let Ok(n) = s.parse::<f64>() {
                    if let Some(n) = serde_json::Number::from_f64(n) {
                        return Ok(Json::Number(n));
                    }
                }
            }
            Json::String(s)
        }
        5 => Json::from(u.arbitrary::<i64>()?),
        6 => Json::from(*u.choose(&[0.5, 1.5, 10.0, -0.0, 1e20])?),
        7 => Json::Bool(u.arbitrary()?),
        8 => Json::Null,
        9 if depth < 2 => Json::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| record_value(u, pool, depth + 1))
                .collect::<Result<_>>()?,
        ),
        10 if depth < 2 => Json::Object(record_object(u, pool, depth + 1)?),
        _ => Json::String(small_string(u)?),
    })
}

fn record_object(u: &mut Unstructured, pool: &[String], depth: u32) -> Result<Map<String, Json>> {
    let mut m = Map::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let key = u.choose(&[
            "Image",
            "CommandLine",
            "EventID",
            "a.b",
            "a",
            "b",
            "Ip",
            "Ts",
            "x y",
            "User",
        ])?;
        m.insert(key.to_string(), record_value(u, pool, depth)?);
    }
    Ok(m)
}

fn texts(rule: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    for sid in &rule.detection.search_ids {
        for alt in &sid.alternatives {
            match alt {
                Alternative::Keyword(v) => out.push(v.to_text()),
                Alternative::AllOf(ts) => {
                    for t in ts {
                        out.extend(t.values.iter().map(Value::to_text));
                    }
                }
            }
        }
    }
    out
}

fn run(u: &mut Unstructured) -> Result<()> {
    let Some(rule) = rule(u)? else { return Ok(()) };
    let reference = sigmatag_reference::validate(&rule);
    let (set, errors) = RuleSet::compile(std::slice::from_ref(&rule), Pipeline::flat());
    match (&reference, errors.first()) {
        (Err(_), Some(_)) => return Ok(()),
        (Ok(()), Some(e)) => {
            panic!("the matcher rejects a rule the reference accepts: {e}\n{rule:#?}")
        }
        (Err(e), None) => {
            panic!("the reference rejects a rule the matcher accepts: {e}\n{rule:#?}")
        }
        (Ok(()), None) => {}
    }
    let pool = texts(&rule);
    let mut scratch = set.scratch();
    for _ in 0..u.int_in_range(1..=4)? {
        let record = Json::Object(record_object(u, &pool, 0)?);
        let want = sigmatag_reference::matches(&rule, &record).expect("validated rule evaluates");
        let on_value = set
            .match_record(&record, &mut scratch)
            .expect("Value record")
            .contains(&0);
        let bytes = serde_json::to_vec(&record).expect("serialisable");
        let on_bytes = set
            .match_record(&JsonBytes(&bytes), &mut scratch)
            .expect("JSON record")
            .contains(&0);
        assert!(
            want == on_value && want == on_bytes,
            "disagreement: reference {want}, matcher(Value) {on_value}, matcher(JsonBytes) {on_bytes}\nrecord {record}\n{rule:#?}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
