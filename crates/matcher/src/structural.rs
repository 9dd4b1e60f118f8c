//! Stage one of the JSON record reader: 64 bytes at a time, find the *events* of a record,
//! the unescaped quotes and the structural characters (`{ } [ ] : ,`) outside strings, as
//! one bit per byte (the technique of simdjson, Langdale & Lemire 2019).
//!
//! Per block: masks of quotes, backslashes, control characters, bytes >= 0x80 and structural
//! characters; the backslash mask gives the escaped bytes (carry-aware arithmetic on the
//! mask), the unescaped quotes give the inside of strings by a prefix XOR (carry-less multiply
//! by all ones). Control characters inside strings are remembered as an error; bytes >= 0x80
//! are remembered so that the reader validates UTF-8 only for records that have any; escapes
//! are checked (`\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` `\uXXXX`) as they are found.
//!
//! The masks are computed with AVX2 when the CPU has it (checked once per process) and with
//! portable 64-bit arithmetic otherwise (other CPUs, wasm); both give identical bits (tested
//! against each other and against a byte-at-a-time definition). This module holds the
//! crate's only `unsafe` code: the 32-byte loads and the call into the AVX2 function after
//! the feature check.

/// One block's byte classes, one bit per byte (bit i = byte i of the block).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Masks {
    pub quote: u64,
    pub backslash: u64,
    /// Bytes < 0x20.
    pub control: u64,
    /// Bytes >= 0x80.
    pub high: u64,
    /// `{ } [ ] : ,`
    pub structural: u64,
    /// The four JSON whitespace bytes.
    pub ws: u64,
}

/// How one block of 64 bytes is classified.
pub(crate) trait Classify {
    /// Classifies `block` (exactly 64 bytes).
    fn classify(block: &[u8; 64]) -> Masks;
    /// The running XOR of `bits` from bit 0 (bit i = parity of bits 0..=i).
    fn prefix_xor(bits: u64) -> u64;
}

/// Portable classification: eight bytes per 64-bit word.
pub(crate) struct Portable;

use crate::swar::{eq_bytes, zero_bytes, HI, LO, LOW7};

