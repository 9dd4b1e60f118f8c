//! Rules + pipeline -> the compiled form the evaluator runs.

use std::collections::HashMap;

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use sigmatag_rule::{
    Alternative, Condition, FieldTest, Modifier, Quantifier, Rule, RuleError, Value,
};

use crate::fold::fold_string;
use crate::pattern::{has_wildcards, parse_wildcards, BytePattern, Piece};
use crate::pipeline::{Path, Pipeline, Segment, Unmatched, Variant};
use crate::values::{self, TimePart};

/// One-byte literals rare enough in command lines and paths to be worth an index atom.
const RARE_BYTES: &[u8] = b"`^~{}|";

/// Largest NFA a rule's regex may compile to, in bytes.
pub const MAX_REGEX_NFA_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CmpOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefMode {
    Eq,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// Any of these patterns on the value's text (folded unless `cased`).
    /// Any of these patterns on the value's text (folded unless `cased`). `atoms` holds the
    /// index atom of every pattern when all of them are indexed.
    Text {
        pats: Box<[BytePattern]>,
        cased: bool,
        atoms: Option<Box<[u32]>>,
        /// Necessary atoms (one of them holds whenever a pattern matches), for triggering.
        hints: Option<Box<[u32]>>,
    },
    Int {
        value: i64,
        text: Box<[u8]>,
        /// An [`crate::index::AtomKind::Int`] atom on the value's text, for triggering.
        hint: Option<u32>,
    },
    Float(f64),
    Bool {
        value: bool,
        cased: bool,
    },
    Null,
    Regex {
        id: u32,
        /// Necessary conditions in conjunctive form: every match contains, for each clause,
        /// one of its `contains` atoms (literals the regex cannot match without).
        hints: Vec<Box<[u32]>>,
        /// Bytes every match holds at least so many times ([`crate::regex_lits::byte_counts`]),
        /// checked on the value before the regex runs.
        counts: Box<[(u8, u32)]>,
    },
    Cidr(values::Cidr),
    Cmp {
        op: CmpOp,
        rhs: values::Num,
        part: Option<TimePart>,
    },
    FieldRef {
        slot: u32,
        mode: RefMode,
        cased: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Values {
        slot: u32,
        matchers: Vec<ValueMatcher>,
        all: bool,
        neq: bool,
    },
    Exists {
        slot: u32,
        expect: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Id(u32),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    AtLeast(u32, Vec<u32>),
    All(Vec<u32>),
}

/// A search identifier: OR of AND-ed test lists.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    pub alts: Vec<Vec<u32>>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledDetection {
    pub searches: Vec<Search>,
    pub cond: Cond,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// (logsource condition id or None for "every record", detection)
    pub variants: Vec<(Option<u32>, CompiledDetection)>,
}

/// A small, fast hasher for short keys (record keys are trusted to be arbitrary but the
/// trie only holds keys from rules, so collisions cannot be forced to grow it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        self.0 = h;
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type KeyMap<V> = HashMap<Box<[u8]>, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// A node of the field-path trie.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrieNode {
    pub children: KeyMap<u32>,
    pub any: Option<u32>,
    pub slots: Vec<u32>,
}

/// Everything compiled, shared by all rules.
#[derive(Debug)]
pub(crate) struct Shared {
    pub pipeline: Pipeline,
    pub trie: Vec<TrieNode>,
    /// The trie determinised ([`Shared::finish`]): what record readers follow.
    pub paths: crate::extract::PathStates,
    pub slot_by_paths: HashMap<Vec<Path>, u32>,
    pub slot_count: u32,
    /// The slot that collects every scalar (keyword search), if any rule needs it.
    pub all_slot: Option<u32>,
    pub tests: Vec<Test>,
    test_ids: HashMap<String, u32>,
    pub regexes: Vec<Regex>,
    /// Logsource conditions: AND of tests.
    pub conds: Vec<Vec<u32>>,
    cond_ids: HashMap<(usize, usize), u32>,
    /// Index atoms: a literal at a position, on one slot's folded text.
    pub atoms: Vec<crate::index::Atom>,
    atom_ids: HashMap<crate::index::Atom, u32>,
}

