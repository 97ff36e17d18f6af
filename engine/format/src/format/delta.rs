//! Delta frames: one chunk compressed with zstd against the plain bytes of base chunks (a
//! raw-content prefix), so that a chunk differing from an old version by a few bytes is stored
//! as little more than those bytes. The stored frame is a header naming the bases, then the
//! zstd frame:
//!
//! ```text
//! u8        DELTA_VERSION (1)
//! u8        n, the number of bases (1..=MAX_BASES)
//! u32 LE    what plain zstd at the store's level makes of the same bytes (for `stats`;
//!           measured, or estimated from the base's stored size when the delta is under
//!           half of that)
//! n x 32 B  base chunk ids, in prefix order
//! ...       a zstd frame, decoded with the bases' bytes back to back as its prefix
//! ```
//!
//! A base is never itself stored in a delta frame (depth 1): reading a delta chunk decodes its
//! bases' frames, then it. Bases are found by id through the index, like any chunk; each is
//! checked against its BLAKE3 before it is used, and the delta chunk against its own after.

use crate::ChunkId;

pub const DELTA_VERSION: u8 = 1;
/// Bases one delta frame may name.
pub const MAX_BASES: usize = 4;
/// The bases' plain bytes together, at most (the prefix zstd keeps in its window).
pub const MAX_BASE_BYTES: usize = 4 << 20;

/// The header of a delta frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaHeader {
    pub bases: Vec<ChunkId>,
    /// The stored length plain zstd (no base) makes of the chunk (measured or estimated when
    /// it was written).
    pub plain_stored: u32,
}

impl DeltaHeader {
    pub fn encoded_len(&self) -> usize {
        6 + 32 * self.bases.len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(DELTA_VERSION);
        out.push(self.bases.len() as u8);
        out.extend_from_slice(&self.plain_stored.to_le_bytes());
        for base in &self.bases {
            out.extend_from_slice(&base.0);
        }
    }

    /// Splits a stored delta frame into its header and its zstd bytes.
    pub fn decode(stored: &[u8]) -> Result<(DeltaHeader, &[u8]), String> {
        let (head, rest) = split(stored, 2, "version and base count")?;
        let (version, n) = (head[0], head[1]);
        if version != DELTA_VERSION {
            return Err(format!("unsupported delta frame version {version}"));
        }
        let n = n as usize;
        if n == 0 || n > MAX_BASES {
            return Err(format!("{n} bases (a delta frame has 1 to {MAX_BASES})"));
        }
        let (plain, rest) = split(rest, 4, "plain length")?;
        let plain_stored = u32::from_le_bytes(plain.try_into().expect("4 bytes"));
        let (ids, data) = split(rest, 32 * n, "base ids")?;
        let bases = ids
            .chunks_exact(32)
            .map(|id| ChunkId(id.try_into().expect("32 bytes")))
            .collect();
        Ok((
            DeltaHeader {
                bases,
                plain_stored,
            },
            data,
        ))
    }
}

fn split<'b>(bytes: &'b [u8], n: usize, what: &str) -> Result<(&'b [u8], &'b [u8]), String> {
    if bytes.len() < n {
        return Err(format!(
            "delta frame header cut short in its {what} ({} of {n} bytes)",
            bytes.len()
        ));
    }
    Ok(bytes.split_at(n))
}

/// The zstd window a frame against `prefix_len` bytes of base needs to reach all of them.
fn window_log(prefix_len: usize, data_len: usize) -> u32 {
    let span = (prefix_len + data_len).max(1 << 10);
    (usize::BITS - (span - 1).leading_zeros()).clamp(10, 24)
}

/// Compresses `data` at `level` with `base` as its prefix.
pub fn compress(data: &[u8], base: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let fail = |code: usize| std::io::Error::other(zstd::zstd_safe::get_error_name(code));
    let mut cctx = CCtx::try_create().ok_or_else(|| std::io::Error::other("zstd context"))?;
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(fail)?;
    cctx.set_parameter(CParameter::WindowLog(window_log(base.len(), data.len())))
        .map_err(fail)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(fail)?;
    cctx.ref_prefix(base).map_err(fail)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(fail)?;
    Ok(out)
}

/// Decodes the zstd bytes of a delta frame against `base` to at most `frame_len` bytes.
pub fn decompress(zstd: &[u8], base: &[u8], frame_len: usize) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{DCtx, DParameter};
    let fail = |code: usize| std::io::Error::other(zstd::zstd_safe::get_error_name(code));
    let mut dctx = DCtx::try_create().ok_or_else(|| std::io::Error::other("zstd context"))?;
    dctx.set_parameter(DParameter::WindowLogMax(24))
        .map_err(fail)?;
    dctx.ref_prefix(base).map_err(fail)?;
    let mut out = Vec::with_capacity(frame_len);
    dctx.decompress(&mut out, zstd).map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_bad_headers_are_refused() {
        let header = DeltaHeader {
            bases: vec![ChunkId([7; 32]), ChunkId([9; 32])],
            plain_stored: 1234,
        };
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        assert_eq!(bytes.len(), header.encoded_len());
        bytes.extend_from_slice(b"zstd");
        let (back, rest) = DeltaHeader::decode(&bytes).unwrap();
        assert_eq!(back, header);
        assert_eq!(rest, b"zstd");
        for cut in 0..header.encoded_len() {
            assert!(DeltaHeader::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(DeltaHeader::decode(&bad).unwrap_err().contains("version"));
        let mut bad = bytes.clone();
        bad[1] = 0;
        assert!(DeltaHeader::decode(&bad).is_err());
        bad[1] = MAX_BASES as u8 + 1;
        assert!(DeltaHeader::decode(&bad).is_err());
    }

    #[test]
    fn a_chunk_close_to_its_base_compresses_to_its_differences() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let base: Vec<u8> = (0..300_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut data = base.clone();
        for i in (1000..data.len()).step_by(20_000) {
            data[i] ^= 0x5a;
        }
        let plain = zstd::bulk::compress(&data, 3).unwrap();
        let delta = compress(&data, &base, 3).unwrap();
        assert!(
            delta.len() * 50 < plain.len(),
            "{} vs {}",
            delta.len(),
            plain.len()
        );
        assert_eq!(decompress(&delta, &base, data.len()).unwrap(), data);
        // Another base gives other bytes (or an error), never silently the chunk.
        let other = vec![0u8; base.len()];
        assert_ne!(decompress(&delta, &other, data.len()).ok(), Some(data));
    }
}
