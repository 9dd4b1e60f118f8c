//! The sigmatag core: Sigma rules + a field mapping compile into an immutable [`RuleSet`];
//! matching one record needs only a per-thread [`Scratch`] and allocates nothing.
//!
//! ```
//! use sigmatag_matcher::{RuleSet, Pipeline, JsonBytes};
//! let text = "title: t\nid: x\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n";
//! let rules: Vec<_> = sigmatag_rule::parse_rules(text, "inline", &Default::default())
//!     .into_iter().map(|r| r.unwrap()).collect();
//! let (set, errors) = RuleSet::compile(&rules, Pipeline::flat());
//! assert!(errors.is_empty());
//! let mut scratch = set.scratch();
//! let hits = set.match_record(&JsonBytes(br#"{"Image":"C:\\Windows\\CMD.EXE"}"#), &mut scratch).unwrap();
//! assert_eq!(hits, &[0]);
//! ```
//!
//! Design (see `docs/architecture.md`): the rule set knows every record path any rule
//! reads, as a trie. A record walks itself into an extractor that follows the trie, skips
//! what no rule reads, and copies the values it needs (raw and case-folded) into the
//! scratch arena, once per record. Tests then run on those bytes; logsource conditions are
//! evaluated once per record and shared by all rules.
#![deny(missing_docs)]

mod compile;
mod extract;
pub mod fold;
mod index;
pub mod json;
mod keys;
mod memo;
pub mod pattern;
pub mod pipeline;
mod program;
pub mod record;
mod regex_lits;
mod scan;
mod structural;
mod swar;
#[cfg(test)]
mod testutil;
pub mod values;

use compile::{CmpOp, RefMode, Shared, Test, ValueMatcher};
pub use json::JsonBytes;
pub use memo::MemoSize;
pub use pipeline::Pipeline;
pub use record::{Record, RecordError, Scalar, StackText, Text, Visitor};
use regex_automata::{meta, Input};
use sigmatag_rule::{Rule, RuleError};

/// The metadata a match reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// `id`.
    pub id: String,
    /// `title`.
    pub title: String,
    /// `level`.
    pub level: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// Where it was loaded from.
    pub source: String,
}

impl Scratch {
    /// How many rules the last [`RuleSet::match_record`] evaluated (diagnostics: the index
    /// keeps this far below the number of rules).
    pub fn last_evaluated(&self) -> usize {
        self.candidates.len()
    }

    /// The rules the last indexed [`RuleSet::match_record`] evaluated (diagnostics).
    pub fn last_candidates(&self) -> &[u32] {
        &self.candidates
    }

    /// The value memo's counts so far: long values found remembered, and long values not
    /// found (scanned instead; diagnostics).
    pub fn memo_counts(&self) -> (u64, u64) {
        (self.memo.hits, self.memo.misses)
    }
}

/// An immutable, thread-safe compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    shared: Shared,
    infos: Vec<RuleInfo>,
    index: index::Index,
    /// The rules' conditions as flat programs (what evaluation walks).
    programs: program::Programs,
    /// Tells this set's scratch values from other sets' (see [`RuleSet::match_record`]).
    id: u64,
}

/// The id of the next rule set compiled.
static NEXT_SET_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Per-thread mutable state for matching; create with [`RuleSet::scratch`] and reuse.
#[derive(Debug)]
pub struct Scratch {
    // extraction
    states: Vec<u32>,
    in_array: Vec<bool>,
    tmp: Vec<u8>,
    values: Vec<Val>,
    slot_head: Vec<u32>,
    /// The slots with values (the ones `slot_head` holds a value for), in first-value order.
    touched: Vec<u32>,
    arena: Vec<u8>,
    // evaluation
    cond_state: Vec<u8>,
    caches: Vec<meta::Cache>,
    matched: Vec<u32>,
    // index
    use_atoms: bool,
    atom_bits: Vec<u64>,
    fired: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
    /// Rules whose first trigger clause fired (their other clauses are checked after the
    /// automaton passes).
    triggered: Vec<u32>,
    /// The atoms of long values seen before.
    memo: memo::Memo,
    /// The lazy atoms looked for in this record (laid out as `atom_bits`; cleared with
    /// them through `fired`).
    lazy_done: Vec<u64>,
    /// The rule set this scratch was made for.
    set: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Num,
    Str,
    Container,
}

#[derive(Debug, Clone, Copy)]
struct Val {
    kind: Kind,
    in_array: bool,
    raw: (u32, u32),
    folded: (u32, u32),
    next: u32,
}

