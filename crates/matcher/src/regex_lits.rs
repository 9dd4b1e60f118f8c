//! Literals a regex cannot match without, for the cross-rule index: a regex test is only
//! evaluated for records whose value contains them.
//!
//! The result is a list of clauses; every match of the regex contains at least one literal of
//! every clause. Literals are returned as written in the pattern; the caller folds them (the
//! index scans folded text, and simple case folding maps every substring of a text to a
//! substring of its folded form, so a necessary literal stays necessary after folding both).

use regex_syntax::hir::{Class, Hir, HirKind};

/// Shortest literal kept (one character fires too often to narrow anything), except for
/// characters that are rare in command lines and paths.
const MIN_LEN: usize = 2;
const RARE: &[char] = &['`', '^', '~', '{', '}', '|'];
/// Most literals in one clause (an alternation of many branches is not worth an atom each).
const MAX_CLAUSE: usize = 32;

/// Clauses of necessary literals of `hir` (empty: none known).
pub(crate) fn necessary(hir: &Hir) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = clauses(hir)
        .into_iter()
        .filter(|c| !c.is_empty() && c.len() <= MAX_CLAUSE && c.iter().all(|l| useful(l)))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn useful(lit: &str) -> bool {
    let n = lit.chars().count();
    n >= MIN_LEN || n == 1 && lit.chars().all(|c| RARE.contains(&c))
}

/// A single character, when `hir` matches exactly one character up to case.
fn one_char(hir: &Hir) -> Option<char> {
    match hir.kind() {
        HirKind::Literal(l) => {
            let s = std::str::from_utf8(&l.0).ok()?;
            let mut it = s.chars();
            let c = it.next()?;
            it.next().is_none().then_some(c)
        }
        HirKind::Class(Class::Unicode(cls)) => {
            // [Ee]-style classes from case-insensitive patterns: every member folds alike.
            let mut first: Option<char> = None;
            let mut count = 0;
            for r in cls.ranges() {
                for c in r.start()..=r.end() {
                    count += 1;
                    if count > 4 {
                        return None;
                    }
                    let f = crate::fold::fold_char(c);
                    match first {
                        None => first = Some(f),
                        Some(x) if x == f => {}
                        Some(_) => return None,
                    }
                }
            }
            first
        }
        _ => None,
    }
}

/// The text of a literal node, when it is valid UTF-8.
fn literal(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(l) => std::str::from_utf8(&l.0).ok().map(str::to_string),
        _ => one_char(hir).map(String::from),
    }
}

/// The longest literal of a clause list (the most selective clause, for alternations).
fn best(cs: &[Vec<String>]) -> Option<&Vec<String>> {
    cs.iter()
        .filter(|c| c.iter().all(|l| useful(l)))
        .max_by_key(|c| c.iter().map(|l| l.len()).min().unwrap_or(0))
}

fn clauses(hir: &Hir) -> Vec<Vec<String>> {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => {
            literal(hir).map(|l| vec![vec![l]]).unwrap_or_default()
        }
        HirKind::Capture(c) => clauses(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => clauses(&r.sub),
        HirKind::Concat(parts) => {
            let mut out = Vec::new();
            let mut run = String::new();
            for p in parts {
                if let Some(l) = literal(p) {
                    run.push_str(&l);
                    continue;
                }
                if !run.is_empty() {
                    out.push(vec![std::mem::take(&mut run)]);
                }
                out.extend(clauses(p));
            }
            if !run.is_empty() {
                out.push(vec![run]);
            }
            out
        }
        HirKind::Alternation(branches) => {
            // One of the branches matches: the union of each branch's best clause holds.
            let mut clause = Vec::new();
            for b in branches {
                match best(&clauses(b)) {
                    Some(c) => clause.extend(c.iter().cloned()),
                    None => return Vec::new(),
                }
            }
            vec![clause]
        }
        _ => Vec::new(),
    }
}

/// Most bytes kept by [`byte_counts`] (each is a pass over the value).
const MAX_COUNTED: usize = 3;

/// Bytes every match of `hir` contains at least twice, with how many times (the ones
/// required most often first, at most [`MAX_COUNTED`]).
///
/// A regex test on a value with fewer such bytes cannot match: counting a byte is one
/// vector pass, while `\+.*\+.*\+...` (SigmaHQ's *Potential PowerShell Command Line
/// Obfuscation*) walked the whole of every multi-kilobyte PowerShell command line four
/// times. Only bytes the pattern gives exactly count (literals and one-byte classes, never a
/// letter under case-insensitivity, which is a class of two); distinct literals of a
/// concatenation match at distinct places of the value, so their counts add up; a
/// repetition multiplies by its minimum; an alternation keeps the least over its branches.
pub(crate) fn byte_counts(hir: &Hir) -> Vec<(u8, u32)> {
    let counts = count(hir);
    let mut out: Vec<(u8, u32)> = (0..=255u8)
        .map(|b| (b, counts[b as usize]))
        .filter(|&(_, n)| n >= 2)
        .collect();
    out.sort_by_key(|&(b, n)| (std::cmp::Reverse(n), b));
    out.truncate(MAX_COUNTED);
    out
}

