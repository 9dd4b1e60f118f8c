//! A validating, allocation-free JSON reader that walks a record straight from its bytes.
//!
//! No DOM is built: keys the visitor declines are skipped (still validated, so that a
//! malformed line is never tagged), strings are handed over still escaped when they hold
//! escapes, and only the visitor decides what to copy.

use crate::record::{Record, RecordError, Scalar, Text, Visitor};
use crate::swar::{first_zero, HI, LO};

/// Deepest nesting of objects and arrays accepted (serde_json's default too).
pub const MAX_DEPTH: usize = 128;

/// Largest record accepted, in bytes (16 MiB). A longer record is not read at all: the
/// matcher returns a [`RecordError`], and the CLI passes the line through unchanged and
/// counts it as unparsable (docs/security.md).
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// A JSON record held as bytes (one NDJSON line, a filter_wasm buffer, ...).
#[derive(Debug, Clone, Copy)]
pub struct JsonBytes<'a>(pub &'a [u8]);

/// The error for a record over [`MAX_RECORD_BYTES`].
pub(crate) fn too_large() -> RecordError {
    RecordError {
        message: "record larger than 16 MiB (the record size limit)",
        offset: MAX_RECORD_BYTES,
    }
}

impl Record for JsonBytes<'_> {
    fn json_bytes(&self) -> Option<&[u8]> {
        Some(self.0)
    }

    fn walk(&self, visitor: &mut dyn Visitor) -> Result<(), RecordError> {
        if self.0.len() > MAX_RECORD_BYTES {
            return Err(too_large());
        }
        let text = std::str::from_utf8(self.0).map_err(|e| RecordError {
            message: "invalid UTF-8",
            offset: e.valid_up_to(),
        })?;
        let mut r = Reader {
            s: text,
            b: self.0,
            i: 0,
        };
        r.ws();
        if r.peek() != Some(b'{') {
            return Err(r.err("record is not a JSON object"));
        }
        r.value(visitor, 0)?;
        r.ws();
        if r.i != r.b.len() {
            return Err(r.err("trailing characters after the JSON object"));
        }
        Ok(())
    }
}

/// Index of the first `"`, `\\` or control character (< 0x20) in `b`.
#[inline]
fn find_special(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes([
            b[i],
            b[i + 1],
            b[i + 2],
            b[i + 3],
            b[i + 4],
            b[i + 5],
            b[i + 6],
            b[i + 7],
        ]);
        let quote = w ^ (LO * b'"' as u64);
        let slash = w ^ (LO * b'\\' as u64);
        // The lowest flagged byte is always reported exactly.
        let mask = first_zero(quote) | first_zero(slash) | (w.wrapping_sub(LO * 0x20) & !w & HI);
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Decodes the inside of a JSON string literal (already validated) into `out`. Lone
/// surrogates become U+FFFD.
pub fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    unescape_from(out, raw, 0, raw.len());
}

/// One bit per byte of `c` that is a backslash.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn backslashes(c: [u8; 16]) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: `c` is 16 readable bytes (an unaligned load); SSE2 is part of x86_64.
    unsafe {
        let v = _mm_loadu_si128(c.as_ptr() as *const __m128i);
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))) as u32
    }
}

/// One bit per byte of `c` that is a backslash.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn backslashes(c: [u8; 16]) -> u32 {
    let mut m = 0;
    for (k, b) in c.iter().enumerate() {
        m |= ((*b == b'\\') as u32) << k;
    }
    m
}

/// Writes `bytes` at `spare[o..]`.
#[inline(always)]
fn put(spare: &mut [std::mem::MaybeUninit<u8>], o: usize, bytes: &[u8]) {
    for (d, b) in spare[o..o + bytes.len()].iter_mut().zip(bytes) {
        d.write(*b);
    }
}