impl Shared {
    pub fn new(pipeline: Pipeline) -> Shared {
        Shared {
            pipeline,
            trie: vec![TrieNode::default()],
            paths: Default::default(),
            slot_by_paths: HashMap::new(),
            slot_count: 0,
            all_slot: None,
            tests: Vec::new(),
            test_ids: HashMap::new(),
            regexes: Vec::new(),
            conds: Vec::new(),
            cond_ids: HashMap::new(),
            atoms: Vec::new(),
            atom_ids: HashMap::new(),
        }
    }

    /// A `contains` atom for a literal (folded here) on `slot`: a necessary-condition hint.
    fn contains_atom(&mut self, slot: u32, lit: &[u8]) -> Option<u32> {
        let text = std::str::from_utf8(lit).ok()?;
        let folded = fold_string(text);
        if folded.is_empty() {
            return None;
        }
        self.atom(slot, &BytePattern::Contains(folded.as_bytes().into()))
    }

    /// Hints of a pattern: its own atom, or a `contains` atom of its longest literal.
    fn pattern_hint(&mut self, slot: u32, pat: &BytePattern, cased: bool) -> Option<u32> {
        if !cased {
            if let Some(a) = self.atom(slot, pat) {
                return Some(a);
            }
        }
        let lit = pat.longest_literal()?.to_vec();
        self.contains_atom(slot, &lit)
    }

    /// Literals every match of a regex contains, as clauses of `contains` atoms
    /// ([`crate::regex_lits`]).
    fn regex_hints(&mut self, slot: u32, pattern: &str, case_insensitive: bool) -> Vec<Box<[u32]>> {
        let Ok(hir) = regex_syntax::ParserBuilder::new()
            .case_insensitive(case_insensitive)
            .build()
            .parse(pattern)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for clause in crate::regex_lits::necessary(&hir) {
            let atoms: Option<Vec<u32>> = clause
                .iter()
                .map(|l| self.contains_atom(slot, l.as_bytes()))
                .collect();
            if let Some(mut a) = atoms {
                a.sort_unstable();
                a.dedup();
                out.push(a.into_boxed_slice());
            }
        }
        out
    }

    /// The trigger atom of a numeric equality: the integer's canonical text, whole.
    fn int_atom(&mut self, slot: u32, text: &[u8]) -> Option<u32> {
        use crate::index::{Atom, AtomKind};
        let atom = Atom {
            slot,
            kind: AtomKind::Int,
            lit: text.into(),
        };
        if let Some(id) = self.atom_ids.get(&atom) {
            return Some(*id);
        }
        let id = self.atoms.len() as u32;
        self.atoms.push(atom.clone());
        self.atom_ids.insert(atom, id);
        Some(id)
    }

    /// The atom of an indexable pattern on `slot`'s folded text.
    fn atom(&mut self, slot: u32, pat: &BytePattern) -> Option<u32> {
        use crate::index::{Atom, AtomKind};
        let (kind, lit): (AtomKind, &[u8]) = match pat {
            BytePattern::Exact(b) => (AtomKind::Exact, b),
            BytePattern::Prefix(b) => (AtomKind::Prefix, b),
            BytePattern::Suffix(b) => (AtomKind::Suffix, b),
            BytePattern::Contains(b) => (AtomKind::Contains, b),
            BytePattern::Glob { .. } => return None,
        };
        // Every occurrence of an automaton literal costs a callback, whatever its kind: a
        // one-byte literal such as ' ' or '1' would fire dozens of times per command line.
        // Such patterns are tested directly (memchr) instead.
        if lit.is_empty() || lit.len() == 1 && !RARE_BYTES.contains(&lit[0]) {
            return None;
        }
        let atom = Atom {
            slot,
            kind,
            lit: lit.into(),
        };
        if let Some(id) = self.atom_ids.get(&atom) {
            return Some(*id);
        }
        let id = self.atoms.len() as u32;
        self.atoms.push(atom.clone());
        self.atom_ids.insert(atom, id);
        Some(id)
    }

    /// Builds the lookup tables once every rule is compiled.
    pub fn finish(&mut self) {
        self.paths = crate::extract::PathStates::build(self);
    }

    fn key_bytes(&self, k: &str) -> Box<[u8]> {
        match self.pipeline.key_compare {
            crate::pipeline::KeyCompare::Exact => k.as_bytes().into(),
            crate::pipeline::KeyCompare::StripSpaces => k.bytes().filter(|b| *b != b' ').collect(),
        }
    }

