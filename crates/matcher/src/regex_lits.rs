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

    #[test]
    fn case_insensitive_classes_are_literals() {
        assert_eq!(lits("WerFault", true), vec![vec!["werfault".to_string()]]);
    }
}
