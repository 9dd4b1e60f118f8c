//! A msgpack reader that walks a record map into the matcher (implements [`Record`]), and
//! the byte-level helpers to find and re-pack events in a Fluent Bit chunk.
//!
//! Values are never decoded into a tree: the walker reports keys and scalars straight from
//! the bytes, and re-packing copies every original byte, so each value keeps its exact
//! msgpack type (u64 max, -0.0, 1.0 as a float, ext, bin).

use std::borrow::Cow;

use sigmatag_matcher::{Record, RecordError, Scalar, Text, Visitor};

/// Deepest nesting accepted (the JSON reader's limit too).
pub const MAX_DEPTH: usize = 128;

fn err(message: &'static str, offset: usize) -> RecordError {
    RecordError { message, offset }
}

/// The kinds of msgpack value the walker distinguishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head {
    /// nil
    Nil,
    /// true / false
    Bool(bool),
    /// unsigned integer
    Uint(u64),
    /// signed integer
    Int(i64),
    /// float32 / float64 (as f64; f32 widened exactly)
    Float(f64),
    /// str of this many bytes (they follow)
    Str(usize),
    /// bin of this many bytes (they follow)
    Bin(usize),
    /// array of this many values
    Array(usize),
    /// map of this many pairs
    Map(usize),
    /// ext of this many data bytes (type byte and data follow)
    Ext(usize),
}

