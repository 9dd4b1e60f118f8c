//! Extraction: from a record to the values of the slots the rule set reads.
//!
//! The field paths of all rules form a trie (with `*` segments); it is determinised into
//! [`PathStates`] at compile time, so that reading a record follows one state per nesting
//! level and a key costs one hash lookup. Two readers feed the same [`Sink`]:
//!
//! - [`parse_json`]: JSON bytes, straight from the bytes. Stage one ([`crate::structural`])
//!   finds quotes and structural characters 64 bytes at a time; this stage-two loop checks the
//!   grammar from event to event, looks up keys and copies (raw and case-folded) only the
//!   values some rule reads. Whatever no rule reads is still validated, never copied.
//! - [`Extractor`]: any [`crate::Record`] that walks itself into a [`Visitor`] (serde_json
//!   values, Vector events, Lua tables, msgpack).

use std::collections::HashMap;

use crate::compile::Shared;
use crate::fold;
use crate::json::{self, MAX_DEPTH};
use crate::keys::{KeyIndex, KeyWords};
use crate::pipeline::KeyCompare;
use crate::record::{RecordError, Scalar, Text, Visitor};
use crate::structural::{Classify, Events, Flaw};
use crate::swar::has_byte;
use crate::{Kind, Scratch};

/// The state that reads nothing (no rule reads below this key).
pub(crate) const DEAD: u32 = 0;

/// One state of the determinised path trie: a set of trie nodes.
#[derive(Debug, Default)]
pub(crate) struct PathState {
    /// Key -> next state.
    table: KeyIndex,
    /// Next state for keys not in `table` (from `*` segments), or [`DEAD`].
    default: u32,
    /// Slots whose paths end here.
    pub slots: Box<[u32]>,
}

/// The determinised path trie.
#[derive(Debug, Default)]
pub(crate) struct PathStates {
    pub states: Vec<PathState>,
    /// The state of the record's top-level object.
    pub root: u32,
    /// Record keys are compared with their spaces removed.
    strip_spaces: bool,
    /// Some path key holds a backslash (or, without stripping, nothing special): a record
    /// key found as written may then still need unescaping first.
    key_backslash: bool,
}

impl PathStates {
    /// Determinises the trie of `shared` (subset construction over trie nodes).
    pub fn build(shared: &Shared) -> PathStates {
        let trie = &shared.trie;
        let mut ids: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut sets: Vec<Vec<u32>> = vec![Vec::new()];
        ids.insert(Vec::new(), DEAD);
        let mut states = vec![PathState::default()];
        let mut intern = |set: Vec<u32>, sets: &mut Vec<Vec<u32>>| -> u32 {
            if let Some(&id) = ids.get(&set) {
                return id;
            }
            let id = sets.len() as u32;
            ids.insert(set.clone(), id);
            sets.push(set);
            id
        };
        let root = intern(vec![0], &mut sets);
        let mut next = 1;
        while next < sets.len() {
            let set = sets[next].clone();
            let mut anys: Vec<u32> = set.iter().filter_map(|&n| trie[n as usize].any).collect();
            anys.sort_unstable();
            anys.dedup();
            let mut by_key: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
            for &n in &set {
                for (k, &c) in &trie[n as usize].children {
                    by_key.entry(k.clone()).or_default().push(c);
                }
            }
            let mut table: Vec<(Box<[u8]>, u32)> = Vec::new();
            for (k, mut targets) in by_key {
                targets.extend_from_slice(&anys);
                targets.sort_unstable();
                targets.dedup();
                let target = intern(targets, &mut sets);
                table.push((k, target));
            }
            let pairs: Vec<(&[u8], u32)> = table.iter().map(|(k, t)| (&k[..], *t)).collect();
            let default = intern(anys, &mut sets);
            let mut slots: Vec<u32> = set
                .iter()
                .flat_map(|&n| trie[n as usize].slots.iter().copied())
                .collect();
            slots.sort_unstable();
            slots.dedup();
            states.push(PathState {
                table: KeyIndex::build(&pairs),
                default,
                slots: slots.into_boxed_slice(),
            });
            next += 1;
        }
        let key_backslash = trie
            .iter()
            .any(|n| n.children.keys().any(|k| k.contains(&b'\\')));
        PathStates {
            states,
            root,
            strip_spaces: shared.pipeline.key_compare == KeyCompare::StripSpaces,
            key_backslash,
        }
    }

    /// The state after key `key` (plain bytes, spaces already removed when the pipeline
    /// says so) from `state`.
    #[inline]
    pub fn step(&self, state: u32, key: &[u8]) -> u32 {
        self.step_in(state, key, 0, key.len())
    }

