//! The Vector adapter core: what every Vector route shares.
//!
//! - [`VrlRecord`] is the matcher's record seam for `vrl::value::Value`, the value a Vector
//!   `LogEvent` holds: nested objects, arrays, bytes, integers, floats, booleans, null,
//!   timestamps (read as RFC 3339 text, exactly as Vector's JSON encoder writes them).
//! - [`VrlTagger`] tags a value in place: one field added at the top level, nothing else
//!   touched; a value it cannot read (not an object, nested too deep) is left as it was.
//! - The configuration ([`TagConfig`]: `rules`, `mapping`, `tag_field`, `drop_unmatched`) is
//!   the one `sigmatag serve` and the Lua module use too; it lives in the `sigmatag` crate so
//!   the sidecar does not depend on `vrl`.
//!
//! ```
//! use sigmatag_vector::{TagConfig, VrlTagger, Outcome};
//! use vrl::value::Value;
//! let tagger = VrlTagger::new(TagConfig::default().build().expect("the embedded rule loads"));
//! let mut scratch = tagger.scratch();
//! let mut v: Value = serde_json::from_str(
//!     r#"{"Image":"C:\\Windows\\System32\\iexpress.exe","CommandLine":"iexpress /n C:\\ProgramData\\a.sed"}"#,
//! ).expect("valid JSON");
//! assert_eq!(tagger.tag(&mut scratch, &mut v), Outcome::Matched);
//! assert!(v.as_object().is_some_and(|m| m.contains_key("sigma")));
//! ```
#![deny(missing_docs)]

use std::fmt::Write as _;

use sigmatag_matcher::{Record, RecordError, Scalar, StackText, Text, Visitor};
use vrl::value::{KeyString, ObjectMap, Value};

pub use sigmatag::{LineOutcome as Outcome, TagConfig, Tagger};
pub use sigmatag_matcher::Scratch;

/// Deepest nesting a record may have; deeper records are left unchanged (unreadable).
pub const MAX_DEPTH: usize = 512;

/// A `vrl` value seen as a record (the top level must be an object).
#[derive(Debug, Clone, Copy)]
pub struct VrlRecord<'a>(pub &'a Value);

impl Record for VrlRecord<'_> {
    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
        if !self.0.is_object() {
            return Err(RecordError {
                message: "event is not an object",
                offset: 0,
            });
        }
        walk_value(self.0, visitor, 0)
    }
}

fn text_of_bytes(b: &[u8], vis: &mut dyn Visitor) {
    match std::str::from_utf8(b) {
        Ok(s) => vis.scalar(Scalar::Str(Text::Plain(s))),
        // Vector's JSON encoder writes invalid UTF-8 lossily; read it the same way.
        Err(_) => vis.scalar(Scalar::Str(Text::Plain(&String::from_utf8_lossy(b)))),
    }
}

fn walk_value(v: &Value, vis: &mut dyn Visitor, depth: usize) -> Result<(), RecordError> {
    if depth > MAX_DEPTH {
        return Err(RecordError {
            message: "event nests too deep",
            offset: 0,
        });
    }
    match v {
        Value::Null => vis.scalar(Scalar::Null),
        Value::Boolean(b) => vis.scalar(Scalar::Bool(*b)),
        Value::Integer(i) => {
            let mut t = StackText::new();
            let _ = write!(t, "{i}");
            vis.scalar(Scalar::Number(t.as_str()))
        }
        Value::Float(f) => {
            // `{:?}` is the shortest text that reads back the same float, like JSON writers.
            let mut t = StackText::new();
            let _ = write!(t, "{:?}", f.into_inner());
            vis.scalar(Scalar::Number(t.as_str()))
        }
        Value::Bytes(b) => text_of_bytes(b, vis),
        Value::String(s) => vis.scalar(Scalar::Str(Text::Plain(s))),
        Value::Regex(r) => text_of_bytes(r.as_bytes_slice(), vis),
        Value::Timestamp(ts) => {
            let mut t = StackText::new();
            let _ = write!(t, "{}", ts.format("%Y-%m-%dT%H:%M:%S%.fZ"));
            vis.scalar(Scalar::Str(Text::Plain(t.as_str())))
        }
        Value::Array(items) => {
            vis.begin_array();
            for it in items {
                walk_value(it, vis, depth + 1)?;
            }
            vis.end_array();
        }
        Value::Object(map) => {
            vis.begin_object();
            for (k, v) in map {
                if vis.key(Text::Plain(k.as_str())) {
                    walk_value(v, vis, depth + 1)?;
                    vis.end_value();
                }
            }
            vis.end_object();
        }
    }
    Ok(())
}

