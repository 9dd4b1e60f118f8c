//! The cross-rule index: every indexable string test of every rule becomes an *atom* (a
//! literal at a position on one slot's folded text). Per slot, one Aho-Corasick automaton
//! over all its atoms' literals runs once over each value of a record and marks the atoms
//! that hold. Each rule has a *trigger set*: atoms of which at least one must hold for the
//! rule to match (derived from its condition). Only rules whose trigger fired, plus the few
//! rules without a trigger, are evaluated, and their string tests read the atom bits
//! instead of scanning again.

use std::collections::HashMap;

use crate::compile::{CompiledRule, Cond, Search, Shared, Test, ValueMatcher};
use crate::scan::{count_grams, SlotScanner};

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
    /// The whole value, as the canonical text of an integer a numeric test compares with
    /// (a trigger only: no text test reads these atoms).
    Int,
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

/// The atom finder of one slot.
#[derive(Debug)]
pub(crate) struct SlotIndex {
    pub slot: u32,
    pub scanner: SlotScanner,
    /// The slot's [`AtomKind::Int`] atoms.
    pub num_atoms: Vec<u32>,
}

/// Longest `contains` literal that may be a lazy atom ([`Index::lazy_bits`]).
const LAZY_LEN: usize = 3;

/// The compiled index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub slots: Vec<SlotIndex>,
    /// One bit per lazy atom (found on demand, not by the scans), laid out as the
    /// scratch's atom bits.
    pub lazy_bits: Box<[u64]>,
    /// Atom -> rules whose registered trigger clause (the one least expected to fire) it
    /// belongs to.
    pub atom_rules: Lists,
    /// Per rule: its other trigger clauses, checked against the atom bits once the record's
    /// automaton passes are done. Registering only the first clause keeps the work per
    /// firing atom small: common atoms (`.exe`, `\\windows\\`) sit in later clauses.
    /// Each rule's list holds its clauses as groups ([`Lists::groups`]).
    pub secondary: Lists,
    /// Rules without a trigger: evaluated for every record.
    pub always: Vec<u32>,
    /// Per slot: its place in `slots`, or `u32::MAX` when no automaton scans it
    /// ([`Index::scanned`]).
    pub slot_pos: Vec<u32>,
    /// Per test: whether it holds when its slot has no values ([`absent_result`]).
    pub absent: Vec<bool>,
    /// Per test: the atoms it is the disjunction of ([`any_of_atoms`]), or an empty list.
    pub test_atoms: Lists,
}

impl Index {
    /// Whether an automaton scans `slot` (its atoms' bits are meaningful).
    #[inline]
    pub fn scanned(&self, slot: u32) -> bool {
        self.slot_pos[slot as usize] != u32::MAX
    }
}

/// Lists of `u32` in one buffer (four bytes of offset per list instead of a `Vec` header and
/// an allocation each: the per-atom rule lists are read for every atom that fires).
#[derive(Debug, Default)]
pub(crate) struct Lists {
    start: Box<[u32]>,
    items: Box<[u32]>,
}