    /// The state after the key `buf[start..end]` (plain bytes as in [`PathStates::step`]).
    #[inline(always)]
    pub fn step_in(&self, state: u32, buf: &[u8], start: usize, end: usize) -> u32 {
        if state == DEAD {
            return DEAD;
        }
        let st = &self.states[state as usize];
        st.table.get_in(buf, start, end).unwrap_or(st.default)
    }
}

impl PathStates {
    /// The state after the record key `buf[start..end]` as the record writes it (escapes
    /// not decoded, spaces not removed), from a live `state`. `tmp` holds the decoded key
    /// when it has escapes (or spaces, under `StripSpaces`).
    ///
    /// The key is looked up as written first: path keys hold no backslash (checked at build),
    /// and under `StripSpaces` no space, so a key found as written has neither and needs no
    /// decoding. Only keys not found are checked for escapes and spaces.
    #[inline(always)]
    pub fn step_record_key(
        &self,
        state: u32,
        buf: &[u8],
        start: usize,
        end: usize,
        tmp: &mut Vec<u8>,
    ) -> u32 {
        let st = &self.states[state as usize];
        let words = KeyWords::in_buf(buf, start, end);
        let found = st.table.get_words(&words, buf, start, end);
        if let (Some(t), false) = (found, self.key_backslash) {
            return t;
        }
        let key = &buf[start..end];
        let special = words
            .has_special(self.strip_spaces)
            .unwrap_or_else(|| has_byte(key, b'\\') || self.strip_spaces && has_byte(key, b' '));
        if !special {
            return found.unwrap_or(st.default);
        }
        self.step_decoded(state, key, has_byte(key, b'\\'), tmp)
    }

    /// The state after a key that must be normalised first: unescaped (`escaped`: the inside
    /// of a JSON string with escapes) and, under `StripSpaces`, without spaces, in `tmp`.
    fn step_decoded(&self, state: u32, key: &[u8], escaped: bool, tmp: &mut Vec<u8>) -> u32 {
        tmp.clear();
        if escaped {
            json::unescape_into(key, tmp);
        } else {
            tmp.extend_from_slice(key);
        }
        if self.strip_spaces {
            tmp.retain(|b| *b != b' ');
        }
        self.step(state, tmp)
    }
}

/// Where extracted values go: the rule set's tables and the per-record scratch.
pub(crate) struct Sink<'a> {
    pub paths: &'a PathStates,
    pub all_slot: Option<u32>,
    pub s: &'a mut Scratch,
}

