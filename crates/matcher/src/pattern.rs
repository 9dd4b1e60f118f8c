//! Sigma string values: wildcard parsing (with the spec's escaping table) and byte-level
//! matching of the compiled pattern against a (folded or raw) field value.

use memchr::memmem;

/// One piece of a parsed Sigma string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Parses a Sigma string value into literal text and wildcards.
///
/// Escaping (rules spec, "Escape Character"): `\*` and `\?` are literal wildcards, `\\` is
/// one backslash, and a backslash before anything else (or at the end) is a literal
/// backslash.
pub fn parse_wildcards(s: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('*') | Some('?') | Some('\\') => {
                    lit.push(chars.next().expect("peeked"));
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                let p = if c == '*' { Piece::Star } else { Piece::One };
                // Consecutive stars are one star.
                if !(p == Piece::Star && out.last() == Some(&Piece::Star)) {
                    out.push(p);
                }
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    out
}

/// True when the value uses an unescaped `*` or `?`.
pub fn has_wildcards(s: &str) -> bool {
    parse_wildcards(s)
        .iter()
        .any(|p| !matches!(p, Piece::Lit(_)))
}

/// A piece of a glob segment.
#[derive(Debug, Clone)]
pub enum SegPiece {
    /// Literal bytes.
    Lit(Box<[u8]>),
    /// One character.
    One,
}

/// A compiled string pattern over bytes.
#[derive(Debug, Clone)]
pub enum BytePattern {
    /// The whole value equals these bytes.
    Exact(Box<[u8]>),
    /// The value starts with these bytes.
    Prefix(Box<[u8]>),
    /// The value ends with these bytes.
    Suffix(Box<[u8]>),
    /// The value contains these bytes. (Only the needle is kept: a prebuilt
    /// `memmem::Finder` costs ~400 bytes per pattern, 8 MB over SigmaHQ, and indexed
    /// patterns never search with it.)
    Contains(Box<[u8]>),
    /// Anything else: `*`-separated segments, each of literals and `?`.
    Glob {
        /// Segments between stars.
        segs: Vec<Vec<SegPiece>>,
        /// Pattern starts with `*`.
        star_start: bool,
        /// Pattern ends with `*`.
        star_end: bool,
    },
}

impl BytePattern {
    /// Compiles pieces whose literals are already in the comparison case.
    pub fn from_pieces(pieces: &[Piece]) -> BytePattern {
        let lits: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Lit(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let has_one = pieces.contains(&Piece::One);
        let stars = pieces.iter().filter(|p| **p == Piece::Star).count();
        let star_start = pieces.first() == Some(&Piece::Star);
        let star_end = pieces.last() == Some(&Piece::Star) && !pieces.is_empty();
        if !has_one {
            let bytes = |s: &str| s.as_bytes().to_vec().into_boxed_slice();
            match (stars, lits.len(), star_start, star_end) {
                (0, 0, _, _) => return BytePattern::Exact(Box::new([])),
                (0, 1, _, _) => return BytePattern::Exact(bytes(lits[0])),
                (1, 0, _, _) => return BytePattern::Prefix(Box::new([])),
                (1, 1, false, true) => return BytePattern::Prefix(bytes(lits[0])),
                (1, 1, true, false) => return BytePattern::Suffix(bytes(lits[0])),
                (2, 1, true, true) => return BytePattern::Contains(bytes(lits[0])),
                _ => {}
            }
        }
        let mut segs = vec![Vec::new()];
        for p in pieces {
            match p {
                Piece::Star => segs.push(Vec::new()),
                Piece::One => segs.last_mut().expect("one seg").push(SegPiece::One),
                Piece::Lit(s) => segs
                    .last_mut()
                    .expect("one seg")
                    .push(SegPiece::Lit(s.as_bytes().to_vec().into_boxed_slice())),
            }
        }
        if star_start {
            segs.remove(0);
        }
        if star_end {
            segs.pop();
        }
        BytePattern::Glob {
            segs,
            star_start,
            star_end,
        }
    }

    /// Compiles a literal byte string with a position (for encoded values).
    pub fn literal(bytes: &[u8], start_anchored: bool, end_anchored: bool) -> BytePattern {
        let b = bytes.to_vec().into_boxed_slice();
        match (start_anchored, end_anchored) {
            (true, true) => BytePattern::Exact(b),
            (true, false) => BytePattern::Prefix(b),
            (false, true) => BytePattern::Suffix(b),
            (false, false) => BytePattern::Contains(b),
        }
    }

    /// The longest literal every match must contain (none for a pattern of wildcards only).
    pub fn longest_literal(&self) -> Option<&[u8]> {
        let lit: &[u8] = match self {
            BytePattern::Exact(b) | BytePattern::Prefix(b) | BytePattern::Suffix(b) => b,
            BytePattern::Contains(b) => b,
            BytePattern::Glob { segs, .. } => segs
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    SegPiece::Lit(l) => Some(&l[..]),
                    SegPiece::One => None,
                })
                .max_by_key(|l| l.len())?,
        };
        (!lit.is_empty()).then_some(lit)
    }

    /// Does the pattern match `hay`?
    pub fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            BytePattern::Exact(b) => hay == &b[..],
            BytePattern::Prefix(b) => hay.starts_with(b),
            BytePattern::Suffix(b) => hay.ends_with(b),
            // One-byte needles (never atoms: they would fire all the time) are common; memmem
            // would build a searcher per call for them.
            BytePattern::Contains(b) if b.len() == 1 => memchr::memchr(b[0], hay).is_some(),
            BytePattern::Contains(b) => find(hay, b).is_some(),
            BytePattern::Glob {
                segs,
                star_start,
                star_end,
            } => glob_match(segs, *star_start, *star_end, hay),
        }
    }
}

