//! Content-defined chunking. A regular file's bytes are cut into chunks by FastCDC (v2020,
//! normalized) on their own: chunks never cross file boundaries, so identical files dedup
//! exactly. The chunker crate is pinned to an exact version and the parameters are recorded in
//! the store at `init`, because they decide every chunk boundary: a store never mixes two.
//!
//! `Chunker` streams: it keeps one reusable buffer of two `max_size` windows, so memory does not
//! depend on the file's size and no per-file allocation is made.

pub mod sketch;

use serde::{Deserialize, Serialize};
use std::io::{self, Read};

pub const FASTCDC_V2020: &str = "fastcdc-v2020";
/// Fixed-size cuts (Nydus's scheme); used by benchmarks for comparison.
pub const FIXED: &str = "fixed";
/// The exact fastcdc crate version this build links (pinned with `=` in Cargo.toml).
pub const FASTCDC_CRATE_VERSION: &str = "5.0.0";
/// No chunk is ever larger than this.
pub const MAX_CHUNK_SIZE: u32 = 1 << 20;

/// What decides chunk boundaries. Recorded in `store.json` at init; fixed for the store's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub algorithm: String,
    pub crate_version: String,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    pub normalization: u8,
}

impl Default for ChunkerParams {
    /// The default was chosen by the sweep recorded in `docs/CHUNKING.md`.
    fn default() -> Self {
        ChunkerParams::fastcdc(32 * 1024, 128 * 1024, MAX_CHUNK_SIZE).expect("valid defaults")
    }
}

impl ChunkerParams {
    /// FastCDC v2020 with normalization level 1.
    pub fn fastcdc(min_size: u32, avg_size: u32, max_size: u32) -> Result<Self, String> {
        let params = ChunkerParams {
            algorithm: FASTCDC_V2020.into(),
            crate_version: FASTCDC_CRATE_VERSION.into(),
            min_size,
            avg_size,
            max_size,
            normalization: 1,
        };
        params.validate()?;
        Ok(params)
    }

    /// Fixed-size chunks of `size` bytes (the last chunk of a file may be shorter).
    pub fn fixed(size: u32) -> Result<Self, String> {
        let params = ChunkerParams {
            algorithm: FIXED.into(),
            crate_version: String::new(),
            min_size: size,
            avg_size: size,
            max_size: size,
            normalization: 0,
        };
        params.validate()?;
        Ok(params)
    }

    pub fn validate(&self) -> Result<(), String> {
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        if max == 0 || self.max_size > MAX_CHUNK_SIZE {
            return Err(format!(
                "max chunk size {max} must be between 1 and {MAX_CHUNK_SIZE}"
            ));
        }
        match self.algorithm.as_str() {
            FIXED => Ok(()),
            FASTCDC_V2020 => {
                if self.crate_version != FASTCDC_CRATE_VERSION {
                    return Err(format!(
                        "chunker fastcdc {} recorded, this build has fastcdc {FASTCDC_CRATE_VERSION}: \
                         chunk boundaries would differ",
                        self.crate_version
                    ));
                }
                let valid = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
                    && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
                    && min < avg
                    && avg < max
                    && [min, avg, max].iter().all(|n| n % 2 == 0);
                if !valid {
                    return Err(format!(
                        "FastCDC sizes min {min} / avg {avg} / max {max} are invalid: \
                         need even sizes, min < avg < max, min in {MINIMUM_MIN}..={MINIMUM_MAX}, \
                         avg in {AVERAGE_MIN}..={AVERAGE_MAX}"
                    ));
                }
                if self.normalization > 3 {
                    return Err(format!("normalization level {} > 3", self.normalization));
                }
                Ok(())
            }
            other => Err(format!("unknown chunking algorithm {other:?}")),
        }
    }

    /// A short label such as `fastcdc-v2020 16K/64K/1024K`.
    pub fn label(&self) -> String {
        format!(
            "{} {}K/{}K/{}K",
            self.algorithm,
            self.min_size / 1024,
            self.avg_size / 1024,
            self.max_size / 1024
        )
    }
}

/// Cuts byte streams into chunks with a fixed set of parameters.
pub struct Chunker {
    params: ChunkerParams,
    masks: (u64, u64),
    buf: Vec<u8>,
}