/// Text of a value as a reader hands it over.
#[derive(Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// No text (null, containers).
    Empty,
    /// UTF-8 text (checked by the reader, or ASCII).
    Str(&'a str),
    /// ASCII bytes (known from the reader's masks).
    Ascii(&'a [u8]),
    /// `buf[start..end]`, the inside of a string without escapes in a JSON record that may
    /// hold bytes >= 0x80 (ASCII text goes to [`Sink::json_ascii`]).
    Json {
        buf: &'a [u8],
        start: usize,
        end: usize,
    },
    /// `buf[start..end]`, the inside of a JSON string literal with escapes (grammar
    /// checked), read past `end` when `buf` has more bytes (a record).
    Escaped {
        buf: &'a [u8],
        start: usize,
        end: usize,
    },
}

const INVALID_UTF8: RecordError = RecordError {
    message: "invalid UTF-8",
    offset: 0,
};

impl Sink<'_> {
    /// Whether a value of `kind` at `state` is stored at all.
    #[inline(always)]
    pub fn wants(&self, state: u32, kind: Kind) -> bool {
        !self.paths.states[state as usize].slots.is_empty()
            || self.all_slot.is_some() && matches!(kind, Kind::Str | Kind::Num | Kind::Bool)
    }

    /// The state after a key given as a record holds it.
    #[inline]
    pub fn step_text(&mut self, state: u32, key: Text<'_>) -> u32 {
        if state == DEAD {
            return DEAD;
        }
        let (key, escaped) = match key {
            Text::Plain(k) => (k.as_bytes(), false),
            Text::JsonEscaped(b) => (b, true),
        };
        if !(escaped || self.paths.strip_spaces && key.contains(&b' ')) {
            return self.paths.step(state, key);
        }
        self.paths
            .step_decoded(state, key, escaped, &mut self.s.tmp)
    }

    /// Stores the ASCII text `buf[start..end]` of a JSON scalar or string without escapes,
    /// of `kind` (a leaf), found at `state` (which [`Sink::wants`] it): the common case of
    /// [`Sink::value`], in a function of its own because that one's set-up (a large frame,
    /// the dispatch on [`Raw`]) cost more than the copy of a short value.
    #[inline(never)]
    pub fn json_ascii(
        &mut self,
        state: u32,
        kind: Kind,
        buf: &[u8],
        start: usize,
        end: usize,
        in_array: bool,
    ) {
        let slots = &self.paths.states[state as usize].slots;
        let s = &mut *self.s;
        let raw_start = s.arena.len();
        fold::push_raw_and_lower(&mut s.arena, buf, start, end);
        let raw_end = raw_start + (end - start);
        let raw = (raw_start as u32, raw_end as u32);
        let folded = (raw_end as u32, s.arena.len() as u32);
        for &slot in slots.iter() {
            s.link(slot, kind, in_array, raw, folded);
        }
        if let Some(slot) = self.all_slot {
            s.link(slot, kind, in_array, raw, folded);
        }
    }

    /// Stores a value of `kind` found at `state` (if any slot or the keyword slot wants it).
    #[inline]
    pub fn value(
        &mut self,
        state: u32,
        kind: Kind,
        raw: Raw<'_>,
        in_array: bool,
    ) -> Result<(), RecordError> {
        let leaf = matches!(kind, Kind::Str | Kind::Num | Kind::Bool);
        let all = self.all_slot.filter(|_| leaf);
        let slots = &self.paths.states[state as usize].slots;
        if slots.is_empty() && all.is_none() {
            return Ok(());
        }
        if let Raw::Json { buf, start, end } = raw {
            if buf[start..end].is_ascii() {
                self.json_ascii(state, kind, buf, start, end, in_array);
                return Ok(());
            }
        }
        let s = &mut *self.s;
        let raw_start = s.arena.len();
        let ascii = match raw {
            Raw::Empty => true,
            Raw::Json { buf, start, end } => {
                let text = &buf[start..end];
                if std::str::from_utf8(text).is_err() {
                    return Err(INVALID_UTF8);
                }
                s.arena.extend_from_slice(text);
                false
            }
            Raw::Str(t) => {
                s.arena.extend_from_slice(t.as_bytes());
                t.is_ascii()
            }
            Raw::Ascii(b) => {
                s.arena.extend_from_slice(b);
                true
            }
            Raw::Escaped { buf, start, end } => {
                json::unescape_from(&mut s.arena, buf, start, end);
                let text = &s.arena[raw_start..];
                let ascii = text.is_ascii();
                if !ascii && std::str::from_utf8(text).is_err() {
                    return Err(INVALID_UTF8);
                }
                ascii
            }
        };
        let raw_end = s.arena.len();
        if ascii {
            fold::push_lower_within(&mut s.arena, raw_start, raw_end);
        } else {
            // Rare: fold character by character from a copy.
            s.tmp.clear();
            s.tmp.extend_from_slice(&s.arena[raw_start..raw_end]);
            let text = std::str::from_utf8(&s.tmp).unwrap_or("");
            fold::fold_into(text, &mut s.arena);
        }
        let raw = (raw_start as u32, raw_end as u32);
        let folded = (raw_end as u32, s.arena.len() as u32);
        for &slot in slots.iter() {
            s.link(slot, kind, in_array, raw, folded);
        }
        if let Some(slot) = all {
            s.link(slot, kind, in_array, raw, folded);
        }
        Ok(())
    }
}

/// Bytes that end a scalar (whitespace, quote, structural): a scalar is valid only when
/// the byte after it is one of these or the end of the record.
static ENDS_SCALAR: [bool; 256] = crate::structural::byte_table(b" \t\n\r\"{}[]:,");

/// Whether the scalar that ends at `end` ends there (and not in a stray byte: `truex`, `01`).
#[inline(always)]
fn scalar_ends(buf: &[u8], end: usize) -> bool {
    buf.get(end).is_none_or(|&c| ENDS_SCALAR[c as usize])
}

/// The end of the JSON number starting at `i` (or the offset of its first wrong byte).
#[inline]
fn number_end(b: &[u8], mut i: usize) -> Result<usize, usize> {
    let n = b.len();
    let digits = |mut i: usize| {
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    if i < n && b[i] == b'-' {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i + 1),
        _ => return Err(i),
    }
    if i < n && b[i] == b'.' {
        let j = digits(i + 1);
        if j == i + 1 {
            return Err(j);
        }
        i = j;
    }
    if i < n && b[i] | 0x20 == b'e' {
        i += 1;
        if i < n && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let j = digits(i);
        if j == i {
            return Err(i);
        }
        i = j;
    }
    Ok(i)
}

