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

/// Decodes a blob's footer and table of contents.
pub fn blob_toc(data: &[u8]) {
    let _ = crate::format::blob::decode_toc(data, "fuzz");
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
    crate::source::fuzz_parse_json(data);
}
