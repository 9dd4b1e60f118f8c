//! Finding a slot's atoms in one folded value, exactly, with small tables:
//!
//! - **exact** (and integer) atoms: one hash lookup of the whole value;
//! - **prefix** atoms: a byte trie walked from the value's start;
//! - **suffix** atoms: a trie of reversed literals walked from the value's end;
//! - **contains** atoms: every literal of four bytes or more is filed under one *anchor*, the
//!   four-byte window of it that is rarest among the slot's literals. One pass over the value
//!   loads each four-byte window, tests a bit in a hashed filter and, on a hit, compares the
//!   literals filed under that window in place. Literals of two or three bytes are filed
//!   under their first two bytes (a direct 64 Ki-bit filter); one-byte literals use memchr.
//!
//! This replaces one Aho-Corasick automaton per slot: the CommandLine slot of SigmaHQ's
//! process-creation rules has 9,000+ literals, whose DFA would take 57 MB and whose
//! NFA walked ~70 instructions per byte; here a byte costs a load, a multiply and a bit test
//! or two, and the tables take a few bytes per literal byte.

use std::collections::HashMap;

use crate::compile::KeyMap;
use crate::index::AtomKind;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// A byte trie in one open-addressing table keyed by (node, byte).
#[derive(Debug, Default)]
struct Trie {
    /// (key + 1, child); key = node << 8 | byte; 0 marks an empty place.
    table: Box<[(u64, u32)]>,
    /// Per node: range into `atoms` of the atoms whose literal ends at this node.
    ends: Vec<(u32, u32)>,
    atoms: Vec<u32>,
}

impl Trie {
    fn build(lits: &[(&[u8], u32)], reversed: bool) -> Trie {
        if lits.is_empty() {
            return Trie::default();
        }
        let mut edges: HashMap<u64, u32> = HashMap::new();
        let mut node_atoms: Vec<Vec<u32>> = vec![Vec::new()];
        for (lit, atom) in lits {
            let mut node = 0u32;
            let mut step = |b: u8, node: &mut u32| {
                let key = (*node as u64) << 8 | b as u64;
                let next = node_atoms.len() as u32;
                let child = *edges.entry(key).or_insert(next);
                if child == next {
                    node_atoms.push(Vec::new());
                }
                *node = child;
            };
            if reversed {
                for &b in lit.iter().rev() {
                    step(b, &mut node);
                }
            } else {
                for &b in lit.iter() {
                    step(b, &mut node);
                }
            }
            node_atoms[node as usize].push(*atom);
        }
        let size = (edges.len() * 2).next_power_of_two().max(2);
        let mut table = vec![(0u64, 0u32); size].into_boxed_slice();
        for (key, child) in edges {
            let mut at = slot_of(key, size);
            while table[at].0 != 0 {
                at = (at + 1) & (size - 1);
            }
            table[at] = (key + 1, child);
        }
        let mut ends = Vec::with_capacity(node_atoms.len());
        let mut atoms = Vec::new();
        for a in node_atoms {
            let start = atoms.len() as u32;
            atoms.extend(a);
            ends.push((start, atoms.len() as u32));
        }
        Trie { table, ends, atoms }
    }

