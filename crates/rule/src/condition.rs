//! The condition grammar: `or` < `and` < `not` < `x of` < parentheses.
//!
//! A recursive-descent parser over a tiny tokenizer. Identifiers are checked against the
//! detection's search identifiers as they are parsed, and `x of pattern` is resolved to the
//! identifiers it selects (`them` skips names starting with `_`), so a condition that
//! refers to nothing is an error here, not a silent `false` at match time.

use crate::ast::{Condition, Quantifier};

/// Longest condition text accepted.
pub const MAX_CONDITION_LEN: usize = 64 * 1024;
/// Deepest nesting of parentheses / `not` accepted.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    LParen,
    RParen,
    Pipe,
    Word(&'a str),
}

/// A condition error: what and at which byte offset of the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// What went wrong.
    pub message: String,
    /// Byte offset in the condition text.
    pub offset: usize,
}

fn tokenize(text: &str) -> Result<Vec<(Tok<'_>, usize)>, ConditionError> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((Tok::LParen, i));
                i += 1
            }
            b')' => {
                out.push((Tok::RParen, i));
                i += 1
            }
            b'|' => {
                out.push((Tok::Pipe, i));
                i += 1
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'|')
                {
                    i += 1;
                }
                out.push((Tok::Word(&text[start..i]), start));
            }
        }
    }
    Ok(out)
}

