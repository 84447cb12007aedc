//! Helpers shared by the integration tests.

/// A tiny xorshift generator, so that a stress test is repeatable from its
/// seed (a seed of zero would stay zero: mix it first).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
