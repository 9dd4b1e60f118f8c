//! Field tests and keywords, one rule value at a time.

use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::Value as Json;
use sigmatag_rule::{Modifier, Value};

use crate::encode;
use crate::number::{self, Num};
use crate::pattern::{self, Mode, Tok};
use crate::record::{self, Found};
use crate::time;
use crate::ReferenceError;

fn err<T>(msg: impl Into<String>) -> Result<T, ReferenceError> {
    Err(ReferenceError::new(msg))
}

/// Where a string value must sit: from `contains`/`startswith`/`endswith`; a field-less
/// (keyword) test without one of them means `contains`.
fn mode(mods: &[Modifier], fieldless: bool) -> Mode {
    if mods.contains(&Modifier::Contains) {
        Mode::Contains
    } else if mods.contains(&Modifier::StartsWith) {
        Mode::Starts
    } else if mods.contains(&Modifier::EndsWith) {
        Mode::Ends
    } else if fieldless {
        Mode::Contains
    } else {
        Mode::Exact
    }
}

/// The pattern(s) a rule value stands for as a string: its wildcard notation for a string
/// (a number or boolean is its literal text), expanded by `windash`. Not yet wrapped by the
/// mode.
fn string_variants(v: &Value, mods: &[Modifier]) -> Result<Vec<Vec<Tok>>, ReferenceError> {
    let toks = match v {
        Value::Str(s) => pattern::parse_wildcards(s),
        Value::Null => return err("null has no string form"),
        other => pattern::literal(&other.to_text()),
    };
    if mods.contains(&Modifier::Windash) {
        pattern::windash_variants(&toks)
    } else {
        Ok(vec![toks])
    }
}

/// The byte strings a value with encoding modifiers stands for (one per `windash` variant,
/// three per variant for `base64offset`).
fn encoded_patterns(v: &Value, mods: &[Modifier]) -> Result<Vec<Vec<u8>>, ReferenceError> {
    if !matches!(v, Value::Str(_) | Value::Int(_)) {
        return err("encoding modifiers need string values");
    }
    let mut out = Vec::new();
    for toks in string_variants(v, mods)? {
        let Some(text) = pattern::literal_text(&toks) else {
            return err(format!(
                "wildcards are not allowed in a value with an encoding modifier: '{}'",
                v.to_text()
            ));
        };
        let bytes = if mods.contains(&Modifier::Utf16le) {
            encode::utf16le(&text)
        } else if mods.contains(&Modifier::Utf16be) {
            encode::utf16be(&text)
        } else if mods.contains(&Modifier::Utf16) {
            encode::utf16_bom(&text)
        } else {
            text.into_bytes()
        };
        if mods.contains(&Modifier::Base64) {
            out.push(encode::base64(&bytes).into_bytes());
        } else if mods.contains(&Modifier::Base64Offset) {
            out.extend(
                encode::base64_offsets(&bytes)
                    .into_iter()
                    .map(String::into_bytes),
            );
        } else {
            out.push(bytes);
        }
    }
    Ok(out)
}

/// Byte-level match of `needle` in `hay` according to the mode (case-sensitive).
fn bytes_match(needle: &[u8], hay: &[u8], mode: Mode) -> bool {
    match mode {
        Mode::Exact => hay == needle,
        Mode::Starts => hay.starts_with(needle),
        Mode::Ends => hay.ends_with(needle),
        Mode::Contains => needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle),
    }
}

/// Regex compilation dominates the oracle's cost in property tests (every record re-reads
/// the rule), so compiled regexes are memoised per thread. This changes no answer: the cache
/// key is everything the compilation depends on.
type RegexKey = (String, bool, bool, bool);

thread_local! {
    static REGEX_CACHE: std::cell::RefCell<std::collections::HashMap<RegexKey, Result<regex::Regex, String>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn regex_for(v: &Value, mods: &[Modifier]) -> Result<regex::Regex, ReferenceError> {
    let Value::Str(p) = v else {
        return err("'re' values must be strings");
    };
    let key = (
        p.clone(),
        mods.contains(&Modifier::ReIgnoreCase),
        mods.contains(&Modifier::ReMultiLine),
        mods.contains(&Modifier::ReDotAll),
    );
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        let (_, i, m, s) = key;
        cache
            .entry(key)
            .or_insert_with(|| {
                regex::RegexBuilder::new(p)
                    .case_insensitive(i)
                    .multi_line(m)
                    .dot_matches_new_line(s)
                    .build()
                    .map_err(|e| format!("invalid regex '{p}': {e}"))
            })
            .clone()
            .map_err(ReferenceError::new)
    })
}