/// A [`Tagger`] with the tag entries pre-built as `vrl` values.
#[derive(Debug)]
pub struct VrlTagger {
    tagger: Tagger,
    entries: Vec<Value>,
    field: KeyString,
}

/// The tag entry of one rule: `{"id","title","level","tags"}` (`level` null when unset).
pub fn tag_entry(info: &sigmatag_matcher::RuleInfo) -> Value {
    let mut m = ObjectMap::new();
    m.insert("id".into(), Value::from(info.id.as_str()));
    m.insert("title".into(), Value::from(info.title.as_str()));
    m.insert(
        "level".into(),
        info.level
            .as_deref()
            .map(Value::from)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "tags".into(),
        Value::Array(info.tags.iter().map(|t| Value::from(t.as_str())).collect()),
    );
    Value::Object(m)
}

impl VrlTagger {
    /// Wraps a loaded tagger (build it with [`TagConfig::build`]).
    pub fn new(tagger: Tagger) -> Self {
        let entries = (0..tagger.set.len())
            .map(|i| tag_entry(tagger.set.info(i)))
            .collect();
        let field = KeyString::from(tagger.tag_field());
        VrlTagger {
            tagger,
            entries,
            field,
        }
    }

    /// The loaded rules and options.
    pub fn tagger(&self) -> &Tagger {
        &self.tagger
    }

    /// A per-thread scratch.
    pub fn scratch(&self) -> Scratch {
        self.tagger.scratch()
    }

    /// Tags `value` in place: when a rule matches, sets the tag field (replacing a field of
    /// that name) to the matched rules' entries, in rule order. Any other outcome leaves the
    /// value exactly as it was.
    pub fn tag(&self, scratch: &mut Scratch, value: &mut Value) -> Outcome {
        let hits = match self.tagger.set.match_record(&VrlRecord(value), scratch) {
            Ok([]) => return Outcome::Unmatched,
            Ok(hits) => hits,
            Err(_) => return Outcome::Unparsable,
        };
        let tag = Value::Array(
            hits.iter()
                .filter_map(|h| self.entries.get(*h as usize).cloned())
                .collect(),
        );
        match value.as_object_mut() {
            Some(map) => {
                map.insert(self.field.clone(), tag);
                Outcome::Matched
            }
            None => Outcome::Unparsable,
        }
    }