#[inline]
fn char_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// The first offset of `needle` in `hay`. `memmem::find` builds a searcher per call (~400
/// instructions: patterns keep no prebuilt one, see [`BytePattern::Contains`]), which costs
/// more than searching the short values rules mostly test; those are searched for the
/// needle's first byte with `memchr`, each candidate compared in place.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if hay.len() >= 512 || n < 2 {
        return memmem::find(hay, needle);
    }
    let last = hay.len().checked_sub(n)?;
    // Candidates by the needle's rarest byte (memchr's frequency ranking).
    let r = memchr::arch::all::packedpair::Pair::new(needle).map_or(0, |p| p.index1() as usize);
    let mut at = 0;
    while let Some(off) = memchr::memchr(needle[r], &hay[at + r..=last + r]) {
        let i = at + off;
        if hay[i..i + n] == *needle {
            return Some(i);
        }
        at = i + 1;
        if at > last {
            return None;
        }
    }
    None
}

/// Matches one segment at `at`; returns its end.
fn seg_at(seg: &[SegPiece], hay: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for p in seg {
        match p {
            SegPiece::Lit(l) => {
                if hay.len() < i + l.len() || hay[i..i + l.len()] != l[..] {
                    return None;
                }
                i += l.len();
            }
            SegPiece::One => {
                if i >= hay.len() {
                    return None;
                }
                i = (i + char_len(hay[i])).min(hay.len());
            }
        }
    }
    Some(i)
}

fn is_boundary(hay: &[u8], i: usize) -> bool {
    i == 0 || i >= hay.len() || (hay[i] & 0xC0) != 0x80
}