/// An IP network: the address bits and the prefix length.
#[derive(Debug, Clone, Copy)]
enum Net {
    V4(u32, u32),
    V6(u128, u32),
}

/// Parses `address/prefix` (or a bare address, meaning a single host). Host bits after
/// the prefix are ignored.
fn cidr_for(v: &Value) -> Result<Net, ReferenceError> {
    let Value::Str(s) = v else {
        return err("'cidr' values must be strings");
    };
    let bad = || ReferenceError::new(format!("invalid cidr '{s}'"));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                return Err(bad());
            }
            (a, Some(l.parse::<u32>().map_err(|_| bad())?))
        }
        None => (s.as_str(), None),
    };
    match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return Err(bad());
            }
            Ok(Net::V4(u32::from(a), len))
        }
        IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return Err(bad());
            }
            Ok(Net::V6(u128::from(a), len))
        }
    }
}

/// Whether `ip` has the first `len` bits of `net`. Families never mix.
fn in_net(ip: IpAddr, net: Net) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), Net::V4(n, len)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == n & mask
        }
        (IpAddr::V6(a), Net::V6(n, len)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == n & mask
        }
        _ => false,
    }
}

/// Does the ordering satisfy the test's comparison (`lt`, ..., or equality without one)?
fn op_holds(ord: Option<Ordering>, mods: &[Modifier]) -> bool {
    let Some(ord) = ord else { return false };
    if mods.contains(&Modifier::Lt) {
        ord == Ordering::Less
    } else if mods.contains(&Modifier::Lte) {
        ord != Ordering::Greater
    } else if mods.contains(&Modifier::Gt) {
        ord == Ordering::Greater
    } else if mods.contains(&Modifier::Gte) {
        ord != Ordering::Less
    } else {
        ord == Ordering::Equal
    }
}

fn time_part(mods: &[Modifier]) -> Option<Modifier> {
    mods.iter().copied().find(|m| m.is_time_part())
}

fn is_string_modifier(m: Modifier) -> bool {
    matches!(
        m,
        Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::Windash
    )
}

/// Checks what the loader might not have: everything that would make evaluating a value
/// fail, independently of any record.
pub(crate) fn check_test(
    field: Option<&str>,
    mods: &[Modifier],
    values: &[Value],
) -> Result<(), ReferenceError> {
    let has = |m: Modifier| mods.contains(&m);
    if has(Modifier::Expand) {
        return err("'expand' must be resolved by the loader");
    }
    if has(Modifier::Exists) {
        if field.is_none() {
            return err("'exists' needs a field");
        }
        if !matches!(values, [Value::Bool(_)]) {
            return err("'exists' takes one boolean value");
        }
        return Ok(());
    }
    if has(Modifier::FieldRef) {
        if field.is_none() {
            return err("'fieldref' needs a field");
        }
        if !values.iter().all(|v| matches!(v, Value::Str(_))) {
            return err("'fieldref' values must be field names");
        }
        return Ok(());
    }
    for v in values {
        if matches!(v, Value::Null) {
            if field.is_none() {
                return err("null is not a keyword");
            }
        } else if has(Modifier::Re) {
            regex_for(v, mods)?;
        } else if has(Modifier::Cidr) {
            cidr_for(v)?;
        } else if mods.iter().any(|m| m.is_compare() || m.is_time_part()) {
            if number::from_rule(v).is_none() {
                return err("numeric and time-part modifiers need numeric values");
            }
        } else if mods.iter().any(|m| m.is_encoding()) {
            encoded_patterns(v, mods)?;
        } else {
            string_variants(v, mods)?;
        }
    }
    Ok(())
}

/// Evaluates one field test (`field|mods: values`); `field == None` is a field-less
/// (keyword) test over every leaf of the record.
pub(crate) fn eval_test(
    record: &Json,
    field: Option<&str>,
    mods: &[Modifier],
    values: &[Value],
) -> Result<bool, ReferenceError> {
    check_test(field, mods, values)?;
    let has = |m: Modifier| mods.contains(&m);
    if has(Modifier::Exists) {
        let want = matches!(values, [Value::Bool(true)]);
        let present = field.is_some_and(|f| record::lookup(record, f).present);
        return Ok(present == want);
    }
    let found = match field {
        Some(f) => record::lookup(record, f),
        None => Found {
            present: true,
            raw: record::leaves(record),
        },
    };
    let elems = record::flatten(&found.raw);
    let mut results = Vec::new();
    for v in values {
        let r = if has(Modifier::FieldRef) {
            fieldref_test(record, &elems, v, mods)?
        } else {
            value_test(v, mods, field.is_none(), &found, &elems)?
        };
        results.push(r);
    }
    let combined = if has(Modifier::All) {
        results.iter().all(|r| *r)
    } else {
        results.iter().any(|r| *r)
    };
    Ok(if has(Modifier::Neq) {
        !combined
    } else {
        combined
    })
}

