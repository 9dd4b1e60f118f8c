//! The value memo: which atoms a long value made hold, remembered across records.
//!
//! Log streams repeat their long values all the time (the same command lines, images,
//! parent command lines, service paths): in `windows-evtx.jsonl`, which is not repeated, 90%
//! of the string values of 32 bytes or more (64% of their bytes) occur earlier in the file at
//! the same path. The automaton passes over a value are a pure function of the slot and the
//! value's folded bytes, so a [`Scratch`](crate::Scratch) keeps, per slot and value, the atoms
//! its scan reported, and replays them when the value comes back instead of scanning again.
//!
//! Exact, never approximate: a hit compares the whole value with the remembered bytes. It
//! is bounded and allocation-free after creation: a direct-mapped table of entries over two
//! rings (value bytes, atom ids) written in order; an entry whose bytes or atoms have been
//! overwritten since is no longer valid, and a new value in its table place replaces it.

use crate::swar::padded8;

/// Values shorter than this are scanned every time (their scan is cheaper than the
/// lookup).
pub(crate) const MIN_LEN: usize = 12;

/// Most atoms remembered for one value (a value that makes more hold is not remembered).
pub(crate) const MAX_ATOMS: usize = 64;

/// Sizes of a memo.
#[derive(Debug, Clone, Copy)]
pub struct MemoSize {
    /// Table entries (rounded up to a power of two).
    pub entries: usize,
    /// Bytes of remembered values (rounded up to a power of two).
    pub bytes: usize,
    /// Remembered atom ids (rounded up to a power of two).
    pub atoms: usize,
}

impl MemoSize {
    /// The default: 4,096 entries over 256 KiB of values and 16,384 atom ids (about 480 KiB in
    /// all per scratch). On `windows-evtx.jsonl` in one pass it finds 83% of the values it is
    /// asked for; eight times the size found 2.5 points more (values of 24 bytes or more).
    /// Chosen on that stream, not on workload A, whose 75-fold repetition of 1,350 records
    /// rewards a memo that holds the whole cycle.
    pub const DEFAULT: MemoSize = MemoSize {
        entries: 4096,
        bytes: 256 * 1024,
        atoms: 16 * 1024,
    };

    /// No memo: every value is scanned.
    pub const OFF: MemoSize = MemoSize {
        entries: 0,
        bytes: 0,
        atoms: 0,
    };
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    hash: u64,
    /// Position of the value in the byte ring (counted from the start, never wrapping).
    at: u64,
    /// Position of its atoms in the atom ring (likewise).
    atoms_at: u64,
    len: u32,
    natoms: u32,
    slot: u32,
}

/// A value's identity in the memo (see [`Memo::key`]).
pub(crate) struct Key {
    slot: u32,
    hash: u64,
    place: usize,
}

/// The distinct atoms a scan reports, in the order it first reports them, up to
/// [`MAX_ATOMS`].
///
/// Distinct without sorting: an atom the record had not made hold before is new here too
/// (its bit was clear); only an atom that already held (reported earlier in this value, or
/// by another value of the record) is looked for among those recorded. Sorting the list
/// instead cost ~1,450 instructions per remembered value on workload A.
pub(crate) struct Seen {
    atoms: [u32; MAX_ATOMS],
    /// How many distinct atoms were reported (more than `MAX_ATOMS`: too many to remember).
    n: usize,
}

impl Seen {
    pub fn new() -> Seen {
        Seen {
            atoms: [0; MAX_ATOMS],
            n: 0,
        }
    }

    /// Records `atom`; `fresh`: it did not hold in this record before this report.
    #[inline]
    pub fn push(&mut self, atom: u32, fresh: bool) {
        if !fresh && self.atoms[..self.n.min(MAX_ATOMS)].contains(&atom) {
            return;
        }
        if self.n < MAX_ATOMS {
            self.atoms[self.n] = atom;
        }
        self.n += 1;
    }

    /// The atoms recorded (needs `n <= MAX_ATOMS`).
    fn distinct(&self) -> &[u32] {
        &self.atoms[..self.n]
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    table: Box<[Entry]>,
    bytes: Box<[u8]>,
    atoms: Box<[u32]>,
    /// Bytes and atoms written so far (positions of the next write).
    bytes_end: u64,
    atoms_end: u64,
    /// Lookups that found their value, and lookups that did not (the value was scanned;
    /// diagnostics).
    pub hits: u64,
    pub misses: u64,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// A hash of `slot` and `v` (two independent multiply chains over 16-byte steps).
#[inline]
fn hash(slot: u32, v: &[u8]) -> u64 {
    let (mut a, mut b) = (
        u64::from(slot).wrapping_add(K),
        v.len() as u64 ^ K.rotate_left(17),
    );
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        let (x, y) = c.split_at(8);
        a = (a ^ u64::from_le_bytes(x.try_into().unwrap_or_default())).wrapping_mul(K);
        b = (b ^ u64::from_le_bytes(y.try_into().unwrap_or_default())).wrapping_mul(K);
        a = a.rotate_left(23);
        b = b.rotate_left(31);
    }
    // The tail: the value's last sixteen (or first and last eight) bytes, overlapping bytes
    // already hashed, read as words (the memo's values are 12 bytes or more; zero-padding
    // the tail cost two `memcpy` calls per value).
    let n = v.len();
    let word = |at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap_or_default());
    let (x, y) = if chunks.remainder().is_empty() {
        (0, 0)
    } else if n >= 16 {
        (word(n - 16), word(n - 8))
    } else if n >= 8 {
        (word(0), word(n - 8))
    } else {
        (padded8(v), 0)
    };
    a = (a ^ x).wrapping_mul(K);
    b = (b ^ y).wrapping_mul(K);
    let h = a ^ b.rotate_left(32);
    h ^ (h >> 29)
}