    fn slot_for_paths(&mut self, paths: Vec<Path>) -> u32 {
        if let Some(s) = self.slot_by_paths.get(&paths) {
            return *s;
        }
        let slot = self.slot_count;
        self.slot_count += 1;
        for p in &paths {
            let mut node = 0usize;
            for seg in p {
                let next = match seg {
                    Segment::Key(k) => {
                        let kb = self.key_bytes(k);
                        match self.trie[node].children.get(&kb) {
                            Some(n) => *n as usize,
                            None => {
                                let n = self.trie.len();
                                self.trie.push(TrieNode::default());
                                self.trie[node].children.insert(kb, n as u32);
                                n
                            }
                        }
                    }
                    Segment::Any => match self.trie[node].any {
                        Some(n) => n as usize,
                        None => {
                            let n = self.trie.len();
                            self.trie.push(TrieNode::default());
                            self.trie[node].any = Some(n as u32);
                            n
                        }
                    },
                };
                node = next;
            }
            if !self.trie[node].slots.contains(&slot) {
                self.trie[node].slots.push(slot);
            }
        }
        self.slot_by_paths.insert(paths, slot);
        slot
    }

    fn field_slot(&mut self, field: &str, rename: &HashMap<String, String>) -> u32 {
        let f = rename.get(field).map(String::as_str).unwrap_or(field);
        let paths = self.pipeline.paths(f);
        self.slot_for_paths(paths)
    }

    fn all_slot(&mut self) -> u32 {
        if let Some(s) = self.all_slot {
            return s;
        }
        let s = self.slot_count;
        self.slot_count += 1;
        self.all_slot = Some(s);
        s
    }

    fn add_test(&mut self, key: String, t: Test) -> u32 {
        if let Some(id) = self.test_ids.get(&key) {
            return *id;
        }
        let id = self.tests.len() as u32;
        self.tests.push(t);
        self.test_ids.insert(key, id);
        id
    }

    fn add_regex(&mut self, pattern: &str, i: bool, m: bool, s: bool) -> Result<u32, String> {
        self.regexes.push(build_regex(pattern, i, m, s)?);
        Ok(self.regexes.len() as u32 - 1)
    }

    fn logsource_cond(
        &mut self,
        entry: usize,
        alt: usize,
        v: &Variant,
    ) -> Result<Option<u32>, String> {
        if v.conditions.is_empty() {
            return Ok(None);
        }
        if let Some(c) = self.cond_ids.get(&(entry, alt)) {
            return Ok(Some(*c));
        }
        let mut tests = Vec::new();
        for (field, vals) in &v.conditions {
            let ft = FieldTest {
                field: Some(field.clone()),
                modifiers: Vec::new(),
                values: vals.clone(),
                loc: Default::default(),
            };
            tests.push(self.compile_test(&ft, &HashMap::new())?);
        }
        let id = self.conds.len() as u32;
        self.conds.push(tests);
        self.cond_ids.insert((entry, alt), id);
        Ok(Some(id))
    }

    /// Compiles one field test (or field-less keyword test).
    pub fn compile_test(
        &mut self,
        t: &FieldTest,
        rename: &HashMap<String, String>,
    ) -> Result<u32, String> {
        let slot = match &t.field {
            Some(f) => self.field_slot(f, rename),
            None => self.all_slot(),
        };
        let mut key = format!("{slot}|");
        for m in &t.modifiers {
            key.push_str(&(*m as u8).to_string());
            key.push(',');
        }
        for v in &t.values {
            let tag = match v {
                Value::Str(_) => 's',
                Value::Int(_) => 'i',
                Value::Float(_) => 'f',
                Value::Bool(_) => 'b',
                Value::Null => 'n',
            };
            key.push('\u{0}');
            key.push(tag);
            key.push_str(&v.to_text());
        }
        if let Some(id) = self.test_ids.get(&key) {
            return Ok(*id);
        }
        let test = self.build_test(t, slot, rename)?;
        Ok(self.add_test(key, test))
    }

