//! Finding a slot's atoms in one folded value, exactly, with small tables:
//!
//! - **exact** (and integer) atoms: one hash lookup of the whole value;
//! - **prefix** and **suffix** atoms: one hash lookup of the value's first (last) `k` bytes
//!   per edge length `k <= 8` the slot's literals use, longer literals confirmed in full;
//! - **contains** atoms: every literal is filed under one *anchor*, the four-byte window of
//!   it that is rarest among the slot's literals (the whole literal when shorter). One walk
//!   of a small DFA over the anchors ([`AnchorDfa`]) finds them in the value; each hit
//!   compares its literals in place. When the anchors would need more than 65,535 DFA
//!   states, filters take its place: each four-byte window of the value tests a bit in a
//!   hashed filter, each two-byte pair one in a direct 64 Ki-bit filter (for literals of two
//!   or three bytes), and one-byte literals use memchr.
//!
//! This replaces one Aho-Corasick automaton per slot: the CommandLine slot of SigmaHQ's
//! process-creation rules has 9,000+ literals, whose DFA would take 57 MB and whose
//! NFA walked ~70 instructions per byte; here the anchor DFA takes 1.6 MB and a byte costs
//! one table load.

use std::collections::HashMap;

use crate::compile::KeyMap;
use crate::index::AtomKind;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Prefix (or suffix) literals, found by their first (or last) up to eight bytes: a literal
/// of length `L` is filed under its edge word of `k = min(L, 8)` bytes; a value is looked up
/// once per distinct `k` the set uses, with its own edge word of `k` bytes, and the literals
/// longer than eight bytes under a hit are compared in full. The lookups are independent
/// loads (a trie walk would be a chain of them, one per byte).
#[derive(Debug, Default)]
struct Affix {
    /// Suffixes (the value's end) rather than prefixes.
    suffix: bool,
    /// The distinct edge lengths used, ascending.
    lens: Box<[u8]>,
    /// Open addressing: (edge word, edge length (0: empty), range into `entries`).
    table: Box<[(u64, u32, u32)]>,
    /// One bit per (edge word, length) filed, by another part of the same hash: about 16
    /// bits per key, at most 32 Ki bits, so that it stays in L1 where the table does not,
    /// and most lookups (which find nothing) end here.
    filter: Box<[u64]>,
    entries: Box<[AffixEntry]>,
    bytes: Box<[u8]>,
}

/// (atom, literal start in [`Affix`]'s bytes, literal length).
type AffixEntry = (u32, u32, u32);

/// The `k` (1..=8) bytes at the start (or end) of `v`, `k <= v.len()`, as a little-endian
/// word in byte order, zero above.
#[inline(always)]
fn edge_word(v: &[u8], k: usize, suffix: bool) -> u64 {
    let n = v.len();
    if n >= 8 {
        if suffix {
            let w = u64::from_le_bytes(v[n - 8..].try_into().expect("8 bytes"));
            w >> (8 * (8 - k))
        } else {
            let w = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
            if k == 8 {
                w
            } else {
                w & ((1u64 << (8 * k)) - 1)
            }
        }
    } else {
        crate::swar::padded8(if suffix { &v[n - k..] } else { &v[..k] })
    }
}

#[inline(always)]
fn affix_slot(word: u64, k: usize, size: usize) -> usize {
    ((word ^ (k as u64) << 59).wrapping_mul(K) >> (64 - size.trailing_zeros())) as usize
        & (size - 1)
}

/// The filter bit of (word, k): bits 8..24 of the table's hash (the table uses the top bits).
#[inline(always)]
fn affix_filter_bit(word: u64, k: usize, bits: usize) -> usize {
    ((word ^ (k as u64) << 59).wrapping_mul(K) >> 8) as usize & (bits - 1)
}