fn fail(message: &'static str, offset: usize) -> RecordError {
    RecordError { message, offset }
}

/// After a `{`: the opening quote of the first key, or `None` for `{}`.
#[inline(always)]
fn object_first<C: Classify>(
    ev: &mut Events<'_, C>,
    buf: &[u8],
) -> Result<Option<usize>, RecordError> {
    let Some(e) = ev.next() else {
        return Err(fail("unexpected end of input", buf.len()));
    };
    match buf[e] {
        b'"' => Ok(Some(e)),
        b'}' => Ok(None),
        _ => Err(fail("expected a key", e)),
    }
}

/// A key whose opening quote is at `q`, in an object at `state`, and its colon: the state of
/// the value and the offset of the value's first byte (its event).
#[inline(always)]
fn key<C: Classify>(
    ev: &mut Events<'_, C>,
    buf: &[u8],
    sink: &mut Sink<'_>,
    q: usize,
    state: u32,
) -> Result<(u32, usize), RecordError> {
    let Some((close, _)) = ev.next_close() else {
        return Err(fail("unterminated string", buf.len()));
    };
    let child = if state == DEAD {
        DEAD
    } else {
        sink.paths
            .step_record_key(state, buf, q + 1, close, &mut sink.s.tmp)
    };
    match ev.next() {
        Some(c) if buf[c] == b':' => match ev.next() {
            Some(v) => Ok((child, v)),
            None => Err(fail("unexpected end of input", buf.len())),
        },
        _ => Err(fail("expected ':'", close + 1)),
    }
}

/// At a `{` or `[` at `q`, opened at nesting `depth`: checks it is within [`MAX_DEPTH`]
/// and stores the container value if it is wanted.
#[inline(always)]
fn open_container(
    sink: &mut Sink<'_>,
    q: usize,
    depth: usize,
    state: u32,
    in_array: bool,
) -> Result<(), RecordError> {
    if depth >= MAX_DEPTH {
        return Err(fail("nesting deeper than 128", q));
    }
    if sink.wants(state, Kind::Container) {
        sink.value(state, Kind::Container, Raw::Empty, in_array)?;
    }
    Ok(())
}

