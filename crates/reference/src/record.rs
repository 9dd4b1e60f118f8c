//! The record side: flat field lookup, value sets, texts, keyword leaves.

use serde_json::{Map, Value as Json};

/// What a field lookup found.
#[derive(Debug, Default)]
pub(crate) struct Found<'a> {
    /// Some path reached a key (even one whose value is `null`).
    pub(crate) present: bool,
    /// The value at each path that exists, as stored (arrays not flattened).
    pub(crate) raw: Vec<&'a Json>,
}

/// Looks up a Sigma field name with the flat mapping: the top-level key `a.b.c`, and every
/// split of the dotted name into nested object keys (`a` -> `b.c`, `a.b` -> `c`,
/// `a` -> `b` -> `c`). Values from all paths that exist are combined. A path passes through
/// arrays: each element (recursively) that is an object is searched.
pub(crate) fn lookup<'a>(record: &'a Json, field: &str) -> Found<'a> {
    let mut found = Found::default();
    if let Json::Object(map) = record {
        collect(map, field, &mut found);
    }
    found
}

fn collect<'a>(obj: &'a Map<String, Json>, name: &str, found: &mut Found<'a>) {
    if let Some(v) = obj.get(name) {
        found.present = true;
        found.raw.push(v);
    }
    for (i, _) in name.match_indices('.') {
        let (head, tail) = (&name[..i], &name[i + 1..]);
        if let Some(v) = obj.get(head) {
            descend(v, tail, found);
        }
    }
}

fn descend<'a>(v: &'a Json, tail: &str, found: &mut Found<'a>) {
    match v {
        Json::Object(inner) => collect(inner, tail, found),
        Json::Array(items) => items.iter().for_each(|i| descend(i, tail, found)),
        _ => {}
    }
}

/// The value set: each value, with arrays (and arrays in arrays) replaced by their
/// elements.
pub(crate) fn flatten<'a>(raw: &[&'a Json]) -> Vec<&'a Json> {
    fn go<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
        match v {
            Json::Array(items) => items.iter().for_each(|i| go(i, out)),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    raw.iter().for_each(|v| go(v, &mut out));
    out
}

/// Every string, number and boolean anywhere in the record (object keys excluded): what
/// keywords search.
pub(crate) fn leaves(record: &Json) -> Vec<&Json> {
    fn go<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
        match v {
            Json::Array(items) => items.iter().for_each(|i| go(i, out)),
            Json::Object(map) => map.values().for_each(|i| go(i, out)),
            Json::Null => {}
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    go(record, &mut out);
    out
}

/// The text of a value: a string itself, a number's JSON text, `true`/`false`; `null`,
/// arrays and objects have none.
pub(crate) fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