/// Gathers the high bit of each byte of `m` (only 0x80 bits set) into the low 8 bits.
#[inline]
fn gather(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

impl Classify for Portable {
    #[inline]
    fn classify(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for k in 0..8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&block[k * 8..k * 8 + 8]);
            let w = u64::from_le_bytes(b);
            let eq = |c: u8| eq_bytes(w, c);
            let lower = w | (LO * 0x20);
            let quote = eq(b'"');
            let backslash = eq(b'\\');
            // Below 0x20: the low seven bits plus 0x60 stay below 0x80, and the high bit is clear.
            let control = !(((w & LOW7).wrapping_add(LO * 0x60)) | w | LOW7);
            let high = w & HI;
            let structural = zero_bytes(lower ^ (LO * b'{' as u64))
                | zero_bytes(lower ^ (LO * b'}' as u64))
                | eq(b':')
                | eq(b',');
            let ws = eq(b' ') | eq(b'\n') | eq(b'\r') | eq(b'\t');
            let shift = k * 8;
            m.quote |= gather(quote) << shift;
            m.backslash |= gather(backslash) << shift;
            m.control |= gather(control) << shift;
            m.high |= gather(high) << shift;
            m.structural |= gather(structural) << shift;
            m.ws |= gather(ws) << shift;
        }
        m
    }

    #[inline]
    fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! AVX2 + PCLMULQDQ classification. Only reached through [`super::has_avx2`].
    use super::{Classify, Masks};
    use std::arch::x86_64::*;

    /// Marker type for the AVX2 classification.
    pub(crate) struct Avx2;

    impl Classify for Avx2 {
        #[inline(always)]
        fn classify(block: &[u8; 64]) -> Masks {
            // SAFETY: `Avx2` is only used inside functions compiled with the `avx2` and
            // `pclmulqdq` target features, which are only called after `has_avx2()`
            // confirmed both at run time (`crate::extract::parse_record`).
            unsafe { classify(block) }
        }

        #[inline(always)]
        fn prefix_xor(bits: u64) -> u64 {
            // SAFETY: as above.
            unsafe { prefix_xor(bits) }
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn classify(block: &[u8; 64]) -> Masks {
        // SAFETY: `block` is 64 readable bytes; unaligned loads are allowed.
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(block.as_ptr() as *const __m256i),
                _mm256_loadu_si256(block.as_ptr().add(32) as *const __m256i),
            )
        };
        // (Macros, not closures: the intrinsics must inline into this AVX2 function.)
        // Each mask passes through an empty `asm!`, opaque to LLVM: where the masks meet
        // stage one's scalar bit arithmetic in one function, LLVM otherwise rewrites
        // `vpmovmskb` into a per-bit extraction and `vpinsrb` reassembly (measured: ~2,600
        // instructions per 64-byte block instead of ~70).
        macro_rules! bits {
            ($x:expr, $y:expr) => {{
                let mut m = (_mm256_movemask_epi8($x) as u32 as u64)
                    | ((_mm256_movemask_epi8($y) as u32 as u64) << 32);
                // SAFETY: an empty instruction sequence that only "modifies" `m`.
                unsafe {
                    std::arch::asm!("/* {0} */", inout(reg) m, options(pure, nomem, nostack, preserves_flags));
                }
                m
            }};
        }
        macro_rules! eq {
            ($v:expr, $c:expr) => {
                _mm256_cmpeq_epi8($v, _mm256_set1_epi8($c as i8))
            };
        }
        let c1f = _mm256_set1_epi8(0x1f);
        let x20 = _mm256_set1_epi8(0x20);
        // Per half: `{ } [ ] : ,` (`[` and `]` are `{` and `}` without 0x20), and whitespace.
        macro_rules! structural {
            ($v:expr) => {{
                let l = _mm256_or_si256($v, x20);
                _mm256_or_si256(
                    _mm256_or_si256(eq!(l, b'{'), eq!(l, b'}')),
                    _mm256_or_si256(eq!($v, b':'), eq!($v, b',')),
                )
            }};
        }
        macro_rules! ws {
            ($v:expr) => {
                _mm256_or_si256(
                    _mm256_or_si256(eq!($v, b' '), eq!($v, b'\n')),
                    _mm256_or_si256(eq!($v, b'\r'), eq!($v, b'\t')),
                )
            };
        }
        Masks {
            quote: bits!(eq!(a, b'"'), eq!(b, b'"')),
            backslash: bits!(eq!(a, b'\\'), eq!(b, b'\\')),
            control: bits!(
                _mm256_cmpeq_epi8(_mm256_max_epu8(a, c1f), c1f),
                _mm256_cmpeq_epi8(_mm256_max_epu8(b, c1f), c1f)
            ),
            high: bits!(a, b),
            structural: bits!(structural!(a), structural!(b)),
            ws: bits!(ws!(a), ws!(b)),
        }
    }

    #[target_feature(enable = "pclmulqdq")]
    #[inline]
    unsafe fn prefix_xor(bits: u64) -> u64 {
        let v = _mm_set_epi64x(0, bits as i64);
        let ones = _mm_set1_epi8(-1);
        _mm_cvtsi128_si64(_mm_clmulepi64_si128(v, ones, 0)) as u64
    }
}

/// True when this CPU has AVX2 and PCLMULQDQ (cached by the standard library).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("pclmulqdq")
}

/// The bytes that follow an odd run of backslashes (the escaped bytes), with the carry into
/// the next block in `prev` (1 when this block's last byte is an unescaped backslash).
#[inline]
pub(crate) fn escaped(backslash: u64, prev: &mut u64) -> u64 {
    if backslash == 0 && *prev == 0 {
        return 0;
    }
    const EVEN: u64 = 0x5555_5555_5555_5555;
    // A backslash escaped by the previous block's last one starts nothing.
    let backslash = backslash & !*prev;
    let follows = (backslash << 1) | *prev;
    let odd_starts = backslash & !EVEN & !follows;
    let (even_runs, carry) = odd_starts.overflowing_add(backslash);
    *prev = carry as u64;
    let invert = even_runs << 1;
    (EVEN ^ invert) & follows
}

/// Valid characters after a backslash in a JSON string.
static ESCAPE_OK: [bool; 256] = byte_table(b"\"\\/bfnrtu");

/// A table that is true for the bytes of `bytes` (for `static` lookup tables).
pub(crate) const fn byte_table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Why stage one rejects a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// A byte < 0x20 inside a string, at this offset.
    Control(usize),
    /// An invalid escape, at the offset of its backslash.
    Escape(usize),
}

