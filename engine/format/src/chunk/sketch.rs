//! Similarity sketches: three super-features of a chunk, as in post-dedup delta compression
//! (Shilane et al.; sampled as in Finesse). A gear hash rolls over the bytes (each value depends
//! on the last 64 bytes); at the positions where its top bits are zero (one in 64) twelve
//! linear transforms of it are taken, and each feature is the largest value a transform
//! reaches; each super-feature hashes four features. Chunks that differ in a few places keep
//! most features, so two versions of a file share a super-feature with high probability while
//! unrelated data shares none. Used to find the old version of a renamed or moved file
//! (`ops::convert::delta`).

const FEATURES: usize = 12;
pub const SUPER_FEATURES: usize = 3;
/// Positions whose gear hash has these top bits zero are sampled.
const SAMPLE_SHIFT: u32 = 58;

pub type Sketch = [u64; SUPER_FEATURES];

const fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const fn table<const N: usize>(seed: u64, odd: bool) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        out[i] = splitmix(seed.wrapping_add(i as u64));
        if odd {
            out[i] |= 1;
        }
        i += 1;
    }
    out
}

static GEAR: [u64; 256] = table(0x6361_6972_6e67_6561, false);
static MUL: [u64; FEATURES] = table(0x6361_6972_6e6d_756c, true);
static ADD: [u64; FEATURES] = table(0x6361_6972_6e61_6464, false);

/// The sketch of `data`, or `None` if too few positions were sampled to say anything (short or
/// very regular data).
pub fn sketch(data: &[u8]) -> Option<Sketch> {
    let mut h = 0u64;
    let mut features = [0u64; FEATURES];
    let mut samples = 0u32;
    for &b in data {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
        if h >> SAMPLE_SHIFT == 0 {
            samples += 1;
            for (f, (m, a)) in features.iter_mut().zip(MUL.iter().zip(&ADD)) {
                *f = (*f).max(h.wrapping_mul(*m).wrapping_add(*a));
            }
        }
    }
    if samples < 8 {
        return None;
    }
    let mut out = [0u64; SUPER_FEATURES];
    for (j, sf) in out.iter_mut().enumerate() {
        let group = &features[j * 4..j * 4 + 4];
        *sf = group
            .iter()
            .fold(j as u64, |acc, &f| splitmix(acc ^ f.rotate_left(17)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        (0..len as u64).map(|i| splitmix(seed ^ i) as u8).collect()
    }

    #[test]
    fn versions_share_a_super_feature_and_strangers_do_not() {
        let a = noise(512 << 10, 1);
        let mut b = a.clone();
        // A few scattered edits and an insertion.
        for i in (7_000..b.len()).step_by(90_000) {
            b[i] ^= 0x55;
        }
        b.splice(100_000..100_000, noise(300, 9));
        let (sa, sb) = (sketch(&a).unwrap(), sketch(&b).unwrap());
        assert!(sa.iter().zip(&sb).any(|(x, y)| x == y), "{sa:?} {sb:?}");
        let c = sketch(&noise(512 << 10, 2)).unwrap();
        assert!(sa.iter().zip(&c).all(|(x, y)| x != y));
        assert_eq!(sketch(&[0u8; 100]), None);
    }
}