    /// Whether a record with this outcome goes on (`drop_unmatched` drops only unmatched).
    pub fn keep(&self, outcome: Outcome) -> bool {
        !(outcome == Outcome::Unmatched && self.tagger.drop_unmatched())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// Records what a walk reports, as text.
    #[derive(Default)]
    struct Trace(String);
    impl Visitor for Trace {
        fn key(&mut self, key: Text<'_>) -> bool {
            let _ = write!(self.0, "k:{key:?} ");
            true
        }
        fn end_value(&mut self) {
            self.0.push_str("ev ");
        }
        fn scalar(&mut self, value: Scalar<'_>) {
            let _ = write!(self.0, "{value:?} ");
        }
        fn begin_object(&mut self) {
            self.0.push_str("{ ");
        }
        fn end_object(&mut self) {
            self.0.push_str("} ");
        }
        fn begin_array(&mut self) {
            self.0.push_str("[ ");
        }
        fn end_array(&mut self) {
            self.0.push_str("] ");
        }
    }

    #[test]
    fn walks_every_value_kind() {
        let ts = Utc
            .with_ymd_and_hms(2019, 3, 4, 5, 6, 7)
            .single()
            .expect("test fixture")
            + chrono::Duration::milliseconds(250);
        let mut m = ObjectMap::new();
        m.insert("b".into(), Value::Bytes(vec![b'h', 0xff].into()));
        m.insert("f".into(), Value::from_f64_or_zero(1.0));
        m.insert("i".into(), Value::Integer(-7));
        m.insert("n".into(), Value::Null);
        m.insert("t".into(), Value::Timestamp(ts));
        m.insert(
            "x".into(),
            Value::Array(vec![Value::Boolean(true), Value::Object(ObjectMap::new())]),
        );
        let mut tr = Trace::default();
        VrlRecord(&Value::Object(m))
            .walk(&mut tr)
            .expect("test fixture");
        assert_eq!(
            tr.0,
            "{ k:Plain(\"b\") Str(Plain(\"h\u{fffd}\")) ev k:Plain(\"f\") Number(\"1.0\") ev \
             k:Plain(\"i\") Number(\"-7\") ev k:Plain(\"n\") Null ev \
             k:Plain(\"t\") Str(Plain(\"2019-03-04T05:06:07.250Z\")) ev \
             k:Plain(\"x\") [ Bool(true) { } ] ev } "
        );
        // Timestamps read as Vector's JSON encoder writes them.
        assert_eq!(
            vrl::value::value::timestamp_to_string(&ts),
            "2019-03-04T05:06:07.250Z"
        );
    }

    #[test]
    fn unreadable_values_are_left_alone() {
        let t = VrlTagger::new(TagConfig::default().build().expect("test fixture"));
        let mut s = t.scratch();
        let mut v = Value::from("just text");
        assert_eq!(t.tag(&mut s, &mut v), Outcome::Unparsable);
        assert_eq!(v, Value::from("just text"));
        // Nested under a field the rule reads, so the walk has to descend.
        let mut inner = Value::from("x");
        for _ in 0..(MAX_DEPTH + 5) {
            inner = Value::Array(vec![inner]);
        }
        let mut m = ObjectMap::new();
        m.insert("Image".into(), inner);
        let mut deep = Value::Object(m);
        let copy = deep.clone();
        assert_eq!(t.tag(&mut s, &mut deep), Outcome::Unparsable);
        assert_eq!(deep, copy);
    }

    #[test]
    fn tag_replaces_existing_field_and_drop_is_only_for_unmatched() {
        let cfg = TagConfig {
            tag_field: "hit".into(),
            drop_unmatched: true,
            ..TagConfig::default()
        };
        let t = VrlTagger::new(cfg.build().expect("test fixture"));
        let mut s = t.scratch();
        let mut v: Value = serde_json::from_str(
            r#"{"hit":1,"Image":"C:\\x\\IEXPRESS.exe","CommandLine":"iexpress -n C:\\ProgramData\\a.sed"}"#,
        )
        .expect("test fixture");
        let o = t.tag(&mut s, &mut v);
        assert_eq!(o, Outcome::Matched);
        assert!(t.keep(o));
        let hit = v
            .as_object()
            .expect("test fixture")
            .get("hit")
            .expect("test fixture");
        let entry = &hit.as_array().expect("test fixture")[0];
        assert_eq!(
            entry.as_object().expect("test fixture").get("level"),
            Some(&Value::from("high"))
        );
        let mut other: Value = serde_json::from_str(r#"{"Image":"x"}"#).expect("test fixture");
        let o = t.tag(&mut s, &mut other);
        assert_eq!(o, Outcome::Unmatched);
        assert!(!t.keep(o));
        assert!(t.keep(Outcome::Unparsable));
    }
}