/// Decodes the inside of a JSON string literal, `buf[start..end]`, appending it to `out`:
/// sixteen bytes at a time, each chunk stored whole and the write position moved past the
/// bytes before its first backslash, so that a run between escapes (a path component) costs
/// one store rather than a copy call. Reads up to fifteen bytes past `end` where `buf` has
/// them. Invalid escapes (which stage one reports: such a record is rejected) and lone
/// surrogates become U+FFFD, a trailing lone backslash stays; `\u` with digits missing at
/// the end reads them as zero. Never panics on any input.
pub fn unescape_from(out: &mut Vec<u8>, buf: &[u8], start: usize, end: usize) {
    let n = end - start;
    // Every escape decodes to at most one and a half times its length (an invalid two-byte
    // escape to the three bytes of U+FFFD), plus a chunk written past the end.
    out.reserve(n + n / 2 + 16);
    let base = out.len();
    let spare = out.spare_capacity_mut();
    let mut o = 0;
    let mut i = start;
    while i < end {
        let c = crate::fold::chunk16(buf, i);
        put(spare, o, &c);
        let slash = backslashes(c);
        let run = if slash == 0 {
            16
        } else {
            slash.trailing_zeros() as usize
        };
        if i + run >= end {
            o += end - i;
            break;
        }
        o += run;
        i += run;
        if run == 16 {
            continue;
        }
        // The escape at `i`: an escaped backslash or quote (every `\\` of a Windows path)
        // directly, the others through the shared decoder.
        let e = if i + 1 < end { buf[i + 1] } else { b'\\' };
        if e == b'\\' || e == b'"' {
            put(spare, o, &[e]);
            o += 1;
            i += 2;
            continue;
        }
        let (ch, next) = decode_escape(&buf[..end], i);
        i = next;
        if ch.is_ascii() {
            put(spare, o, &[ch as u8]);
            o += 1;
        } else {
            let mut utf8 = [0u8; 4];
            let bytes = ch.encode_utf8(&mut utf8).as_bytes();
            put(spare, o, bytes);
            o += bytes.len();
        }
    }
    // SAFETY: every byte of `base..base + o` was written above (each chunk's bytes before
    // the position moved on, each escape's decoded bytes), within the reserved capacity.
    unsafe { out.set_len(base + o) };
}

/// The escape whose backslash is at `text[i]` (`text` ends where the string does): the
/// character it stands for and the offset after it. Invalid escapes and lone surrogates
/// decode to U+FFFD, a trailing lone backslash to itself; `\u` digits missing at the end
/// read as zero.
#[inline(always)]
fn decode_escape(text: &[u8], i: usize) -> (char, usize) {
    let simple = match text.get(i + 1).copied().unwrap_or(b'\\') {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return decode_unicode_escape(text, i),
        _ => '\u{FFFD}',
    };
    (simple, i + 2)
}

/// [`decode_escape`] of a `\u` escape at `text[i]`, with the low surrogate escape that may
/// follow it. Out of line: `\u` escapes are rare in logs.
#[inline(never)]
fn decode_unicode_escape(text: &[u8], i: usize) -> (char, usize) {
    let hi = hex4(text, i + 2);
    let mut next = i + 6;
    let ch = if (0xD800..0xDC00).contains(&hi) {
        if text.get(next) == Some(&b'\\') && text.get(next + 1) == Some(&b'u') {
            let lo = hex4(text, next + 2);
            if (0xDC00..0xE000).contains(&lo) {
                next += 6;
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    .unwrap_or('\u{FFFD}')
            } else {
                '\u{FFFD}'
            }
        } else {
            '\u{FFFD}'
        }
    } else {
        char::from_u32(hi).unwrap_or('\u{FFFD}')
    };
    (ch, next)
}