fn count(hir: &Hir) -> Box<[u32; 256]> {
    let mut out = Box::new([0u32; 256]);
    match hir.kind() {
        HirKind::Literal(l) => {
            for &b in l.0.iter() {
                out[b as usize] += 1;
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            if let [r] = c.ranges() {
                if r.start() == r.end() {
                    out[r.start() as usize] += 1;
                }
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            if let [r] = c.ranges() {
                if r.start() == r.end() {
                    let mut buf = [0u8; 4];
                    for &b in r.start().encode_utf8(&mut buf).as_bytes() {
                        out[b as usize] += 1;
                    }
                }
            }
        }
        HirKind::Capture(c) => out = count(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => {
            out = count(&r.sub);
            for n in out.iter_mut() {
                *n = n.saturating_mul(r.min);
            }
        }
        HirKind::Concat(parts) => {
            for p in parts {
                let c = count(p);
                for (n, m) in out.iter_mut().zip(c.iter()) {
                    *n = n.saturating_add(*m);
                }
            }
        }
        HirKind::Alternation(branches) => {
            let mut it = branches.iter();
            if let Some(first) = it.next() {
                out = count(first);
                for b in it {
                    let c = count(b);
                    for (n, m) in out.iter_mut().zip(c.iter()) {
                        *n = (*n).min(*m);
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether `hay` holds byte `b` at least `n` times (stops at the `n`-th).
#[inline]
pub(crate) fn has_at_least(hay: &[u8], b: u8, n: u32) -> bool {
    memchr::memchr_iter(b, hay).take(n as usize).count() == n as usize
}

/// Whether `hay` holds every byte of [`byte_counts`]' result as often as it says.
#[inline]
pub(crate) fn counts_hold(hay: &[u8], counts: &[(u8, u32)]) -> bool {
    counts.iter().all(|&(b, n)| has_at_least(hay, b, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str, ci: bool) -> Vec<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(ci)
            .build()
            .parse(p)
            .unwrap();
        necessary(&hir)
    }

    #[test]
    fn literals_of_concatenations_and_alternations() {
        assert_eq!(
            lits(r"cmd.{0,5}(?:/c|/r).+powershell", false),
            vec![
                vec!["/c".to_string(), "/r".into()],
                vec!["cmd".into()],
                vec!["powershell".into()]
            ]
        );
        assert_eq!(
            lits(r"(?i)\.exe\s+\d+", false),
            vec![vec![".exe".to_string()]]
        );
        assert_eq!(
            lits(r"\w+`(?:\w+|-|.)`", false),
            vec![vec!["`".to_string()]]
        );
        // Optional parts and short literals give nothing.
        assert!(lits(r"(?:abc)?x+", false).is_empty());
        assert!(lits(r"a|bc", false).is_empty());
    }

    fn counts(p: &str, ci: bool) -> Vec<(u8, u32)> {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(ci)
            .build()
            .parse(p)
            .unwrap();
        byte_counts(&hir)
    }

    #[test]
    fn bytes_a_match_needs_several_of() {
        assert_eq!(counts(r"\+.*\+.*\+.*\+", false), vec![(b'+', 4)]);
        assert_eq!(counts(r"(?:\^.*){5}x", false), vec![(b'^', 5)]);
        // The least over the branches; an optional part counts nothing.
        assert_eq!(
            counts(r"(?:a\{\{\{|\{\{b)(?:\{\{)?", false),
            vec![(b'{', 2)]
        );
        assert_eq!(counts(r"\{\{|x", false), vec![]);
        // Letters under case-insensitivity are classes of two: not counted; other bytes are.
        assert_eq!(counts(r"aa\+\+", true), vec![(b'+', 2)]);
        assert_eq!(counts(r"aa\+\+", false), vec![(b'+', 2), (b'a', 2)]);
        // A one-character class, multi-byte characters byte by byte.
        assert_eq!(
            counts(r"[+][+]éé", false),
            vec![(b'+', 2), (0xA9, 2), (0xC3, 2)]
        );
        assert!(has_at_least(b"a+b+c", b'+', 2));
        assert!(!has_at_least(b"a+bc", b'+', 2));
    }

    /// Against the regex itself: a value the counts reject never matches.
    #[test]
    fn counts_never_reject_a_match() {
        let patterns = [
            r"\+.*\+.*\+",
            r"(?i)a\^b\^",
            r"(?:\^\^|\^\^\^)+x",
            r"[\^][\^]\{{2,3}",
            r"(?:x\+){2}|\+\+\+y",
        ];
        let mut rng = crate::testutil::Rng(5);
        let pieces = ["+", "^", "`", "{", "x", "y", "a", "A", "b", "B", " "];
        for p in patterns {
            let hir = regex_syntax::ParserBuilder::new().build().parse(p).unwrap();
            let need = byte_counts(&hir);
            assert!(!need.is_empty(), "{p}");
            let re = regex_automata::meta::Regex::new(p).unwrap();
            let mut matched = 0;
            for _ in 0..40_000 {
                let mut v = String::new();
                for _ in 0..rng.below(14) {
                    v.push_str(rng.pick(&pieces));
                }
                if re.is_match(v.as_bytes()) {
                    matched += 1;
                    assert!(counts_hold(v.as_bytes(), &need), "{p} on {v:?}");
                }
            }
            assert!(
                matched >= 10,
                "{p}: only {matched} matching values generated"
            );
        }
    }

    #[test]
    fn case_insensitive_classes_are_literals() {
        assert_eq!(lits("WerFault", true), vec![vec!["werfault".to_string()]]);
    }
}