/// Reads a JSON record (`buf`, at most [`json::MAX_RECORD_BYTES`]) into `sink`: the same
/// values, in the same order, as [`crate::JsonBytes`]'s walk through an [`Extractor`], and
/// an error for exactly the records that walk rejects.
///
/// One pass over the events (stage one's, which include the first byte of every scalar):
/// `'value` reads the value whose first byte is the event at `q` (descending into
/// containers), the inner loop after it consumes commas and closing brackets until the next
/// value. Whitespace is never looked at: between two events there is only whitespace or the
/// rest of a scalar, whose end is checked.
#[inline(always)]
pub(crate) fn parse_json<C: Classify>(buf: &[u8], sink: &mut Sink<'_>) -> Result<(), RecordError> {
    let mut ev = Events::<C>::new(buf);
    match ev.next() {
        Some(s) if buf[s] == b'{' => {}
        s => return Err(fail("record is not a JSON object", s.unwrap_or(buf.len()))),
    }
    // The open containers, innermost last: state << 1 | is_array.
    let mut stack = [0u32; MAX_DEPTH + 1];
    stack[0] = sink.paths.root << 1;
    let mut depth = 1usize;
    // The next value: its first byte (an event), its state, whether in an array.
    let (mut vstate, mut q) = match object_first(&mut ev, buf)? {
        Some(k) => key(&mut ev, buf, sink, k, sink.paths.root)?,
        None => return finish(&mut ev, buf),
    };
    let mut vin_array = false;
    'value: loop {
        match buf[q] {
            b'"' => {
                let Some((close, escapes)) = ev.next_close() else {
                    return Err(fail("unterminated string", buf.len()));
                };
                if sink.wants(vstate, Kind::Str) {
                    if escapes {
                        let raw = Raw::Escaped {
                            buf,
                            start: q + 1,
                            end: close,
                        };
                        sink.value(vstate, Kind::Str, raw, vin_array)?;
                    } else if !ev.high() {
                        // No byte >= 0x80 in the blocks read so far, which hold the value.
                        sink.json_ascii(vstate, Kind::Str, buf, q + 1, close, vin_array);
                    } else {
                        let raw = Raw::Json {
                            buf,
                            start: q + 1,
                            end: close,
                        };
                        sink.value(vstate, Kind::Str, raw, vin_array)?;
                    }
                }
            }
            b'{' => {
                open_container(sink, q, depth, vstate, vin_array)?;
                stack[depth] = vstate << 1;
                depth += 1;
                if let Some(k) = object_first(&mut ev, buf)? {
                    (vstate, q) = key(&mut ev, buf, sink, k, vstate)?;
                    vin_array = false;
                    continue 'value;
                }
                depth -= 1;
            }
            b'[' => {
                open_container(sink, q, depth, vstate, vin_array)?;
                let Some(r) = ev.next() else {
                    return Err(fail("unexpected end of input", buf.len()));
                };
                if buf[r] != b']' {
                    stack[depth] = vstate << 1 | 1;
                    depth += 1;
                    vin_array = true;
                    q = r;
                    continue 'value;
                }
            }
            c @ (b't' | b'f' | b'n') => {
                let (word, kind, text): (&[u8], Kind, &[u8]) = match c {
                    b't' => (b"true", Kind::Bool, b"true"),
                    b'f' => (b"false", Kind::Bool, b"false"),
                    _ => (b"null", Kind::Null, b""),
                };
                if !buf[q..].starts_with(word) || !scalar_ends(buf, q + word.len()) {
                    return Err(fail("invalid literal", q));
                }
                if sink.wants(vstate, kind) {
                    let raw = if kind == Kind::Null {
                        Raw::Empty
                    } else {
                        Raw::Ascii(text)
                    };
                    sink.value(vstate, kind, raw, vin_array)?;
                }
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(buf, q).map_err(|at| fail("invalid number", at))?;
                if !scalar_ends(buf, end) {
                    return Err(fail("invalid number", end));
                }
                if sink.wants(vstate, Kind::Num) {
                    sink.json_ascii(vstate, Kind::Num, buf, q, end, vin_array);
                }
            }
            _ => return Err(fail("unexpected character", q)),
        }
        // After a value: commas lead to the next value, closing brackets end containers.
        loop {
            let Some(e) = ev.next() else {
                return Err(fail("unexpected end of input", buf.len()));
            };
            let top = stack[depth - 1];
            let array = top & 1 == 1;
            match (buf[e], array) {
                (b',', false) => {
                    match ev.next() {
                        Some(k) if buf[k] == b'"' => {
                            (vstate, q) = key(&mut ev, buf, sink, k, top >> 1)?;
                        }
                        _ => return Err(fail("expected a key", e + 1)),
                    }
                    vin_array = false;
                    continue 'value;
                }
                (b',', true) => {
                    let Some(n) = ev.next() else {
                        return Err(fail("unexpected end of input", buf.len()));
                    };
                    vstate = top >> 1;
                    vin_array = true;
                    q = n;
                    continue 'value;
                }
                (b'}', false) | (b']', true) => {
                    depth -= 1;
                    if depth == 0 {
                        return finish(&mut ev, buf);
                    }
                }
                (_, true) => return Err(fail("expected ',' or ']'", e)),
                (_, false) => return Err(fail("expected ',' or '}'", e)),
            }
        }
    }
}

/// After the top-level object: no event may follow (anything but whitespace would be one);
/// then stage one's verdicts.
#[inline(always)]
fn finish<C: Classify>(ev: &mut Events<'_, C>, buf: &[u8]) -> Result<(), RecordError> {
    if let Some(e) = ev.next() {
        return Err(fail("trailing characters after the JSON object", e));
    }
    match ev.flaw() {
        Some(Flaw::Control(at)) => return Err(fail("control character in string", at)),
        Some(Flaw::Escape(at)) => return Err(fail("invalid escape", at)),
        None => {}
    }
    if ev.high() {
        if let Err(e) = std::str::from_utf8(buf) {
            return Err(fail("invalid UTF-8", e.valid_up_to()));
        }
    }
    Ok(())
}

/// Reads any [`crate::Record`] that walks itself (a [`Visitor`]) into a [`Sink`].
pub(crate) struct Extractor<'a> {
    pub sink: Sink<'a>,
    /// The first error of a value (invalid UTF-8 cannot occur in `Text::Plain`).
    pub error: Option<RecordError>,
}