impl Affix {
    fn build(lits: &[(&[u8], u32)], suffix: bool) -> Affix {
        let mut filed: HashMap<(u64, u8), Vec<AffixEntry>> = HashMap::new();
        let mut bytes = Vec::new();
        for &(lit, atom) in lits {
            if lit.is_empty() {
                continue;
            }
            let k = lit.len().min(8);
            let start = bytes.len() as u32;
            bytes.extend_from_slice(lit);
            filed
                .entry((edge_word(lit, k, suffix), k as u8))
                .or_default()
                .push((atom, start, lit.len() as u32));
        }
        if filed.is_empty() {
            return Affix::default();
        }
        let mut lens: Vec<u8> = filed.keys().map(|k| k.1).collect();
        lens.sort_unstable();
        lens.dedup();
        let size = (filed.len() * 2).next_power_of_two();
        let mut table = vec![(0u64, 0u32, 0u32); size].into_boxed_slice();
        let fbits = (filed.len() * 16).next_power_of_two().clamp(64, 1 << 15);
        let mut filter = vec![0u64; fbits / 64].into_boxed_slice();
        let mut entries = Vec::new();
        let mut keys: Vec<_> = filed.into_iter().collect();
        keys.sort_unstable();
        for ((word, k), list) in keys {
            let start = entries.len() as u32;
            entries.extend(list);
            let bit = affix_filter_bit(word, k as usize, fbits);
            filter[bit / 64] |= 1 << (bit % 64);
            let mut at = affix_slot(word, k as usize, size);
            while table[at].1 & 0xff != 0 {
                at = (at + 1) & (size - 1);
            }
            // Edge length in the low byte, entries range start << 8; range end separately.
            table[at] = (word, start << 8 | k as u32, entries.len() as u32);
        }
        Affix {
            suffix,
            lens: lens.into_boxed_slice(),
            table,
            filter,
            entries: entries.into_boxed_slice(),
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// Reports the atoms whose literal `hay` starts (or ends) with.
    ///
    /// Most slots have no prefix or no suffix atoms: the test for none is inlined into the
    /// caller, so that they cost no call (it was 1.4k instructions per record on B).
    #[inline(always)]
    fn find(&self, hay: &[u8], fire: &mut impl FnMut(u32)) {
        if !self.lens.is_empty() {
            self.find_some(hay, fire);
        }
    }

    fn find_some(&self, hay: &[u8], fire: &mut impl FnMut(u32)) {
        let size = self.table.len();
        // The value's edge word of min(len, 8) bytes, once; shorter ones are cut from it.
        let top = hay.len().min(8);
        let full = edge_word(hay, top, self.suffix);
        for &k in self.lens.iter() {
            let k = k as usize;
            if k > top {
                return;
            }
            let word = if k == top {
                full
            } else if self.suffix {
                full >> (8 * (top - k))
            } else {
                full & ((1u64 << (8 * k)) - 1)
            };
            let bit = affix_filter_bit(word, k, self.filter.len() * 64);
            if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
                continue;
            }
            let mut at = affix_slot(word, k, size);
            loop {
                let (w, meta, end) = self.table[at];
                let kk = (meta & 0xff) as usize;
                if kk == 0 {
                    break;
                }
                if kk == k && w == word {
                    for &(atom, start, len) in &self.entries[(meta >> 8) as usize..end as usize] {
                        let len = len as usize;
                        if len <= 8 {
                            fire(atom);
                        } else if len <= hay.len() {
                            let lit = &self.bytes[start as usize..start as usize + len];
                            let part = if self.suffix {
                                &hay[hay.len() - len..]
                            } else {
                                &hay[..len]
                            };
                            if same(part, lit) {
                                fire(atom);
                            }
                        }
                    }
                    break;
                }
                at = (at + 1) & (size - 1);
            }
        }
    }

    fn memory(&self) -> usize {
        self.table.len() * 16
            + self.filter.len() * 8
            + self.entries.len() * 12
            + self.bytes.len()
            + self.lens.len()
    }
}

/// `a == b` for slices of the same length, without a call for the short ones that
/// confirmations mostly compare: two overlapping word loads from each side up to 16 bytes.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    let w4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4"));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => w8(a, 0) == w8(b, 0) && a[8..] == b[8..],
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

/// The filter bit of a gram: a multiplicative hash of the four bytes (`hashed`), or the
/// gram itself (two-byte grams in a 64 Ki-bit filter).
#[inline(always)]
fn filter_bit(gram: u32, bits: usize, hashed: bool) -> usize {
    if hashed {
        (gram.wrapping_mul(0x9E37_79B1) >> (32 - bits.trailing_zeros())) as usize
    } else {
        gram as usize & (bits - 1)
    }
}

/// A DFA over short *anchors* (at most four bytes each: a whole short literal, or the rarest
/// four-byte window of a longer one), built the Aho-Corasick way (trie, failure links,
/// every transition filled in), as a prefilter: every hit is confirmed by comparing the
/// whole literal in place, so the automaton may over-approximate.
///
/// Kept small so that it stays in cache: the alphabet is compressed to classes (each ASCII
/// byte anchors use gets its own; bytes >= 0x80 share [`HIGH_CLASSES`] classes, which only
/// adds hits to confirm), states are `u16`,
/// and leaf states (whole anchors with no longer anchor behind them, most of the states)
/// have no row: on reaching one, the walk
/// reports its literals and goes on from the nearest state in its failure chain that has a
/// row, which is where every transition out of the leaf leads anyway.
///
/// The table is stored by column (all states' transitions on one class together), and each
/// byte maps straight to its column's offset: a step is `trans[col[byte] + state]`, an add
/// and a load, with no multiplication in the chain of dependent loads a walk is.
#[derive(Debug)]
struct AnchorDfa {
    /// Per byte: its class times the number of states with a row (its column's offset).
    col: [u32; 256],
    nclasses: usize,
    /// The transitions of the states below `first_leaf`, class by class.
    trans: Box<[u16]>,
    /// States numbered from here on have literals to confirm.
    first_out: u16,
    /// States numbered from here on are leaves (no row).
    first_leaf: u16,
    /// Per leaf (minus `first_leaf`): the state the walk goes on from.
    leaf_next: Box<[u16]>,
    /// Per output state (minus `first_out`): range into `outs`.
    out_ranges: Box<[(u32, u32)]>,
    /// (anchor length, entry) pairs: the literal's anchor ends at the current byte.
    outs: Box<[(u32, Entry)]>,
}

/// Most states an [`AnchorDfa`] may have (its state ids are `u16`).
const MAX_DFA_STATES: usize = u16::MAX as usize;

/// How many byte classes the bytes >= 0x80 of an [`AnchorDfa`] share. Logs are mostly ASCII
/// and anchors avoid these bytes when they can, so sharing costs few extra hits, while a
/// class of its own for each (up to 128 more columns in every row) made the command-line
/// automaton of workload A 1.6 MB instead of 0.95 MB, past the 1 MB L2 cache. Measured on A,
/// matching alone: 3.67 -> 3.54 and 3.76 -> 3.60 us per record in two alternating runs (min
/// of 6 and 10), no difference in a third (12); callgrind's simulated misses did not change.
const HIGH_CLASSES: usize = 4;

impl AnchorDfa {
    /// `anchored`: (anchor bytes, entry) with 1 <= anchor length <= 4.
    fn build(anchored: &[(Vec<u8>, Entry)]) -> Option<AnchorDfa> {
        // Classes: class 0 for bytes no anchor uses; every ASCII byte an anchor uses a class
        // of its own (text is mostly ASCII: sharing there would add hits all the time); the
        // bytes >= 0x80 anchors use share at most `HIGH_CLASSES` classes.
        let mut used = [false; 256];
        for (anchor, _) in anchored {
            for &b in anchor {
                used[b as usize] = true;
            }
        }
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        for b in 0..128 {
            if used[b] {
                classes[b] = nclasses as u8;
                nclasses += 1;
            }
        }
        let high: Vec<usize> = (128..256).filter(|&b| used[b]).collect();
        let room = HIGH_CLASSES;
        if high.len() <= room {
            for &b in &high {
                classes[b] = nclasses as u8;
                nclasses += 1;
            }
        } else {
            for &b in &high {
                classes[b] = (nclasses + b % room) as u8;
            }
            nclasses += room;
        }
        // Trie over classes (children as short sorted lists: most states have one or two).
        let mut children: Vec<Vec<(u8, u16)>> = vec![Vec::new()];
        let mut own_outs: Vec<Vec<(u32, Entry)>> = vec![Vec::new()];
        for (anchor, entry) in anchored {
            let mut node = 0usize;
            for &b in anchor {
                let c = classes[b as usize];
                node = match children[node].binary_search_by_key(&c, |k| k.0) {
                    Ok(i) => children[node][i].1 as usize,
                    Err(i) => {
                        let n = children.len();
                        if n > MAX_DFA_STATES {
                            return None;
                        }
                        children[node].insert(i, (c, n as u16));
                        children.push(Vec::new());
                        own_outs.push(Vec::new());
                        n
                    }
                };
            }
            own_outs[node].push((anchor.len() as u32, *entry));
        }
        let states = children.len();
        let leaf = |s: usize| s != 0 && children[s].is_empty();
        // Final numbering first, each group in breadth-first order (shallow states, which
        // text visits most, share cache lines): rows without outputs, rows with outputs,
        // leaves. Whether a state has outputs (its own or its failure chain's) needs the
        // failure links, so they come first, with transitions kept only for states that
        // will have a row (a leaf's transitions are those of the nearest state with a row in
        // its failure chain, `up`).
        let nrows = (0..states).filter(|&s| !leaf(s)).count();
        let mut row_of = vec![u32::MAX; states];
        let mut next = 0u32;
        let mut order = Vec::with_capacity(states);
        let mut queue = std::collections::VecDeque::from([0u16]);
        while let Some(s) = queue.pop_front() {
            order.push(s);
            if !leaf(s as usize) {
                row_of[s as usize] = next;
                next += 1;
            }
            queue.extend(children[s as usize].iter().map(|k| k.1));
        }
        let mut trans = vec![0u16; nrows * nclasses];
        let mut fail = vec![0u16; states];
        let mut up = vec![0u16; states];
        for &(c, n) in &children[0] {
            trans[c as usize] = n;
            // Failure link 0.
            up[n as usize] = if leaf(n as usize) { 0 } else { n };
        }
        for &s in &order[1..] {
            let s = s as usize;
            if leaf(s) {
                continue;
            }
            let (row, frow) = (
                row_of[s] as usize * nclasses,
                row_of[up[fail[s] as usize] as usize] as usize * nclasses,
            );
            trans.copy_within(frow..frow + nclasses, row);
            for &(c, child) in &children[s] {
                let f = trans[frow + c as usize];
                fail[child as usize] = f;
                trans[row + c as usize] = child;
            }
            for &(_, child) in &children[s] {
                let child = child as usize;
                up[child] = if leaf(child) {
                    up[fail[child] as usize]
                } else {
                    child as u16
                };
            }
        }
        // Outputs: own anchors plus those of the failure chain (shorter anchors ending here).
        let mut outs_of: Vec<Vec<(u32, Entry)>> = vec![Vec::new(); states];
        for &s in &order[1..] {
            let s = s as usize;
            let mut o = std::mem::take(&mut own_outs[s]);
            o.extend(outs_of[fail[s] as usize].iter().copied());
            outs_of[s] = o;
        }
        let mut new_id = vec![0u32; states];
        let mut next = 0u32;
        let groups: [&dyn Fn(usize) -> bool; 3] = [
            &|s| !leaf(s) && outs_of[s].is_empty(),
            &|s| !leaf(s) && !outs_of[s].is_empty(),
            &|s| leaf(s),
        ];
        let mut bounds = [0u32; 3];
        for (g, keep) in groups.iter().enumerate() {
            bounds[g] = next;
            for &s in &order {
                if keep(s as usize) {
                    new_id[s as usize] = next;
                    next += 1;
                }
            }
        }
        let (first_out, first_leaf) = (bounds[1], bounds[2]);
        // Rows in the new numbering, in place: row `row_of[s]` moves to `new_id[s]`; both
        // numberings list the states with rows, so this is a permutation of rows.
        let mut rows = vec![0u16; first_leaf as usize * nclasses];
        let mut out_ranges = vec![(0u32, 0u32); states - first_out as usize];
        let mut outs = Vec::new();
        let mut leaf_next = vec![0u16; states - first_leaf as usize];
        for s in 0..states {
            let id = new_id[s] as usize;
            if id < first_leaf as usize {
                let old = row_of[s] as usize * nclasses;
                for c in 0..nclasses {
                    rows[c * first_leaf as usize + id] = new_id[trans[old + c] as usize] as u16;
                }
            } else {
                leaf_next[id - first_leaf as usize] = new_id[up[s] as usize] as u16;
            }
            if id >= first_out as usize {
                let start = outs.len() as u32;
                outs.extend(outs_of[s].iter().copied());
                out_ranges[id - first_out as usize] = (start, outs.len() as u32);
            }
        }
        drop(trans);
        Some(AnchorDfa {
            col: classes.map(|c| c as u32 * first_leaf),
            nclasses,
            trans: rows.into_boxed_slice(),
            first_out: first_out as u16,
            first_leaf: first_leaf as u16,
            leaf_next: leaf_next.into_boxed_slice(),
            out_ranges: out_ranges.into_boxed_slice(),
            outs: outs.into_boxed_slice(),
        })
    }

