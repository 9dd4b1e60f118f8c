//! Helpers shared by the unit tests.

/// A small deterministic generator (xorshift64; the seed must not be 0).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `m` (`m > 0`).
    pub fn below(&mut self, m: u64) -> u64 {
        self.next() % m
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() as usize % xs.len()]
    }
}
