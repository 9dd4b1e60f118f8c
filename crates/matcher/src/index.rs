//! The cross-rule index: every indexable string test of every rule becomes an *atom* (a
//! literal at a position on one slot's folded text). Per slot, one Aho-Corasick automaton
//! over all its atoms' literals runs once over each value of a record and marks the atoms
//! that hold. Each rule has a *trigger set*: atoms of which at least one must hold for the
//! rule to match (derived from its condition). Only rules whose trigger fired, plus the few
//! rules without a trigger, are evaluated, and their string tests read the atom bits
//! instead of scanning again.

use std::collections::HashMap;

use aho_corasick::automaton::Automaton;
use aho_corasick::{dfa, nfa::contiguous, Anchored, MatchKind, StartKind};

use crate::compile::{CompiledRule, Cond, Search, Shared, Test, ValueMatcher};

/// Where a literal must occur in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomKind {
    /// Anywhere.
    Contains,
    /// At the start.
    Prefix,
    /// At the end.
    Suffix,
    /// The whole value.
    Exact,
}

/// A literal test on one slot's folded text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Atom {
    /// The slot.
    pub slot: u32,
    /// Where the literal must be.
    pub kind: AtomKind,
    /// The folded literal.
    pub lit: Box<[u8]>,
}

/// The automaton of one slot.
#[derive(Debug)]
pub(crate) struct SlotIndex {
    pub slot: u32,
    pub scanner: Scanner,
    /// Per automaton pattern: the atoms using that literal.
    pub pattern_atoms: Vec<Vec<(u32, AtomKind)>>,
}

/// One slot's automaton: a DFA when it stays small (fast: one table lookup per byte), else
/// the contiguous NFA (compact). Both are driven by [`Scanner::scan`], an overlapping search
/// written against the automaton's state machine, so no iterator state is set up per match.
#[derive(Debug)]
pub(crate) enum Scanner {
    Dfa(dfa::DFA),
    Nfa(contiguous::NFA),
}

impl Scanner {
    /// Calls `on(pattern, end, len)` for every occurrence of every literal in `hay`
    /// (overlapping, standard semantics), in order of end position.
    #[inline]
    pub fn scan(&self, hay: &[u8], on: impl FnMut(usize, usize, usize)) {
        match self {
            Scanner::Dfa(a) => scan_with(a, hay, on),
            Scanner::Nfa(a) => scan_with(a, hay, on),
        }
    }
}

#[inline(always)]
fn scan_with<A: Automaton>(a: &A, hay: &[u8], mut on: impl FnMut(usize, usize, usize)) {
    let Ok(mut sid) = a.start_state(Anchored::No) else {
        return;
    };
    for (i, &b) in hay.iter().enumerate() {
        sid = a.next_state(Anchored::No, sid, b);
        if a.is_special(sid) && a.is_match(sid) {
            for k in 0..a.match_len(sid) {
                let p = a.match_pattern(sid, k);
                on(p.as_usize(), i + 1, a.pattern_len(p));
            }
        }
    }
}

fn build_scanner(lits: &[&[u8]]) -> Option<Scanner> {
    let total: usize = lits.iter().map(|l| l.len()).sum();
    if total <= DFA_LITERAL_BYTES {
        let d = dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .byte_classes(true)
            .build(lits);
        if let Ok(d) = d {
            return Some(Scanner::Dfa(d));
        }
    }
    contiguous::NFA::builder()
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build(lits)
        .ok()
        .map(Scanner::Nfa)
}

/// Slots whose literals add up to more than this get the contiguous NFA instead of a DFA.
const DFA_LITERAL_BYTES: usize = 16 * 1024;

/// The compiled index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub slots: Vec<SlotIndex>,
    /// Atom -> rules it triggers.
    pub atom_rules: Vec<Vec<u32>>,
    /// Rules without a trigger set: evaluated for every record.
    pub always: Vec<u32>,
    /// Atom -> tests that hold as soon as it holds (tests OR-ing fully indexed patterns).
    pub atom_tests: Vec<Vec<u32>>,
    /// Per test: its result is the test bit set by `atom_tests` (before `neq`).
    pub test_indexed: Vec<bool>,
}

/// A set of atoms at least one of which must hold; `None` when no such set is known.
type Trigger = Option<Vec<u32>>;

fn score(shared: &Shared, set: &[u32]) -> f64 {
    // Short literals fire often: prefer few, long atoms.
    set.iter()
        .map(|a| {
            let len = shared.atoms[*a as usize].lit.len().max(1) as f64;
            1.0 / (len * len)
        })
        .sum()
}

fn best(shared: &Shared, options: impl Iterator<Item = Trigger>) -> Trigger {
    let mut chosen: Option<(f64, Vec<u32>)> = None;
    for set in options.flatten() {
        let s = score(shared, &set);
        if chosen.as_ref().is_none_or(|(cs, _)| s < *cs) {
            chosen = Some((s, set));
        }
    }
    chosen.map(|(_, set)| set)
}