    fn memory(&self) -> usize {
        1024 + self.trans.len() * 2
            + self.leaf_next.len() * 2
            + self.out_ranges.len() * 8
            + self.outs.len() * 20
    }

    /// Confirms the literals of the output state `state`, whose anchors end at
    /// `hay[end - 1]`; returns the state the walk goes on from.
    #[inline(never)]
    fn outputs(
        &self,
        state: usize,
        end: usize,
        hay: &[u8],
        bytes: &[u8],
        fire: &mut impl FnMut(u32),
    ) -> usize {
        let (s, e) = self.out_ranges[state - self.first_out as usize];
        for &(alen, (atom, off, start, len)) in &self.outs[s as usize..e as usize] {
            let (alen, off, len) = (alen as usize, off as usize, len as usize);
            let Some(lstart) = end.checked_sub(alen + off) else {
                continue;
            };
            if lstart + len <= hay.len()
                && same(
                    &hay[lstart..lstart + len],
                    &bytes[start as usize..start as usize + len],
                )
            {
                fire(atom);
            }
        }
        if state >= self.first_leaf as usize {
            self.leaf_next[state - self.first_leaf as usize] as usize
        } else {
            state
        }
    }

    /// One walk over `hay[from..to]` from the start state.
    #[inline(always)]
    fn chain(&self, hay: &[u8], from: usize, to: usize, bytes: &[u8], fire: &mut impl FnMut(u32)) {
        let first_out = self.first_out as usize;
        let mut state = 0usize;
        for (i, &b) in hay[from..to].iter().enumerate() {
            state = self.trans[self.col[b as usize] as usize + state] as usize;
            if state >= first_out {
                state = self.outputs(state, from + i + 1, hay, bytes, fire);
            }
        }
    }

