//! Reading images back from bootstraps and blobs (no index): a layer's exact tar, and one file
//! of the merged root filesystem. Every chunk is checked against its id as it is read, and a
//! re-created layer against its diff_id.

use crate::error::{Error, Result};
use crate::format::blob::BlobReader;
use crate::format::bootstrap::{Bootstrap, EntryRecord};
use crate::layer::EntryKind;
use crate::progress::Progress;
use crate::store::Store;
use crate::Sha256Digest;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;

/// Reads the chunks of one bootstrap, keeping each blob mapped once opened.
pub struct ChunkReader<'a> {
    store: &'a Store,
    bootstrap: &'a Bootstrap,
    blobs: HashMap<u32, BlobReader>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(store: &'a Store, bootstrap: &'a Bootstrap) -> Self {
        ChunkReader {
            store,
            bootstrap,
            blobs: HashMap::new(),
        }
    }

    /// Chunk `index` of the bootstrap's chunk table, verified.
    pub fn read(&mut self, index: u32) -> Result<Vec<u8>> {
        let chunk = &self.bootstrap.chunks[index as usize];
        let blob = &self.bootstrap.blobs[chunk.blob as usize];
        let reader = match self.blobs.entry(chunk.blob) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(BlobReader::open(&self.store.blob_path(&blob.id), blob.id)?)
            }
        };
        reader.read_chunk(&chunk.id, &self.bootstrap.location(chunk))
    }

    /// Writes one entry's content.
    pub fn write_entry(&mut self, entry: &EntryRecord, out: &mut dyn Write) -> Result<u64> {
        let mut written = 0;
        for &c in &entry.chunks {
            let data = self.read(c)?;
            out.write_all(&data).map_err(write_err)?;
            written += data.len() as u64;
        }
        Ok(written)
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::io("write output", std::path::Path::new("-"), e)
}

struct HashingWriter<'a> {
    out: &'a mut dyn Write,
    hasher: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

pub fn export_layer(
    store: &Store,
    name: &str,
    layer: usize,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<Sha256Digest> {
    let bootstrap = store.bootstrap(name)?;
    let record = bootstrap.layers.get(layer).ok_or_else(|| {
        Error::Usage(format!(
            "image {name:?} has {} layers (0 to {}); there is no layer {layer}",
            bootstrap.layers.len(),
            bootstrap.layers.len().saturating_sub(1)
        ))
    })?;
    progress.set_length(record.size);
    let mut reader = ChunkReader::new(store, &bootstrap);
    let mut hashing = HashingWriter {
        out,
        hasher: Sha256::new(),
    };
    for entry in &record.entries {
        hashing.write_all(&entry.raw_header).map_err(write_err)?;
        let n = reader.write_entry(entry, &mut hashing)?;
        progress.inc(entry.raw_header.len() as u64 + n);
    }
    hashing.write_all(&record.trailer).map_err(write_err)?;
    hashing.flush().map_err(write_err)?;
    progress.finish();
    let actual = Sha256Digest(hashing.hasher.finalize().into());
    if actual != record.diff_id {
        return Err(Error::DigestMismatch {
            object: format!("image {name:?} layer {layer} as re-created"),
            expected: record.diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(actual)
}

/// `a/b/c` for any of `./a/b/c`, `/a/b/c/`, `a//b/c`.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    parts.join(&b'/')
}

fn parent_and_name(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// What a layer says about a path of the merged view.
enum Lookup<'a> {
    Found(&'a EntryRecord),
    /// Deleted by a whiteout, or hidden by an opaque directory: look no lower.
    Hidden,
    NotHere,
}

fn lookup_in_layer<'a>(entries: &'a [EntryRecord], path: &[u8]) -> Lookup<'a> {
    // Whiteouts of the path or of any ancestor, and opaque ancestors.
    let mut hiding = Vec::new();
    let mut opaque = Vec::new();
    let mut current = path;
    loop {
        let (dir, name) = parent_and_name(current);
        hiding.push(join(dir, &[b".wh.", name].concat()));
        opaque.push(join(dir, b".wh..wh..opq"));
        if dir.is_empty() {
            break;
        }
        current = dir;
    }
    let mut found = None;
    let mut hidden = false;
    for entry in entries {
        let p = normalize(&entry.meta.path);
        if p == path {
            found = Some(entry);
        } else if hiding.contains(&p) || opaque.contains(&p) {
            hidden = true;
        }
    }
    match (found, hidden) {
        (Some(e), _) => Lookup::Found(e),
        (None, true) => Lookup::Hidden,
        (None, false) => Lookup::NotHere,
    }
}

/// Finds `path` in the merged view of `layers[..=top]`.
fn find<'a>(
    bootstrap: &'a Bootstrap,
    top: usize,
    path: &[u8],
    depth: usize,
) -> Result<Option<&'a EntryRecord>> {
    for layer in bootstrap.layers[..=top].iter().rev() {
        match lookup_in_layer(&layer.entries, path) {
            Lookup::Found(entry) if entry.meta.kind == EntryKind::Hardlink && depth < 16 => {
                let target = normalize(entry.meta.link_target.as_deref().unwrap_or_default());
                return find(bootstrap, top, &target, depth + 1);
            }
            Lookup::Found(entry) => return Ok(Some(entry)),
            Lookup::Hidden => return Ok(None),
            Lookup::NotHere => {}
        }
    }
    Ok(None)
}

pub fn cat(store: &Store, name: &str, path: &str, out: &mut dyn Write) -> Result<u64> {
    let bootstrap = store.bootstrap(name)?;
    let wanted = normalize(path.as_bytes());
    if bootstrap.layers.is_empty() {
        return Err(Error::Usage(format!("image {name:?} has no layers")));
    }
    let entry = find(&bootstrap, bootstrap.layers.len() - 1, &wanted, 0)?
        .ok_or_else(|| Error::Usage(format!("{path}: no such file in image {name:?}")))?;
    if entry.meta.kind != EntryKind::File {
        return Err(Error::Usage(format!(
            "{path} in image {name:?} is a {:?}, not a regular file",
            entry.meta.kind
        )));
    }
    let mut reader = ChunkReader::new(store, &bootstrap);
    reader.write_entry(entry, out)
}