    fn build_test(
        &mut self,
        t: &FieldTest,
        slot: u32,
        rename: &HashMap<String, String>,
    ) -> Result<Test, String> {
        use Modifier::*;
        let has = |m| t.has(m);
        if has(Exists) {
            let expect = matches!(t.values.first(), Some(Value::Bool(true)));
            return Ok(Test::Exists { slot, expect });
        }
        let all = has(All);
        let neq = has(Neq);
        let cased = has(Cased);
        let mut matchers = Vec::with_capacity(t.values.len());
        let compare = t.modifiers.iter().find_map(|m| match m {
            Lt => Some(CmpOp::Lt),
            Lte => Some(CmpOp::Lte),
            Gt => Some(CmpOp::Gt),
            Gte => Some(CmpOp::Gte),
            _ => None,
        });
        let part = t.modifiers.iter().find_map(|m| match m {
            Minute => Some(TimePart::Minute),
            Hour => Some(TimePart::Hour),
            Day => Some(TimePart::Day),
            Week => Some(TimePart::Week),
            Month => Some(TimePart::Month),
            Year => Some(TimePart::Year),
            _ => None,
        });
        let mode = if has(Contains) {
            RefMode::Contains
        } else if has(StartsWith) {
            RefMode::StartsWith
        } else if has(EndsWith) {
            RefMode::EndsWith
        } else {
            RefMode::Eq
        };
        for v in &t.values {
            let m = if has(FieldRef) {
                let Value::Str(other) = v else {
                    return Err("fieldref needs a field name".into());
                };
                let other_slot = self.field_slot(other, rename);
                ValueMatcher::FieldRef {
                    slot: other_slot,
                    mode,
                    cased,
                }
            } else if has(Re) {
                let Value::Str(p) = v else {
                    return Err("'re' needs a string".into());
                };
                let id = self.add_regex(p, has(ReIgnoreCase), has(ReMultiLine), has(ReDotAll))?;
                let hints = self.regex_hints(slot, p, has(ReIgnoreCase));
                let counts = regex_byte_counts(p, has(ReIgnoreCase));
                ValueMatcher::Regex { id, hints, counts }
            } else if has(Cidr) {
                let Value::Str(p) = v else {
                    return Err("'cidr' needs a string".into());
                };
                ValueMatcher::Cidr(values::Cidr::parse(p)?)
            } else if compare.is_some() || part.is_some() {
                let rhs = match v {
                    Value::Int(i) => values::Num::Int(*i as i128),
                    Value::Float(f) => values::Num::Float(*f),
                    _ => return Err("numeric modifiers need a number".into()),
                };
                ValueMatcher::Cmp {
                    op: compare.unwrap_or(CmpOp::Eq),
                    rhs,
                    part,
                }
            } else {
                // A field-less key (`'|all': 1`) searches like a keyword: its values are
                // text found in any value (docs/semantics.md, "Keywords").
                let stringy = t.field.is_none()
                    || t.modifiers.iter().any(|m| {
                        matches!(m, Contains | StartsWith | EndsWith | Windash) || m.is_encoding()
                    });
                match v {
                    Value::Null if t.field.is_none() => {
                        return Err("null is not a keyword (a field-less test needs text)".into())
                    }
                    Value::Null => ValueMatcher::Null,
                    Value::Bool(b) if !stringy => ValueMatcher::Bool { value: *b, cased },
                    Value::Int(i) if !stringy => {
                        let text = i.to_string().into_bytes().into_boxed_slice();
                        let hint = self.int_atom(slot, &text);
                        ValueMatcher::Int {
                            value: *i,
                            text,
                            hint,
                        }
                    }
                    Value::Float(f) if !stringy => ValueMatcher::Float(*f),
                    _ => self.text_matcher(t, slot, &v.to_text(), cased)?,
                }
            };
            matchers.push(m);
        }
        Ok(Test::Values {
            slot,
            matchers,
            all,
            neq,
        })
    }

