//! A frame decoded only as far as its readers need: a zstd frame is decoded block by block
//! (blocks are at most 128 KiB) into a buffer of the frame's length, and the decoder's state is
//! kept so that a later read resumes where the last one stopped instead of starting over.
//! Raw and delta frames (a delta frame holds one chunk, the whole frame) are whole at once.
//! The decoder writes into the frame's own buffer (zstd's stable output buffer), so a paused
//! frame holds its decoded prefix, its stored bytes and a decoder context (about 100 KiB),
//! never a second window; `held_bytes` says how much. Nothing here checks chunk ids: as with
//! `decode_frame`, the caller checks each chunk (`chunk_from_frame`) before using its bytes.

use super::{decode_frame, BaseSource, Codec};
use crate::{Error, Result};
use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer};

/// Stored bytes given to the decoder before it says how many the next block needs.
const FIRST_INPUT: usize = 1 << 14;

/// A frame decoded from its start to `decoded().len()`, and able to go on.
pub struct PartialFrame {
    /// Allocated at the frame's length, never grown: the decoder's window lives in it.
    data: Vec<u8>,
    frame_len: usize,
    /// The zstd decoder while the frame is not whole.
    rest: Option<Box<Resume>>,
}

struct Resume {
    decoder: DCtx<'static>,
    stored: Vec<u8>,
    /// Stored bytes given to the decoder so far, and how many it wants next.
    consumed: usize,
    wanted: usize,
}

impl PartialFrame {
    /// A frame about to be decoded from `stored` (its bytes in the blob). Raw and delta frames
    /// are decoded whole now (`bases` gives a delta frame's bases); a zstd frame is not
    /// decoded at all until `extend_to`. `object` names the frame in errors.
    pub fn new(
        stored: Vec<u8>,
        frame_len: u32,
        codec: Codec,
        object: impl Fn() -> String,
        bases: &dyn BaseSource,
    ) -> Result<PartialFrame> {
        let frame_len_usize = frame_len as usize;
        if codec != Codec::Zstd {
            let data = decode_frame(&stored, frame_len, codec, object, bases)?;
            return Ok(PartialFrame {
                data,
                frame_len: frame_len_usize,
                rest: None,
            });
        }
        let zstd_error = |e: usize| {
            Error::corrupt(
                object(),
                format!("zstd: {}", zstd::zstd_safe::get_error_name(e)),
            )
        };
        let mut decoder = DCtx::try_create().ok_or_else(|| {
            Error::corrupt(object(), "zstd: cannot create a decompression context")
        })?;
        decoder
            .set_parameter(DParameter::StableOutBuffer(true))
            .map_err(zstd_error)?;
        Ok(PartialFrame {
            data: Vec::with_capacity(frame_len_usize),
            frame_len: frame_len_usize,
            rest: Some(Box::new(Resume {
                decoder,
                stored,
                consumed: 0,
                wanted: FIRST_INPUT,
            })),
        })
    }

    /// The bytes decoded so far, from the frame's start.
    pub fn decoded(&self) -> &[u8] {
        &self.data
    }

    /// True once the whole frame is decoded (and its end checked).
    pub fn is_whole(&self) -> bool {
        self.rest.is_none()
    }

    /// The frame's decoded length.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Memory the frame holds: its buffer, and while partial its stored bytes and decoder.
    pub fn held_bytes(&self) -> usize {
        self.data.capacity()
            + self
                .rest
                .as_ref()
                .map_or(0, |r| r.stored.capacity() + r.decoder.sizeof())
    }

    /// Decodes on until at least `need` bytes (at most the frame's length) are decoded, a
    /// block at a time; `need` of the frame's length also checks the frame's end. Returns the
    /// bytes newly decoded. A frame that ends early, runs over its length or has bytes after
    /// its end is an error naming `object`.
    pub fn extend_to(&mut self, need: usize, object: impl Fn() -> String) -> Result<usize> {
        let need = need.min(self.frame_len);
        let before = self.data.len();
        while self.data.len() < need || (need == self.frame_len && self.rest.is_some()) {
            let Some(rest) = self.rest.as_mut() else {
                break;
            };
            let end = rest
                .consumed
                .saturating_add(rest.wanted.max(1))
                .min(rest.stored.len());
            if rest.consumed >= end {
                return Err(Error::corrupt(
                    object(),
                    format!(
                        "zstd frame ends after {} of its {} bytes",
                        self.data.len(),
                        self.frame_len
                    ),
                ));
            }
            let mut input = InBuffer::around(&rest.stored[rest.consumed..end]);
            let at = self.data.len();
            let mut output = OutBuffer::around_pos(&mut self.data, at);
            let wanted = rest
                .decoder
                .decompress_stream(&mut output, &mut input)
                .map_err(|e| {
                    Error::corrupt(
                        object(),
                        format!("zstd: {}", zstd::zstd_safe::get_error_name(e)),
                    )
                })?;
            if input.pos() == 0 && self.data.len() == at {
                return Err(Error::corrupt(
                    object(),
                    format!(
                        "zstd stops after {at} of the frame's {} bytes",
                        self.frame_len
                    ),
                ));
            }
            rest.consumed += input.pos();
            rest.wanted = wanted;
            if self.data.len() > self.frame_len {
                return Err(Error::corrupt(
                    object(),
                    format!("zstd frame decodes past its {} bytes", self.frame_len),
                ));
            }
            if wanted == 0 {
                self.finish(&object)?;
            }
        }
        Ok(self.data.len() - before)
    }