/// The events of one record, produced block by block as the reader asks for them: the
/// unescaped quotes, the structural characters outside strings, and the first byte of
/// every run of other non-whitespace bytes outside strings (a scalar's start, or a stray
/// byte; simdjson's "pseudo-structural" characters). Every non-whitespace byte outside
/// strings is then an event or part of a run that starts with one, so the reader never
/// looks at the bytes between events: whatever is there is whitespace, or the rest of a
/// scalar, whose end the reader checks.
pub(crate) struct Events<'a, C: Classify> {
    buf: &'a [u8],
    /// Offset of the next block to classify.
    next_block: usize,
    /// Offset of the block `bits` belongs to.
    base: usize,
    /// Events of the current block not yet handed out.
    bits: u64,
    /// The current block's closing quotes of strings that hold an escape.
    dirty: u64,
    st: BlockState,
    _c: std::marker::PhantomData<C>,
}

impl<'a, C: Classify> Events<'a, C> {
    pub fn new(buf: &'a [u8]) -> Self {
        Events {
            buf,
            next_block: 0,
            base: 0,
            bits: 0,
            dirty: 0,
            st: BlockState {
                in_string: 0,
                prev_escaped: 0,
                prev_scalar: 0,
                clean: 0,
                high: 0,
                flaw: None,
            },
            _c: std::marker::PhantomData,
        }
    }

    /// Any byte >= 0x80 in the blocks classified so far (which hold every event handed out).
    #[inline(always)]
    pub fn high(&self) -> bool {
        self.st.high != 0
    }

    /// The first flaw stage one found so far.
    pub fn flaw(&self) -> Option<Flaw> {
        self.st.flaw
    }

    /// The offset of the next event, or `None` at the end of the record.
    #[inline(always)]
    pub fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            if self.next_block >= self.buf.len() {
                return None;
            }
            self.refill();
        }
        let at = self.base + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(at)
    }

    /// The next event, a string's closing quote when the last one was its opening quote:
    /// its offset and whether the string holds an escape.
    #[inline(always)]
    pub fn next_close(&mut self) -> Option<(usize, bool)> {
        let at = self.next()?;
        Some((at, self.dirty >> (at - self.base) & 1 == 1))
    }

    #[inline(always)]
    fn refill(&mut self) {
        let at = self.next_block;
        let m = match self.buf.get(at..at + 64) {
            Some(b) => {
                let block: &[u8; 64] = b.try_into().unwrap_or(&[b' '; 64]);
                C::classify(block)
            }
            None => {
                // The last, partial block, padded with spaces (whitespace: no events).
                let mut block = [b' '; 64];
                block[..self.buf.len() - at].copy_from_slice(&self.buf[at..]);
                C::classify(&block)
            }
        };
        self.base = at;
        self.next_block = at + 64;
        (self.bits, self.dirty) = self.st.block::<C>(&m, self.buf, at);
    }
}

/// Stage one's carries from block to block.
struct BlockState {
    in_string: u64,
    prev_escaped: u64,
    prev_scalar: u64,
    clean: u64,
    high: u64,
    flaw: Option<Flaw>,
}

impl BlockState {
    /// One block's events and closing quotes of strings with escapes, from its masks `m`
    /// (the block at offset `at` of `buf`).
    #[inline(always)]
    fn block<C: Classify>(&mut self, m: &Masks, buf: &[u8], at: usize) -> (u64, u64) {
        if m.quote | m.backslash | self.prev_escaped == 0 && self.in_string != 0 {
            // The whole block inside a string (a long command line or script): no events,
            // no carries change (the string stays clean or not); only its bytes' checks.
            if m.control != 0 && self.flaw.is_none() {
                self.flaw = Some(Flaw::Control(at + m.control.trailing_zeros() as usize));
            }
            self.high |= m.high;
            self.prev_scalar = 0;
            return (0, 0);
        }
        let escaped = escaped(m.backslash, &mut self.prev_escaped);
        let quote = m.quote & !escaped;
        let inside = C::prefix_xor(quote) ^ self.in_string;
        self.in_string = ((inside as i64) >> 63) as u64;
        // Escapes inside strings must be valid (outside strings a backslash is an error the
        // reader reports anyway). Escaped backslashes and quotes (most escapes in logs: every
        // `\\` of a Windows path) are valid by the masks alone; the others are checked here.
        let esc = escaped & inside & !(m.backslash | m.quote);
        if esc != 0 {
            self.check_escapes(esc, buf, at);
        }
        let control = m.control & inside;
        if control != 0 && self.flaw.is_none() {
            self.flaw = Some(Flaw::Control(at + control.trailing_zeros() as usize));
        }
        self.high |= m.high;
        // Scalar bytes: outside strings, and neither quote, structural nor whitespace (the
        // opening quote counts as inside, the closing one is a quote). A run's first byte
        // is an event.
        let scalar = !(inside | m.quote | m.structural | m.ws);
        let starts = scalar & !(scalar << 1 | self.prev_scalar);
        self.prev_scalar = scalar >> 63;
        // Strings with an escape: a string is a run of `inside` bits from its opening quote
        // up to its closing one; adding the opening quote's bit carries through the run and
        // lands on the closing quote, unless an escaped byte (taken out of the run) stops it
        // first. The carry out of the block continues a string that is clean so far.
        let open = quote & inside;
        let run = inside & !escaped;
        let (s1, c1) = run.overflowing_add(open);
        let (s2, c2) = s1.overflowing_add(self.clean);
        self.clean = (c1 | c2) as u64;
        let dirty = quote & !inside & !s2;
        (quote | (m.structural & !inside) | starts, dirty)
    }