fn hex4(raw: &[u8], at: usize) -> u32 {
    let mut v = 0u32;
    for k in 0..4 {
        let d = match raw.get(at + k) {
            Some(c @ b'0'..=b'9') => c - b'0',
            Some(c @ b'a'..=b'f') => c - b'a' + 10,
            Some(c @ b'A'..=b'F') => c - b'A' + 10,
            _ => 0,
        };
        v = v * 16 + d as u32;
    }
    v
}

impl<'a> Reader<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn err(&self, message: &'static str) -> RecordError {
        RecordError {
            message,
            offset: self.i,
        }
    }
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8, message: &'static str) -> Result<(), RecordError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    /// Reads a string starting at the opening quote; returns it (escaped or plain).
    fn string(&mut self) -> Result<Text<'a>, RecordError> {
        self.i += 1; // opening quote
        let start = self.i;
        let mut escaped = false;
        loop {
            // The next quote, backslash or control character, eight bytes at a time.
            let Some(off) = find_special(&self.b[self.i..]) else {
                return Err(self.err("unterminated string"));
            };
            if self.b[self.i + off] < 0x20 {
                self.i += off;
                return Err(self.err("control character in string"));
            }
            self.i += off;
            if self.b[self.i] == b'"' {
                break;
            }
            escaped = true;
            match self.b.get(self.i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                Some(b'u') => {
                    let ok = self
                        .b
                        .get(self.i + 2..self.i + 6)
                        .is_some_and(|h| h.iter().all(|c| c.is_ascii_hexdigit()));
                    if !ok {
                        return Err(self.err("invalid \\u escape"));
                    }
                    self.i += 6;
                }
                _ => return Err(self.err("invalid escape")),
            }
        }
        let end = self.i;
        self.i += 1;
        Ok(if escaped {
            Text::JsonEscaped(&self.b[start..end])
        } else {
            Text::Plain(&self.s[start..end])
        })
    }

    fn number(&mut self) -> Result<&'a str, RecordError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        Ok(&self.s[start..self.i])
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), RecordError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Reads one value and reports it to `vis`.
    fn value(&mut self, vis: &mut dyn Visitor, depth: usize) -> Result<(), RecordError> {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting deeper than 128"));
                }
                self.i += 1;
                vis.begin_object();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.peek() != Some(b'"') {
                            return Err(self.err("expected a key"));
                        }
                        let key = self.string()?;
                        self.ws();
                        self.expect(b':', "expected ':'")?;
                        if vis.key(key) {
                            self.value(vis, depth + 1)?;
                            vis.end_value();
                        } else {
                            self.value(&mut Skip, depth + 1)?;
                        }
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}'")),
                        }
                    }
                }
                vis.end_object();
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting deeper than 128"));
                }
                self.i += 1;
                vis.begin_array();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value(vis, depth + 1)?;
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                vis.end_array();
            }
            b'"' => {
                let t = self.string()?;
                vis.scalar(Scalar::Str(t));
            }
            b't' => {
                self.literal(b"true")?;
                vis.scalar(Scalar::Bool(true));
            }
            b'f' => {
                self.literal(b"false")?;
                vis.scalar(Scalar::Bool(false));
            }
            b'n' => {
                self.literal(b"null")?;
                vis.scalar(Scalar::Null);
            }
            b'-' | b'0'..=b'9' => {
                let n = self.number()?;
                vis.scalar(Scalar::Number(n));
            }
            _ => return Err(self.err("unexpected character")),
        }
        Ok(())
    }
}

/// A visitor that wants nothing: the reader only validates what it walks.
pub struct Skip;

