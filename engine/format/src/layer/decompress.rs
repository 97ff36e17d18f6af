//! Layer compression: recognised from the OCI/Docker media type or, for bare files, from the
//! first bytes; decoded as a stream (gzip via flate2's zlib-rs backend, zstd). The encoders
//! are in `compress`.

use crate::oci::media_type;
use std::io::{self, BufReader, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type implies, or `None` for a type cairn does not know.
    pub fn from_media_type(layer_type: &str) -> Option<Compression> {
        match layer_type {
            media_type::OCI_LAYER
            | media_type::OCI_NONDISTRIBUTABLE_LAYER
            | media_type::DOCKER_LAYER => Some(Compression::None),
            media_type::OCI_LAYER_GZIP
            | media_type::OCI_NONDISTRIBUTABLE_LAYER_GZIP
            | media_type::DOCKER_LAYER_GZIP
            | media_type::DOCKER_FOREIGN_LAYER_GZIP => Some(Compression::Gzip),
            media_type::OCI_LAYER_ZSTD | media_type::OCI_NONDISTRIBUTABLE_LAYER_ZSTD => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// The OCI layer media type for a layer compressed this way (the inverse of
    /// `from_media_type` for the OCI types).
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => media_type::OCI_LAYER,
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }

    /// Recognises gzip and zstd by their magic numbers; anything else is taken as a plain tar.
    pub fn sniff(first_bytes: &[u8]) -> Compression {
        if first_bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Wraps `reader` in the matching decoder.
    pub fn decoder<'a, R: Read + 'a>(self, reader: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            // MultiGzDecoder: a layer may be several concatenated gzip members.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(256 * 1024, reader),
            )),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        })
    }
}