fn union(options: impl Iterator<Item = Trigger>) -> Trigger {
    let mut out = Vec::new();
    for set in options {
        out.extend(set?);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn matcher_trigger(m: &ValueMatcher) -> Trigger {
    match m {
        ValueMatcher::Text { hints: Some(h), .. } | ValueMatcher::Regex { hints: Some(h), .. } => {
            Some(h.to_vec())
        }
        _ => None,
    }
}

fn test_trigger(shared: &Shared, t: u32) -> Trigger {
    match &shared.tests[t as usize] {
        Test::Exists { .. } => None,
        Test::Values {
            matchers, all, neq, ..
        } => {
            if *neq {
                None
            } else if *all {
                best(shared, matchers.iter().map(matcher_trigger))
            } else {
                union(matchers.iter().map(matcher_trigger))
            }
        }
    }
}

fn search_trigger(shared: &Shared, s: &Search) -> Trigger {
    union(
        s.alts
            .iter()
            .map(|alt| best(shared, alt.iter().map(|t| test_trigger(shared, *t)))),
    )
}

fn cond_trigger(shared: &Shared, searches: &[Search], c: &Cond) -> Trigger {
    match c {
        Cond::Id(i) => search_trigger(shared, &searches[*i as usize]),
        Cond::Not(_) => None,
        Cond::And(xs) => best(shared, xs.iter().map(|x| cond_trigger(shared, searches, x))),
        Cond::Or(xs) => union(xs.iter().map(|x| cond_trigger(shared, searches, x))),
        Cond::AtLeast(_, ids) => union(
            ids.iter()
                .map(|i| search_trigger(shared, &searches[*i as usize])),
        ),
        Cond::All(ids) => best(
            shared,
            ids.iter()
                .map(|i| search_trigger(shared, &searches[*i as usize])),
        ),
    }
}

/// Builds the automata and the trigger sets.
pub(crate) fn build(shared: &Shared, rules: &[CompiledRule]) -> Index {
    let mut by_slot: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, a) in shared.atoms.iter().enumerate() {
        by_slot.entry(a.slot).or_default().push(i as u32);
    }
    let mut slots: Vec<SlotIndex> = Vec::new();
    let mut slot_ids: Vec<u32> = by_slot.keys().copied().collect();
    slot_ids.sort_unstable();
    for slot in slot_ids {
        let atoms = &by_slot[&slot];
        let mut lits: Vec<&[u8]> = Vec::new();
        let mut lit_ids: HashMap<&[u8], usize> = HashMap::new();
        let mut pattern_atoms: Vec<Vec<(u32, AtomKind)>> = Vec::new();
        for a in atoms {
            let atom = &shared.atoms[*a as usize];
            let pid = *lit_ids.entry(&atom.lit).or_insert_with(|| {
                lits.push(&atom.lit);
                pattern_atoms.push(Vec::new());
                lits.len() - 1
            });
            pattern_atoms[pid].push((*a, atom.kind));
        }
        match build_scanner(&lits) {
            Some(scanner) => slots.push(SlotIndex {
                slot,
                scanner,
                pattern_atoms,
            }),
            // Without an automaton these atoms never fire; rules depending on them must be
            // evaluated directly, which `atoms_indexed` below accounts for.
            None => continue,
        }
    }
    let indexed_slots: std::collections::HashSet<u32> = slots.iter().map(|s| s.slot).collect();
    let mut atom_rules = vec![Vec::new(); shared.atoms.len()];
    let mut always = Vec::new();
    for (ri, rule) in rules.iter().enumerate() {
        let trig = union(
            rule.variants
                .iter()
                .map(|(_, det)| cond_trigger(shared, &det.searches, &det.cond)),
        )
        .filter(|set| {
            set.iter()
                .all(|a| indexed_slots.contains(&shared.atoms[*a as usize].slot))
        });
        match trig {
            Some(set) => {
                for a in set {
                    atom_rules[a as usize].push(ri as u32);
                }
            }
            None => always.push(ri as u32),
        }
    }
    let mut atom_tests = vec![Vec::new(); shared.atoms.len()];
    let mut test_indexed = vec![false; shared.tests.len()];
    for (ti, t) in shared.tests.iter().enumerate() {
        let Test::Values { matchers, all, .. } = t else {
            continue;
        };
        if *all || matchers.is_empty() {
            continue;
        }
        let atoms: Option<Vec<u32>> = matchers
            .iter()
            .map(|m| match m {
                ValueMatcher::Text { atoms: Some(a), .. } => Some(a.to_vec()),
                _ => None,
            })
            .collect::<Option<Vec<Vec<u32>>>>()
            .map(|v| v.concat());
        let Some(atoms) = atoms else { continue };
        if !atoms
            .iter()
            .all(|a| indexed_slots.contains(&shared.atoms[*a as usize].slot))
        {
            continue;
        }
        test_indexed[ti] = true;
        for a in atoms {
            if atom_tests[a as usize].last() != Some(&(ti as u32)) {
                atom_tests[a as usize].push(ti as u32);
            }
        }
    }
    Index {
        slots,
        atom_rules,
        always,
        atom_tests,
        test_indexed,
    }
}