impl Memo {
    /// The sizes this memo was made with.
    pub fn size(&self) -> MemoSize {
        MemoSize {
            entries: self.table.len(),
            bytes: self.bytes.len(),
            atoms: self.atoms.len(),
        }
    }

    pub fn new(size: MemoSize) -> Memo {
        if size.entries == 0 || size.bytes == 0 || size.atoms == 0 {
            return Memo::default();
        }
        // Powers of two, so that a table place or ring position is a mask, not a division
        // (a 64-bit division is tens of cycles on the path of every remembered value).
        Memo {
            table: vec![Entry::default(); size.entries.next_power_of_two()].into_boxed_slice(),
            bytes: vec![0; size.bytes.next_power_of_two()].into_boxed_slice(),
            atoms: vec![0; size.atoms.next_power_of_two()].into_boxed_slice(),
            ..Memo::default()
        }
    }

    /// Whether values are remembered at all.
    #[inline]
    pub fn on(&self) -> bool {
        !self.table.is_empty()
    }

    /// The value `v` of `slot`: its hash and where it goes in the table.
    #[inline]
    pub fn key(&self, slot: u32, v: &[u8]) -> Key {
        let hash = hash(slot, v);
        Key {
            slot,
            hash,
            place: (hash as usize) & (self.table.len() - 1),
        }
    }

    /// The atoms remembered for the value `v` of `k`, if they are still there (the slot,
    /// length and every byte compared).
    #[inline]
    pub fn get(&mut self, k: &Key, v: &[u8]) -> Option<&[u32]> {
        let e = self.table[k.place];
        if e.hash != k.hash || e.slot != k.slot || e.len as usize != v.len() || !self.intact(&e) {
            return None;
        }
        let at = ring_pos(e.at, self.bytes.len());
        if self.bytes[at..at + v.len()] != *v {
            return None;
        }
        self.hits += 1;
        let a = ring_pos(e.atoms_at, self.atoms.len());
        Some(&self.atoms[a..a + e.natoms as usize])
    }

    fn intact(&self, e: &Entry) -> bool {
        e.at + self.bytes.len() as u64 >= self.bytes_end
            && e.atoms_at + self.atoms.len() as u64 >= self.atoms_end
    }

    /// Remembers that the value `v` of `k` makes the atoms `seen` recorded hold. Values
    /// larger than an eighth of the byte ring, or that made more atoms hold than `seen`
    /// holds, are not remembered.
    pub fn put(&mut self, k: &Key, v: &[u8], seen: &Seen) {
        self.misses += 1;
        if seen.n > MAX_ATOMS {
            return;
        }
        let atoms = seen.distinct();
        if v.len() > self.bytes.len() / 8 || atoms.len() > self.atoms.len() / 8 {
            return;
        }
        let at = Self::reserve(&mut self.bytes_end, self.bytes.len(), v.len());
        let i = ring_pos(at, self.bytes.len());
        self.bytes[i..i + v.len()].copy_from_slice(v);
        let atoms_at = Self::reserve(&mut self.atoms_end, self.atoms.len(), atoms.len());
        let j = ring_pos(atoms_at, self.atoms.len());
        self.atoms[j..j + atoms.len()].copy_from_slice(atoms);
        self.table[k.place] = Entry {
            hash: k.hash,
            at,
            atoms_at,
            len: v.len() as u32,
            natoms: atoms.len() as u32,
            slot: k.slot,
        };
    }

    /// The position for `n` more items in a ring of `cap` (a power of two) whose next write
    /// is at `*end`: in one piece (skipping to the ring's start when they would not fit
    /// before its end).
    fn reserve(end: &mut u64, cap: usize, n: usize) -> u64 {
        let mut at = *end;
        let pos = ring_pos(at, cap) as u64;
        if pos + n as u64 > cap as u64 {
            at += cap as u64 - pos;
        }
        *end = at + n as u64;
        at
    }
}