impl Lists {
    pub fn from_vecs(lists: Vec<Vec<u32>>) -> Lists {
        let mut start = Vec::with_capacity(lists.len() + 1);
        let mut items = Vec::new();
        start.push(0);
        for l in lists {
            items.extend(l);
            start.push(items.len() as u32);
        }
        Lists {
            start: start.into_boxed_slice(),
            items: items.into_boxed_slice(),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> &[u32] {
        &self.items[self.start[i] as usize..self.start[i + 1] as usize]
    }

    /// The groups of list `i` when it was written as `[n, x1..xn, m, y1..ym, ...]`.
    pub fn groups(&self, i: usize) -> impl Iterator<Item = &[u32]> {
        let mut rest = self.get(i);
        std::iter::from_fn(move || {
            let (&n, tail) = rest.split_first()?;
            let (group, after) = tail.split_at(n as usize);
            rest = after;
            Some(group)
        })
    }

    /// The number of lists.
    pub fn count(&self) -> usize {
        self.start.len().saturating_sub(1)
    }
}

/// A clause: atoms at least one of which must hold.
type Clause = Vec<u32>;

/// Necessary conditions in conjunctive form: every clause must hold for the rule (or
/// search, or test) to match. Empty: nothing is known (the rule must always be evaluated).
type Cnf = Vec<Clause>;

/// Most clauses kept per rule (each is one bit of the rule's per-record trigger mask).
pub(crate) const MAX_CLAUSES: usize = 4;

/// Expected firing rate of an atom: short literals fire often, anchored ones less so.
fn rate(shared: &Shared, a: u32) -> f64 {
    let atom = &shared.atoms[a as usize];
    let len = atom.lit.len().max(1) as f64;
    let anchor = match atom.kind {
        AtomKind::Contains => 1.0,
        AtomKind::Prefix | AtomKind::Suffix => 0.3,
        AtomKind::Exact | AtomKind::Int => 0.1,
    };
    anchor / (len * len)
}

/// Expected firing rate of a clause: the sum of its atoms' [`rate`]s.
fn score(shared: &Shared, clause: &[u32]) -> f64 {
    clause.iter().map(|&a| rate(shared, a)).sum()
}

/// Sorts clauses best first, drops duplicates and clauses implied by a smaller one, keeps
/// [`MAX_CLAUSES`].
fn tidy(shared: &Shared, mut cnf: Cnf) -> Cnf {
    for c in cnf.iter_mut() {
        c.sort_unstable();
        c.dedup();
    }
    cnf.sort_by(|a, b| score(shared, a).total_cmp(&score(shared, b)));
    let mut out: Cnf = Vec::new();
    for c in cnf {
        // A clause containing another kept clause adds nothing.
        if out
            .iter()
            .any(|k| k.iter().all(|a| c.binary_search(a).is_ok()))
        {
            continue;
        }
        out.push(c);
        if out.len() == MAX_CLAUSES {
            break;
        }
    }
    out
}

/// AND: every child's clauses.
fn and(shared: &Shared, parts: impl Iterator<Item = Cnf>) -> Cnf {
    tidy(shared, parts.flatten().collect())
}

/// OR: clause k is the union of every branch's k-th best clause (each branch implies its
/// clause, so the union holds whenever any branch does). A branch with no knowledge makes
/// the whole OR unknown.
fn or(shared: &Shared, parts: impl Iterator<Item = Cnf>) -> Cnf {
    let parts: Vec<Cnf> = parts.collect();
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Vec::new();
    }
    let widest = parts.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for k in 0..widest {
        let mut clause = Vec::new();
        for p in &parts {
            clause.extend_from_slice(&p[k.min(p.len() - 1)]);
        }
        out.push(clause);
    }
    tidy(shared, out)
}

struct Deriver<'a> {
    shared: &'a Shared,
    indexed_slots: &'a std::collections::HashSet<u32>,
}

impl Deriver<'_> {
    fn on_indexed_slot(&self, clause: &[u32]) -> bool {
        clause.iter().all(|a| {
            self.indexed_slots
                .contains(&self.shared.atoms[*a as usize].slot)
        })
    }

    /// Necessary clauses of one matcher (on slots that have an automaton).
    fn matcher(&self, m: &ValueMatcher) -> Cnf {
        let clauses: Cnf = match m {
            ValueMatcher::Text { hints: Some(h), .. } => vec![h.to_vec()],
            ValueMatcher::Regex { hints, .. } => hints.iter().map(|c| c.to_vec()).collect(),
            ValueMatcher::Int { hint: Some(a), .. } => vec![vec![*a]],
            _ => Vec::new(),
        };
        tidy(
            self.shared,
            clauses
                .into_iter()
                .filter(|c| !c.is_empty() && self.on_indexed_slot(c))
                .collect(),
        )
    }

    fn test(&self, t: u32) -> Cnf {
        match &self.shared.tests[t as usize] {
            Test::Exists { .. } => Vec::new(),
            Test::Values {
                matchers, all, neq, ..
            } => {
                if *neq {
                    Vec::new()
                } else if *all {
                    and(self.shared, matchers.iter().map(|m| self.matcher(m)))
                } else {
                    or(self.shared, matchers.iter().map(|m| self.matcher(m)))
                }
            }
        }
    }

    fn search(&self, s: &Search) -> Cnf {
        or(
            self.shared,
            s.alts
                .iter()
                .map(|alt| and(self.shared, alt.iter().map(|t| self.test(*t)))),
        )
    }

    fn cond(&self, searches: &[Search], c: &Cond) -> Cnf {
        match c {
            Cond::Id(i) => self.search(&searches[*i as usize]),
            Cond::Not(_) => Vec::new(),
            Cond::And(xs) => and(self.shared, xs.iter().map(|x| self.cond(searches, x))),
            Cond::Or(xs) => or(self.shared, xs.iter().map(|x| self.cond(searches, x))),
            Cond::AtLeast(_, ids) => or(
                self.shared,
                ids.iter().map(|i| self.search(&searches[*i as usize])),
            ),
            Cond::All(ids) => and(
                self.shared,
                ids.iter().map(|i| self.search(&searches[*i as usize])),
            ),
        }
    }

    fn rule(&self, rule: &CompiledRule) -> Cnf {
        // A variant holds only when its logsource condition (AND of tests, such as
        // `Channel: Security`) holds too: those tests' clauses are necessary as well.
        or(
            self.shared,
            // Logsource clauses only stand in when the detection gives none: they are
            // shared by every rule of a category, so within it they narrow nothing, and an
            // atom every record fires (`EventID: 4688` on process creations) would have to
            // visit every rule of the category.
            rule.variants.iter().map(|(logsource, det)| {
                let cnf = self.cond(&det.searches, &det.cond);
                match logsource {
                    Some(c) if cnf.is_empty() => and(
                        self.shared,
                        self.shared.conds[*c as usize].iter().map(|t| self.test(*t)),
                    ),
                    _ => cnf,
                }
            }),
        )
    }
}

