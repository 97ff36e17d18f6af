//! Entry points for the fuzz targets in `fuzz/`: each feeds arbitrary bytes to one decoder and
//! must return (with an error or not) without panicking. Not a stable API.

use std::io::Read;

/// Walks a tar stream to its end, reading every entry's content.
pub fn tar_stream(data: &[u8]) {
    let mut stream = crate::layer::TarStream::new(data, "fuzz");
    let mut buf = [0u8; 4096];
    while let Ok(Some(_)) = stream.next_entry() {
        let mut content = stream.content();
        loop {
            match content.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let _ = stream.take_trailer();
}

/// Decodes a blob's footer and table of contents, then again with the ToC checksum made to
/// match (so random ToC records reach the record checks), and decodes every frame the ToC
/// names and takes each chunk out of it.
pub fn blob_toc(data: &[u8]) {
    use crate::format::blob::{decode_toc, FOOTER_LEN};
    let _ = decode_toc(data, "fuzz");
    let len = data.len() as u64;
    if len < FOOTER_LEN {
        return;
    }
    let footer_at = (len - FOOTER_LEN) as usize;
    let toc_offset = u64::from_le_bytes(data[footer_at..footer_at + 8].try_into().unwrap());
    if toc_offset > footer_at as u64 {
        return;
    }
    let mut patched = data.to_vec();
    let checksum = blake3::hash(&data[toc_offset as usize..footer_at]);
    patched[footer_at + 16..footer_at + 48].copy_from_slice(checksum.as_bytes());
    let Ok(toc) = decode_toc(&patched, "fuzz") else {
        return;
    };
    for entry in toc {
        let (start, end) = (
            entry.offset as usize,
            entry.offset as usize + entry.stored_len as usize,
        );
        let object = || "fuzz".to_string();
        if let Ok(frame) =
            crate::format::decode_frame(&patched[start..end], entry.frame_len, entry.codec, object)
        {
            let _ =
                crate::format::chunk_from_frame(&entry.id, &frame, entry.skip, entry.len, object);
        }
    }
}

/// Decodes a bootstrap file.
pub fn bootstrap(data: &[u8]) {
    let _ = crate::format::bootstrap::Bootstrap::decode(data, "fuzz");
}

/// Decodes a bootstrap payload as if its checksum had matched (reaches the bincode decoder and
/// the reference checks, which the checksum otherwise shields from random input).
pub fn bootstrap_payload(data: &[u8]) {
    let _ = crate::format::bootstrap::Bootstrap::decode_payload(data, "fuzz");
}

/// Parses an OCI index, manifest and config from the same bytes.
pub fn oci_json(data: &[u8]) {
    use crate::oci::{parse, Config, Index, Manifest};
    let _ = parse::<Index>(data, "fuzz");
    let _ = parse::<Manifest>(data, "fuzz");
    let _ = parse::<Config>(data, "fuzz");
}