    #[inline]
    fn child(&self, node: u32, b: u8) -> Option<u32> {
        let key = (node as u64) << 8 | b as u64;
        let mask = self.table.len() - 1;
        let mut at = slot_of(key, self.table.len());
        loop {
            let (k, c) = self.table[at];
            if k == key + 1 {
                return Some(c);
            }
            if k == 0 {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    /// Follows `bytes` from the root, reporting the atoms of every node passed.
    #[inline]
    fn walk(&self, bytes: impl Iterator<Item = u8>, fire: &mut impl FnMut(u32)) {
        if self.table.is_empty() {
            return;
        }
        let mut node = 0u32;
        for b in bytes {
            match self.child(node, b) {
                Some(c) => node = c,
                None => return,
            }
            let (s, e) = self.ends[node as usize];
            for &a in &self.atoms[s as usize..e as usize] {
                fire(a);
            }
        }
    }

    fn memory(&self) -> usize {
        self.table.len() * 16 + self.ends.len() * 8 + self.atoms.len() * 4
    }
}

#[inline]
fn slot_of(key: u64, size: usize) -> usize {
    (key.wrapping_mul(K) >> (64 - size.trailing_zeros())) as usize & (size - 1)
}

/// One filed literal: (atom, offset of the anchor in the literal, literal start and length
/// in [`SlotScanner`]'s byte buffer).
type Entry = (u32, u32, u32, u32);

/// Literals filed under anchor windows (a gram of 2 or 4 bytes, as an integer).
#[derive(Debug, Default)]
struct Filed {
    /// Filter bits over the hashed (4-byte) or direct (2-byte) gram.
    filter: Box<[u64]>,
    /// (gram + 1, start, end) into `entries`; gram 0 marks an empty place.
    table: Box<[(u64, u32, u32)]>,
    /// (atom, offset of the anchor in the literal, literal start, literal length in `bytes`).
    entries: Vec<Entry>,
}

impl Filed {
    fn build(filed: Vec<(u32, Vec<Entry>)>, filter_bits: usize, hashed: bool) -> Filed {
        if filed.is_empty() {
            return Filed::default();
        }
        let mut filter = vec![0u64; filter_bits / 64].into_boxed_slice();
        let size = (filed.len() * 2).next_power_of_two().max(2);
        let mut table = vec![(0u64, 0u32, 0u32); size].into_boxed_slice();
        let mut entries = Vec::new();
        for (gram, list) in filed {
            let bit = filter_bit(gram, filter_bits, hashed);
            filter[bit / 64] |= 1 << (bit % 64);
            let start = entries.len() as u32;
            entries.extend(list);
            let mut at = slot_of(gram as u64, size);
            while table[at].0 != 0 {
                at = (at + 1) & (size - 1);
            }
            table[at] = (gram as u64 + 1, start, entries.len() as u32);
        }
        Filed {
            filter,
            table,
            entries,
        }
    }

    #[inline]
    fn lookup(&self, gram: u32) -> &[Entry] {
        let mask = self.table.len() - 1;
        let mut at = slot_of(gram as u64, self.table.len());
        loop {
            let (g, s, e) = self.table[at];
            if g == gram as u64 + 1 {
                return &self.entries[s as usize..e as usize];
            }
            if g == 0 {
                return &[];
            }
            at = (at + 1) & mask;
        }
    }

    fn memory(&self) -> usize {
        self.filter.len() * 8 + self.table.len() * 16 + self.entries.len() * 16
    }
}

#[inline]
fn filter_bit(gram: u32, bits: usize, hashed: bool) -> usize {
    if hashed {
        ((gram as u64).wrapping_mul(K) >> (64 - bits.trailing_zeros())) as usize & (bits - 1)
    } else {
        gram as usize & (bits - 1)
    }
}

/// A DFA over short *anchors* (at most four bytes each: a whole short literal, or the rarest
/// four-byte window of a longer one), built the Aho-Corasick way (trie, failure links,
/// every transition filled in). Anchors are short, so the automaton stays small: states are
/// `u16` and the alphabet is compressed to the bytes the anchors use; one table lookup per
/// byte of the value. A hit is then confirmed by comparing the whole literal in place.
#[derive(Debug)]
struct AnchorDfa {
    classes: [u8; 256],
    nclasses: usize,
    trans: Box<[u16]>,
    /// States numbered from here on have outputs.
    first_out: u16,
    /// Per output state (minus `first_out`): range into `outs`.
    out_ranges: Box<[(u32, u32)]>,
    /// (anchor length, entry) pairs: the literal's anchor ends at the current byte.
    outs: Box<[(u32, Entry)]>,
}

/// Most states an [`AnchorDfa`] may have (its state ids are `u16`).
const MAX_DFA_STATES: usize = u16::MAX as usize;

impl AnchorDfa {
    /// `anchored`: (anchor bytes, entry) with 1 <= anchor length <= 4.
    fn build(anchored: &[(Vec<u8>, Entry)]) -> Option<AnchorDfa> {
        // Trie.
        let mut children: Vec<HashMap<u8, u32>> = vec![HashMap::new()];
        let mut depth = vec![0u32];
        let mut own: Vec<Vec<(u32, Entry)>> = vec![Vec::new()];
        for (anchor, entry) in anchored {
            let mut node = 0usize;
            for &b in anchor {
                node = match children[node].get(&b) {
                    Some(&c) => c as usize,
                    None => {
                        let c = children.len();
                        children[node].insert(b, c as u32);
                        children.push(HashMap::new());
                        depth.push(depth[node] + 1);
                        own.push(Vec::new());
                        c
                    }
                };
            }
            own[node].push((anchor.len() as u32, *entry));
        }
        let states = children.len();
        if states > MAX_DFA_STATES {
            return None;
        }
        // Alphabet: one class per byte the anchors use, class 0 for all others.
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        for (anchor, _) in anchored {
            for &b in anchor {
                if classes[b as usize] == 0 {
                    if nclasses == 256 {
                        return None;
                    }
                    classes[b as usize] = nclasses as u8;
                    nclasses += 1;
                }
            }
        }
        // Breadth-first: failure links and full transitions.
        // State ids fit u16 (checked above): build the table in its final width.
        let mut trans = vec![0u16; states * nclasses];
        let mut fail = vec![0u32; states];
        let mut order = Vec::with_capacity(states);
        let mut queue = std::collections::VecDeque::new();
        for (&b, &c) in &children[0] {
            trans[classes[b as usize] as usize] = c as u16;
            queue.push_back(c);
        }
        while let Some(s) = queue.pop_front() {
            order.push(s);
            let s = s as usize;
            for c in 0..nclasses {
                let via_fail = trans[fail[s] as usize * nclasses + c];
                trans[s * nclasses + c] = via_fail;
            }
            let kids: Vec<(u8, u32)> = children[s].iter().map(|(b, c)| (*b, *c)).collect();
            for (b, child) in kids {
                let c = classes[b as usize] as usize;
                fail[child as usize] = trans[fail[s] as usize * nclasses + c] as u32;
                trans[s * nclasses + c] = child as u16;
                queue.push_back(child);
            }
        }
        // Outputs: own anchors plus those of the failure chain (shorter anchors ending here).
        let mut outs_of: Vec<Vec<(u32, Entry)>> = vec![Vec::new(); states];
        for &s in &order {
            let s = s as usize;
            let mut o = own[s].clone();
            o.extend(outs_of[fail[s] as usize].iter().copied());
            outs_of[s] = o;
        }
        // Renumber: states without outputs first (the start state stays 0).
        let mut new_id = vec![0u32; states];
        let mut next = 0u32;
        for s in 0..states {
            if outs_of[s].is_empty() {
                new_id[s] = next;
                next += 1;
            }
        }
        let first_out = next;
        let mut out_ranges = Vec::new();
        let mut outs = Vec::new();
        for s in 0..states {
            if !outs_of[s].is_empty() {
                new_id[s] = next;
                next += 1;
                let start = outs.len() as u32;
                outs.extend(outs_of[s].iter().copied());
                out_ranges.push((start, outs.len() as u32));
            }
        }
        let mut table = vec![0u16; states * nclasses];
        for s in 0..states {
            for c in 0..nclasses {
                table[new_id[s] as usize * nclasses + c] =
                    new_id[trans[s * nclasses + c] as usize] as u16;
            }
        }
        Some(AnchorDfa {
            classes,
            nclasses,
            trans: table.into_boxed_slice(),
            first_out: first_out as u16,
            out_ranges: out_ranges.into_boxed_slice(),
            outs: outs.into_boxed_slice(),
        })
    }

    fn memory(&self) -> usize {
        256 + self.trans.len() * 2 + self.out_ranges.len() * 8 + self.outs.len() * 20
    }
}

/// All of one slot's atoms, ready to be found in a value.
#[derive(Debug, Default)]
pub(crate) struct SlotScanner {
    exact: KeyMap<Box<[u32]>>,
    prefix: Trie,
    suffix: Trie,
    /// The `contains` literals' anchor automaton, when it fits (`u16` states); otherwise the
    /// filters below are used.
    dfa: Option<AnchorDfa>,
    /// Literals of seven bytes or more, each filed under four consecutive windows, so that
    /// one of them starts at a multiple of four in any occurrence: checked every 4th byte.
    strided: Filed,
    /// Literals of four to six bytes under their rarest window: checked at every byte.
    dense: Filed,
    /// Literals of three bytes under themselves (hashed filter).
    mid: Filed,
    /// Literals of two bytes under themselves (direct filter).
    short: Filed,
    singles: Vec<(u8, u32)>,
    /// Literal bytes of the `contains` atoms, addressed by the `Filed` entries.
    bytes: Vec<u8>,
}

/// How often each 4-byte window occurs among a set of literals (anchor choice).
pub(crate) type GramCounts = HashMap<u32, u32>;

fn gram4(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Counts the 4-byte windows of every `contains` literal (over all slots: a window common in
/// rules is common in the logs they are written for).
pub(crate) fn count_grams<'a>(lits: impl Iterator<Item = &'a [u8]>) -> GramCounts {
    let mut counts = GramCounts::new();
    for l in lits {
        for w in l.windows(4) {
            *counts.entry(gram4(w)).or_default() += 1;
        }
    }
    counts
}

/// Bytes frequent in command lines and paths: windows made of them make poor anchors.
fn common_byte(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\\'
            | b'/'
            | b'.'
            | b':'
            | b'-'
            | b'"'
            | b'e'
            | b'a'
            | b'i'
            | b'o'
            | b's'
            | b't'
            | b'n'
            | b'r'
    )
}

impl SlotScanner {
    /// Files every atom `(id, kind, literal)` of one slot.
    pub fn build(atoms: &[(u32, AtomKind, &[u8])], counts: &GramCounts) -> SlotScanner {
        Self::build_with(atoms, counts, true)
    }

    /// `use_dfa: false` forces the filter path (the fallback for anchor sets whose automaton
    /// would need more than `u16` states), for tests.
    fn build_with(
        atoms: &[(u32, AtomKind, &[u8])],
        counts: &GramCounts,
        use_dfa: bool,
    ) -> SlotScanner {
        let mut exact: HashMap<&[u8], Vec<u32>> = HashMap::new();
        let mut prefixes = Vec::new();
        let mut suffixes = Vec::new();
        let mut strided: HashMap<u32, Vec<Entry>> = HashMap::new();
        let mut dense: HashMap<u32, Vec<Entry>> = HashMap::new();
        let mut mid: HashMap<u32, Vec<Entry>> = HashMap::new();
        let mut short: HashMap<u32, Vec<Entry>> = HashMap::new();
        let mut singles = Vec::new();
        let mut bytes = Vec::new();
        let mut anchored: Vec<(Vec<u8>, Entry)> = Vec::new();
        // How likely a window is to occur in text: literals of rules are written for these
        // logs, so windows common among them are common in the logs too.
        let cost = |w: &[u8]| {
            let common = w.iter().filter(|b| common_byte(**b)).count() as u64;
            counts.get(&gram4(w)).copied().unwrap_or(0) as u64 * 4 + common
        };
        for &(id, kind, lit) in atoms {
            match kind {
                AtomKind::Exact | AtomKind::Int => exact.entry(lit).or_default().push(id),
                AtomKind::Prefix => prefixes.push((lit, id)),
                AtomKind::Suffix => suffixes.push((lit, id)),
                AtomKind::Contains => {
                    let start = bytes.len() as u32;
                    bytes.extend_from_slice(lit);
                    let len = lit.len() as u32;
                    if !lit.is_empty() {
                        let off = if lit.len() <= 4 {
                            0
                        } else {
                            (0..=lit.len() - 4)
                                .min_by_key(|&o| cost(&lit[o..o + 4]))
                                .unwrap_or(0)
                        };
                        let end = (off + 4).min(lit.len());
                        anchored.push((lit[off..end].to_vec(), (id, off as u32, start, len)));
                    }
                    match lit.len() {
                        0 => {}
                        1 => singles.push((lit[0], id)),
                        2 => short
                            .entry(u16::from_le_bytes([lit[0], lit[1]]) as u32)
                            .or_default()
                            .push((id, 0, start, len)),
                        3 => mid
                            .entry(u32::from_le_bytes([lit[0], lit[1], lit[2], 0]))
                            .or_default()
                            .push((id, 0, start, len)),
                        4..=6 => {
                            let off = (0..=lit.len() - 4)
                                .min_by_key(|&o| cost(&lit[o..o + 4]))
                                .unwrap_or(0);
                            dense
                                .entry(gram4(&lit[off..off + 4]))
                                .or_default()
                                .push((id, off as u32, start, len));
                        }
                        _ => {
                            // Four consecutive windows starting at `base`: the cheapest run.
                            let base = (0..=lit.len() - 7)
                                .min_by_key(|&b| {
                                    (b..b + 4).map(|o| cost(&lit[o..o + 4])).sum::<u64>()
                                })
                                .unwrap_or(0);
                            for off in base..base + 4 {
                                strided
                                    .entry(gram4(&lit[off..off + 4]))
                                    .or_default()
                                    .push((id, off as u32, start, len));
                            }
                        }
                    }
                }
            }
        }
        let dfa = if use_dfa {
            AnchorDfa::build(&anchored)
        } else {
            None
        };
        // The filters are only needed without the automaton.
        let filters = |m: HashMap<u32, Vec<Entry>>, bits: usize, hashed: bool| {
            if dfa.is_some() {
                return Filed::default();
            }
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_unstable_by_key(|(g, _)| *g);
            Filed::build(v, bits, hashed)
        };
        let strided_bits = (strided.len() * 32).next_power_of_two().max(512);
        let dense_bits = (dense.len() * 32).next_power_of_two().max(512);
        let mid_bits = (mid.len() * 32).next_power_of_two().max(512);
        let short_bits = if short.is_empty() { 0 } else { 1 << 16 };
        SlotScanner {
            exact: exact
                .into_iter()
                .map(|(k, v)| (Box::from(k), v.into_boxed_slice()))
                .collect(),
            prefix: Trie::build(&prefixes, false),
            suffix: Trie::build(&suffixes, true),
            strided: filters(strided, strided_bits, true),
            dense: filters(dense, dense_bits, true),
            mid: filters(mid, mid_bits, true),
            short: filters(short, short_bits, false),
            dfa,
            singles,
            bytes,
        }
    }

    /// Reports every atom that holds for `hay` (possibly more than once).
    #[inline]
    pub fn scan(&self, hay: &[u8], mut fire: impl FnMut(u32)) {
        if !self.exact.is_empty() {
            if let Some(atoms) = self.exact.get(hay) {
                for &a in atoms.iter() {
                    fire(a);
                }
            }
        }
        self.prefix.walk(hay.iter().copied(), &mut fire);
        self.suffix.walk(hay.iter().rev().copied(), &mut fire);
        if let Some(dfa) = &self.dfa {
            let nc = dfa.nclasses;
            let mut state = 0usize;
            for (i, &b) in hay.iter().enumerate() {
                state = dfa.trans[state * nc + dfa.classes[b as usize] as usize] as usize;
                if state >= dfa.first_out as usize {
                    let (s, e) = dfa.out_ranges[state - dfa.first_out as usize];
                    for &(alen, (atom, off, start, len)) in &dfa.outs[s as usize..e as usize] {
                        // The anchor ends at byte i; the literal starts `off` bytes before it.
                        let (alen, off, len) = (alen as usize, off as usize, len as usize);
                        let Some(lstart) = (i + 1).checked_sub(alen + off) else {
                            continue;
                        };
                        if alen == len
                            || lstart + len <= hay.len()
                                && hay[lstart..lstart + len]
                                    == self.bytes[start as usize..start as usize + len]
                        {
                            fire(atom);
                        }
                    }
                }
            }
            return;
        }
        let n = hay.len();
        if !self.short.table.is_empty() && n >= 2 {
            let f = &self.short.filter;
            for (i, w) in hay.windows(2).enumerate() {
                let g = u16::from_le_bytes([w[0], w[1]]) as u32;
                if f[g as usize >> 6] & (1 << (g & 63)) != 0 {
                    self.verify(&self.short, g, i, hay, &mut fire);
                }
            }
        }
        if !self.mid.table.is_empty() && n >= 3 {
            let f = &self.mid.filter;
            let shift = 64 - (f.len() * 64).trailing_zeros();
            for (i, w) in hay.windows(3).enumerate() {
                let g = u32::from_le_bytes([w[0], w[1], w[2], 0]);
                let h = ((g as u64).wrapping_mul(K) >> shift) as usize;
                if f[h >> 6] & (1 << (h & 63)) != 0 {
                    self.verify(&self.mid, g, i, hay, &mut fire);
                }
            }
        }
        if !self.dense.table.is_empty() && n >= 4 {
            let f = &self.dense.filter;
            let shift = 64 - (f.len() * 64).trailing_zeros();
            for (i, w) in hay.windows(4).enumerate() {
                let g = u32::from_le_bytes(<[u8; 4]>::try_from(w).unwrap_or_default());
                let h = ((g as u64).wrapping_mul(K) >> shift) as usize;
                if f[h >> 6] & (1 << (h & 63)) != 0 {
                    self.verify(&self.dense, g, i, hay, &mut fire);
                }
            }
        }
        if !self.strided.table.is_empty() && n >= 7 {
            let f = &self.strided.filter;
            let shift = 64 - (f.len() * 64).trailing_zeros();
            for (k, w) in hay.chunks_exact(4).enumerate() {
                let g = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                let h = ((g as u64).wrapping_mul(K) >> shift) as usize;
                if f[h >> 6] & (1 << (h & 63)) != 0 {
                    self.verify(&self.strided, g, k * 4, hay, &mut fire);
                }
            }
        }
        for &(b, a) in &self.singles {
            if memchr::memchr(b, hay).is_some() {
                fire(a);
            }
        }
    }

    #[inline]
    fn verify(&self, filed: &Filed, gram: u32, at: usize, hay: &[u8], fire: &mut impl FnMut(u32)) {
        for &(atom, off, start, len) in filed.lookup(gram) {
            let (off, len) = (off as usize, len as usize);
            if at < off || at - off + len > hay.len() {
                continue;
            }
            let lit = &self.bytes[start as usize..start as usize + len];
            if &hay[at - off..at - off + len] == lit {
                fire(atom);
            }
        }
    }

    /// Heap bytes held (diagnostics).
    pub fn memory(&self) -> usize {
        self.exact.keys().map(|k| k.len() + 40).sum::<usize>()
            + self.prefix.memory()
            + self.suffix.memory()
            + self.strided.memory()
            + self.dense.memory()
            + self.mid.memory()
            + self.short.memory()
            + self.dfa.as_ref().map_or(0, AnchorDfa::memory)
            + self.bytes.len()
            + self.singles.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every atom found by the scanner, against the plain definition of each kind.
    #[test]
    fn finds_exactly_the_atoms_that_hold() {
        let lits: Vec<(u32, AtomKind, &[u8])> = vec![
            (0, AtomKind::Contains, b"powershell"),
            (1, AtomKind::Contains, b"shell"),
            (2, AtomKind::Contains, b"/c"),
            (3, AtomKind::Contains, b"-nop"),
            (4, AtomKind::Contains, b"`"),
            (5, AtomKind::Suffix, b"\\cmd.exe"),
            (6, AtomKind::Suffix, b".exe"),
            (7, AtomKind::Prefix, b"c:\\windows\\"),
            (8, AtomKind::Prefix, b"c:\\"),
            (9, AtomKind::Exact, b"system"),
            (10, AtomKind::Int, b"4688"),
            (11, AtomKind::Contains, b"abc"),
            (12, AtomKind::Contains, b"aaaa"),
        ];
        let counts = count_grams(
            lits.iter()
                .filter(|l| l.1 == AtomKind::Contains)
                .map(|l| l.2),
        );
        for use_dfa in [true, false] {
            let s = SlotScanner::build_with(&lits, &counts, use_dfa);
            let hays: [&[u8]; 12] = [
                b"c:\\windows\\system32\\cmd.exe",
                b"powershell -nop -c x",
                b"cmd /c echo `a`",
                b"system",
                b"4688",
                b"46880",
                b"",
                b"ab",
                b"xxabcxx aaaaa",
                b"c:\\",
                b"shel",
                b"-no",
            ];
            for hay in hays {
                let mut got = Vec::new();
                s.scan(hay, |a| got.push(a));
                got.sort_unstable();
                got.dedup();
                let want: Vec<u32> = lits
                    .iter()
                    .filter(|(_, kind, lit)| match kind {
                        AtomKind::Contains => hay.windows(lit.len()).any(|w| w == *lit),
                        AtomKind::Prefix => hay.starts_with(lit),
                        AtomKind::Suffix => hay.ends_with(lit),
                        AtomKind::Exact | AtomKind::Int => hay == *lit,
                    })
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(got, want, "{}", String::from_utf8_lossy(hay));
            }
        }
    }

    /// Random literal sets over a small alphabet (many overlaps, repeats, literals at the
    /// very start and end) against the plain definition.
    #[test]
    fn random_literals_and_values() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let alphabet = b"ab\\c. ";
        for round in 0..300 {
            let mut owned: Vec<(u32, AtomKind, Vec<u8>)> = Vec::new();
            for id in 0..(1 + next(40)) as u32 {
                let len = 1 + next(12) as usize;
                let lit: Vec<u8> = (0..len)
                    .map(|_| alphabet[next(alphabet.len() as u64) as usize])
                    .collect();
                let kind = match next(5) {
                    0 => AtomKind::Prefix,
                    1 => AtomKind::Suffix,
                    2 => AtomKind::Exact,
                    _ => AtomKind::Contains,
                };
                owned.push((id, kind, lit));
            }
            let lits: Vec<(u32, AtomKind, &[u8])> =
                owned.iter().map(|(i, k, l)| (*i, *k, &l[..])).collect();
            let counts = count_grams(lits.iter().map(|l| l.2));
            let s = SlotScanner::build_with(&lits, &counts, round % 2 == 0);
            assert_eq!(s.dfa.is_some(), round % 2 == 0);
            for _ in 0..20 {
                // Random bytes with some of the literals planted at random places.
                let mut hay: Vec<u8> = Vec::new();
                for _ in 0..next(6) {
                    for _ in 0..next(5) {
                        hay.push(alphabet[next(alphabet.len() as u64) as usize]);
                    }
                    let (_, _, l) = &owned[next(owned.len() as u64) as usize];
                    hay.extend_from_slice(l);
                }
                let mut got = Vec::new();
                s.scan(&hay, |a| got.push(a));
                got.sort_unstable();
                got.dedup();
                let want: Vec<u32> = lits
                    .iter()
                    .filter(|(_, kind, lit)| match kind {
                        AtomKind::Contains => hay.windows(lit.len()).any(|w| w == *lit),
                        AtomKind::Prefix => hay.starts_with(lit),
                        AtomKind::Suffix => hay.ends_with(lit),
                        AtomKind::Exact | AtomKind::Int => hay == *lit,
                    })
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "round {round}: {:?}",
                    String::from_utf8_lossy(&hay)
                );
            }
        }
    }
}