/// Builds the per-slot atom finders and the trigger clauses.
pub(crate) fn build(shared: &Shared, rules: &[CompiledRule]) -> Index {
    let mut by_slot: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, a) in shared.atoms.iter().enumerate() {
        by_slot.entry(a.slot).or_default().push(i as u32);
    }
    let counts = count_grams(
        shared
            .atoms
            .iter()
            .filter(|a| a.kind == AtomKind::Contains)
            .map(|a| &a.lit[..]),
    );
    let indexed_slots: std::collections::HashSet<u32> = by_slot.keys().copied().collect();
    let deriver = Deriver {
        shared,
        indexed_slots: &indexed_slots,
    };
    let mut atom_rules = vec![Vec::new(); shared.atoms.len()];
    let mut always = Vec::new();
    let mut secondary = Vec::with_capacity(rules.len());
    let cnfs: Vec<Cnf> = rules.iter().map(|r| deriver.rule(r)).collect();
    // How many rules' clauses name each atom: literals many rules look for (`\\cmd.exe`,
    // `\\powershell.exe`) are the programs logs are full of, so a clause of them is a poor
    // one to register on even when its literals are long.
    let mut uses = vec![0u32; shared.atoms.len()];
    for cnf in &cnfs {
        let mut seen: Vec<u32> = cnf.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        for a in seen {
            uses[a as usize] += 1;
        }
    }
    // A rule registers on the clause with the lowest expected rate counting that: each
    // atom's [`rate`] times one plus the number of rules naming it. (On SigmaHQ's
    // process-creation rules and real events: 23.7 -> 14.0 rules triggered per record, the
    // same 4.4 candidates.)
    let popular = |c: &Clause| {
        c.iter()
            .map(|&a| rate(shared, a) * (1.0 + uses[a as usize] as f64))
            .sum::<f64>()
    };
    for (ri, mut cnf) in cnfs.into_iter().enumerate() {
        if let Some(best) =
            (0..cnf.len()).min_by(|&x, &y| popular(&cnf[x]).total_cmp(&popular(&cnf[y])))
        {
            cnf.swap(0, best);
        }
        match cnf.split_first() {
            None => {
                always.push(ri as u32);
                secondary.push(Vec::new());
            }
            Some((first, rest)) => {
                for &a in first {
                    atom_rules[a as usize].push(ri as u32);
                }
                secondary.push(rest.to_vec());
            }
        }
    }
    // Lazy atoms: `contains` literals of at most three bytes on which no rule registers.
    // They are only read when a triggered rule's other clauses or a candidate's tests name
    // them, and short literals hold often in long text (two- and three-byte windows of
    // command lines and scripts): found on demand instead of by every scan (on workload A,
    // 9.7 of the 34.9 atoms that held per record, 33 of 76 on its longest records).
    let lazy = |a: usize| {
        let atom = &shared.atoms[a];
        atom.kind == AtomKind::Contains && atom.lit.len() <= LAZY_LEN && atom_rules[a].is_empty()
    };
    let mut lazy_bits = vec![0u64; shared.atoms.len().div_ceil(64)];
    for a in (0..shared.atoms.len()).filter(|&a| lazy(a)) {
        lazy_bits[a / 64] |= 1 << (a % 64);
    }
    let mut slots: Vec<SlotIndex> = Vec::new();
    let mut slot_ids: Vec<u32> = by_slot.keys().copied().collect();
    slot_ids.sort_unstable();
    for slot in slot_ids {
        let atoms = &by_slot[&slot];
        let list: Vec<(u32, AtomKind, &[u8])> = atoms
            .iter()
            .filter(|a| !lazy(**a as usize))
            .map(|a| {
                let atom = &shared.atoms[*a as usize];
                (*a, atom.kind, &atom.lit[..])
            })
            .collect();
        slots.push(SlotIndex {
            slot,
            scanner: SlotScanner::build(&list, &counts),
            num_atoms: atoms
                .iter()
                .copied()
                .filter(|a| shared.atoms[*a as usize].kind == AtomKind::Int)
                .collect(),
        });
    }
    // The other clauses of each rule: those without lazy atoms first, then the short ones (a
    // rejection usually comes from the most selective clause, and checking one costs a bit
    // per atom, a search per lazy atom), and in each clause the scanned atoms first.
    let is_lazy = |a: &u32| lazy(*a as usize);
    let secondary: Vec<Vec<u32>> = secondary
        .into_iter()
        .map(|mut rest| {
            for c in rest.iter_mut() {
                c.sort_by_key(is_lazy);
            }
            rest.sort_by_key(|c| (c.iter().any(is_lazy), c.len()));
            let mut groups = Vec::new();
            for c in rest {
                groups.push(c.len() as u32);
                groups.extend_from_slice(&c);
            }
            groups
        })
        .collect();
    let mut slot_pos = vec![u32::MAX; shared.slot_count as usize];
    for (k, si) in slots.iter().enumerate() {
        slot_pos[si.slot as usize] = k as u32;
    }
    let test_atoms = Lists::from_vecs(
        shared
            .tests
            .iter()
            .map(|t| {
                let mut atoms = any_of_atoms(t, &slot_pos).unwrap_or_default();
                atoms.sort_by_key(is_lazy);
                atoms
            })
            .collect(),
    );
    let absent = shared.tests.iter().map(absent_result).collect();
    Index {
        slots,
        lazy_bits: lazy_bits.into_boxed_slice(),
        atom_rules: Lists::from_vecs(atom_rules),
        secondary: Lists::from_vecs(secondary),
        always,
        slot_pos,
        test_atoms,
        absent,
    }
}

