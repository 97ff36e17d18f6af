//! Compressing a re-created layer tar for export: the level checked against what the codec
//! accepts, then a streaming gzip or zstd encoder (or none) in front of the output. The same
//! tar at the same level always gives the same bytes, so an exported layer's digest is stable
//! and layouts written by separate exports share blobs. `decompress` is the other direction.

use super::Compression;
use crate::error::{Error, Result};
use std::io::{self, Write};

const GZIP_DEFAULT_LEVEL: i32 = 6;
const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// The level to compress at: `level`, or the codec's default, checked against what the codec
/// accepts (gzip 0 to 9, zstd as the zstd library allows, none takes none).
pub fn checked_level(compression: Compression, level: Option<i32>) -> Result<i32> {
    match compression {
        Compression::None => match level {
            None => Ok(0),
            Some(l) => Err(Error::Usage(format!(
                "compression level {l}: uncompressed layers take no level"
            ))),
        },
        Compression::Gzip => {
            let l = level.unwrap_or(GZIP_DEFAULT_LEVEL);
            if (0..=9).contains(&l) {
                Ok(l)
            } else {
                Err(Error::Usage(format!(
                    "gzip compression level {l}: expected 0 to 9"
                )))
            }
        }
        Compression::Zstd => {
            let l = level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            let range = zstd::compression_level_range();
            if range.contains(&l) {
                Ok(l)
            } else {
                Err(Error::Usage(format!(
                    "zstd compression level {l}: expected {} to {}",
                    range.start(),
                    range.end()
                )))
            }
        }
    }
}

/// A layer's compressor: what is written to it goes out compressed to the inner writer.
pub enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// `level` as `checked_level` returns it.
    pub fn new(compression: Compression, level: i32, out: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::None(out),
            // No mtime, no name, OS "unknown": the same tar always gives the same blob.
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(level.unsigned_abs())),
            ),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, level)?),
        })
    }

    /// Ends the compressed stream; returns the writer it went to.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(out) => Ok(out),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(out) => out.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(out) => out.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn levels() {
        assert_eq!(checked_level(Compression::Gzip, None).unwrap(), 6);
        assert_eq!(checked_level(Compression::Zstd, None).unwrap(), 3);
        assert_eq!(checked_level(Compression::None, None).unwrap(), 0);
        assert!(checked_level(Compression::Gzip, Some(10)).is_err());
        assert!(checked_level(Compression::None, Some(1)).is_err());
    }

    /// Each encoder round-trips through its decoder, and gzip output carries no mtime or OS.
    #[test]
    fn encodes_what_decompress_decodes() {
        let tar: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let level = checked_level(compression, None).unwrap();
            let mut encoder = Encoder::new(compression, level, Vec::new()).unwrap();
            encoder.write_all(&tar).unwrap();
            let encoded = encoder.finish().unwrap();
            if compression == Compression::Gzip {
                assert_eq!(&encoded[4..8], &[0, 0, 0, 0]);
                assert_eq!(encoded[9], 255);
            }
            let mut decoded = Vec::new();
            compression
                .decoder(encoded.as_slice())
                .unwrap()
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, tar);
        }
    }
}