impl Visitor for Skip {
    fn key(&mut self, _: Text<'_>) -> bool {
        false
    }
    fn end_value(&mut self) {}
    fn scalar(&mut self, _: Scalar<'_>) {}
    fn begin_object(&mut self) {}
    fn end_object(&mut self) {}
    fn begin_array(&mut self) {}
    fn end_array(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<String>);
    impl Visitor for Collect {
        fn key(&mut self, key: Text<'_>) -> bool {
            let k = match key {
                Text::Plain(s) => s.to_string(),
                Text::JsonEscaped(b) => {
                    let mut v = Vec::new();
                    unescape_into(b, &mut v);
                    String::from_utf8(v).unwrap()
                }
            };
            let take = k != "skip";
            self.0.push(format!("k:{k}"));
            take
        }
        fn end_value(&mut self) {
            self.0.push("/".into());
        }
        fn scalar(&mut self, value: Scalar<'_>) {
            self.0.push(match value {
                Scalar::Null => "null".into(),
                Scalar::Bool(b) => b.to_string(),
                Scalar::Number(n) => format!("n:{n}"),
                Scalar::Str(Text::Plain(s)) => format!("s:{s}"),
                Scalar::Str(Text::JsonEscaped(b)) => {
                    let mut v = Vec::new();
                    unescape_into(b, &mut v);
                    format!("e:{}", String::from_utf8(v).unwrap())
                }
            });
        }
        fn begin_object(&mut self) {
            self.0.push("{".into());
        }
        fn end_object(&mut self) {
            self.0.push("}".into());
        }
        fn begin_array(&mut self) {
            self.0.push("[".into());
        }
        fn end_array(&mut self) {
            self.0.push("]".into());
        }
    }

    fn walk(s: &str) -> Result<String, RecordError> {
        let mut c = Collect::default();
        JsonBytes(s.as_bytes()).walk(&mut c)?;
        Ok(c.0.join(" "))
    }

    #[test]
    fn walks_and_skips() {
        assert_eq!(
            walk(r#" {"a": [1, "x\u00e9", null], "skip": {"b": [true]}, "c": {"d": false}} "#)
                .unwrap(),
            "{ k:a [ n:1 e:xé null ] / k:skip k:c { k:d false / } / }"
        );
    }

    #[test]
    fn finds_special_bytes() {
        for (text, want) in [
            (&b"abcdefghij\"x"[..], Some(10)),
            (b"ab\\c", Some(2)),
            (b"abcdefgh\x01", Some(8)),
            (b"\x1f", Some(0)),
            (b"abcdefghijklmnop", None),
            (b"\xc3\xa9\xe2\x80\x93\"", Some(5)),
            (b"\x7f\xff\x20!\"", Some(4)),
        ] {
            assert_eq!(find_special(text), want, "{text:?}");
        }
        // Every position and every byte value, against the plain definition.
        for pos in 0..20 {
            for byte in 0..=255u8 {
                let mut v = vec![b'a'; 20];
                v[pos] = byte;
                let plain = v.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
                assert_eq!(find_special(&v), plain, "byte {byte} at {pos}");
            }
        }
    }

    /// Against serde_json's decoding of the same literal, over strings dense in escapes
    /// (every offset of a backslash against the eight-byte words).
    #[cfg(feature = "serde_json")]
    #[test]
    fn unescape_matches_serde() {
        let pieces = [
            "a",
            "bc",
            "defghij",
            "C:",
            r"\\",
            r"\n",
            r#"\""#,
            r"\u00e9",
            r"\/",
            "é",
            " ",
            "klmnopqrstu",
        ];
        let mut rng = crate::testutil::Rng(99);
        for _ in 0..20_000 {
            let mut lit = String::new();
            for _ in 0..rng.below(12) {
                lit.push_str(rng.pick(&pieces));
            }
            let want: String = serde_json::from_str(&format!("\"{lit}\"")).unwrap();
            // Appended after what `out` holds already.
            let mut got = b"kept".to_vec();
            unescape_into(lit.as_bytes(), &mut got);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                format!("kept{want}"),
                "{lit}"
            );
        }
    }

    /// Byte by byte, escape by escape: the definition `unescape_from`'s chunks are held to
    /// (what each escape decodes to is held to serde_json by `unescape_matches_serde`).
    fn unescape_plain(raw: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < raw.len() {
            if raw[i] != b'\\' {
                out.push(raw[i]);
                i += 1;
                continue;
            }
            let (ch, next) = decode_escape(raw, i);
            i = next;
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    /// `unescape_from` against the byte-by-byte decoder on valid and invalid text, inside
    /// buffers with and without bytes after the string (read past `end`), appended after
    /// what `out` holds.
    #[test]
    fn word_decoder_is_the_plain_decoder() {
        let pieces = [
            "a",
            "bcdefgh",
            "C:",
            r"\\",
            r"\n",
            r#"\""#,
            r"\u00e9",
            r"\/",
            "é",
            " ",
            r"\",
            r"\x",
            r"\u",
            r"\ud800",
            r"\uD83D\u",
            r"\ud83d\ude00",
            "ijklmnopqrstuvwx",
        ];
        let mut rng = crate::testutil::Rng(0x5eed);
        for round in 0..50_000 {
            let mut raw = Vec::new();
            for _ in 0..rng.below(14) {
                raw.extend_from_slice(rng.pick(&pieces).as_bytes());
            }
            let mut want = b"kept".to_vec();
            unescape_plain(&raw, &mut want);
            // Alone, then inside a buffer with bytes before and after it.
            let mut got = b"kept".to_vec();
            unescape_from(&mut got, &raw, 0, raw.len());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&raw));
            let mut buf = b"{\"k\":\"".to_vec();
            let start = buf.len();
            buf.extend_from_slice(&raw);
            let end = buf.len();
            let tail = b"\\u0041\"}\\\\";
            buf.extend_from_slice(&tail[..round % (tail.len() + 1)]);
            let mut got = b"kept".to_vec();
            unescape_from(&mut got, &buf, start, end);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&buf));
        }
    }

    /// Text that is not valid JSON (the reader never passes it) still decodes without a
    /// panic: invalid escapes and truncated `\u` at every length.
    #[test]
    fn invalid_escapes_do_not_panic() {
        let mut rng = crate::testutil::Rng(7);
        let pieces = [r"\", r"\x", r"\u", r"\ud800", "abcdefg", r"\uD83D\u"];
        for _ in 0..20_000 {
            let mut raw = Vec::new();
            for _ in 0..rng.below(12) {
                raw.extend_from_slice(rng.pick(&pieces).as_bytes());
            }
            let mut v = Vec::new();
            unescape_into(&raw, &mut v);
            assert!(v.len() <= raw.len() + raw.len() / 2);
        }
        let mut v = Vec::new();
        unescape_into(br"a\xb\", &mut v);
        assert_eq!(v, "a\u{FFFD}b\\".as_bytes());
    }

    #[test]
    fn surrogates() {
        let mut v = Vec::new();
        unescape_into(br"\ud83d\ude00 \ud800x", &mut v);
        assert_eq!(String::from_utf8(v).unwrap(), "😀 \u{FFFD}x");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":01}",
            "{\"a\":NaN}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\u{1}\"}",
            "{} x",
            "{\"a\":tru}",
            "{\"skip\":[1,]}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":\"\\u12\"}",
        ] {
            assert!(walk(bad).is_err(), "accepted {bad:?}");
        }
        assert!(JsonBytes(b"{\"a\":\"\xff\"}")
            .walk(&mut Collect::default())
            .is_err());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(walk(&deep).is_err());
    }

    #[test]
    fn record_size_limit() {
        let pad = MAX_RECORD_BYTES - "{\"a\":\"\"}".len();
        let at_limit = format!("{{\"a\":\"{}\"}}", "x".repeat(pad));
        assert_eq!(at_limit.len(), MAX_RECORD_BYTES);
        assert!(walk(&at_limit).is_ok());
        let over = format!("{{\"a\":\"{}\"}}", "x".repeat(pad + 1));
        let err = walk(&over).unwrap_err();
        assert!(err.message.contains("16 MiB"), "{err}");
    }
}