    fn text_matcher(
        &mut self,
        t: &FieldTest,
        slot: u32,
        value: &str,
        cased: bool,
    ) -> Result<ValueMatcher, String> {
        use Modifier::*;
        let (start_star, end_star) = if t.has(Contains)
            || t.field.is_none() && !t.has(StartsWith) && !t.has(EndsWith) && !t.has(Re)
        {
            // Field-less tests without a position modifier search like keywords.
            (true, true)
        } else if t.has(StartsWith) {
            (false, true)
        } else if t.has(EndsWith) {
            (true, false)
        } else {
            (false, false)
        };
        let variants = if t.has(Windash) {
            values::windash(value)?
        } else {
            vec![value.to_string()]
        };
        let encoded = t.modifiers.iter().any(|m| m.is_encoding());
        let mut pats = Vec::new();
        if encoded {
            for v in &variants {
                if has_wildcards(v) {
                    return Err("wildcards cannot be combined with encoding modifiers".into());
                }
                let lit: String = parse_wildcards(v)
                    .into_iter()
                    .map(|p| match p {
                        Piece::Lit(s) => s,
                        _ => String::new(),
                    })
                    .collect();
                let mut bytes_variants: Vec<Vec<u8>> = vec![lit.into_bytes()];
                for m in &t.modifiers {
                    bytes_variants = match m {
                        Utf16le => bytes_variants
                            .iter()
                            .map(|b| values::utf16le(&String::from_utf8_lossy(b)))
                            .collect(),
                        Utf16be => bytes_variants
                            .iter()
                            .map(|b| values::utf16be(&String::from_utf8_lossy(b)))
                            .collect(),
                        Utf16 => bytes_variants
                            .iter()
                            .map(|b| values::utf16bom(&String::from_utf8_lossy(b)))
                            .collect(),
                        Base64 => bytes_variants
                            .iter()
                            .map(|b| values::base64(b).into_bytes())
                            .collect(),
                        Base64Offset => bytes_variants
                            .iter()
                            .flat_map(|b| {
                                values::base64offset(b).into_iter().map(String::into_bytes)
                            })
                            .collect(),
                        _ => bytes_variants,
                    };
                }
                for b in bytes_variants {
                    pats.push(BytePattern::literal(&b, !start_star, !end_star));
                }
            }
            let hints = pats
                .iter()
                .map(|p| self.pattern_hint(slot, p, true))
                .collect::<Option<Vec<u32>>>()
                .map(Vec::into_boxed_slice);
            return Ok(ValueMatcher::Text {
                pats: pats.into_boxed_slice(),
                cased: true,
                atoms: None,
                hints,
            });
        }
        for v in &variants {
            let mut pieces = Vec::new();
            if start_star {
                pieces.push(Piece::Star);
            }
            for p in parse_wildcards(v) {
                match p {
                    Piece::Lit(s) => {
                        pieces.push(Piece::Lit(if cased { s } else { fold_string(&s) }))
                    }
                    Piece::Star if pieces.last() == Some(&Piece::Star) => {}
                    other => pieces.push(other),
                }
            }
            if end_star && pieces.last() != Some(&Piece::Star) {
                pieces.push(Piece::Star);
            }
            pats.push(BytePattern::from_pieces(&pieces));
        }
        let atoms = if cased {
            None
        } else {
            pats.iter()
                .map(|p| self.atom(slot, p))
                .collect::<Option<Vec<u32>>>()
                .map(Vec::into_boxed_slice)
        };
        let hints = pats
            .iter()
            .map(|p| self.pattern_hint(slot, p, cased))
            .collect::<Option<Vec<u32>>>()
            .map(Vec::into_boxed_slice);
        Ok(ValueMatcher::Text {
            pats: pats.into_boxed_slice(),
            cased,
            atoms,
            hints,
        })
    }
}

/// A rule's regex as the engine runs it (flags `i`, `m`, `s`; size-limited).
pub(crate) fn build_regex(pattern: &str, i: bool, m: bool, s: bool) -> Result<Regex, String> {
    Regex::builder()
        .syntax(
            syntax::Config::new()
                .case_insensitive(i)
                .multi_line(m)
                .dot_matches_new_line(s),
        )
        .configure(Regex::config().nfa_size_limit(Some(MAX_REGEX_NFA_BYTES)))
        .build(pattern)
        .map_err(|e| format!("regex '{pattern}': {e}"))
}

/// [`crate::regex_lits::byte_counts`] of a pattern (none if it does not parse alike here).
pub(crate) fn regex_byte_counts(pattern: &str, case_insensitive: bool) -> Box<[(u8, u32)]> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .build()
        .parse(pattern)
        .map(|hir| crate::regex_lits::byte_counts(&hir).into_boxed_slice())
        .unwrap_or_default()
}