/// Where position `at` (counted from the start, never wrapping) lies in a ring of `cap`, a
/// power of two.
#[inline(always)]
fn ring_pos(at: u64, cap: usize) -> usize {
    debug_assert!(cap.is_power_of_two());
    (at & (cap as u64 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Memo {
        Memo::new(MemoSize {
            entries: 8,
            bytes: 512,
            atoms: 64,
        })
    }

    fn value(i: usize) -> Vec<u8> {
        format!("c:\\windows\\system32\\value-{i:04}.exe").into_bytes()
    }

    /// Remembers `atoms` (in the order a scan would report them) for `v` of `slot`.
    fn put(m: &mut Memo, slot: u32, v: &[u8], atoms: &[u32]) {
        let mut seen = Seen::new();
        let mut held = Vec::new();
        for &a in atoms {
            seen.push(a, !held.contains(&a));
            held.push(a);
        }
        let k = m.key(slot, v);
        m.put(&k, v, &seen);
    }

    fn get(m: &mut Memo, slot: u32, v: &[u8]) -> Option<Vec<u32>> {
        let k = m.key(slot, v);
        m.get(&k, v).map(<[u32]>::to_vec)
    }

    #[test]
    fn remembers_until_overwritten() {
        let mut m = small();
        let v = value(1);
        assert!(get(&mut m, 3, &v).is_none());
        put(&mut m, 3, &v, &[9, 7, 9]);
        // In the order first reported, repeats dropped.
        assert_eq!(get(&mut m, 3, &v), Some(vec![9, 7]));
        // Same bytes, other slot: not this entry (even at the same place and hash).
        let k = m.key(3, &v);
        assert_ne!(k.hash, m.key(4, &v).hash);
        assert!(m.get(&Key { slot: 4, ..k }, &v).is_none());
        // Another value of the same length at the same place does not match.
        let mut w = v.clone();
        w[5] ^= 1;
        assert!(m.get(&m.key(3, &v), &w).is_none());
        // Enough other values to wrap the 512-byte ring: the entry is no longer intact
        // (whether or not its table place was reused).
        for i in 100..120 {
            put(&mut m, 3, &value(i), &[i as u32]);
        }
        assert!(get(&mut m, 3, &v).is_none());
        // The most recent value is still there, with its atom.
        assert_eq!(get(&mut m, 3, &value(119)), Some(vec![119]));
    }

    #[test]
    fn atom_ring_wraps_too() {
        let mut m = Memo::new(MemoSize {
            entries: 8,
            bytes: 4096,
            atoms: 64,
        });
        let v = value(1);
        put(&mut m, 0, &v, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(get(&mut m, 0, &v).is_some());
        // Eight more puts of eight atoms each (64 in all) overwrite the first ones.
        for i in 0..8u32 {
            let atoms: Vec<u32> = (i * 8..i * 8 + 8).collect();
            put(&mut m, 1, &value(1000 + i as usize), &atoms);
        }
        assert!(get(&mut m, 0, &v).is_none());
    }

    #[test]
    fn too_many_atoms_are_not_remembered() {
        let mut m = Memo::new(MemoSize {
            entries: 8,
            bytes: 4096,
            atoms: 4096,
        });
        let (v, w) = (value(1), value(2));
        // MAX_ATOMS distinct atoms are remembered, one more is not; repeats do not count.
        let many: Vec<u32> = (0..MAX_ATOMS as u32).chain(0..MAX_ATOMS as u32).collect();
        put(&mut m, 0, &v, &many);
        assert_eq!(get(&mut m, 0, &v), Some((0..MAX_ATOMS as u32).collect()));
        put(&mut m, 0, &w, &(0..=MAX_ATOMS as u32).collect::<Vec<_>>());
        assert!(get(&mut m, 0, &w).is_none());
    }

    #[test]
    fn reserve_keeps_items_in_one_piece() {
        let mut end = 0u64;
        assert_eq!(Memo::reserve(&mut end, 16, 6), 0);
        assert_eq!(Memo::reserve(&mut end, 16, 6), 6);
        // 12 + 6 > 16: skips to 16.
        assert_eq!(Memo::reserve(&mut end, 16, 6), 16);
        assert_eq!(end, 22);
        // Exactly to the end of the ring still fits.
        assert_eq!(Memo::reserve(&mut end, 16, 10), 22);
        assert_eq!(end, 32);
    }

    #[test]
    fn off_remembers_nothing() {
        assert!(!Memo::new(MemoSize::OFF).on());
        assert!(Memo::new(MemoSize::DEFAULT).on());
    }

    #[test]
    fn sizes_round_up_to_powers_of_two() {
        let m = Memo::new(MemoSize {
            entries: 5,
            bytes: 1000,
            atoms: 100,
        });
        let s = m.size();
        assert_eq!((s.entries, s.bytes, s.atoms), (8, 1024, 128));
    }

    #[test]
    fn too_large_values_are_not_remembered() {
        let mut m = small();
        let v = vec![b'a'; 65];
        put(&mut m, 0, &v, &[1]);
        assert!(get(&mut m, 0, &v).is_none());
    }
}