impl Extractor<'_> {
    fn top(&self) -> u32 {
        self.sink
            .s
            .states
            .last()
            .copied()
            .unwrap_or(self.sink.paths.root)
    }

    fn push(&mut self, kind: Kind, raw: Raw<'_>) {
        if self.sink.s.states.is_empty() {
            // Values of the top level itself (the record's object): nothing reads them.
            return;
        }
        let state = self.top();
        if !self.sink.wants(state, kind) {
            return;
        }
        let in_array = self.sink.s.in_array.last().copied().unwrap_or(false);
        if let Err(e) = self.sink.value(state, kind, raw, in_array) {
            self.error.get_or_insert(e);
        }
    }
}

impl Visitor for Extractor<'_> {
    fn key(&mut self, key: Text<'_>) -> bool {
        let state = self.top();
        let next = self.sink.step_text(state, key);
        if next == DEAD && self.sink.all_slot.is_none() {
            return false;
        }
        self.sink.s.states.push(next);
        true
    }

    fn end_value(&mut self) {
        self.sink.s.states.pop();
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        match value {
            Scalar::Null => self.push(Kind::Null, Raw::Empty),
            Scalar::Bool(b) => self.push(Kind::Bool, Raw::Str(if b { "true" } else { "false" })),
            Scalar::Number(n) => self.push(Kind::Num, Raw::Str(n)),
            Scalar::Str(Text::Plain(t)) => self.push(Kind::Str, Raw::Str(t)),
            Scalar::Str(Text::JsonEscaped(b)) => {
                let raw = Raw::Escaped {
                    buf: b,
                    start: 0,
                    end: b.len(),
                };
                self.push(Kind::Str, raw)
            }
        }
    }

    fn begin_object(&mut self) {
        self.push(Kind::Container, Raw::Empty);
        self.sink.s.in_array.push(false);
    }

    fn end_object(&mut self) {
        self.sink.s.in_array.pop();
    }

    fn begin_array(&mut self) {
        self.push(Kind::Container, Raw::Empty);
        self.sink.s.in_array.push(true);
    }

    fn end_array(&mut self) {
        self.sink.s.in_array.pop();
    }
}

/// Reads JSON bytes with the fastest classifier this CPU has.
pub(crate) fn parse_record(buf: &[u8], sink: &mut Sink<'_>) -> Result<(), RecordError> {
    #[cfg(target_arch = "x86_64")]
    if crate::structural::has_avx2() {
        // SAFETY: the CPU has AVX2 and PCLMULQDQ (checked just above).
        return unsafe { parse_avx2(buf, sink) };
    }
    parse_json::<crate::structural::Portable>(buf, sink)
}

/// [`parse_json`] compiled for AVX2 (the whole loop, so that the classifier inlines).
///
/// # Safety
/// The CPU must support AVX2 and PCLMULQDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
unsafe fn parse_avx2(buf: &[u8], sink: &mut Sink<'_>) -> Result<(), RecordError> {
    parse_json::<crate::structural::avx2::Avx2>(buf, sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::{JsonBytes, Pipeline, RuleSet};

    /// Every value of every slot: (slot, kind, in array, raw, folded), in slot-list order.
    type Dump = Vec<(u32, Kind, bool, Vec<u8>, Vec<u8>)>;

    fn dump(s: &Scratch) -> Dump {
        let mut out = Vec::new();
        for (slot, &head) in s.slot_head.iter().enumerate() {
            let mut cur = head;
            while cur != crate::NONE {
                let v = s.values[cur as usize];
                cur = v.next;
                out.push((
                    slot as u32,
                    v.kind,
                    v.in_array,
                    s.arena[v.raw.0 as usize..v.raw.1 as usize].to_vec(),
                    s.arena[v.folded.0 as usize..v.folded.1 as usize].to_vec(),
                ));
            }
        }
        out
    }

    /// The walk (visitor) path, the portable reader and, where the CPU has it, the AVX2
    /// reader: their verdicts and values.
    fn readers(set: &RuleSet, s: &mut Scratch, buf: &[u8]) -> Vec<Result<Dump, RecordError>> {
        let mut out = Vec::new();
        s.clear_values();
        let walked = {
            let mut ex = Extractor {
                sink: set.sink(s),
                error: None,
            };
            JsonBytes(buf)
                .walk(&mut ex)
                .and_then(|()| ex.error.map_or(Ok(()), Err))
        };
        out.push(walked.map(|()| dump(s)));
        s.clear_values();
        let portable = parse_json::<crate::structural::Portable>(buf, &mut set.sink(s));
        out.push(portable.map(|()| dump(s)));
        #[cfg(target_arch = "x86_64")]
        if crate::structural::has_avx2() {
            s.clear_values();
            let mut sink = set.sink(s);
            // SAFETY: the features were just checked.
            let fast = unsafe { parse_avx2(buf, &mut sink) };
            out.push(fast.map(|()| dump(s)));
        }
        out
    }

    fn check(set: &RuleSet, s: &mut Scratch, buf: &[u8]) -> bool {
        let got = readers(set, s, buf);
        let ok = got[0].is_ok();
        for g in &got[1..] {
            match (&got[0], g) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "values differ on {:?}", String::from_utf8_lossy(buf))
                }
                (Err(_), Err(_)) => {}
                (a, b) => panic!(
                    "verdicts differ on {:?}: walk {a:?}, reader {b:?}",
                    String::from_utf8_lossy(buf)
                ),
            }
        }
        ok
    }

    const RULES: &str = r#"