impl Chunker {
    pub fn new(params: &ChunkerParams) -> Result<Self, String> {
        params.validate()?;
        let level = match params.normalization {
            0 => fastcdc::v2020::Normalization::Level0,
            1 => fastcdc::v2020::Normalization::Level1,
            2 => fastcdc::v2020::Normalization::Level2,
            _ => fastcdc::v2020::Normalization::Level3,
        };
        let masks = if params.algorithm == FASTCDC_V2020 {
            fastcdc::v2020::select_masks(params.avg_size as usize, level)
        } else {
            (0, 0)
        };
        Ok(Chunker {
            params: params.clone(),
            masks,
            buf: vec![0; 2 * params.max_size as usize],
        })
    }

    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// Where the next chunk of `window` ends. `window` holds at least `max_size` bytes unless
    /// the stream ends within it; only the first `max_size` bytes decide.
    fn cut(&self, window: &[u8]) -> usize {
        let p = &self.params;
        if p.algorithm == FIXED {
            return window.len().min(p.max_size as usize);
        }
        let (mask_s, mask_l) = self.masks;
        let (_, len) = fastcdc::v2020::cut(
            window,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        len
    }

    /// Reads `reader` to its end, calling `emit` with each chunk in order. Returns the number of
    /// bytes read.
    pub fn chunk_stream<R: Read, E>(
        &mut self,
        mut reader: R,
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E>
    where
        E: From<io::Error>,
    {
        // The buffer holds two maximal windows: compaction happens at most once per `max_size`
        // bytes consumed and moves less than `max_size` bytes, so copying stays below 1x input.
        let window = self.params.max_size as usize;
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            let (mut start, mut end, mut eof, mut total) = (0usize, 0usize, false, 0u64);
            loop {
                // A cut is never decided on fewer bytes than the chunker may look at.
                if !eof && end - start < window {
                    if start > 0 {
                        buf.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    while end < buf.len() {
                        let n = match reader.read(&mut buf[end..]) {
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(E::from(e)),
                        };
                        if n == 0 {
                            eof = true;
                            break;
                        }
                        end += n;
                        total += n as u64;
                    }
                }
                if start == end {
                    return Ok(total);
                }
                let len = self.cut(&buf[start..end]);
                emit(&buf[start..start + len])?;
                start += len;
            }
        })();
        self.buf = buf;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden vectors' input: one byte (bits 24..32) per xorshift64 step.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = cairn_sample::Rng::xorshift64(seed);
        (0..len).map(|_| (rng.next_u64() >> 24) as u8).collect()
    }

    fn cuts(params: &ChunkerParams, data: &[u8]) -> Vec<(usize, String)> {
        let mut chunker = Chunker::new(params).unwrap();
        let mut out = Vec::new();
        chunker
            .chunk_stream(data, |c| {
                out.push((c.len(), ChunkId::of(c).short()));
                Ok::<_, io::Error>(())
            })
            .unwrap();
        out
    }

    use crate::ChunkId;

    #[test]
    fn same_cuts_as_the_crate_stream_chunker() {
        let params = ChunkerParams::fastcdc(4096, 16384, 65536).unwrap();
        let data = pseudo_random(1_000_003, 7);
        let ours: Vec<usize> = cuts(&params, &data).into_iter().map(|c| c.0).collect();
        let theirs: Vec<usize> = fastcdc::v2020::StreamCDC::new(&data[..], 4096, 16384, 65536)
            .map(|c| c.unwrap().length)
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.iter().sum::<usize>(), data.len());
    }

    /// Golden vector: boundaries and ids for fixed parameters and input. If this changes, stores
    /// written before would stop deduplicating against new converts.
    #[test]
    fn golden_boundaries_16k_64k_1m() {
        let data = pseudo_random(300_000, 42);
        let params = ChunkerParams::fastcdc(16 * 1024, 64 * 1024, 1024 * 1024).unwrap();
        let got = cuts(&params, &data);
        let expected: Vec<(usize, &str)> = GOLDEN.to_vec();
        let got_ref: Vec<(usize, &str)> = got.iter().map(|(l, h)| (*l, h.as_str())).collect();
        assert_eq!(got_ref, expected);
    }

    const GOLDEN: &[(usize, &str)] = &[
        (34625, "aa9bde2fa068"),
        (89372, "53e9075adfb6"),
        (16949, "bca03240cbac"),
        (119607, "eb369d15f133"),
        (39447, "95e0cd5db90d"),
    ];

    #[test]
    fn fixed_and_edge_cases() {
        let fixed = ChunkerParams::fixed(1000).unwrap();
        let lens: Vec<usize> = cuts(&fixed, &[7u8; 2500])
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(lens, vec![1000, 1000, 500]);
        assert!(cuts(&ChunkerParams::default(), &[]).is_empty());
        let zeros = vec![0u8; 3 << 20];
        let lens: Vec<usize> = cuts(&ChunkerParams::default(), &zeros)
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(lens, vec![1 << 20; 3]);
    }

    #[test]
    fn invalid_params_are_errors() {
        assert!(ChunkerParams::fastcdc(16, 64, 1024).is_err());
        assert!(ChunkerParams::fastcdc(16384, 8192, 65536).is_err());
        assert!(ChunkerParams::fastcdc(16384, 65536, 2 << 20).is_err());
        assert!(ChunkerParams::fixed(0).is_err());
    }
}