const NONE: u32 = u32::MAX;

impl RuleSet {
    /// Compiles rules under a pipeline. Rules that cannot run are returned as errors; the
    /// others are in the set, in input order (indices into the rules that compiled).
    pub fn compile(rules: &[Rule], pipeline: Pipeline) -> (RuleSet, Vec<RuleError>) {
        Self::compile_each(rules.iter().map(std::borrow::Cow::Borrowed), pipeline)
    }

    /// [`RuleSet::compile`] that takes the rules and drops each one's syntax tree as soon as
    /// it is compiled, so that the trees and the index under construction are never in
    /// memory together (about 12 MB less at the peak of loading all SigmaHQ rules).
    pub fn compile_owned(rules: Vec<Rule>, pipeline: Pipeline) -> (RuleSet, Vec<RuleError>) {
        Self::compile_each(rules.into_iter().map(std::borrow::Cow::Owned), pipeline)
    }

    fn compile_each<'a>(
        rules: impl Iterator<Item = std::borrow::Cow<'a, Rule>>,
        pipeline: Pipeline,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut shared = Shared::new(pipeline);
        let mut compiled = Vec::new();
        let mut infos = Vec::new();
        let mut errors = Vec::new();
        for r in rules {
            match compile::compile_rule(&mut shared, &r) {
                Ok(c) => {
                    compiled.push(c);
                    infos.push(match r {
                        std::borrow::Cow::Owned(r) => RuleInfo {
                            id: r.id,
                            title: r.title,
                            level: r.level,
                            tags: r.tags,
                            source: r.source,
                        },
                        std::borrow::Cow::Borrowed(r) => RuleInfo {
                            id: r.id.clone(),
                            title: r.title.clone(),
                            level: r.level.clone(),
                            tags: r.tags.clone(),
                            source: r.source.clone(),
                        },
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        compiled.shrink_to_fit();
        infos.shrink_to_fit();
        shared.finish();
        let index = index::build(&shared, &compiled);
        let programs = program::Programs::build(&compiled);
        // The condition trees served the index derivation and the programs; evaluation walks
        // the programs, so the trees go.
        drop(compiled);
        (
            RuleSet {
                shared,
                infos,
                index,
                programs,
                id: NEXT_SET_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
            errors,
        )
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when no rule compiled.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Metadata of rule `i`.
    pub fn info(&self, i: usize) -> &RuleInfo {
        &self.infos[i]
    }

    /// The pipeline the set was compiled with.
    pub fn pipeline(&self) -> &Pipeline {
        &self.shared.pipeline
    }

    /// A scratch value sized for this rule set, with the default value memo
    /// ([`MemoSize::DEFAULT`]).
    pub fn scratch(&self) -> Scratch {
        self.scratch_with_memo(MemoSize::DEFAULT)
    }

    /// A scratch value sized for this rule set whose value memo (the atoms of long values
    /// seen before, replayed instead of scanning them again) has `memo`'s sizes
    /// ([`MemoSize::OFF`]: none).
    pub fn scratch_with_memo(&self, memo: MemoSize) -> Scratch {
        Scratch {
            states: Vec::with_capacity(256),
            in_array: Vec::with_capacity(256),
            tmp: Vec::with_capacity(4096),
            values: Vec::with_capacity(1024),
            slot_head: vec![NONE; self.shared.slot_count as usize],
            touched: Vec::with_capacity(self.shared.slot_count as usize),
            arena: Vec::with_capacity(64 * 1024),
            cond_state: vec![0; self.shared.conds.len()],
            caches: self
                .shared
                .regexes
                .iter()
                .map(|r| r.create_cache())
                .collect(),
            matched: Vec::with_capacity(self.infos.len()),
            use_atoms: true,
            atom_bits: vec![0; self.shared.atoms.len().div_ceil(64)],
            fired: Vec::with_capacity(self.shared.atoms.len()),
            stamp: vec![0; self.infos.len()],
            generation: 0,
            candidates: Vec::with_capacity(self.infos.len()),
            triggered: Vec::with_capacity(self.infos.len()),
            memo: memo::Memo::new(memo),
            lazy_done: vec![0; self.shared.atoms.len().div_ceil(64)],
            set: self.id,
        }
    }

    /// Number of rules evaluated for every record because no index trigger could be derived
    /// for them (diagnostics).
    pub fn unindexed_rules(&self) -> usize {
        self.index.always.len()
    }

    /// The rules evaluated for every record because no index trigger could be derived.
    pub fn unindexed_rule_ids(&self) -> Vec<usize> {
        self.index.always.iter().map(|r| *r as usize).collect()
    }

    /// Matches like [`RuleSet::match_record`] but without the cross-rule index: every rule is
    /// evaluated and every pattern scanned. Slower; used to check the index changes nothing.
    pub fn match_record_unindexed<'s, R: Record + ?Sized>(
        &self,
        record: &R,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [u32], RecordError> {
        self.match_with(record, scratch, false)
    }

    fn match_with<'s, R: Record + ?Sized>(
        &self,
        record: &R,
        scratch: &'s mut Scratch,
        indexed: bool,
    ) -> Result<&'s [u32], RecordError> {
        self.fit(scratch);
        self.extract(record, scratch)?;
        scratch.matched.clear();
        scratch.cond_state.fill(0);
        scratch.use_atoms = indexed;
        if indexed {
            self.run_index(scratch);
            for k in 0..scratch.candidates.len() {
                let r = scratch.candidates[k];
                if self.rule_matches(r as usize, scratch) {
                    scratch.matched.push(r);
                }
            }
        } else {
            for i in 0..self.infos.len() {
                if self.rule_matches(i, scratch) {
                    scratch.matched.push(i as u32);
                }
            }
        }
        Ok(&scratch.matched)
    }

    /// Runs every slot automaton over the record's values, marks atoms and collects the
    /// rules to evaluate (sorted, so matches come out in rule order).
    fn run_index(&self, s: &mut Scratch) {
        for a in s.fired.drain(..) {
            s.atom_bits[(a / 64) as usize] &= !(1u64 << (a % 64));
            s.lazy_done[(a / 64) as usize] &= !(1u64 << (a % 64));
        }
        s.generation = s.generation.wrapping_add(1);
        if s.generation == 0 {
            s.stamp.fill(0);
            s.generation = 1;
        }
        let generation = s.generation;
        s.candidates.clear();
        for &r in &self.index.always {
            s.stamp[r as usize] = generation;
            s.candidates.push(r);
        }
        let Scratch {
            arena,
            values,
            slot_head,
            touched,
            atom_bits,
            fired,
            stamp,
            triggered,
            memo,
            ..
        } = s;
        triggered.clear();
        let mut marks = Marks {
            index: &self.index,
            atom_bits,
            fired,
            stamp,
            triggered,
            generation,
        };
        // The slots this record has values in (not every slot the index scans: most records
        // have values in a few of them).
        for &slot in touched.iter() {
            let k = self.index.slot_pos[slot as usize];
            if k == NONE {
                continue;
            }
            let si = &self.index.slots[k as usize];
            let mut cur = slot_head[slot as usize];
            while cur != NONE {
                let v = values[cur as usize];
                cur = v.next;
                if !matches!(v.kind, Kind::Str | Kind::Num | Kind::Bool) {
                    continue;
                }
                let hay = &arena[v.folded.0 as usize..v.folded.1 as usize];
                if v.kind == Kind::Num && !si.num_atoms.is_empty() && !canonical_int(hay) {
                    // Integer atoms are the number's canonical text; a number written
                    // otherwise (4688.0, 4.688e3) may still equal one: assume all hold.
                    for &a in &si.num_atoms {
                        marks.fire(a);
                    }
                }
                if !(memo.on() && hay.len() >= memo::MIN_LEN && si.scanner.walks()) {
                    si.scanner.scan(hay, |atom| {
                        marks.fire(atom);
                    });
                    continue;
                }
                let key = memo.key(si.slot, hay);
                if let Some(atoms) = memo.get(&key, hay) {
                    for &a in atoms {
                        marks.fire(a);
                    }
                    continue;
                }
                let mut seen = memo::Seen::new();
                si.scanner.scan(hay, |atom| {
                    let fresh = marks.fire(atom);
                    seen.push(atom, fresh);
                });
                memo.put(&key, hay, &seen);
            }
        }
        // A triggered rule is a candidate when each of its other clauses has an atom that held.
        for k in 0..s.triggered.len() {
            let r = s.triggered[k];
            let ok = self
                .index
                .secondary
                .groups(r as usize)
                .all(|clause| clause.iter().any(|&a| self.atom_held(a, s)));
            if ok {
                s.candidates.push(r);
            }
        }
        s.candidates.sort_unstable();
    }

    /// Whether atom `a` holds for the record: its bit, set by the index passes, or for a
    /// lazy atom ([`index::Index::lazy_bits`]) its values searched on first use.
    #[inline(always)]
    fn atom_held(&self, a: u32, s: &mut Scratch) -> bool {
        let (w, bit) = ((a / 64) as usize, 1u64 << (a % 64));
        s.atom_bits[w] & bit != 0
            || self.index.lazy_bits[w] & bit != 0
                && s.lazy_done[w] & bit == 0
                && self.lazy_held(a, s)
    }

    /// Searches the values of lazy atom `a`'s slot for its literal (once per record: its
    /// bit and `lazy_done` then say the answer).
    #[inline(never)]
    fn lazy_held(&self, a: u32, s: &mut Scratch) -> bool {
        let (w, bit) = ((a / 64) as usize, 1u64 << (a % 64));
        s.lazy_done[w] |= bit;
        s.fired.push(a);
        let atom = &self.shared.atoms[a as usize];
        let mut cur = s.slot_head[atom.slot as usize];
        while cur != NONE {
            let v = s.values[cur as usize];
            cur = v.next;
            if !matches!(v.kind, Kind::Str | Kind::Num | Kind::Bool) {
                continue;
            }
            let hay = &s.arena[v.folded.0 as usize..v.folded.1 as usize];
            if pattern::find(hay, &atom.lit).is_some() {
                s.atom_bits[w] |= bit;
                return true;
            }
        }
        false
    }

    /// Matches one record; returns the indices of the rules that matched, in rule order.
    /// A record that cannot be read yields its error and no matches.
    ///
    /// `scratch` should come from this set's [`RuleSet::scratch`]; one made for another set
    /// is remade for this one first (allocating, once).
    pub fn match_record<'s, R: Record + ?Sized>(
        &self,
        record: &R,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [u32], RecordError> {
        self.match_with(record, scratch, true)
    }

    /// Like [`RuleSet::match_record`] but evaluates only the rules in `only` (for tests).
    pub fn match_rule<R: Record + ?Sized>(
        &self,
        rule: usize,
        record: &R,
        scratch: &mut Scratch,
    ) -> Result<bool, RecordError> {
        self.fit(scratch);
        self.extract(record, scratch)?;
        scratch.cond_state.fill(0);
        scratch.use_atoms = false;
        Ok(self.rule_matches(rule, scratch))
    }

    /// Remakes a scratch of another rule set for this one (its tables and memo do not fit).
    #[cold]
    fn refit(&self, scratch: &mut Scratch) {
        *scratch = self.scratch_with_memo(scratch.memo.size());
    }

    #[inline]
    fn fit(&self, scratch: &mut Scratch) {
        if scratch.set != self.id {
            self.refit(scratch);
        }
    }

    fn extract<R: Record + ?Sized>(&self, record: &R, s: &mut Scratch) -> Result<(), RecordError> {
        s.clear_values();
        if let Some(bytes) = record.json_bytes() {
            if bytes.len() > json::MAX_RECORD_BYTES {
                return Err(json::too_large());
            }
            let mut sink = self.sink(s);
            return extract::parse_record(bytes, &mut sink);
        }
        let mut ex = extract::Extractor {
            sink: self.sink(s),
            error: None,
        };
        record.walk(&mut ex)?;
        ex.error.map_or(Ok(()), Err)
    }

    fn sink<'a>(&'a self, s: &'a mut Scratch) -> extract::Sink<'a> {
        extract::Sink {
            paths: &self.shared.paths,
            all_slot: self.shared.all_slot,
            s,
        }
    }

    fn rule_matches(&self, r: usize, s: &mut Scratch) -> bool {
        for &(cond, start) in self.programs.of(r) {
            if cond != NONE && !self.logsource_holds(cond, s) {
                continue;
            }
            if self
                .programs
                .eval(start as usize, &mut |t| self.eval_test(t, s))
            {
                return true;
            }
        }
        false
    }

    fn logsource_holds(&self, c: u32, s: &mut Scratch) -> bool {
        match s.cond_state[c as usize] {
            1 => true,
            2 => false,
            _ => {
                let ok = self.shared.conds[c as usize]
                    .iter()
                    .all(|t| self.eval_test(*t, s));
                s.cond_state[c as usize] = if ok { 1 } else { 2 };
                ok
            }
        }
    }

    /// Decides test `t` (a disjunction of atoms by its bits, inline in the condition's loop;
    /// anything else by [`RuleSet::eval_values`]).
    #[inline(always)]
    fn eval_test(&self, t: u32, s: &mut Scratch) -> bool {
        if s.use_atoms {
            // A disjunction of atoms: one pass over its atom bits.
            let atoms = self.index.test_atoms.get(t as usize);
            if !atoms.is_empty() {
                return atoms.iter().any(|&a| self.atom_held(a, s));
            }
        }
        self.eval_values(t, s)
    }

    /// Decides test `t` from the record's values.
    fn eval_values(&self, t: u32, s: &mut Scratch) -> bool {
        match &self.shared.tests[t as usize] {
            Test::Exists { slot, expect } => (s.slot_head[*slot as usize] != NONE) == *expect,
            Test::Values {
                slot,
                matchers,
                all,
                neq,
            } => {
                if s.slot_head[*slot as usize] == NONE {
                    return self.index.absent[t as usize];
                }
                let held = if *all {
                    matchers.iter().all(|m| self.eval_matcher(*slot, m, s))
                } else {
                    matchers.iter().any(|m| self.eval_matcher(*slot, m, s))
                };
                held != *neq
            }
        }
    }

    fn eval_matcher(&self, slot: u32, m: &ValueMatcher, s: &mut Scratch) -> bool {
        if s.use_atoms && self.index.scanned(slot) {
            // The index has found every atom of this slot: an all-atom matcher is its bits,
            // and a matcher whose necessary atoms did not hold cannot match any value.
            let mut any = |atoms: &[u32]| atoms.iter().any(|&a| self.atom_held(a, s));
            match m {
                ValueMatcher::Text {
                    atoms: Some(atoms), ..
                } => return any(atoms),
                ValueMatcher::Text {
                    hints: Some(hints), ..
                } if !any(hints) => return false,
                ValueMatcher::Regex { hints, .. } if hints.iter().any(|c| !any(c)) => return false,
                _ => {}
            }
        }
        let mut cur = s.slot_head[slot as usize];
        if let ValueMatcher::Null = m {
            if cur == NONE {
                return true;
            }
        }
        while cur != NONE {
            let v = s.values[cur as usize];
            cur = v.next;
            if self.value_matches(&v, m, s) {
                return true;
            }
        }
        false
    }

    fn value_matches(&self, v: &Val, m: &ValueMatcher, s: &mut Scratch) -> bool {
        let raw = &s.arena[v.raw.0 as usize..v.raw.1 as usize];
        let texty = matches!(v.kind, Kind::Str | Kind::Num | Kind::Bool);
        match m {
            ValueMatcher::Null => v.kind == Kind::Null && !v.in_array,
            ValueMatcher::Text { pats, cased, .. } => {
                if !texty {
                    return false;
                }
                let hay = if *cased {
                    raw
                } else {
                    &s.arena[v.folded.0 as usize..v.folded.1 as usize]
                };
                pats.iter().any(|p| p.is_match(hay))
            }
            ValueMatcher::Int { value, text, .. } => match v.kind {
                // `text` is the integer's canonical text: a number written canonically equals
                // it exactly when the texts are equal (no parse).
                Kind::Num if canonical_int(raw) => raw == &text[..],
                Kind::Num => num_text_eq_int(raw, *value),
                Kind::Str => raw == &text[..],
                _ => false,
            },
            ValueMatcher::Float(f) => match v.kind {
                Kind::Num | Kind::Str => {
                    as_str(raw)
                        .and_then(values::parse_num)
                        .and_then(|n| values::cmp_num(n, values::Num::Float(*f)))
                        == Some(std::cmp::Ordering::Equal)
                }
                _ => false,
            },
            ValueMatcher::Bool { value, cased } => match v.kind {
                Kind::Bool | Kind::Str => {
                    let text = if *cased {
                        raw
                    } else {
                        &s.arena[v.folded.0 as usize..v.folded.1 as usize]
                    };
                    text == if *value { &b"true"[..] } else { &b"false"[..] }
                }
                _ => false,
            },
            ValueMatcher::Regex { id: i, counts, .. } => {
                if !texty || !regex_lits::counts_hold(raw, counts) {
                    return false;
                }
                let re = &self.shared.regexes[*i as usize];
                let input = Input::new(raw).earliest(true);
                re.search_half_with(&mut s.caches[*i as usize], &input)
                    .is_some()
            }
            ValueMatcher::Cidr(net) => {
                v.kind == Kind::Str
                    && as_str(raw)
                        .and_then(|t| t.parse::<std::net::IpAddr>().ok())
                        .is_some_and(|ip| net.contains(ip))
            }
            ValueMatcher::Cmp { op, rhs, part } => {
                if !matches!(v.kind, Kind::Num | Kind::Str) {
                    return false;
                }
                let Some(text) = as_str(raw) else {
                    return false;
                };
                let lhs = match part {
                    Some(p) => match values::time_part(text, *p) {
                        Some(x) if v.kind == Kind::Str => values::Num::Int(x as i128),
                        _ => return false,
                    },
                    None => match values::parse_num(text) {
                        Some(x) => x,
                        None => return false,
                    },
                };
                use std::cmp::Ordering::*;
                match (values::cmp_num(lhs, *rhs), op) {
                    (None, _) => false,
                    (Some(o), CmpOp::Eq) => o == Equal,
                    (Some(o), CmpOp::Lt) => o == Less,
                    (Some(o), CmpOp::Lte) => o != Greater,
                    (Some(o), CmpOp::Gt) => o == Greater,
                    (Some(o), CmpOp::Gte) => o != Less,
                }
            }
            ValueMatcher::FieldRef { slot, mode, cased } => {
                if !texty {
                    return false;
                }
                let a = if *cased { v.raw } else { v.folded };
                let mut cur = s.slot_head[*slot as usize];
                while cur != NONE {
                    let w = s.values[cur as usize];
                    cur = w.next;
                    if !matches!(w.kind, Kind::Str | Kind::Num | Kind::Bool) {
                        continue;
                    }
                    let b = if *cased { w.raw } else { w.folded };
                    let hay = &s.arena[a.0 as usize..a.1 as usize];
                    let needle = &s.arena[b.0 as usize..b.1 as usize];
                    let ok = match mode {
                        RefMode::Eq => hay == needle,
                        RefMode::StartsWith => hay.starts_with(needle),
                        RefMode::EndsWith => hay.ends_with(needle),
                        RefMode::Contains => pattern::find(hay, needle).is_some(),
                    };
                    if ok {
                        return true;
                    }
                }
                false
            }
        }
    }
}

fn as_str(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

fn num_text_eq_int(text: &[u8], n: i64) -> bool {
    as_str(text)
        .and_then(values::parse_num)
        .and_then(|x| values::cmp_num(x, values::Num::Int(n as i128)))
        == Some(std::cmp::Ordering::Equal)
}

/// A regex as the engine compiles it, with the byte counts checked before it runs
/// (`regex_lits::byte_counts`), for tests that hold the counts against real values.
#[doc(hidden)]
#[derive(Debug)]
pub struct RegexCountCheck {
    re: meta::Regex,
    counts: Box<[(u8, u32)]>,
}

impl RegexCountCheck {
    /// `None` when the pattern does not compile or gives no byte counts (flags: `|i`, `|m`,
    /// `|s`).
    pub fn new(pattern: &str, i: bool, m: bool, s: bool) -> Option<RegexCountCheck> {
        let re = compile::build_regex(pattern, i, m, s).ok()?;
        let counts = compile::regex_byte_counts(pattern, i);
        (!counts.is_empty()).then_some(RegexCountCheck { re, counts })
    }

    /// Whether the regex matches `hay`, and whether `hay` holds the counted bytes.
    pub fn check(&self, hay: &[u8]) -> (bool, bool) {
        (
            self.re.is_match(hay),
            regex_lits::counts_hold(hay, &self.counts),
        )
    }
}

/// True for integer text as JSON and Rust print it (`-?(0|[1-9][0-9]*)`, not `-0`).
fn canonical_int(t: &[u8]) -> bool {
    let digits = t.strip_prefix(b"-").unwrap_or(t);
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1 && digits.len() == t.len())
}

/// The per-record index state `run_index` updates as atoms fire.
struct Marks<'a> {
    index: &'a index::Index,
    atom_bits: &'a mut Vec<u64>,
    fired: &'a mut Vec<u32>,
    stamp: &'a mut Vec<u32>,
    triggered: &'a mut Vec<u32>,
    generation: u32,
}

impl Marks<'_> {
    /// Marks `atom` as holding and every rule whose first trigger clause it is in as
    /// triggered; false when it held already.
    #[inline(always)]
    fn fire(&mut self, atom: u32) -> bool {
        let (word, bit) = ((atom / 64) as usize, 1u64 << (atom % 64));
        if self.atom_bits[word] & bit != 0 {
            return false;
        }
        self.atom_bits[word] |= bit;
        self.fired.push(atom);
        for &r in self.index.atom_rules.get(atom as usize) {
            if self.stamp[r as usize] != self.generation {
                self.stamp[r as usize] = self.generation;
                self.triggered.push(r);
            }
        }
        true
    }
}

impl Scratch {
    /// Forgets the previous record's values (before extracting the next one).
    fn clear_values(&mut self) {
        self.values.clear();
        self.arena.clear();
        for &slot in &self.touched {
            self.slot_head[slot as usize] = NONE;
        }
        self.touched.clear();
        self.states.clear();
        self.in_array.clear();
    }

    /// Adds a value to the front of `slot`'s list.
    #[inline(always)]
    fn link(&mut self, slot: u32, kind: Kind, in_array: bool, raw: (u32, u32), folded: (u32, u32)) {
        let idx = self.values.len() as u32;
        let next = self.slot_head[slot as usize];
        if next == NONE {
            self.touched.push(slot);
        }
        self.values.push(Val {
            kind,
            in_array,
            raw,
            folded,
            next,
        });
        self.slot_head[slot as usize] = idx;
    }
}

// The hot path must stay shareable across threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
};

impl RuleSet {
    /// Times the phases of matching over `records` (best of 25 passes each, with a scratch
    /// whose memo has `memo`'s sizes): reading the records (extraction), reading + the index
    /// passes, and the whole match (diagnostics for `benches/profile.rs`).
    #[doc(hidden)]
    pub fn debug_time_phases(&self, records: &[&[u8]], memo: MemoSize) -> String {
        let mut s = self.scratch_with_memo(memo);
        let time = |f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..25 {
                let t = std::time::Instant::now();
                f();
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e9 / records.len().max(1) as f64
        };
        let read = time(&mut || {
            for r in records {
                let _ = self.extract(&JsonBytes(r), &mut s);
            }
        });
        let index = time(&mut || {
            for r in records {
                if self.extract(&JsonBytes(r), &mut s).is_ok() {
                    s.cond_state.fill(0);
                    s.use_atoms = true;
                    self.run_index(&mut s);
                }
            }
        });
        let all = time(&mut || {
            for r in records {
                let _ = self.match_record(&JsonBytes(r), &mut s);
            }
        });
        format!(
            "ns/record: read {read:.0}, index passes {:.0}, rule evaluation {:.0}; whole match {all:.0}",
            index - read,
            all - index
        )
    }