/// `fieldref`: some value of the field relates to some value of the referenced field
/// (equal, or contains/starts with/ends with it taken literally).
fn fieldref_test(
    record: &Json,
    elems: &[&Json],
    v: &Value,
    mods: &[Modifier],
) -> Result<bool, ReferenceError> {
    let Value::Str(other) = v else {
        return err("'fieldref' values must be field names");
    };
    let others = record::flatten(&record::lookup(record, other).raw);
    let mode = mode(mods, false);
    let cased = mods.contains(&Modifier::Cased);
    for b in others.iter().filter_map(|b| record::text(b)) {
        let pat = pattern::with_mode(&pattern::literal(&b), mode);
        for a in elems.iter().filter_map(|a| record::text(a)) {
            if pattern::glob_match(&pat, &a, cased) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Does one rule value hold for the field (some element of its value set)?
fn value_test(
    v: &Value,
    mods: &[Modifier],
    fieldless: bool,
    found: &Found<'_>,
    elems: &[&Json],
) -> Result<bool, ReferenceError> {
    let has = |m: Modifier| mods.contains(&m);
    let texts = || elems.iter().filter_map(|e| record::text(e));

    if matches!(v, Value::Null) {
        // Missing, or a path whose value is JSON null (an array is never null).
        return Ok(!found.present || found.raw.iter().any(|r| r.is_null()));
    }
    if has(Modifier::Re) {
        let re = regex_for(v, mods)?;
        return Ok(texts().any(|t| re.is_match(&t)));
    }
    if has(Modifier::Cidr) {
        let net = cidr_for(v)?;
        return Ok(elems.iter().any(|e| match e {
            Json::String(s) => s.parse::<IpAddr>().is_ok_and(|ip| in_net(ip, net)),
            _ => false,
        }));
    }
    if let Some(tp) = time_part(mods) {
        let Some(want) = number::from_rule(v) else {
            return err("time-part modifiers need numeric values");
        };
        return Ok(texts().any(|t| {
            time::parse_stamp(&t)
                .and_then(|s| time::part(&s, tp))
                .is_some_and(|p| op_holds(number::compare(Num::Int(i128::from(p)), want), mods))
        }));
    }
    if mods.iter().any(|m| m.is_compare()) {
        let Some(want) = number::from_rule(v) else {
            return err("numeric comparison needs numeric values");
        };
        return Ok(elems.iter().any(|e| {
            let n = match e {
                Json::Number(n) => Some(number::from_json(n)),
                Json::String(s) => number::parse_numeric_str(s),
                _ => None,
            };
            n.is_some_and(|n| op_holds(number::compare(n, want), mods))
        }));
    }
    let mode = mode(mods, fieldless);
    if mods.iter().any(|m| m.is_encoding()) {
        let pats = encoded_patterns(v, mods)?;
        return Ok(texts().any(|t| pats.iter().any(|p| bytes_match(p, t.as_bytes(), mode))));
    }
    let cased = has(Modifier::Cased);
    let typed = !fieldless && !mods.iter().any(|m| is_string_modifier(*m));
    if typed {
        match v {
            Value::Int(n) => {
                let want = Num::Int(i128::from(*n));
                let decimal = n.to_string();
                return Ok(elems.iter().any(|e| match e {
                    Json::Number(x) => {
                        number::compare(number::from_json(x), want) == Some(Ordering::Equal)
                    }
                    Json::String(s) => *s == decimal,
                    _ => false,
                }));
            }
            Value::Float(f) => {
                let want = Num::Float(*f);
                return Ok(elems.iter().any(|e| {
                    let n = match e {
                        Json::Number(x) => Some(number::from_json(x)),
                        Json::String(s) => number::parse_numeric_str(s),
                        _ => None,
                    };
                    n.is_some_and(|n| number::compare(n, want) == Some(Ordering::Equal))
                }));
            }
            Value::Bool(b) => {
                let word = b.to_string();
                return Ok(elems.iter().any(|e| match e {
                    Json::Bool(x) => x == b,
                    Json::String(s) => pattern::text_eq(s, &word, cased),
                    _ => false,
                }));
            }
            _ => {}
        }
    }
    let pats: Vec<Vec<Tok>> = string_variants(v, mods)?
        .iter()
        .map(|p| pattern::with_mode(p, mode))
        .collect();
    Ok(texts().any(|t| pats.iter().any(|p| pattern::glob_match(p, &t, cased))))
}
