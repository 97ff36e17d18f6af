//! The seeded pseudo-random generator behind all generated data in the workspace: the demo
//! images' file contents, the chunker's golden-vector input, the integration tests' fixtures and
//! the benchmarks' inputs. Portable and integer-only, so the same seed gives the same bytes on
//! every platform.
//!
//! Two algorithms sit behind the one type because expected values depend on each stream:
//! splitmix64 ([`Rng::new`], [`Rng::from_label`]) makes the demo images (and so every number the
//! demo prints); xorshift64 ([`Rng::xorshift64`]) makes the input of the chunker's golden
//! boundaries and the engine tests' fixtures. Neither stream may change; new code uses
//! [`Rng::new`].

/// A deterministic generator of `u64`s. Not for anything that needs unpredictability.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    algorithm: Algorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    /// splitmix64 (Steele, Lea, Flood 2014): adds the golden-ratio increment, then mixes.
    SplitMix64,
    /// Marsaglia's xorshift64 with shifts (13, 7, 17); returns the new state.
    XorShift64,
}

impl Rng {
    /// splitmix64 starting from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            algorithm: Algorithm::SplitMix64,
        }
    }

    /// splitmix64 seeded from the first 8 bytes (little-endian) of the BLAKE3 hash of `label`,
    /// so that each generated file gets its own stream from a readable name.
    pub fn from_label(label: &str) -> Self {
        let hash = blake3::hash(label.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash.as_bytes()[..8]);
        Self::new(u64::from_le_bytes(seed))
    }

    /// xorshift64 starting from `seed | 1` (its state must never be zero).
    pub fn xorshift64(seed: u64) -> Self {
        Rng {
            state: seed | 1,
            algorithm: Algorithm::XorShift64,
        }
    }

    /// The next value of the stream.
    pub fn next_u64(&mut self) -> u64 {
        match self.algorithm {
            Algorithm::SplitMix64 => {
                self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            Algorithm::XorShift64 => {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.state
            }
        }
    }

    /// A value in `0..n` (`next_u64() % n`). Panics if `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A size spread log-uniformly-ish over `[min, min << buckets)`, integer arithmetic only:
    /// `min` shifted left by a value below `buckets`, plus a value below that.
    pub fn size(&mut self, min: usize, buckets: u64) -> usize {
        let lo = min << self.below(buckets);
        lo + self.below(lo as u64) as usize
    }

    /// Fills `out` with the stream, 8 little-endian bytes per value (the last value cut short).
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `len` bytes of the stream, as [`fill_bytes`](Self::fill_bytes) writes them.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.fill_bytes(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values: the first outputs of each stream. The demo images, the chunker's golden
    /// vectors and the engine test fixtures are made of these streams.
    #[test]
    fn streams_are_fixed() {
        let mut s = Rng::new(0);
        assert_eq!(
            [s.next_u64(), s.next_u64()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4]
        );
        let mut x = Rng::xorshift64(1);
        assert_eq!(
            [x.next_u64(), x.next_u64()],
            [0x0000_0000_4082_2041, 0x1000_4106_0c01_1441]
        );
        assert_eq!(
            Rng::from_label("app/model.bin").next_u64(),
            Rng::from_label("app/model.bin").next_u64()
        );
    }

    #[test]
    fn bytes_are_the_values_little_endian() {
        let mut a = Rng::new(7);
        let bytes = Rng::new(7).bytes(12);
        assert_eq!(bytes[..8], a.next_u64().to_le_bytes());
        assert_eq!(bytes[8..], a.next_u64().to_le_bytes()[..4]);
    }

    #[test]
    fn ranges() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            assert!(rng.below(10) < 10);
            let size = rng.size(2 << 10, 7);
            assert!((2 << 10..2 << 17).contains(&size), "{size}");
        }
    }
}