fn glob_match(segs: &[Vec<SegPiece>], star_start: bool, star_end: bool, hay: &[u8]) -> bool {
    if segs.is_empty() {
        // Only stars (or nothing): "*" matches anything; "" is handled as Exact.
        return star_start || star_end || hay.is_empty();
    }
    if !star_start && !star_end && segs.len() == 1 {
        return seg_at(&segs[0], hay, 0) == Some(hay.len());
    }
    let mut pos = 0;
    let mut end = hay.len();
    let mut middle = segs;
    if !star_start {
        match seg_at(&segs[0], hay, 0) {
            Some(e) => pos = e,
            None => return false,
        }
        middle = &middle[1..];
    }
    if !star_end {
        let (last, rest) = middle
            .split_last()
            .expect("a last segment when not star_end");
        // The last segment must end exactly at the end: find its rightmost-possible start
        // that is not before `pos`.
        let mut found = None;
        let mut s = end;
        loop {
            if is_boundary(hay, s) && seg_at(last, hay, s) == Some(end) {
                found = Some(s);
                break;
            }
            if s == pos {
                break;
            }
            s -= 1;
        }
        match found {
            Some(s) => end = s,
            None => return false,
        }
        middle = rest;
    }
    for seg in middle {
        let mut s = pos;
        let mut hit = None;
        while s <= end {
            if let Some(SegPiece::Lit(first)) = seg.first() {
                match find(&hay[s..end], first) {
                    Some(off) => s += off,
                    None => return false,
                }
            }
            if let Some(e) = seg_at(seg, &hay[..end], s) {
                hit = Some(e);
                break;
            }
            s += 1;
            while s < end && !is_boundary(hay, s) {
                s += 1;
            }
        }
        match hit {
            Some(e) => pos = e,
            None => return false,
        }
    }
    pos <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, hay: &str) -> bool {
        BytePattern::from_pieces(&parse_wildcards(pat)).is_match(hay.as_bytes())
    }

    /// `find` is `memmem::find`: short and long haystacks, needles of every length, over a
    /// small alphabet (many partial matches) and with the rare byte anywhere.
    #[test]
    fn find_is_memmem() {
        let mut rng = crate::testutil::Rng(11);
        for round in 0..40_000 {
            let alphabet = if round % 2 == 0 { 3 } else { 40 };
            let len = if round % 50 == 0 {
                600
            } else {
                rng.below(80) as usize
            };
            let hay: Vec<u8> = (0..len).map(|_| b'a' + rng.below(alphabet) as u8).collect();
            let n = rng.below(9) as usize;
            let needle: Vec<u8> = if n <= len && rng.below(2) == 0 {
                let at = rng.below((len - n + 1) as u64) as usize;
                hay[at..at + n].to_vec()
            } else {
                (0..n).map(|_| b'a' + rng.below(alphabet) as u8).collect()
            };
            assert_eq!(
                find(&hay, &needle),
                memmem::find(&hay, &needle),
                "{hay:?} {needle:?}"
            );
        }
    }

    #[test]
    fn escaping_table() {
        // Plain backslash, single or double.
        assert_eq!(
            parse_wildcards(r"C:\Windows"),
            vec![Piece::Lit(r"C:\Windows".into())]
        );
        assert_eq!(
            parse_wildcards(r"C:\\Windows"),
            vec![Piece::Lit(r"C:\Windows".into())]
        );
        // Escaped wildcards.
        assert_eq!(parse_wildcards(r"a\*b\?"), vec![Piece::Lit("a*b?".into())]);
        // Backslash then wildcard.
        assert_eq!(
            parse_wildcards(r"a\\*"),
            vec![Piece::Lit(r"a\".into()), Piece::Star]
        );
        // Backslash and literal wildcard.
        assert_eq!(parse_wildcards(r"a\\\*"), vec![Piece::Lit(r"a\*".into())]);
        // Three or four backslashes: a double backslash.
        assert_eq!(parse_wildcards(r"a\\\\b"), vec![Piece::Lit(r"a\\b".into())]);
        assert_eq!(parse_wildcards(r"a\\\b"), vec![Piece::Lit(r"a\\b".into())]);
        // Trailing backslash.
        assert_eq!(
            parse_wildcards(r"\Temp\"),
            vec![Piece::Lit(r"\Temp\".into())]
        );
    }

    #[test]
    fn globs() {
        assert!(m("prog?.exe", "progA.exe"));
        assert!(!m("prog?.exe", "prog.exe"));
        assert!(m("prog?.exe", "progé.exe"));
        assert!(m("antivirus_V*.exe", "antivirus_V21.2.1.exe"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxcxxbxxaxx"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
        assert!(m("*?", "é"));
        assert!(m("a?c*d?", "abcxxdé"));
        assert!(m("*.sed*", "x.sed y"));
        assert!(m("a*?b", "axb"));
        assert!(!m("a*?b", "ab"));
    }
}