    /// Reports the literals whose anchors occur in `hay` (each confirmed in full).
    ///
    /// A DFA walk is a chain of dependent loads, one per byte; values of a dozen bytes or
    /// more are cut into four (eight from 256 bytes) overlapping pieces walked side by side,
    /// so that as many chains are in flight at once. A piece starts three bytes (an anchor's
    /// length less one) before the part it is for, from the start state, so an anchor that
    /// ends in its part is found whole.
    #[inline]
    fn scan(&self, hay: &[u8], bytes: &[u8], fire: &mut impl FnMut(u32)) {
        // Eight pieces from 256 bytes on (long command lines, the slowest records: p99 8.9 ->
        // 8.3 us on A); from 64 bytes they measured the same as four, sixteen no better.
        if hay.len() < 12 {
            self.chain(hay, 0, hay.len(), bytes, fire);
        } else if hay.len() >= 256 {
            self.lanes::<8>(hay, bytes, fire);
        } else {
            self.lanes::<4>(hay, bytes, fire);
        }
    }

    /// [`AnchorDfa::scan`] in `N` pieces; needs `hay.len() > N * (N - 1)` and
    /// `hay.len() >= N * 3` (every piece starts inside `hay`, after the previous one).
    #[inline(always)]
    fn lanes<const N: usize>(&self, hay: &[u8], bytes: &[u8], fire: &mut impl FnMut(u32)) {
        const BACK: usize = 3;
        let n = hay.len();
        let part = n.div_ceil(N);
        // Piece k walks [k * part - BACK, (k + 1) * part), the last one to `n`.
        let mut starts = [0usize; N];
        let mut ends = [0usize; N];
        for k in 0..N {
            starts[k] = if k == 0 { 0 } else { k * part - BACK };
            ends[k] = if k == N - 1 { n } else { (k + 1) * part };
        }
        let common = part.min(n - starts[N - 1]);
        let first_out = self.first_out as usize;
        let (trans, col) = (&*self.trans, &self.col);
        let pieces: [&[u8]; N] = std::array::from_fn(|k| &hay[starts[k]..starts[k] + common]);
        let mut st = [0usize; N];
        for t in 0..common {
            let mut any = false;
            for k in 0..N {
                let s = trans[col[pieces[k][t] as usize] as usize + st[k]] as usize;
                st[k] = s;
                any |= s >= first_out;
            }
            if any {
                for k in 0..N {
                    if st[k] >= first_out {
                        st[k] = self.outputs(st[k], starts[k] + t + 1, hay, bytes, fire);
                    }
                }
            }
        }
        // Tails: each piece to its end.
        for k in 0..N {
            let mut s = st[k];
            for i in starts[k] + common..ends[k] {
                s = trans[col[hay[i] as usize] as usize + s] as usize;
                if s >= first_out {
                    s = self.outputs(s, i + 1, hay, bytes, fire);
                }
            }
        }
    }
}

/// All of one slot's atoms, ready to be found in a value.
#[derive(Debug, Default)]
pub(crate) struct SlotScanner {
    exact: KeyMap<Box<[u32]>>,
    prefix: Affix,
    suffix: Affix,
    /// The `contains` literals' anchor automaton, when it fits (`u16` states); otherwise the
    /// filters below are used.
    dfa: Option<AnchorDfa>,
    /// Literals of four bytes or more, under their rarest four-byte window (hashed filter).
    quads: Filed,
    /// Literals of two and three bytes, under their first two bytes (direct filter).
    pairs: Filed,
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
    pub(crate) fn build_with(
        atoms: &[(u32, AtomKind, &[u8])],
        counts: &GramCounts,
        use_dfa: bool,
    ) -> SlotScanner {
        let mut exact: HashMap<&[u8], Vec<u32>> = HashMap::new();
        let mut prefixes = Vec::new();
        let mut suffixes = Vec::new();
        let mut bytes = Vec::new();
        // Every contains literal under its anchor: the rarest four-byte window, or the whole
        // literal when shorter.
        let mut anchored: Vec<(Vec<u8>, Entry)> = Vec::new();
        // How likely a window is to occur in text: literals of rules are written for these
        // logs, so windows common among them are common in the logs too.
        let cost = |w: &[u8]| {
            let common = w.iter().filter(|b| common_byte(**b)).count() as u64;
            // Bytes >= 0x80 share a few classes in the automaton: windows of them match
            // more often than they read, so they are the last choice.
            let high = w.iter().filter(|b| **b >= 0x80).count() as u64;
            counts.get(&gram4(w)).copied().unwrap_or(0) as u64 * 4 + common + high * (1 << 20)
        };
        for &(id, kind, lit) in atoms {
            match kind {
                AtomKind::Exact | AtomKind::Int => exact.entry(lit).or_default().push(id),
                AtomKind::Prefix => prefixes.push((lit, id)),
                AtomKind::Suffix => suffixes.push((lit, id)),
                AtomKind::Contains if lit.is_empty() => {}
                AtomKind::Contains => {
                    let start = bytes.len() as u32;
                    bytes.extend_from_slice(lit);
                    let off = if lit.len() <= 4 {
                        0
                    } else {
                        (0..=lit.len() - 4)
                            .min_by_key(|&o| cost(&lit[o..o + 4]))
                            .unwrap_or(0)
                    };
                    let end = (off + 4).min(lit.len());
                    let entry = (id, off as u32, start, lit.len() as u32);
                    anchored.push((lit[off..end].to_vec(), entry));
                }
            }
        }
        let dfa = if use_dfa && !anchored.is_empty() {
            AnchorDfa::build(&anchored)
        } else {
            None
        };
        // Without the automaton: four-byte anchors behind a hashed filter, two- and
        // three-byte literals under their first two bytes, one-byte literals by memchr.
        let (mut quads, mut pairs, mut singles) = (HashMap::new(), HashMap::new(), Vec::new());
        if dfa.is_none() {
            for (anchor, entry) in anchored {
                match anchor.len() {
                    1 => singles.push((anchor[0], entry.0)),
                    2 | 3 => pairs
                        .entry(u16::from_le_bytes([anchor[0], anchor[1]]) as u32)
                        .or_insert_with(Vec::new)
                        .push(entry),
                    _ => quads
                        .entry(gram4(&anchor))
                        .or_insert_with(Vec::new)
                        .push(entry),
                }
            }
        }
        let filters = |m: HashMap<u32, Vec<Entry>>, bits: usize, hashed: bool| {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_unstable_by_key(|(g, _)| *g);
            Filed::build(v, bits, hashed)
        };
        // About 16 filter bits per window (a few percent of positions pass by chance), at most
        // 256 Ki bits (32 KiB).
        let quad_bits = (quads.len() * 16).next_power_of_two().clamp(4096, 1 << 18);
        let pair_bits = if pairs.is_empty() { 0 } else { 1 << 16 };
        SlotScanner {
            exact: exact
                .into_iter()
                .map(|(k, v)| (Box::from(k), v.into_boxed_slice()))
                .collect(),
            prefix: Affix::build(&prefixes, false),
            suffix: Affix::build(&suffixes, true),
            quads: filters(quads, quad_bits, true),
            pairs: filters(pairs, pair_bits, false),
            dfa,
            singles,
            bytes,
        }
    }

