//! File content for `many-files`, from a seed: a splitmix64 generator, small files of text
//! segments (random words) mixed with segments of random bytes, and the 64 KiB blocks of the
//! large files. Text compresses and random bytes do not, so a file compresses about 2:1 and
//! every file is different.

const WORDS: [&str; 64] = [
    "alpha", "beta", "gamma", "delta", "kernel", "module", "config", "driver", "buffer", "cache",
    "layer", "chunk", "index", "store", "image", "blob", "tree", "node", "leaf", "root", "path",
    "file", "table", "frame", "stream", "offset", "length", "digest", "commit", "record", "entry",
    "header", "python", "share", "local", "include", "source", "test", "docs", "util", "core",
    "net", "crypto", "fs", "mm", "arch", "lib", "tools", "the", "of", "and", "to", "in", "is",
    "for", "with", "on", "that", "this", "from", "by", "as", "it", "be",
];

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0; the bias of `%` does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Piecewise log-uniform in lo..hi (powers of two): a power, then a value within it.
    pub fn log_size(&mut self, lo_bits: u32, hi_bits: u32) -> usize {
        let bits = lo_bits + self.below(u64::from(hi_bits - lo_bits)) as u32;
        ((1u64 << bits) + self.below(1u64 << bits)) as usize
    }

    pub fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len() as u64) as usize]
    }
}

/// A seed derived from `a` and `b`.
pub fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next()
}

/// Appends `size` bytes of file content: text segments of random words and segments of random
/// bytes.
fn fill(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
    let end = out.len() + size;
    while out.len() < end {
        let room = end - out.len();
        if rng.below(10) < 6 {
            let target = out.len() + room.min(64 + rng.below(448) as usize);
            while out.len() < target {
                out.extend_from_slice(rng.word().as_bytes());
                out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            }
            out.truncate(target);
        } else {
            let target = out.len() + room.min(16 + rng.below(240) as usize);
            while out.len() < target {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
            out.truncate(target);
        }
    }
}

/// A small file's content from its seed.
pub fn small_content(seed: u64, out: &mut Vec<u8>) {
    let mut rng = Rng(seed);
    let size = if rng.below(100) < 96 {
        rng.log_size(7, 12)
    } else {
        rng.log_size(12, 16)
    };
    out.clear();
    fill(&mut rng, size, out);
}

/// Block `index` of a large file (`take` bytes): random bytes in even blocks, text in odd ones.
pub fn large_block(rng: &mut Rng, index: u64, take: usize, out: &mut Vec<u8>) {
    out.clear();
    if index.is_multiple_of(2) {
        while out.len() < take {
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
    } else {
        while out.len() < take {
            out.extend_from_slice(rng.word().as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(take);
}