/// Reads the head of the value at `*pos`, advancing past the head (for str/bin/ext, up to
/// the payload; for ext, past the type byte too).
pub fn read_head(b: &[u8], pos: &mut usize) -> Result<Head, RecordError> {
    let at = *pos;
    let eof = || err("msgpack ends inside a value", at);
    let c = *b.get(at).ok_or_else(eof)?;
    let mut take = |n: usize| -> Result<u64, RecordError> {
        let s = b.get(*pos + 1..*pos + 1 + n).ok_or_else(eof)?;
        *pos += 1 + n;
        Ok(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let h = match c {
        0x00..=0x7f => {
            *pos += 1;
            Head::Uint(u64::from(c))
        }
        0x80..=0x8f => {
            *pos += 1;
            Head::Map(usize::from(c & 0x0f))
        }
        0x90..=0x9f => {
            *pos += 1;
            Head::Array(usize::from(c & 0x0f))
        }
        0xa0..=0xbf => {
            *pos += 1;
            Head::Str(usize::from(c & 0x1f))
        }
        0xc0 => {
            *pos += 1;
            Head::Nil
        }
        0xc2 | 0xc3 => {
            *pos += 1;
            Head::Bool(c == 0xc3)
        }
        0xc4 => Head::Bin(take(1)? as usize),
        0xc5 => Head::Bin(take(2)? as usize),
        0xc6 => Head::Bin(take(4)? as usize),
        0xc7..=0xc9 => {
            let n = take(1 << (c - 0xc7))? as usize;
            b.get(*pos).ok_or_else(eof)?;
            *pos += 1; // ext type
            Head::Ext(n)
        }
        0xca => Head::Float(f64::from(f32::from_bits(take(4)? as u32))),
        0xcb => Head::Float(f64::from_bits(take(8)?)),
        0xcc => Head::Uint(take(1)?),
        0xcd => Head::Uint(take(2)?),
        0xce => Head::Uint(take(4)?),
        0xcf => Head::Uint(take(8)?),
        0xd0 => Head::Int(i64::from(take(1)? as u8 as i8)),
        0xd1 => Head::Int(i64::from(take(2)? as u16 as i16)),
        0xd2 => Head::Int(i64::from(take(4)? as u32 as i32)),
        0xd3 => Head::Int(take(8)? as i64),
        0xd4..=0xd8 => {
            let n = 1usize << (c - 0xd4);
            b.get(*pos + 1).ok_or_else(eof)?;
            *pos += 2; // marker + ext type
            Head::Ext(n)
        }
        0xd9 => Head::Str(take(1)? as usize),
        0xda => Head::Str(take(2)? as usize),
        0xdb => Head::Str(take(4)? as usize),
        0xdc => Head::Array(take(2)? as usize),
        0xdd => Head::Array(take(4)? as usize),
        0xde => Head::Map(take(2)? as usize),
        0xdf => Head::Map(take(4)? as usize),
        0xe0..=0xff => {
            *pos += 1;
            Head::Int(i64::from(c as i8))
        }
        0xc1 => return Err(err("invalid msgpack byte 0xc1", at)),
    };
    Ok(h)
}

fn payload<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], RecordError> {
    let s = b
        .get(*pos..pos.saturating_add(n))
        .ok_or_else(|| err("msgpack ends inside a value", *pos))?;
    *pos += n;
    Ok(s)
}

/// Skips one whole value starting at `*pos`. Iterative (no recursion), so a hostile depth
/// cannot overflow the stack.
pub fn skip(b: &[u8], pos: &mut usize) -> Result<(), RecordError> {
    let mut pending: usize = 1;
    while pending > 0 {
        pending -= 1;
        match read_head(b, pos)? {
            Head::Str(n) | Head::Bin(n) | Head::Ext(n) => {
                payload(b, pos, n)?;
            }
            Head::Array(n) => pending = pending.saturating_add(n),
            Head::Map(n) => pending = pending.saturating_add(n.saturating_mul(2)),
            _ => {}
        }
    }
    Ok(())
}

/// Number text in a stack buffer (no heap on the match path).
struct NumText {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl NumText {
    fn new(args: std::fmt::Arguments<'_>) -> NumText {
        let mut t = NumText {
            buf: [0; 40],
            len: 0,
        };
        let _ = std::fmt::write(&mut t, args);
        t
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A msgpack map (one record body) as the matcher's [`Record`].
#[derive(Debug, Clone, Copy)]
pub struct MsgpackMap<'a>(pub &'a [u8]);

impl Record for MsgpackMap<'_> {
    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
        let mut pos = 0;
        let mut w = Walker {
            b: self.0,
            v: visitor,
        };
        match read_head(self.0, &mut pos)? {
            Head::Map(n) => w.map(&mut pos, n, 0)?,
            _ => return Err(err("record is not a map", 0)),
        }
        if pos != self.0.len() {
            return Err(err("trailing bytes after the record", pos));
        }
        Ok(())
    }
}

struct Walker<'a, 'v> {
    b: &'a [u8],
    v: &'v mut dyn Visitor,
}

impl Walker<'_, '_> {
    fn map(&mut self, pos: &mut usize, n: usize, depth: usize) -> Result<(), RecordError> {
        self.v.begin_object();
        for _ in 0..n {
            let key_start = *pos;
            let want = match read_head(self.b, pos)? {
                Head::Str(len) | Head::Bin(len) => {
                    let k = payload(self.b, pos, len)?;
                    self.v.key(Text::Plain(&text(k)))
                }
                Head::Uint(u) => self
                    .v
                    .key(Text::Plain(NumText::new(format_args!("{u}")).as_str())),
                Head::Int(i) => self
                    .v
                    .key(Text::Plain(NumText::new(format_args!("{i}")).as_str())),
                _ => {
                    // A key that is not text or an integer: no rule can name it.
                    *pos = key_start;
                    skip(self.b, pos)?;
                    false
                }
            };
            if want {
                self.value(pos, depth + 1)?;
                self.v.end_value();
            } else {
                skip(self.b, pos)?;
            }
        }
        self.v.end_object();
        Ok(())
    }

    fn value(&mut self, pos: &mut usize, depth: usize) -> Result<(), RecordError> {
        if depth > MAX_DEPTH {
            return Err(err("record nests too deeply", *pos));
        }
        match read_head(self.b, pos)? {
            Head::Nil => self.v.scalar(Scalar::Null),
            Head::Bool(x) => self.v.scalar(Scalar::Bool(x)),
            Head::Uint(u) => self
                .v
                .scalar(Scalar::Number(NumText::new(format_args!("{u}")).as_str())),
            Head::Int(i) => self
                .v
                .scalar(Scalar::Number(NumText::new(format_args!("{i}")).as_str())),
            Head::Float(f) => {
                if f.is_finite() {
                    // `{:?}` keeps a fraction (1.0 stays "1.0"), as JSON renders it.
                    self.v
                        .scalar(Scalar::Number(NumText::new(format_args!("{f:?}")).as_str()))
                } else {
                    self.v.scalar(Scalar::Null)
                }
            }
            Head::Str(n) | Head::Bin(n) => {
                let s = payload(self.b, pos, n)?;
                self.v.scalar(Scalar::Str(Text::Plain(&text(s))))
            }
            Head::Ext(n) => {
                payload(self.b, pos, n)?;
                self.v.scalar(Scalar::Null)
            }
            Head::Array(n) => {
                self.v.begin_array();
                for _ in 0..n {
                    self.value(pos, depth + 1)?;
                }
                self.v.end_array();
            }
            Head::Map(n) => self.map(pos, n, depth)?,
        }
        Ok(())
    }
}

/// Writes a map header for `n` pairs in the smallest form.
pub fn write_map_len(out: &mut Vec<u8>, n: usize) -> Result<(), &'static str> {
    let n = u32::try_from(n).map_err(|_| "map too large")?;
    rmp::encode::write_map_len(out, n).map_err(|_| "cannot write map header")?;
    Ok(())
}

/// Writes a string.
pub fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), &'static str> {
    rmp::encode::write_str(out, s).map_err(|_| "cannot write string")
}