    /// Checks the escapes other than `\\` and `\"` (the bytes after their backslash, `esc`).
    #[cold]
    fn check_escapes(&mut self, mut esc: u64, buf: &[u8], at: usize) {
        while esc != 0 {
            let p = at + esc.trailing_zeros() as usize;
            esc &= esc - 1;
            let c = buf.get(p).copied().unwrap_or(b' ');
            let ok = ESCAPE_OK[c as usize]
                && (c != b'u'
                    || buf
                        .get(p + 1..p + 5)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
            if !ok && self.flaw.is_none() {
                self.flaw = Some(Flaw::Escape(p - 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (i, &c) in block.iter().enumerate() {
            let bit = 1u64 << i;
            if c == b'"' {
                m.quote |= bit;
            }
            if c == b'\\' {
                m.backslash |= bit;
            }
            if c < 0x20 {
                m.control |= bit;
            }
            if c >= 0x80 {
                m.high |= bit;
            }
            if b"{}[]:,".contains(&c) {
                m.structural |= bit;
            }
            if b" \t\n\r".contains(&c) {
                m.ws |= bit;
            }
        }
        m
    }

    use crate::testutil::Rng;

    #[test]
    fn classifiers_agree_with_the_definition() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut blocks: Vec<[u8; 64]> = Vec::new();
        // Every byte value at every position.
        for b in 0..=255u8 {
            blocks.push([b; 64]);
        }
        for _ in 0..2000 {
            let mut block = [0u8; 64];
            for c in block.iter_mut() {
                let r = rng.next();
                *c = if r % 3 == 0 {
                    b"\"\\{}[]:, \x1f\x20\x7f\x80\xff[{]}"[(r >> 8) as usize % 17]
                } else {
                    (r >> 16) as u8
                };
            }
            blocks.push(block);
        }
        for block in &blocks {
            let want = plain(block);
            assert_eq!(Portable::classify(block), want, "{block:?}");
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                assert_eq!(avx2_classify(block), want, "{block:?}");
            }
        }
        for _ in 0..10_000 {
            let x = rng.next();
            let mut want = 0u64;
            let mut acc = false;
            for i in 0..64 {
                acc ^= x >> i & 1 == 1;
                if acc {
                    want |= 1 << i;
                }
            }
            assert_eq!(Portable::prefix_xor(x), want);
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                assert_eq!(avx2_prefix_xor(x), want);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2_classify(block: &[u8; 64]) -> Masks {
        assert!(has_avx2());
        // SAFETY: the features were just checked.
        unsafe { avx2_classify_inner(block) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq")]
    unsafe fn avx2_classify_inner(block: &[u8; 64]) -> Masks {
        <avx2::Avx2 as Classify>::classify(block)
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2_prefix_xor(x: u64) -> u64 {
        assert!(has_avx2());
        // SAFETY: the features were just checked.
        unsafe { avx2_prefix_xor_inner(x) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq")]
    unsafe fn avx2_prefix_xor_inner(x: u64) -> u64 {
        <avx2::Avx2 as Classify>::prefix_xor(x)
    }

    #[test]
    fn escaped_bytes_across_blocks() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            // Runs of backslashes of random length over several blocks.
            let n = 64 * (1 + rng.next() as usize % 4);
            let text: Vec<u8> = (0..n)
                .map(|_| if rng.next() % 3 == 0 { b'a' } else { b'\\' })
                .collect();
            let mut want = vec![false; n];
            let mut i = 0;
            while i < n {
                if text[i] == b'\\' {
                    if i + 1 < n {
                        want[i + 1] = true;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let mut prev = 0;
            for (k, chunk) in text.chunks(64).enumerate() {
                let mut bs = 0u64;
                for (j, &c) in chunk.iter().enumerate() {
                    if c == b'\\' {
                        bs |= 1 << j;
                    }
                }
                let got = escaped(bs, &mut prev);
                for j in 0..64 {
                    assert_eq!(got >> j & 1 == 1, want[k * 64 + j], "{k}/{j}");
                }
            }
        }
    }

    /// All events of `text` and the closing quotes of strings with escapes (every quote
    /// event taken as `next_close` reports it: only closing quotes can be dirty).
    fn all_events(text: &[u8]) -> (Vec<usize>, Vec<usize>, Option<Flaw>) {
        let mut ev = Events::<Portable>::new(text);
        let (mut got, mut dirty) = (Vec::new(), Vec::new());
        while let Some((p, escapes)) = ev.next_close() {
            got.push(p);
            if escapes {
                dirty.push(p);
            }
        }
        let flaw = ev.flaw();
        (got, dirty, flaw)
    }

    #[test]
    fn events_of_a_record() {
        let text = br#"{"a\"b":[1,"x,y"],"c\\":{"d":"\\"} , "e":"\u00e9"}"#;
        let (got, _, flaw) = all_events(text);
        let s: String = got.iter().map(|&p| text[p] as char).collect();
        assert_eq!(s, r#"{"":[1,""],"":{"":""},"":""}"#);
        assert_eq!(flaw, None);
        assert_eq!(all_events(b"{\"a\":\"\x01\"}").2, Some(Flaw::Control(6)));
        assert_eq!(all_events(br#"{"a":"\x"}"#).2, Some(Flaw::Escape(6)));
        assert_eq!(all_events(br#"{"a":"\u12"}"#).2, Some(Flaw::Escape(6)));
        // Scalar starts: the first byte of each run of non-whitespace bytes outside strings
        // (a run continues across blocks, and a stray byte after a string starts one).
        let text = format!(
            r#"{{"a":true,"b": -12.5e3 ,"c":[null,x1]}}"d" {}123456"#,
            " ".repeat(70)
        );
        let (got, _, _) = all_events(text.as_bytes());
        let starts: Vec<usize> = ["true", "-12.5e3", "null", "x1", "123456"]
            .iter()
            .map(|w| text.find(w).expect("in text"))
            .collect();
        let scalars: Vec<usize> = got
            .iter()
            .copied()
            .filter(|&p| !b"{}[]:,\"".contains(&text.as_bytes()[p]))
            .collect();
        assert_eq!(scalars, starts);
    }

    /// The events and escape tags against a byte-at-a-time definition, on generated records
    /// of up to several chunks (strings, escapes and scalar runs across blocks and chunks).
    #[test]
    fn events_and_escape_tags_match_the_definition() {
        let mut rng = Rng(0x0bad_cafe_f00d_1234);
        let mut tagged = 0;
        for round in 0..3_000 {
            let mut text = String::from("{");
            for k in 0..1 + rng.next() % 12 {
                if k > 0 {
                    text.push_str(rng.pick(&[",", " , ", ",\n"]));
                }
                text.push_str(&format!(r#""k{k}":"#));
                if rng.next() % 4 == 0 {
                    text.push_str(rng.pick(&["true", "-1.5e3", "null", " 7 ", "[1,22,333]"]));
                    continue;
                }
                text.push('"');
                let pieces = if round % 10 == 0 { 400 } else { 40 };
                for _ in 0..rng.next() % pieces {
                    text.push_str(rng.pick(&[
                        "a", "bcdefgh", "\\\\", "\\\"", "\\n", "\\u0041", " ", "{", ":",
                    ]));
                }
                text.push('"');
            }
            text.push('}');
            let b = text.as_bytes();
            // The definition, byte by byte.
            let (mut want, mut want_dirty) = (Vec::new(), Vec::new());
            let (mut inside, mut esc, mut dirty, mut prev_scalar) = (false, false, false, false);
            for (i, &c) in b.iter().enumerate() {
                if inside {
                    if esc {
                        esc = false;
                    } else if c == b'\\' {
                        esc = true;
                        dirty = true;
                    } else if c == b'"' {
                        inside = false;
                        want.push(i);
                        if dirty {
                            want_dirty.push(i);
                        }
                    }
                    continue;
                }
                let scalar = !b"{}[]:,\" \t\n\r".contains(&c);
                if c == b'"' {
                    inside = true;
                    dirty = false;
                    want.push(i);
                } else if b"{}[]:,".contains(&c) || scalar && !prev_scalar {
                    want.push(i);
                }
                prev_scalar = scalar;
            }
            let (got, got_dirty, _) = all_events(b);
            assert_eq!(got, want, "{text}");
            assert_eq!(got_dirty, want_dirty, "{text}");
            tagged += got_dirty.len();
        }
        assert!(tagged > 1_000, "{tagged}");
    }
}
