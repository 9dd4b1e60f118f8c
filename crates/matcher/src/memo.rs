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
    /// Bytes of remembered values.
    pub bytes: usize,
    /// Remembered atom ids.
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

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    table: Box<[Entry]>,
    bytes: Box<[u8]>,
    atoms: Box<[u32]>,
    /// Bytes and atoms written so far (positions of the next write).
    bytes_end: u64,
    atoms_end: u64,
    /// Lookups that found their value, and values remembered (diagnostics).
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
    let rest = chunks.remainder();
    let mut tail = [0u8; 16];
    tail[..rest.len()].copy_from_slice(rest);
    a = (a ^ u64::from_le_bytes(tail[..8].try_into().unwrap_or_default())).wrapping_mul(K);
    b = (b ^ u64::from_le_bytes(tail[8..].try_into().unwrap_or_default())).wrapping_mul(K);
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
        let entries = if size.entries == 0 || size.bytes == 0 || size.atoms == 0 {
            0
        } else {
            size.entries.next_power_of_two()
        };
        Memo {
            table: vec![Entry::default(); entries].into_boxed_slice(),
            bytes: vec![0; if entries == 0 { 0 } else { size.bytes }].into_boxed_slice(),
            atoms: vec![0; if entries == 0 { 0 } else { size.atoms }].into_boxed_slice(),
            ..Memo::default()
        }
    }

    /// Whether values are remembered at all.
    #[inline]
    pub fn on(&self) -> bool {
        !self.table.is_empty()
    }

    /// Where the value `v` of `slot` goes in the table, and its hash.
    #[inline]
    pub fn place(&self, slot: u32, v: &[u8]) -> (usize, u64) {
        let h = hash(slot, v);
        ((h as usize) & (self.table.len() - 1), h)
    }

    /// The atoms remembered for the value `v` of `slot` at table place `place` with hash
    /// `h`, if they are still there (the slot, length and every byte compared).
    #[inline]
    pub fn get(&mut self, slot: u32, place: usize, h: u64, v: &[u8]) -> Option<&[u32]> {
        let e = self.table[place];
        if e.hash != h || e.slot != slot || e.len as usize != v.len() || !self.intact(&e) {
            return None;
        }
        let at = (e.at % self.bytes.len() as u64) as usize;
        if self.bytes[at..at + v.len()] != *v {
            return None;
        }
        self.hits += 1;
        let a = (e.atoms_at % self.atoms.len() as u64) as usize;
        Some(&self.atoms[a..a + e.natoms as usize])
    }

    fn intact(&self, e: &Entry) -> bool {
        e.at + self.bytes.len() as u64 >= self.bytes_end
            && e.atoms_at + self.atoms.len() as u64 >= self.atoms_end
    }

    /// Remembers that `v` of `slot` (at table place `place`, hash `h`) makes `atoms` hold. Values
    /// larger than an eighth of the byte ring are not remembered.
    pub fn put(&mut self, slot: u32, place: usize, h: u64, v: &[u8], atoms: &[u32]) {
        self.misses += 1;
        if v.len() > self.bytes.len() / 8 || atoms.len() > self.atoms.len() / 8 {
            return;
        }
        let at = Self::reserve(&mut self.bytes_end, self.bytes.len(), v.len());
        let i = (at % self.bytes.len() as u64) as usize;
        self.bytes[i..i + v.len()].copy_from_slice(v);
        let atoms_at = Self::reserve(&mut self.atoms_end, self.atoms.len(), atoms.len());
        let j = (atoms_at % self.atoms.len() as u64) as usize;
        self.atoms[j..j + atoms.len()].copy_from_slice(atoms);
        self.table[place] = Entry {
            hash: h,
            at,
            atoms_at,
            len: v.len() as u32,
            natoms: atoms.len() as u32,
            slot,
        };
    }

    /// The position for `n` more items in a ring of `cap` whose next write is at `*end`: in
    /// one piece (skipping to the ring's start when they would not fit before its end).
    fn reserve(end: &mut u64, cap: usize, n: usize) -> u64 {
        let cap = cap as u64;
        let mut at = *end;
        if at % cap + n as u64 > cap {
            at += cap - at % cap;
        }
        *end = at + n as u64;
        at
    }
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

    #[test]
    fn remembers_until_overwritten() {
        let mut m = small();
        let v = value(1);
        let (p, h) = m.place(3, &v);
        assert!(m.get(3, p, h, &v).is_none());
        m.put(3, p, h, &v, &[7, 9]);
        assert_eq!(m.get(3, p, h, &v), Some(&[7, 9][..]));
        // Same bytes, other slot: not this entry (even at the same place and hash).
        let (_, h2) = m.place(4, &v);
        assert_ne!(h, h2);
        assert!(m.get(4, p, h, &v).is_none());
        // Another value of the same length at the same place does not match.
        let mut w = v.clone();
        w[5] ^= 1;
        assert!(m.get(3, p, h, &w).is_none());
        // Enough other values to wrap the 512-byte ring: the entry is no longer intact
        // (whether or not its table place was reused).
        for i in 100..120 {
            let u = value(i);
            let (q, g) = m.place(3, &u);
            m.put(3, q, g, &u, &[i as u32]);
        }
        assert!(m.get(3, p, h, &v).is_none());
        // The most recent value is still there, with its atom.
        let u = value(119);
        let (q, g) = m.place(3, &u);
        assert_eq!(m.get(3, q, g, &u), Some(&[119][..]));
    }

    #[test]
    fn atom_ring_wraps_too() {
        let mut m = Memo::new(MemoSize {
            entries: 8,
            bytes: 4096,
            atoms: 64,
        });
        let v = value(1);
        let (p, h) = m.place(0, &v);
        m.put(0, p, h, &v, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(m.get(0, p, h, &v).is_some());
        // Eight more puts of eight atoms each (64 in all) overwrite the first ones.
        for i in 0..8 {
            let u = value(1000 + i);
            let (q, g) = m.place(1, &u);
            m.put(1, q, g, &u, &[0; 8]);
        }
        assert!(m.get(0, p, h, &v).is_none());
    }

    #[test]
    fn reserve_keeps_items_in_one_piece() {
        let mut end = 0u64;
        assert_eq!(Memo::reserve(&mut end, 10, 4), 0);
        assert_eq!(Memo::reserve(&mut end, 10, 4), 4);
        // 8 + 4 > 10: skips to 10.
        assert_eq!(Memo::reserve(&mut end, 10, 4), 10);
        assert_eq!(end, 14);
    }

    #[test]
    fn off_remembers_nothing() {
        assert!(!Memo::new(MemoSize::OFF).on());
        assert!(Memo::new(MemoSize::DEFAULT).on());
    }

    #[test]
    fn too_large_values_are_not_remembered() {
        let mut m = small();
        let v = vec![b'a'; 65];
        let (p, h) = m.place(0, &v);
        m.put(0, p, h, &v, &[1]);
        assert!(m.get(0, p, h, &v).is_none());
    }
}