title: a
id: a
logsource: {product: windows}
detection:
  sel:
    Image|endswith: '\x.exe'
    CommandLine|contains: 'Ab'
    'a.b': 1
    'key with spaces': 'v'
    n: null
    e|exists: true
  condition: sel
---
title: k
id: k
logsource: {product: windows}
detection:
  keywords:
    - 'evil'
  condition: keywords
"#;

    fn sets() -> Vec<RuleSet> {
        let rules: Vec<_> = sigmatag_rule::parse_rules(RULES, "inline", &Default::default())
            .into_iter()
            .map(|r| r.expect("rule parses"))
            .collect();
        let mut out = Vec::new();
        for p in ["flat", "evtx", "ecs-windows"] {
            let pipeline = Pipeline::preset(p).expect("preset");
            // With and without the keyword rule (which makes every value wanted).
            for n in [1, 2] {
                let (set, errors) = RuleSet::compile(&rules[..n], pipeline.clone());
                assert!(errors.is_empty(), "{errors:?}");
                out.push(set);
            }
        }
        out
    }

    const RECORDS: &[&str] = &[
        r#"{"Image":"C:\\X.EXE","CommandLine":"aAbB","a.b":1,"a":{"b":[1,{"c":2}]}}"#,
        r#" { "Image" : [ "x" , [ "y" ] , { "Image" : "z" } ] , "n" : null , "e" : { } } "#,
        r#"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational"},"EventData":{"Image":"C:\\x.exe","CommandLine":"\u0041b \ud83d\ude00 \ud800","key with spaces":"v","keywithspaces":"w"}}}"#,
        r#"{"winlog":{"event_data":{"Image":"é"}},"process":{"executable":"ÄB","command_line":"evil"}}"#,
        r#"{"Im\u0061ge":"esc key","CommandLine":"tab\there","x":[true,false,null,-0,1.5e3,0.25,-12]}"#,
        "{\"a\":\"\u{1F600}\",\"Image\":\"\u{2013}\"}",
        r#"{}"#,
        r#"{"":""}"#,
        r#"{"a":[[[[]]]],"b":[{},{"c":[]}]}"#,
        // Invalid ones.
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a" 1}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#"{"a":nul}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12G4"}"#,
        "{\"a\":\"\u{1}\"}",
        "{\"a\":1}\u{1}",
        r#"{"a":1} x"#,
        r#"{"a":1}}"#,
        r#"{"a":1} {"#,
        r#"{"a":"x"#,
        r#"{"a":"#,
        r#"{"a"#,
        r#"{"#,
        r#"["a"]"#,
        r#""a""#,
        r#"{"a":\"x"}"#,
        r#"{"a":[}"#,
        r#"{"a":[1}"#,
        r#"{"a":[1}}"#,
        r#"{"a":{"b":1]}"#,
        r#"{"a":[1,2}]}"#,
        r#"{"a":[{"b":1]]}"#,
        r#"{"a":{]}"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":1e}"#,
        r#"{"a":.5}"#,
        r#"{a:1}"#,
        r#"{"a":1,"b"}"#,
        r#"{,"a":1}"#,
        r#"{"a":1}"b""#,
        "",
        "   ",
    ];

    #[test]
    fn readers_agree_on_fixed_records() {
        for set in sets() {
            let mut s = set.scratch();
            for r in RECORDS {
                check(&set, &mut s, r.as_bytes());
            }
            // Invalid UTF-8, inside and outside strings, and in keys.
            for bad in [
                &b"{\"a\":\"\xff\"}"[..],
                b"{\"Image\":\"\xc3\"}",
                b"{\"\xe2\x80\":1}",
                b"{\"a\":1}\xff",
                b"{\"Image\":\"\\\\\xff\"}",
            ] {
                assert!(!check(&set, &mut s, bad));
            }
            // Deep nesting at and over the limit.
            for depth in [126, 127, 128, 129, 200] {
                let rec = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
                check(&set, &mut s, rec.as_bytes());
            }
        }
    }

    use crate::testutil::Rng;

    fn gen_string(r: &mut Rng, out: &mut String) {
        out.push('"');
        for _ in 0..r.next() % 12 {
            out.push_str(r.pick(&[
                "a",
                "B",
                "x.exe",
                "\\\\",
                "\\\"",
                "\\u0041",
                "\\ud83d\\ude00",
                "é",
                "Σ",
                " ",
                "\\n",
                "\\/",
                "Image",
                "evil",
                "{",
                "}",
                "[",
                "]",
                ":",
                ",",
                "\\t",
            ]));
        }
        out.push('"');
    }

    fn gen_value(r: &mut Rng, depth: u32, out: &mut String) {
        let ws = |r: &mut Rng, out: &mut String| {
            if r.next() % 4 == 0 {
                out.push_str(r.pick(&[" ", "\n", "\t ", "\r\n"]));
            }
        };
        ws(r, out);
        match r.next() % if depth > 4 { 5 } else { 7 } {
            0 => gen_string(r, out),
            1 => out.push_str(r.pick(&[
                "0",
                "-1",
                "4688",
                "1.5",
                "-0.0e1",
                "1E+2",
                "12345678901234567890",
            ])),
            2 => out.push_str(r.pick(&["true", "false", "null"])),
            3 | 4 => gen_string(r, out),
            5 => {
                out.push('[');
                for i in 0..r.next() % 4 {
                    if i > 0 {
                        out.push(',');
                    }
                    gen_value(r, depth + 1, out);
                }
                out.push(']');
            }
            _ => gen_object(r, depth + 1, out),
        }
        ws(r, out);
    }

    fn gen_object(r: &mut Rng, depth: u32, out: &mut String) {
        out.push('{');
        for i in 0..r.next() % 5 {
            if i > 0 {
                out.push(',');
            }
            if r.next() % 2 == 0 {
                out.push('"');
                out.push_str(r.pick(&[
                    "Image",
                    "CommandLine",
                    "a.b",
                    "a",
                    "b",
                    "key with spaces",
                    "n",
                    "e",
                    "Event",
                    "EventData",
                    "System",
                    "winlog",
                    "event_data",
                    "Im\\u0061ge",
                ]));
                out.push('"');
            } else {
                gen_string(r, out);
            }
            out.push(':');
            gen_value(r, depth, out);
        }
        out.push('}');
    }

    #[test]
    fn readers_agree_on_generated_and_mutated_records() {
        let sets = sets();
        let mut scratches: Vec<Scratch> = sets.iter().map(RuleSet::scratch).collect();
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let (mut valid, mut invalid) = (0, 0);
        for round in 0..20_000 {
            let mut rec = String::new();
            gen_object(&mut r, 0, &mut rec);
            let mut bytes = rec.into_bytes();
            // Every other record: mutate a few bytes (insert, delete, replace), which makes
            // most of them invalid in every possible way.
            if round % 2 == 1 && !bytes.is_empty() {
                for _ in 0..1 + r.next() % 3 {
                    let at = r.next() as usize % bytes.len();
                    let b = b"\"\\{}[],: a\x01\xff0e-."[r.next() as usize % 16];
                    match r.next() % 3 {
                        0 => bytes.insert(at, b),
                        1 if bytes.len() > 1 => {
                            bytes.remove(at);
                        }
                        _ => bytes[at] = b,
                    }
                }
            }
            // Long records cross many 64-byte blocks: pad some with a long string, a few
            // with one of up to 4.8 KB.
            if round % 7 == 0 {
                let reps = r.next() as usize % if round % 35 == 0 { 1600 } else { 80 };
                let pad = format!(",\"pad\":\"{}\"}}", "\\\\x".repeat(reps));
                if bytes.last() == Some(&b'}') {
                    bytes.pop();
                    bytes.extend_from_slice(if bytes.len() > 1 {
                        pad.as_bytes()
                    } else {
                        &pad.as_bytes()[1..]
                    });
                }
            }
            for (set, s) in sets.iter().zip(scratches.iter_mut()) {
                if check(set, s, &bytes) {
                    valid += 1;
                } else {
                    invalid += 1;
                }
            }
        }
        // Both kinds must be well represented for the comparison to mean anything.
        eprintln!("valid {valid}, invalid {invalid}");
        assert!(
            valid > 40_000 && invalid > 30_000,
            "valid {valid}, invalid {invalid}"
        );
    }
}
