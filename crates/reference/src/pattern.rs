//! Sigma string values: wildcards, escapes, case folding, `windash`.

use crate::ReferenceError;

/// One element of a rule string after escape resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal character.
    Lit(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Reads a rule string in Sigma's wildcard notation (spec "Escape Character" table):
/// `\*` / `\?` are literal, `\\` is one backslash, a backslash before anything else (or at
/// the end) is a literal backslash, unescaped `*` / `?` are wildcards.
pub(crate) fn parse_wildcards(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('*') => {
                    out.push(Tok::Lit('*'));
                    i += 2;
                }
                Some('?') => {
                    out.push(Tok::Lit('?'));
                    i += 2;
                }
                Some('\\') => {
                    out.push(Tok::Lit('\\'));
                    i += 2;
                }
                _ => {
                    out.push(Tok::Lit('\\'));
                    i += 1;
                }
            }
        } else if c == '*' {
            out.push(Tok::Star);
            i += 1;
        } else if c == '?' {
            out.push(Tok::One);
            i += 1;
        } else {
            out.push(Tok::Lit(c));
            i += 1;
        }
    }
    out
}

/// A text taken literally (no wildcards, no escapes).
pub(crate) fn literal(s: &str) -> Vec<Tok> {
    s.chars().map(Tok::Lit).collect()
}

/// The literal characters of a token list, or `None` if it holds a wildcard.
pub(crate) fn literal_text(toks: &[Tok]) -> Option<String> {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// Unicode simple case folding as the contract defines it: a character maps to its
/// lowercase form when that is exactly one character, otherwise to itself; final sigma
/// folds to sigma.
pub(crate) fn fold(c: char) -> char {
    if c == 'ς' {
        return 'σ';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Whether two texts are equal, case-insensitively unless `cased`.
pub(crate) fn text_eq(a: &str, b: &str, cased: bool) -> bool {
    glob_match(&literal(b), a, cased)
}

/// Where the rule value must sit in the field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole text.
    Exact,
    /// Anywhere (`contains`).
    Contains,
    /// At the start (`startswith`).
    Starts,
    /// At the end (`endswith`).
    Ends,
}

/// Wraps a pattern in the stars its mode implies (`contains` = `*v*`, ...).
pub(crate) fn with_mode(toks: &[Tok], mode: Mode) -> Vec<Tok> {
    let mut out = Vec::new();
    if matches!(mode, Mode::Contains | Mode::Ends) {
        out.push(Tok::Star);
    }
    out.extend_from_slice(toks);
    if matches!(mode, Mode::Contains | Mode::Starts) {
        out.push(Tok::Star);
    }
    out
}

/// Does the whole `text` match the pattern? Plain dynamic programming over characters:
/// after each token, `reach[j]` says whether the tokens so far can match `text[..j]`.
pub(crate) fn glob_match(toks: &[Tok], text: &str, cased: bool) -> bool {
    let norm = |c: char| if cased { c } else { fold(c) };
    let t: Vec<char> = text.chars().map(norm).collect();
    let n = t.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for tok in toks {
        let mut next = vec![false; n + 1];
        match tok {
            Tok::Star => {
                let mut seen = false;
                for j in 0..=n {
                    seen = seen || reach[j];
                    next[j] = seen;
                }
            }
            Tok::One => {
                next[1..].copy_from_slice(&reach[..n]);
            }
            Tok::Lit(c) => {
                let c = norm(*c);
                for j in 1..=n {
                    next[j] = reach[j - 1] && t[j - 1] == c;
                }
            }
        }
        reach = next;
    }
    reach[n]
}

/// The characters `windash` substitutes for a flag dash.
pub(crate) const WINDASH_CHARS: [char; 5] = ['-', '/', '–', '—', '―'];

/// Most flag positions one `windash` value may have (5^5 variants).
pub(crate) const MAX_WINDASH_POSITIONS: usize = 5;

/// A word character as in the regex `\w` of pySigma's `\B[-/]\b`: a Unicode letter or
/// digit, or `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Indexes of the `-` / `/` characters that start a flag: not preceded by a word character
/// (start of value and wildcards count as non-word) and followed by a word character.
pub(crate) fn windash_positions(toks: &[Tok]) -> Vec<usize> {
    let word_at = |i: usize| matches!(toks.get(i), Some(Tok::Lit(c)) if is_word(*c));
    (0..toks.len())
        .filter(|&i| matches!(toks[i], Tok::Lit('-') | Tok::Lit('/')))
        .filter(|&i| (i == 0 || !word_at(i - 1)) && word_at(i + 1))
        .collect()
}

/// All `windash` variants of a pattern (every flag dash replaced by each dash character).
pub(crate) fn windash_variants(toks: &[Tok]) -> Result<Vec<Vec<Tok>>, ReferenceError> {
    let positions = windash_positions(toks);
    if positions.len() > MAX_WINDASH_POSITIONS {
        return Err(ReferenceError::new(format!(
            "windash value has {} flag positions (at most {MAX_WINDASH_POSITIONS})",
            positions.len()
        )));
    }
    let mut variants = vec![toks.to_vec()];
    for p in positions {
        let mut next = Vec::new();
        for v in &variants {
            for d in WINDASH_CHARS {
                let mut w = v.clone();
                w[p] = Tok::Lit(d);
                next.push(w);
            }
        }
        variants = next;
    }
    Ok(variants)
}
