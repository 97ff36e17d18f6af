//! Delta bases from the image's own earlier layers. A layer that rewrites a file an earlier
//! layer of the same image wrote (`pip install` of a new version, an upgrade in a later `RUN`)
//! finds that version here before any base image's: it is the newest one. As each layer's
//! processor decides the chunks of a regular file of at least `SKETCH_MIN_FILE` bytes, it
//! collects them (`LayerFiles`) and, once the file's last chunk is decided and the batch
//! written, registers the file under its path and layer (`EarlierLayers`); a later layer's file
//! at that path then takes the nearest lower layer's version as its old version
//! (`delta.rs`). Memory: one entry per large file, an id per chunk of it, and a place per new
//! plain chunk of it (`WrittenChunks`), for the image's convert.
//!
//! The bases such a file offers are mostly new in this convert: the layer's blob builder
//! records where it wrote them (`ops/written_chunks.rs`), and `delta.rs` reads them back from
//! there, checked against their ids (a chunk the index has is read where the index has it).
//! Before the commit they are nowhere else; at the commit they are indexed with every other new
//! chunk of the image (step 1, before the layer objects that name the delta frames), so that
//! afterwards readers, verify and gc find them through the index.
//!
//! Layers run concurrently, so whether layer M's file is registered (and its chunks written)
//! when layer N > M needs it depends on timing: any base found is correct, none found falls
//! back to the base images. With one layer in flight (`ConvertOptions::layers_in_flight`)
//! every earlier layer is complete before a layer starts.

use super::delta::{BaseOrigin, OldChunk, OldFile, Origin};
use crate::write::written_chunks::WrittenChunks;
use crate::ChunkId;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The versions of one path: (layer, the file there).
type Versions = Vec<(usize, Arc<OldFile>)>;

/// The large regular files of the image's layers processed so far, and where this convert
/// wrote their new chunks.
#[derive(Default)]
pub(super) struct EarlierLayers {
    /// By normalized path: the layers that had a regular file there, each with its chunks.
    files: RwLock<HashMap<Vec<u8>, Versions>>,
    pub written: WrittenChunks,
}

impl EarlierLayers {
    /// The file at `path` in the nearest layer below `layer`, if one was registered.
    pub(super) fn find(&self, layer: usize, path: &[u8]) -> Option<Arc<OldFile>> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files
            .get(path)?
            .iter()
            .filter(|(l, _)| *l < layer)
            .max_by_key(|(l, _)| *l)
            .map(|(_, file)| file.clone())
    }

    /// Registers layer `layer`'s file at `path` (a later entry at the same path in the same
    /// layer replaces it, as it does in the layer's tree).
    fn register(&self, layer: usize, path: Vec<u8>, file: OldFile) {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let versions = files.entry(path).or_default();
        versions.retain(|(l, _)| *l != layer);
        versions.push((layer, Arc::new(file)));
    }
}

/// One layer's large regular files as its processor decides their chunks, in stream order:
/// the file being collected, and those complete but not yet registered (their last chunks
/// are written with the batch).
#[derive(Default)]
pub(super) struct LayerFiles {
    current: Option<(Arc<super::delta::FileRef>, Vec<OldChunk>)>,
    complete: Vec<(Vec<u8>, OldFile)>,
}

impl LayerFiles {
    /// Notes a decided chunk of `origin`'s file (`delta`: it is stored in a delta frame and
    /// is no base).
    pub(super) fn chunk(&mut self, origin: &Origin, id: ChunkId, len: u32, delta: bool) {
        let file = &origin.file;
        if !file.may_be_base() {
            return;
        }
        let same = matches!(&self.current, Some((f, _)) if Arc::ptr_eq(f, file));
        if !same {
            self.current = Some((file.clone(), Vec::new()));
        }
        let (_, chunks) = self.current.as_mut().expect("current file just set");
        chunks.push((origin.offset, id, len, delta));
        if origin.offset + len as u64 == file.size {
            let (file, chunks) = self.current.take().expect("current file present");
            let old = OldFile {
                size: file.size,
                chunks,
                plain_stored: 0,
                plain_len: 0,
                origin: BaseOrigin::EarlierLayer,
            };
            self.complete.push((file.path.clone(), old));
        }
    }

    /// Registers the complete files as layer `layer`'s (once the batch is written).
    pub(super) fn register(&mut self, earlier: &EarlierLayers, layer: usize) {
        for (path, file) in self.complete.drain(..) {
            earlier.register(layer, path, file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::convert::delta::FileRef;

    fn origin(file: &Arc<FileRef>, offset: u64) -> Origin {
        Origin {
            file: file.clone(),
            offset,
        }
    }

    fn file(path: &[u8], size: u64, regular: bool) -> Arc<FileRef> {
        Arc::new(FileRef {
            path: path.to_vec(),
            size,
            regular,
            sketch: std::sync::OnceLock::new(),
        })
    }

    #[test]
    fn a_layer_finds_the_nearest_lower_layers_complete_large_regular_file() {
        let earlier = EarlierLayers::default();
        let size = 200_000;
        let mut files = LayerFiles::default();
        let big = file(b"usr/lib.so", size, true);
        files.chunk(&origin(&big, 0), ChunkId([1; 32]), 100_000, false);
        files.register(&earlier, 1);
        // Not complete yet: not registered.
        assert!(earlier.find(2, b"usr/lib.so").is_none());
        files.chunk(&origin(&big, 100_000), ChunkId([2; 32]), 100_000, true);
        // Small files and other entry kinds are never registered.
        files.chunk(
            &origin(&file(b"small", 100, true), 0),
            ChunkId([3; 32]),
            100,
            false,
        );
        let odd = file(b"odd", size, false);
        files.chunk(&origin(&odd, 0), ChunkId([4; 32]), size as u32, false);
        files.register(&earlier, 1);
        let found = earlier.find(2, b"usr/lib.so").unwrap();
        assert_eq!(found.chunks.len(), 2);
        assert!(found.chunks[1].3, "the delta chunk is marked");
        assert_eq!(found.origin, BaseOrigin::EarlierLayer);
        assert!(
            earlier.find(1, b"usr/lib.so").is_none(),
            "not its own layer"
        );
        assert!(earlier.find(2, b"small").is_none());
        assert!(earlier.find(2, b"odd").is_none());
        // Layer 3's version is the nearest for layer 5, layer 1's for layer 2.
        let mut later = LayerFiles::default();
        let newer = file(b"usr/lib.so", 100_000, true);
        later.chunk(&origin(&newer, 0), ChunkId([5; 32]), 100_000, false);
        later.register(&earlier, 3);
        assert_eq!(earlier.find(5, b"usr/lib.so").unwrap().size, 100_000);
        assert_eq!(earlier.find(2, b"usr/lib.so").unwrap().size, size);
    }
}