fn compile_cond(c: &Condition, names: &[String]) -> Result<Cond, String> {
    let idx = |n: &String| -> Result<u32, String> {
        names
            .iter()
            .position(|x| x == n)
            .map(|i| i as u32)
            .ok_or_else(|| format!("unknown search identifier '{n}'"))
    };
    Ok(match c {
        Condition::Id(n) => Cond::Id(idx(n)?),
        Condition::Not(inner) => Cond::Not(Box::new(compile_cond(inner, names)?)),
        Condition::And(xs) => Cond::And(
            xs.iter()
                .map(|x| compile_cond(x, names))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(xs) => Cond::Or(
            xs.iter()
                .map(|x| compile_cond(x, names))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Of { quantifier, ids } => {
            let ids = ids.iter().map(idx).collect::<Result<Vec<_>, _>>()?;
            match quantifier {
                Quantifier::All => Cond::All(ids),
                Quantifier::AtLeast(n) => Cond::AtLeast(*n, ids),
            }
        }
    })
}

fn rule_error(
    rule: &Rule,
    loc: sigmatag_rule::Location,
    path: String,
    reason: String,
) -> RuleError {
    RuleError {
        source: rule.source.clone(),
        rule_id: Some(rule.id.clone()).filter(|s| !s.is_empty()),
        title: Some(rule.title.clone()),
        loc,
        path,
        reason,
    }
}

/// Compiles one rule into `shared`. On error, `shared` may hold unused tests and slots (they
/// cost memory only).
pub(crate) fn compile_rule(shared: &mut Shared, rule: &Rule) -> Result<CompiledRule, RuleError> {
    let mut variant_list: Vec<(Option<u32>, HashMap<String, String>)> = Vec::new();
    if shared.pipeline.logsources.is_empty() {
        variant_list.push((None, HashMap::new()));
    } else {
        let entry_idx = shared.pipeline.logsource_entry_index(&rule.logsource);
        match entry_idx {
            Some(ei) => {
                let variants = shared.pipeline.logsources[ei].when.clone();
                for (ai, v) in variants.iter().enumerate() {
                    let cond = shared.logsource_cond(ei, ai, v).map_err(|e| {
                        rule_error(
                            rule,
                            rule.logsource.loc,
                            "logsource".into(),
                            format!("mapping condition: {e}"),
                        )
                    })?;
                    variant_list.push((cond, v.rename.clone()));
                }
            }
            None => match shared.pipeline.unmatched {
                Unmatched::All => variant_list.push((None, HashMap::new())),
                Unmatched::Reject => {
                    let ls = &rule.logsource;
                    return Err(rule_error(
                        rule,
                        rule.logsource.loc,
                        "logsource".into(),
                        format!(
                            "mapping '{}' has no logsource for product={} category={} service={}",
                            shared.pipeline.name,
                            ls.product.as_deref().unwrap_or("-"),
                            ls.category.as_deref().unwrap_or("-"),
                            ls.service.as_deref().unwrap_or("-")
                        ),
                    ));
                }
            },
        }
    }
    let names: Vec<String> = rule
        .detection
        .search_ids
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let cond = compile_cond(&rule.detection.condition, &names)
        .map_err(|e| rule_error(rule, rule.logsource.loc, "detection.condition".into(), e))?;
    let mut variants = Vec::new();
    for (lc, rename) in variant_list {
        let mut searches = Vec::new();
        for sid in &rule.detection.search_ids {
            let mut alts = Vec::new();
            for alt in &sid.alternatives {
                match alt {
                    Alternative::AllOf(tests) => {
                        let mut ids = Vec::new();
                        for t in tests {
                            let id = shared.compile_test(t, &rename).map_err(|e| {
                                let key = format!(
                                    "detection.{}.{}{}",
                                    sid.name,
                                    t.field.as_deref().unwrap_or(""),
                                    t.modifiers
                                        .iter()
                                        .map(|m| format!("|{m:?}").to_lowercase())
                                        .collect::<String>()
                                );
                                rule_error(rule, t.loc, key, e)
                            })?;
                            ids.push(id);
                        }
                        alts.push(ids);
                    }
                    Alternative::Keyword(v) => {
                        let ft = FieldTest {
                            field: None,
                            modifiers: vec![Modifier::Contains],
                            values: vec![Value::Str(v.to_text())],
                            loc: sid.loc,
                        };
                        let id = shared.compile_test(&ft, &rename).map_err(|e| {
                            rule_error(rule, sid.loc, format!("detection.{}", sid.name), e)
                        })?;
                        alts.push(vec![id]);
                    }
                }
            }
            searches.push(Search { alts });
        }
        variants.push((
            lc,
            CompiledDetection {
                searches,
                cond: cond.clone(),
            },
        ));
    }
    Ok(CompiledRule { variants })
}
