//! The seam between the matcher and whatever carries a record.
//!
//! The matcher never sees JSON, msgpack or a shipper's event type. A record only has to
//! walk itself, depth first, telling a [`Visitor`] about keys and scalar values; the visitor
//! answers at every key whether it wants to descend, so a reader can skip whole subtrees
//! the rule set never reads. Implementations exist for JSON bytes ([`crate::json`]) and,
//! with the `serde_json` feature, for `serde_json::Value`.

/// Text as a record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    /// Plain UTF-8 text.
    Plain(&'a str),
    /// The inside of a JSON string literal, escapes not yet decoded (valid JSON, checked).
    JsonEscaped(&'a [u8]),
}

/// A scalar value of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, as its text (`1`, `-0.5`, `1e3`).
    Number(&'a str),
    /// A string.
    Str(Text<'a>),
}

/// Receives a record's structure, depth first.
pub trait Visitor {
    /// An object key; return `true` to receive its value, `false` to have it skipped.
    fn key(&mut self, key: Text<'_>) -> bool;
    /// The value of the last accepted key has ended (not called for array elements).
    fn end_value(&mut self);
    /// A scalar value.
    fn scalar(&mut self, value: Scalar<'_>);
    /// An object begins (its keys follow until `end_object`).
    fn begin_object(&mut self);
    /// The current object ends.
    fn end_object(&mut self);
    /// An array begins (its elements follow, each as a value, until `end_array`).
    fn begin_array(&mut self);
    /// The current array ends.
    fn end_array(&mut self);
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// What is wrong.
    pub message: &'static str,
    /// Byte offset, when the record is bytes.
    pub offset: usize,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for RecordError {}

/// A record the matcher can read.
pub trait Record {
    /// Walks the record (which must be an object at the top) into `visitor`.
    ///
    /// Returns an error when the record is malformed; the visitor's state is then
    /// discarded by the caller.
    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError>;

    /// The record as JSON text, when it is one: the matcher then reads the bytes with its own
    /// reader (SIMD where the CPU has it) instead of walking. It must accept and reject
    /// exactly what [`Record::walk`] would; only [`crate::JsonBytes`] returns `Some`.
    #[doc(hidden)]
    fn json_bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// Text of a number or timestamp formatted on the stack, so that a [`Record`] walking a
/// typed value (a `serde_json::Value`, a Vector event, a Lua table) allocates nothing. Text
/// longer than 64 bytes is cut off at the write that did not fit (`write!` returns an error).
#[derive(Debug, Clone, Copy)]
pub struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    /// An empty buffer.
    pub fn new() -> Self {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Default for StackText {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let b = s.as_bytes();
        let end = self.len + b.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

#[cfg(feature = "serde_json")]
mod serde_impl {
    use super::*;
    use serde_json::Value;

    fn walk_value(v: &Value, vis: &mut dyn Visitor) {
        match v {
            Value::Null => vis.scalar(Scalar::Null),
            Value::Bool(b) => vis.scalar(Scalar::Bool(*b)),
            Value::Number(n) => {
                // Number's Display writes into a stack buffer: no heap.
                let mut buf = StackText::new();
                use std::fmt::Write;
                let _ = write!(buf, "{n}");
                vis.scalar(Scalar::Number(buf.as_str()))
            }
            Value::String(s) => vis.scalar(Scalar::Str(Text::Plain(s))),
            Value::Array(items) => {
                vis.begin_array();
                for it in items {
                    walk_value(it, vis);
                }
                vis.end_array();
            }
            Value::Object(map) => {
                vis.begin_object();
                for (k, v) in map {
                    if vis.key(Text::Plain(k)) {
                        walk_value(v, vis);
                        vis.end_value();
                    }
                }
                vis.end_object();
            }
        }
    }

    impl Record for Value {
        fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
            if !self.is_object() {
                return Err(RecordError {
                    message: "record is not a JSON object",
                    offset: 0,
                });
            }
            walk_value(self, visitor);
            Ok(())
        }
    }
}