/// Whether a value test holds for a record without values in its slot: only `null`
/// matches a missing field (every other matcher needs a value to hold for).
fn absent_result(t: &Test) -> bool {
    match t {
        Test::Values {
            matchers, all, neq, ..
        } => {
            let null = |m: &ValueMatcher| matches!(m, ValueMatcher::Null);
            let held = if *all {
                matchers.iter().all(null)
            } else {
                matchers.iter().any(null)
            };
            held != *neq
        }
        Test::Exists { expect, .. } => !*expect,
    }
}

/// The atoms of a test that holds exactly when one of them does: one whose every value
/// pattern is an indexed atom, on a scanned slot, any of them (not `|all`), not negated.
/// `None` for other tests.
fn any_of_atoms(t: &Test, slot_pos: &[u32]) -> Option<Vec<u32>> {
    let Test::Values {
        slot,
        matchers,
        all: false,
        neq: false,
    } = t
    else {
        return None;
    };
    if slot_pos[*slot as usize] == u32::MAX || matchers.is_empty() {
        return None;
    }
    let mut atoms = Vec::new();
    for m in matchers {
        match m {
            ValueMatcher::Text { atoms: Some(a), .. } if !a.is_empty() => {
                atoms.extend_from_slice(a)
            }
            _ => return None,
        }
    }
    Some(atoms)
}