    /// The rules whose evaluation takes the most time over `records` (best of 5 passes per
    /// record and rule; diagnostics for `benches/profile.rs`).
    #[doc(hidden)]
    pub fn debug_rule_costs(&self, records: &[&[u8]], memo: MemoSize) -> String {
        let mut s = self.scratch_with_memo(memo);
        let mut total = vec![0u64; self.infos.len()];
        let mut count = vec![0usize; self.infos.len()];
        for r in records {
            if self.extract(&JsonBytes(r), &mut s).is_err() {
                continue;
            }
            s.use_atoms = true;
            self.run_index(&mut s);
            for k in 0..s.candidates.len() {
                let rule = s.candidates[k] as usize;
                let mut best = u64::MAX;
                for _ in 0..5 {
                    s.cond_state.fill(0);
                    let t = std::time::Instant::now();
                    std::hint::black_box(self.rule_matches(rule, &mut s));
                    best = best.min(t.elapsed().as_nanos() as u64);
                }
                total[rule] += best;
                count[rule] += 1;
            }
        }
        let n = records.len().max(1) as f64;
        let all: u64 = total.iter().sum();
        let mut order: Vec<usize> = (0..self.infos.len()).filter(|&r| count[r] > 0).collect();
        order.sort_by_key(|&r| std::cmp::Reverse(total[r]));
        let mut out = format!(
            "rule evaluation: {:.0} ns per record in all\n",
            all as f64 / n
        );
        for &r in order.iter().take(12) {
            out.push_str(&format!(
                "{:6.0} ns/record ({:5.1}% of records, {:6.0} ns each): {} ({})\n",
                total[r] as f64 / n,
                count[r] as f64 * 100.0 / n,
                total[r] as f64 / count[r] as f64,
                self.infos[r].title,
                self.infos[r].source.rsplit('/').next().unwrap_or("")
            ));
        }
        out
    }

