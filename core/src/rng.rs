//! A small seeded pseudo-random generator (xorshift64*, Vigna 2014) for kiln's deterministic
//! inputs: the GPU self-test corpus, bench weights and the tests' random rows and schedules.
//!
//! Not for anything secret. It is here, in the dependency-free core, so that every crate gets
//! the same sequence from the same seed (a test prints its seed; the same seed replays it).

/// xorshift64*: 64 bits of state, full period over the non-zero states.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Starts from `seed`; 0 (the one state xorshift never leaves) is replaced by a fixed constant.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next 32 random bits (the high half, the better one of xorshift64*).
    pub const fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (modulo bias is negligible for the small `n` tests use); `n` must be > 0.
    pub const fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)` from the top 24 bits, so every value is an exact `f32`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn sequence_is_fixed() {
        // The e2e suite prints its seeds for replay: the sequence must never change.
        let mut r = Rng::new(1);
        assert_eq!(r.next_u64(), 0x47E4_CE4B_896C_DD1D);
        assert_eq!(r.next_u64(), 0xABCF_A6A8_E079_651D);
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }

    #[test]
    fn zero_seed_is_not_stuck() {
        let mut r = Rng::new(0);
        assert_ne!(r.next_u64(), 0);
    }

    #[test]
    fn ranges() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(3) < 3);
        }
    }
}