    /// The decoder said the frame ended: it must have the frame's length and no bytes after.
    fn finish(&mut self, object: &impl Fn() -> String) -> Result<()> {
        let Some(rest) = self.rest.take() else {
            return Ok(());
        };
        if self.data.len() != self.frame_len {
            return Err(Error::corrupt(
                object(),
                format!(
                    "frame decodes to {} bytes, expected {}",
                    self.data.len(),
                    self.frame_len
                ),
            ));
        }
        if rest.consumed != rest.stored.len() {
            return Err(Error::corrupt(
                object(),
                format!(
                    "{} stored bytes after the end of the zstd frame",
                    rest.stored.len() - rest.consumed
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::NoBases;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially: several zstd blocks.
        (0..len)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    fn object() -> String {
        "test frame".into()
    }

    #[test]
    fn decodes_only_as_far_as_asked_and_resumes() {
        let data = sample(900_000);
        let stored = zstd::bulk::compress(&data, 3).unwrap();
        let mut frame =
            PartialFrame::new(stored, data.len() as u32, Codec::Zstd, object, &NoBases).unwrap();
        assert!(frame.decoded().is_empty());
        frame.extend_to(10, object).unwrap();
        let first = frame.decoded().len();
        assert!((10..=128 << 10).contains(&first), "one block: {first}");
        assert_eq!(frame.decoded(), &data[..first]);
        for need in [first, 300_000, 300_001, 899_999, 900_000] {
            frame.extend_to(need, object).unwrap();
            assert!(frame.decoded().len() >= need);
            assert_eq!(frame.decoded(), &data[..frame.decoded().len()]);
        }
        assert!(frame.is_whole());
        assert_eq!(frame.decoded(), &data[..]);
        assert_eq!(frame.extend_to(900_000, object).unwrap(), 0);
    }

    #[test]
    fn a_frame_of_the_wrong_length_or_with_trailing_bytes_is_refused() {
        let data = sample(300_000);
        let stored = zstd::bulk::compress(&data, 3).unwrap();
        // Claims more bytes than the frame has.
        let mut long =
            PartialFrame::new(stored.clone(), 300_001, Codec::Zstd, object, &NoBases).unwrap();
        assert!(long.extend_to(300_001, object).is_err());
        // Claims fewer: the decoder runs over the buffer.
        let mut short =
            PartialFrame::new(stored.clone(), 299_999, Codec::Zstd, object, &NoBases).unwrap();
        assert!(short.extend_to(299_999, object).is_err());
        // Bytes after the frame's end.
        let mut trailing = stored.clone();
        trailing.extend_from_slice(b"junk");
        let mut frame =
            PartialFrame::new(trailing, 300_000, Codec::Zstd, object, &NoBases).unwrap();
        assert!(frame.extend_to(300_000, object).is_err());
        // Cut short.
        let cut = stored[..stored.len() / 2].to_vec();
        let mut frame = PartialFrame::new(cut, 300_000, Codec::Zstd, object, &NoBases).unwrap();
        let err = frame.extend_to(300_000, object).unwrap_err().to_string();
        assert!(err.contains("test frame"), "{err}");
    }

    #[test]
    fn damaged_stored_bytes_are_an_error_or_wrong_bytes_never_a_panic() {
        let data = sample(400_000);
        let stored = zstd::bulk::compress(&data, 3).unwrap();
        for at in (0..stored.len()).step_by(stored.len() / 97 + 1) {
            let mut damaged = stored.clone();
            damaged[at] ^= 0x5a;
            let Ok(mut frame) = PartialFrame::new(damaged, 400_000, Codec::Zstd, object, &NoBases)
            else {
                continue;
            };
            let _ = frame.extend_to(400_000, object);
            assert!(frame.decoded().len() <= 400_000);
        }
    }

    #[test]
    fn raw_frames_are_whole_at_once() {
        let data = sample(1000);
        let mut frame =
            PartialFrame::new(data.clone(), 1000, Codec::Raw, object, &NoBases).unwrap();
        assert!(frame.is_whole());
        assert_eq!(frame.extend_to(1000, object).unwrap(), 0);
        assert_eq!(frame.decoded(), &data[..]);
    }
}