struct Parser<'a, 'b> {
    toks: Vec<(Tok<'a>, usize)>,
    pos: usize,
    ids: &'b [String],
    len: usize,
}

/// Matches a search-identifier pattern with `*` wildcards (any number of characters).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == name;
    }
    let (first, rest) = pieces
        .split_first()
        .expect("split yields one piece at least");
    let (last, middle) = rest.split_last().expect("pattern had a '*'");
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut hay = &name[first.len()..name.len() - last.len()];
    for piece in middle {
        match hay.find(piece) {
            Some(p) => hay = &hay[p + piece.len()..],
            None => return false,
        }
    }
    true
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map(|(_, o)| *o).unwrap_or(self.len)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ConditionError> {
        Err(ConditionError {
            message: message.into(),
            offset: self.offset(),
        })
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if *x == w)
    }

    fn parse_or(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut items = vec![self.parse_and(depth)?];
        while self.is_word("or") {
            self.pos += 1;
            items.push(self.parse_and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Condition::Or(items)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut items = vec![self.parse_not(depth)?];
        while self.is_word("and") {
            self.pos += 1;
            items.push(self.parse_not(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Condition::And(items)
        })
    }

    fn parse_not(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        if depth > MAX_DEPTH {
            return self.err(format!("condition nests deeper than {MAX_DEPTH}"));
        }
        if self.is_word("not") {
            self.pos += 1;
            let inner = self.parse_not(depth + 1)?;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.parse_primary(depth)
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        match self.peek().cloned() {
            None => self.err("condition ends where an identifier or '(' was expected"),
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.parse_or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("missing ')'");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::RParen) => self.err("unexpected ')'"),
            Some(Tok::Pipe) => self.err(
                "aggregation ('| count() ...') is deprecated Sigma v1 syntax; use a correlation rule",
            ),
            Some(Tok::Word(w)) => {
                let quantifier = if w == "all" {
                    Some(Quantifier::All)
                } else if w == "any" {
                    Some(Quantifier::AtLeast(1))
                } else if let Ok(n) = w.parse::<u32>() {
                    if n == 0 {
                        return self.err("'0 of' is not meaningful");
                    }
                    Some(Quantifier::AtLeast(n))
                } else {
                    None
                };
                if let Some(quantifier) = quantifier {
                    if matches!(self.toks.get(self.pos + 1), Some((Tok::Word("of"), _))) {
                        self.pos += 2;
                        let target = match self.peek() {
                            Some(Tok::Word(t)) => *t,
                            _ => return self.err("'of' must be followed by 'them' or a pattern"),
                        };
                        let ids: Vec<String> = if target == "them" {
                            self.ids.iter().filter(|n| !n.starts_with('_')).cloned().collect()
                        } else {
                            self.ids.iter().filter(|n| pattern_matches(target, n)).cloned().collect()
                        };
                        if ids.is_empty() {
                            return self.err(format!("'{target}' matches no search identifier"));
                        }
                        self.pos += 1;
                        return Ok(Condition::Of { quantifier, ids });
                    }
                }
                if matches!(w, "and" | "or" | "of" | "them" | "near") {
                    return self.err(format!("unexpected '{w}'"));
                }
                if !self.ids.iter().any(|n| n == w) {
                    return self.err(format!("unknown search identifier '{w}'"));
                }
                self.pos += 1;
                Ok(Condition::Id(w.to_string()))
            }
        }
    }
}

/// Parses one condition against the detection's search identifiers.
pub fn parse_condition(text: &str, ids: &[String]) -> Result<Condition, ConditionError> {
    if text.len() > MAX_CONDITION_LEN {
        return Err(ConditionError {
            message: format!("condition longer than {MAX_CONDITION_LEN} bytes"),
            offset: 0,
        });
    }
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        ids,
        len: text.len(),
    };
    let cond = p.parse_or(0)?;
    if p.pos != p.toks.len() {
        if p.peek() == Some(&Tok::Pipe) {
            return p.err(
                "aggregation ('| count() ...') is deprecated Sigma v1 syntax; use a correlation rule",
            );
        }
        return p.err("unexpected text after the end of the condition");
    }
    Ok(cond)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }
    fn id(s: &str) -> Condition {
        Condition::Id(s.into())
    }

    #[test]
    fn precedence_or_lt_and_lt_not() {
        let c = parse_condition("a or b and not c", &ids(&["a", "b", "c"])).unwrap();
        assert_eq!(
            c,
            Condition::Or(vec![
                id("a"),
                Condition::And(vec![id("b"), Condition::Not(Box::new(id("c")))])
            ])
        );
    }

    #[test]
    fn parentheses_bind_tightest() {
        let c = parse_condition("(a or b) and c", &ids(&["a", "b", "c"])).unwrap();
        assert_eq!(
            c,
            Condition::And(vec![Condition::Or(vec![id("a"), id("b")]), id("c")])
        );
    }

    #[test]
    fn not_binds_looser_than_of() {
        let c = parse_condition("not 1 of f*", &ids(&["sel", "f1", "f2"])).unwrap();
        assert_eq!(
            c,
            Condition::Not(Box::new(Condition::Of {
                quantifier: Quantifier::AtLeast(1),
                ids: ids(&["f1", "f2"])
            }))
        );
    }

    #[test]
    fn them_skips_underscore_ids() {
        let c = parse_condition("all of them", &ids(&["a", "_b", "c"])).unwrap();
        assert_eq!(
            c,
            Condition::Of {
                quantifier: Quantifier::All,
                ids: ids(&["a", "c"])
            }
        );
        let c = parse_condition("any of them", &ids(&["a", "_b"])).unwrap();
        assert_eq!(
            c,
            Condition::Of {
                quantifier: Quantifier::AtLeast(1),
                ids: ids(&["a"])
            }
        );
    }

    #[test]
    fn wildcard_anywhere_in_pattern() {
        assert!(pattern_matches("sel*", "selection_img"));
        assert!(pattern_matches("*_img", "selection_img"));
        assert!(pattern_matches("s*_*g", "selection_img"));
        assert!(pattern_matches("*", "x"));
        assert!(!pattern_matches("sel*x", "selection_img"));
        assert!(!pattern_matches("a*a", "a"));
        let c = parse_condition("2 of *sel*", &ids(&["a_sel_1", "sel", "x"])).unwrap();
        assert_eq!(
            c,
            Condition::Of {
                quantifier: Quantifier::AtLeast(2),
                ids: ids(&["a_sel_1", "sel"])
            }
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_condition("sel and missing", &ids(&["sel"])).unwrap_err();
        assert!(e.message.contains("missing"));
        assert_eq!(e.offset, 8);
        let e = parse_condition("sel | count() > 5", &ids(&["sel"])).unwrap_err();
        assert!(e.message.contains("aggregation"));
        let e = parse_condition("(sel", &ids(&["sel"])).unwrap_err();
        assert!(e.message.contains("')'"));
        let e = parse_condition("1 of filter*", &ids(&["sel"])).unwrap_err();
        assert!(e.message.contains("matches no"));
        let e = parse_condition("sel and", &ids(&["sel"])).unwrap_err();
        assert!(e.message.contains("ends"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = format!("{}a{}", "(".repeat(500), ")".repeat(500));
        let e = parse_condition(&text, &ids(&["a"])).unwrap_err();
        assert!(e.message.contains("deeper"));
        let text = format!("{}a", "not ".repeat(500));
        assert!(parse_condition(&text, &ids(&["a"])).is_err());
    }
}
