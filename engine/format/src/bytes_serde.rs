//! `#[serde(with = "crate::bytes_serde")]` for `Vec<u8>` fields: written with
//! `serialize_bytes` and read with `deserialize_byte_buf`. In bincode both are a length and the
//! bytes, exactly what serde's default (a sequence of `u8`) writes, so the encoding does not
//! change; decoding becomes one copy instead of a visit per byte (raw tar headers and paths are
//! most of a layer object's entries).

use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::Serializer;

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(ByteBuf)
}

struct ByteBuf;

impl<'de> Visitor<'de> for ByteBuf {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Plain {
        a: Vec<u8>,
        b: Vec<u8>,
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Fast {
        #[serde(with = "super")]
        a: Vec<u8>,
        #[serde(with = "super")]
        b: Vec<u8>,
    }

    #[test]
    fn the_encoding_is_serdes_default() {
        let config = bincode::config::standard();
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let plain = Plain {
                a: a.clone(),
                b: b"xyz".to_vec(),
            };
            let fast = Fast {
                a,
                b: b"xyz".to_vec(),
            };
            let p = bincode::serde::encode_to_vec(&plain, config).unwrap();
            let f = bincode::serde::encode_to_vec(&fast, config).unwrap();
            assert_eq!(p, f, "len {len}");
            let (back, _): (Fast, usize) = bincode::serde::decode_from_slice(&p, config).unwrap();
            assert_eq!(back, fast);
        }
    }
}