    /// Whether the scan walks the value (has `contains` literals): only then is
    /// remembering its result cheaper than doing it again.
    pub fn walks(&self) -> bool {
        self.dfa.is_some() || !self.bytes.is_empty()
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
        self.prefix.find(hay, &mut fire);
        self.suffix.find(hay, &mut fire);
        if let Some(dfa) = &self.dfa {
            dfa.scan(hay, &self.bytes, &mut fire);
            return;
        }
        self.filter_scan(hay, &mut fire);
        for &(b, a) in &self.singles {
            if memchr::memchr(b, hay).is_some() {
                fire(a);
            }
        }
    }

    /// The filter path: at every position, the four-byte window through the hashed filter
    /// and the two-byte pair through the direct one; hits are confirmed in full.
    #[inline]
    fn filter_scan(&self, hay: &[u8], fire: &mut impl FnMut(u32)) {
        let n = hay.len();
        let (q, p) = (&self.quads, &self.pairs);
        let (has_q, has_p) = (!q.table.is_empty(), !p.table.is_empty());
        if !has_q && !has_p {
            return;
        }
        let qshift = 32 - (q.filter.len() * 64).trailing_zeros();
        let mut i = 0;
        for w in hay.windows(4) {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if has_q {
                let h = (w.wrapping_mul(0x9E37_79B1) >> qshift) as usize;
                if q.filter[h >> 6] >> (h & 63) & 1 != 0 {
                    self.verify(q, w, i, hay, fire);
                }
            }
            if has_p {
                let g = w & 0xffff;
                if p.filter[g as usize >> 6] >> (g & 63) & 1 != 0 {
                    self.verify(p, g, i, hay, fire);
                }
            }
            i += 1;
        }
        // The last pairs (no whole window left).
        if has_p {
            for j in i..n.saturating_sub(1) {
                let g = u16::from_le_bytes([hay[j], hay[j + 1]]) as u32;
                if p.filter[g as usize >> 6] >> (g & 63) & 1 != 0 {
                    self.verify(p, g, j, hay, fire);
                }
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
            if same(&hay[at - off..at - off + len], lit) {
                fire(atom);
            }
        }
    }

    /// The anchor DFA's rows, leaves and classes, if any (diagnostics).
    pub fn dfa_shape(&self) -> Option<(usize, usize, usize)> {
        self.dfa
            .as_ref()
            .map(|d| (d.first_leaf as usize, d.leaf_next.len(), d.nclasses))
    }

    /// Heap bytes held (diagnostics).
    pub fn memory(&self) -> usize {
        self.exact.keys().map(|k| k.len() + 40).sum::<usize>()
            + self.prefix.memory()
            + self.suffix.memory()
            + self.quads.memory()
            + self.pairs.memory()
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
                let want = holding(&lits, hay);
                assert_eq!(got, want, "{}", String::from_utf8_lossy(hay));
            }
        }
    }