    /// Per slot with atoms: atom count, table memory, bytes scanned and atoms found per
    /// record over `records` (diagnostics for `benches/profile.rs`).
    #[doc(hidden)]
    pub fn debug_index_stats(&self, records: &[&[u8]], memo: MemoSize) -> String {
        let mut s = self.scratch_with_memo(memo);
        let mut bytes = vec![0usize; self.index.slots.len()];
        let mut found = vec![0usize; self.index.slots.len()];
        for r in records {
            if self.extract(&JsonBytes(r), &mut s).is_err() {
                continue;
            }
            for (k, si) in self.index.slots.iter().enumerate() {
                let mut cur = s.slot_head[si.slot as usize];
                while cur != NONE {
                    let v = s.values[cur as usize];
                    cur = v.next;
                    let hay = &s.arena[v.folded.0 as usize..v.folded.1 as usize];
                    bytes[k] += hay.len();
                    si.scanner.scan(hay, |_| found[k] += 1);
                }
            }
        }
        let mut out = String::new();
        let n = records.len().max(1) as f64;
        // Trigger work per record: atoms fired (distinct), rule visits from them, rules
        // triggered, secondary clause atoms read, candidates.
        {
            let (mut fires, mut visits, mut trig, mut sec, mut cands) = (0usize, 0, 0, 0, 0);
            let mut hot: std::collections::HashMap<u32, usize> = Default::default();
            for r in records {
                if self.match_record(&JsonBytes(r), &mut s).is_err() {
                    continue;
                }
                fires += s.fired.len();
                for &a in &s.fired {
                    visits += self.index.atom_rules.get(a as usize).len();
                    *hot.entry(a).or_default() += self.index.atom_rules.get(a as usize).len();
                }
                trig += s.triggered.len();
                for &r in &s.triggered {
                    for c in self.index.secondary.groups(r as usize) {
                        sec += c.len();
                    }
                }
                cands += s.candidates.len();
            }
            out.push_str(&format!(
                "per record: {:.1} atoms fired, {:.1} rule visits, {:.1} rules triggered, <= {:.1} secondary atoms, {:.1} candidates\n",
                fires as f64 / n,
                visits as f64 / n,
                trig as f64 / n,
                sec as f64 / n,
                cands as f64 / n
            ));
            let mut hot: Vec<(u32, usize)> = hot.into_iter().collect();
            hot.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
            for (a, v) in hot.iter().take(8) {
                let atom = &self.shared.atoms[*a as usize];
                out.push_str(&format!(
                    "  atom {:?} {:?} on slot {}: {} rules, {:.1} visits/record\n",
                    atom.kind,
                    String::from_utf8_lossy(&atom.lit),
                    atom.slot,
                    self.index.atom_rules.get(*a as usize).len(),
                    *v as f64 / n
                ));
            }
        }
        let mut total = 0;
        for (k, si) in self.index.slots.iter().enumerate() {
            let atoms = self
                .shared
                .atoms
                .iter()
                .filter(|a| a.slot == si.slot)
                .count();
            total += si.scanner.memory();
            let field = if self.shared.all_slot == Some(si.slot) {
                "(keywords)".to_string()
            } else {
                self.shared
                    .slot_by_paths
                    .iter()
                    .find(|(_, s)| **s == si.slot)
                    .and_then(|(paths, _)| paths.first())
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_default()
            };
            out.push_str(&format!(
                "slot {} {} atoms {} memory {} KB bytes/rec {:.0} found/rec {:.1}{}\n",
                si.slot,
                field,
                atoms,
                si.scanner.memory() / 1024,
                bytes[k] as f64 / n,
                found[k] as f64 / n,
                si.scanner
                    .dfa_shape()
                    .map(|(r, l, c)| format!(" (DFA: {r} rows, {l} leaves, {c} classes)"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!("all slots: {} KB\n", total / 1024));
        {
            let mut first = vec![false; self.shared.atoms.len()];
            let mut second = vec![false; self.shared.atoms.len()];
            for (a, f) in first.iter_mut().enumerate() {
                *f = !self.index.atom_rules.get(a).is_empty();
            }
            for r in 0..self.index.secondary.count() {
                for c in self.index.secondary.groups(r) {
                    for a in c.iter() {
                        second[*a as usize] = true;
                    }
                }
            }
            let n = self.shared.atoms.len();
            let f = first.iter().filter(|x| **x).count();
            let sec = (0..n).filter(|i| second[*i] && !first[*i]).count();
            out.push_str(&format!(
                "atoms {n}: in first clauses {f}, only in secondary clauses {sec}, evaluation only {}\n",
                n - f - sec
            ));
        }
        // Literal lengths per kind on the busiest slots.
        for si in &self.index.slots {
            let mut hist: std::collections::BTreeMap<(String, usize), usize> = Default::default();
            let mut n = 0;
            for a in self.shared.atoms.iter().filter(|a| a.slot == si.slot) {
                *hist
                    .entry((format!("{:?}", a.kind), a.lit.len().min(12)))
                    .or_default() += 1;
                n += 1;
            }
            if n > 300 {
                out.push_str(&format!(
                    "slot {} literal lengths (12 = 12+): {hist:?}\n",
                    si.slot
                ));
            }
        }
        out
    }
}
