//! Rows of the analytics tables (`inventory --format parquet --level file|chunk`): every file
//! entry of an image's layers, and every chunk reference of its files, streamed one layer
//! object block at a time to a visitor (nothing per image is held).

use crate::error::Result;
use crate::format::layer_meta::LayerEntry;
use crate::format::Codec;
use crate::layer::EntryKind;
use crate::store::Store;

/// One entry of one layer of an image (every entry kind; whiteouts are entries too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow<'a> {
    /// The entry's layer in the image, 0 = bottom.
    pub layer_index: u32,
    /// The entry's path as the layer's tar records it (lossily converted to UTF-8).
    pub path: &'a str,
    /// file, hardlink, symlink, char, block, dir, fifo, other
    pub kind: &'static str,
    /// Content bytes that follow the entry's tar header (a regular file's size).
    pub size: u64,
    /// The mode field of the tar header (permission, setuid, setgid and sticky bits).
    pub mode: u32,
    /// Numeric owner user id.
    pub uid: u64,
    /// Numeric owner group id.
    pub gid: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Target of a symlink or hard link (lossily converted to UTF-8); `None` for other kinds.
    pub link_target: Option<&'a str>,
    /// BLAKE3 of the file's chunk ids, hex: equal contents, equal ids (regular files only).
    pub content_id: Option<String>,
    /// Chunk references of the file's content (0 for anything but a regular file).
    pub chunks: u32,
}

/// One chunk reference of one regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRow<'a> {
    /// The file's layer in the image, 0 = bottom.
    pub layer_index: u32,
    /// The file's path as the layer's tar records it (lossily converted to UTF-8).
    pub path: &'a str,
    /// Position of the chunk in the file, from 0.
    pub chunk_index: u32,
    /// Where the chunk starts in the file's content, in bytes.
    pub file_offset: u64,
    /// Hex BLAKE3 chunk id.
    pub chunk_id: String,
    /// The chunk's uncompressed length in bytes.
    pub length: u32,
    /// This reference's share of its stored frame's bytes (a frame of several chunks is shared
    /// in proportion to their lengths).
    pub stored_bytes: u64,
    /// How the chunk's frame is stored: raw, zstd, delta
    pub codec: &'static str,
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Hardlink => "hardlink",
        EntryKind::Symlink => "symlink",
        EntryKind::CharDevice => "char",
        EntryKind::BlockDevice => "block",
        EntryKind::Directory => "dir",
        EntryKind::Fifo => "fifo",
        EntryKind::Other(_) => "other",
    }
}

fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Raw => "raw",
        Codec::Zstd => "zstd",
        Codec::Delta => "delta",
    }
}

/// Calls `visit` with every entry of every layer of image `name`, its layer index and its path.
fn for_each_entry(
    store: &Store,
    name: &str,
    mut visit: impl FnMut(u32, &LayerEntry, &str) -> Result<()>,
) -> Result<()> {
    let (_, layers) = store.image_layers(name)?;
    for (index, layer) in layers.iter().enumerate() {
        for entry in layer.entries() {
            let entry = entry?;
            visit(
                index as u32,
                &entry,
                &String::from_utf8_lossy(&entry.meta.path),
            )?;
        }
    }
    Ok(())
}

/// Calls `visit` for every entry of every layer of image `name`.
pub(crate) fn for_each_file(
    store: &Store,
    name: &str,
    mut visit: impl FnMut(&FileRow) -> Result<()>,
) -> Result<()> {
    for_each_entry(store, name, |index, entry, path| {
        let target = entry
            .meta
            .link_target
            .as_ref()
            .map(|t| String::from_utf8_lossy(t));
        let file = entry.meta.kind == EntryKind::File;
        visit(&FileRow {
            layer_index: index,
            path,
            kind: kind_name(entry.meta.kind),
            size: entry.meta.size,
            mode: entry.meta.mode,
            uid: entry.meta.uid,
            gid: entry.meta.gid,
            mtime: entry.meta.mtime,
            link_target: target.as_deref(),
            content_id: file.then(|| hex::encode(super::content_key(entry))),
            chunks: entry.chunks.len() as u32,
        })
    })
}

/// Calls `visit` for every chunk reference of every regular file of image `name`.
pub(crate) fn for_each_chunk(
    store: &Store,
    name: &str,
    mut visit: impl FnMut(&ChunkRow) -> Result<()>,
) -> Result<()> {
    for_each_entry(store, name, |index, entry, path| {
        let mut offset = 0u64;
        for (n, chunk) in entry.chunks.iter().enumerate() {
            visit(&ChunkRow {
                layer_index: index,
                path,
                chunk_index: n as u32,
                file_offset: offset,
                chunk_id: chunk.id.to_hex(),
                length: chunk.slice.len,
                stored_bytes: chunk.stored_share(),
                codec: codec_name(chunk.slice.codec),
            })?;
            offset += chunk.slice.len as u64;
        }
        Ok(())
    })
}

impl Store {
    /// Calls `visit` with every entry of image `name`, layer by layer (the file-level table).
    pub fn for_each_file(
        &self,
        name: &str,
        visit: impl FnMut(&FileRow) -> Result<()>,
    ) -> Result<()> {
        for_each_file(self, name, visit)
    }

    /// Calls `visit` with every chunk of every file of image `name` (the chunk-level table).
    pub fn for_each_chunk(
        &self,
        name: &str,
        visit: impl FnMut(&ChunkRow) -> Result<()>,
    ) -> Result<()> {
        for_each_chunk(self, name, visit)
    }
}
