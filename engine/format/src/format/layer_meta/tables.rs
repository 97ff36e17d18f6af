//! The checks a reader makes at open, before it trusts anything: header, footer, the object
//! id over header, tables and footer, and the tables themselves (the blocks tile the space
//! between header and tables in order, counts add up, lengths and first keys are sane). After
//! them every block offset and length in the tables is known to lie inside the file.

use super::{
    is_name, is_normalized, Tables, END_MAGIC, FOOTER_LEN, HEADER_LEN, LAYER_META_VERSION, MAGIC,
    MAX_BLOCK_LEN, MAX_TABLES_LEN,
};
use crate::error::{Error, Result};
use crate::LayerMetaId;
use std::borrow::Cow;

/// Reads a little-endian u64 at `at` (the caller has checked the bounds).
fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks the header, the footer and the object id, decodes the tables and checks them.
/// `read(offset, len)` gives bytes of the `len`-byte object (always inside it).
pub(super) fn read_tables<'a>(
    len: u64,
    read: impl Fn(u64, usize) -> Result<Cow<'a, [u8]>>,
    id: Option<LayerMetaId>,
    object: &str,
) -> Result<Tables> {
    let corrupt = |reason: String| Error::corrupt(object.to_string(), reason);
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(format!(
            "{len} bytes is too short for layer metadata"
        )));
    }
    let header = read(0, HEADER_LEN as usize)?;
    if &header[..8] != MAGIC {
        return Err(corrupt(
            "bad magic at offset 0: not cairn layer metadata".into(),
        ));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != LAYER_META_VERSION {
        return Err(corrupt(format!(
            "unsupported layer metadata version {version} at offset 8"
        )));
    }
    let footer_at = len - FOOTER_LEN;
    let footer = read(footer_at, FOOTER_LEN as usize)?;
    if &footer[24..] != END_MAGIC {
        return Err(corrupt(format!(
            "bad footer magic at offset {}",
            footer_at + 24
        )));
    }
    let (tables_offset, stored_len, tables_len) =
        (le_u64(&footer, 0), le_u64(&footer, 8), le_u64(&footer, 16));
    if tables_offset < HEADER_LEN
        || tables_offset.checked_add(stored_len) != Some(footer_at)
        || tables_len > MAX_TABLES_LEN
    {
        return Err(corrupt(format!(
            "footer at offset {footer_at} names tables at {tables_offset} of {stored_len} \
             bytes ({tables_len} decoded) that do not fit"
        )));
    }
    let stored = read(tables_offset, stored_len as usize)?;
    if let Some(id) = id {
        let actual = super::root_id(&header, &stored, &footer);
        if actual != id {
            return Err(Error::DigestMismatch {
                object: object.to_string(),
                expected: id.to_hex(),
                actual: actual.to_hex(),
            });
        }
    }
    let flags = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if flags != 0 {
        return Err(corrupt(format!("unknown flags {flags:#x} at offset 12")));
    }
    let data = super::super::decompress(&stored, tables_len as usize)
        .map_err(|e| corrupt(format!("tables at offset {tables_offset}: zstd: {e}")))?;
    let config = bincode::config::standard().with_limit::<{ MAX_TABLES_LEN as usize }>();
    let (tables, used): (Tables, usize) = bincode::serde::decode_from_slice(&data, config)
        .map_err(|e| corrupt(format!("tables at offset {tables_offset}: {e}")))?;
    if data.len() as u64 != tables_len || used != data.len() {
        return Err(corrupt(format!(
            "tables at offset {tables_offset}: {} bytes decoded, {used} used, footer says {tables_len}",
            data.len()
        )));
    }
    check_tables(&tables, tables_offset)
        .map_err(|e| corrupt(format!("tables at offset {tables_offset}: {e}")))?;
    Ok(tables)
}

/// The blocks tile `[16, tables_offset)` in order (entry blocks, then path blocks), counts add
/// up, lengths are within bounds and the path blocks' first keys are valid and increasing.
fn check_tables(tables: &Tables, tables_offset: u64) -> std::result::Result<(), String> {
    let mut offset = HEADER_LEN;
    let mut entries = 0u64;
    let sane = |what: &str, i: usize, at: u64, stored: u32, decoded: u32, count: u32| {
        if stored == 0 || decoded as u64 > MAX_BLOCK_LEN || count == 0 || count > decoded {
            return Err(format!(
                "{what} {i} at offset {at}: {stored} stored bytes, {decoded} decoded, {count} records"
            ));
        }
        Ok(())
    };
    for (i, b) in tables.entry_blocks.iter().enumerate() {
        if b.offset != offset || b.first_entry != entries {
            return Err(format!(
                "entry block {i} is at offset {} holding entries from {}, expected {offset} and {entries}",
                b.offset, b.first_entry
            ));
        }
        sane(
            "entry block",
            i,
            b.offset,
            b.stored_len,
            b.decoded_len,
            b.count,
        )?;
        offset += b.stored_len as u64;
        entries += b.count as u64;
    }
    if entries != tables.info.entry_count || tables.info.file_count > entries {
        return Err(format!(
            "blocks hold {entries} entries, the layer info says {} ({} files)",
            tables.info.entry_count, tables.info.file_count
        ));
    }
    for (i, b) in tables.path_blocks.iter().enumerate() {
        if b.offset != offset {
            return Err(format!(
                "path block {i} is at offset {}, expected {offset}",
                b.offset
            ));
        }
        sane(
            "path block",
            i,
            b.offset,
            b.stored_len,
            b.decoded_len,
            b.count,
        )?;
        if !is_normalized(&b.first_parent) || !is_name(&b.first_name) {
            return Err(format!(
                "path block {i}: first key is not a normalized path"
            ));
        }
        if i > 0 && tables.path_blocks[i - 1].first_key() >= b.first_key() {
            return Err(format!("path block {i}: first key out of order"));
        }
        offset += b.stored_len as u64;
    }
    if offset != tables_offset {
        return Err(format!(
            "blocks end at offset {offset}, the tables start at {tables_offset}"
        ));
    }
    Ok(())
}
