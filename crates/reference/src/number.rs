//! Numbers from rules and records, compared exactly.

use std::cmp::Ordering;

use sigmatag_rule::Value;

/// A number: an integer (exact) or a float.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    /// An integer.
    Int(i128),
    /// A floating point number.
    Float(f64),
}

/// A JSON number of the record.
pub(crate) fn from_json(n: &serde_json::Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A numeric rule value.
pub(crate) fn from_rule(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::Int(i128::from(*i))),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// A record string that "parses as a number": `[+-]?digits(.digits)?([eE][+-]?digits)?`,
/// nothing else (no spaces, no `inf`/`nan`, no hex).
pub(crate) fn parse_numeric_str(s: &str) -> Option<Num> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if !digits(&mut i) {
        return None;
    }
    let mut integer = true;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        integer = false;
        if !digits(&mut i) {
            return None;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        integer = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if integer {
        if let Ok(n) = s.parse::<i128>() {
            return Some(Num::Int(n));
        }
    }
    s.parse::<f64>().ok().map(Num::Float)
}

/// Exact numeric comparison (`None` when a NaN is involved).
pub(crate) fn compare(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => int_vs_float(x, y),
        (Num::Float(x), Num::Int(y)) => int_vs_float(y, x).map(Ordering::reverse),
    }
}

/// Compares an integer with a float without rounding the integer.
fn int_vs_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^127: beyond every i128.
    let limit = 170_141_183_460_469_231_731_687_303_715_884_105_728.0_f64;
    if f >= limit {
        return Some(Ordering::Less);
    }
    if f < -limit {
        return Some(Ordering::Greater);
    }
    let t = f.trunc() as i128; // exact: |f| < 2^127 and trunc is integral
    match i.cmp(&t) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - f.trunc())),
        other => Some(other),
    }
}