    /// The atoms of `lits` that hold for `hay`, by the plain definition of each kind.
    fn holding(lits: &[(u32, AtomKind, &[u8])], hay: &[u8]) -> Vec<u32> {
        lits.iter()
            .filter(|(_, kind, lit)| match kind {
                AtomKind::Contains => hay.windows(lit.len()).any(|w| w == *lit),
                AtomKind::Prefix => hay.starts_with(lit),
                AtomKind::Suffix => hay.ends_with(lit),
                AtomKind::Exact | AtomKind::Int => hay == *lit,
            })
            .map(|(id, _, _)| *id)
            .collect()
    }

    #[test]
    fn same_is_slice_equality() {
        let mut rng = crate::testutil::Rng(7);
        let mut next = |m: u64| rng.below(m);
        for _ in 0..20_000 {
            let n = next(40) as usize;
            let a: Vec<u8> = (0..n).map(|_| next(3) as u8).collect();
            let mut b = a.clone();
            if n > 0 && next(2) == 0 {
                let i = next(n as u64) as usize;
                b[i] ^= 1 << next(8);
            }
            assert_eq!(same(&a, &b), a == b, "{a:?} {b:?}");
        }
    }

    /// More distinct bytes than the DFA has classes: bytes sharing a class must not make
    /// literals hold that do not (every hit is confirmed), and none may be missed.
    #[test]
    fn shared_classes_are_confirmed() {
        // 200 one-byte and two-byte literals over 200 distinct bytes.
        let owned: Vec<(u32, Vec<u8>)> = (0..200u32)
            .map(|i| {
                let b = 40 + i as u8;
                (i, if i % 2 == 0 { vec![b] } else { vec![b, b] })
            })
            .collect();
        let lits: Vec<(u32, AtomKind, &[u8])> = owned
            .iter()
            .map(|(i, l)| (*i, AtomKind::Contains, &l[..]))
            .collect();
        let counts = count_grams(lits.iter().map(|l| l.2));
        let s = SlotScanner::build_with(&lits, &counts, true);
        let dfa = s.dfa.as_ref().expect("dfa");
        // Class 0, one per ASCII byte used (40..128), the shared high ones.
        assert_eq!(dfa.nclasses, 1 + (128 - 40) + HIGH_CLASSES);
        for b in 0..=255u8 {
            for hay in [
                vec![b],
                vec![b, b],
                vec![b'x'; 70].into_iter().chain([b, b]).collect(),
            ] {
                let mut got = Vec::new();
                s.scan(&hay, |a| got.push(a));
                got.sort_unstable();
                got.dedup();
                let want: Vec<u32> = lits
                    .iter()
                    .filter(|(_, _, lit)| hay.windows(lit.len()).any(|w| w == *lit))
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(got, want, "byte {b}");
            }
        }
    }

    /// Random literal sets over a small alphabet (many overlaps, repeats, literals at the
    /// very start and end) against the plain definition.
    #[test]
    fn random_literals_and_values() {
        let mut rng = crate::testutil::Rng(0x2545_f491_4f6c_dd1d);
        let mut next = |m: u64| rng.below(m);
        let small = b"ab\\c. ".to_vec();
        // Every fourth round all 256 byte values: more than the DFA's classes, which then
        // share classes (hits to confirm, never a miss).
        let all: Vec<u8> = (0..=255).collect();
        for round in 0..400 {
            let alphabet = if round % 4 == 2 { &all } else { &small };
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
            let any_contains = lits.iter().any(|l| l.1 == AtomKind::Contains);
            assert_eq!(s.dfa.is_some(), round % 2 == 0 && any_contains);
            for _ in 0..20 {
                // Random bytes with some of the literals planted at random places.
                // (Every third round long values: the DFA walks those in four pieces.)
                let mut hay: Vec<u8> = Vec::new();
                for _ in 0..next(if round % 3 == 0 { 60 } else { 6 }) {
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
                let want = holding(&lits, &hay);
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
