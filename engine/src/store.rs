//! `Store`: a store directory opened for reading; `SharedWriter`: the same opened for adding
//! images alongside other writers (convert); `StoreWriter`: opened by the one exclusive writer
//! (convert, rm, gc, the index repair). Store layer: each command adds its methods to these
//! types in an `impl` block of its own module (`ops/`, `rewrite/`; docs/ARCHITECTURE.md);
//! the operations that change the store exist only on the writers. Both writers hold a
//! `Writer` (the store, the writer's own directory under `tmp/`, its locks), which the writing
//! machinery takes; `StoreWriter::store` and `SharedWriter::store` give the `Store` to read
//! (a writer is never a `Store` by `Deref`: what a value may do is what its type names).
//!
//! A shared writer holds `WRITERS` shared for its whole run and looks chunks up in an index
//! opened read-only (its table files opened at once, so that another writer's compaction
//! cannot take them away); only for a commit does it take the commit lock (`LOCK`, waiting its
//! turn) and open the index for writing (`Writer::commit_access`). An exclusive writer holds
//! `WRITERS` exclusively, `LOCK` and the index open for writing for as long as it lives.
//! Paths, locks and the index swap belong to `StoreLayout` (`layout.rs`).

use crate::chunk::ChunkerParams;
use crate::error::{Error, IoContext, Result};
use crate::format::blob::BlobReader;
use crate::format::bootstrap::Bootstrap;
use crate::format::layer_meta::LayerMeta;
use crate::format::store_config::{CompressionParams, StoreConfig};
use crate::index::{ImageRecord, Index};
use crate::layout::{StoreLayout, TmpReclaimed, WriterDir, WriterLock, WritersGuard};
use crate::{BlobId, ImageId, LayerMetaId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads and checks a bootstrap file: its BLAKE3 must be `id`, then it must decode.
pub(crate) fn read_bootstrap(path: &Path, id: &ImageId) -> Result<Bootstrap> {
    let bytes = std::fs::read(path).with_path("read bootstrap", path)?;
    let object = format!("bootstrap {}", id.to_hex());
    let actual = crate::format::bootstrap::image_id(&bytes);
    if actual != *id {
        return Err(Error::DigestMismatch {
            object,
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Bootstrap::decode(&bytes, &object)
}

/// Opens a stored layer metadata object (its id checked; each block checked as it is read).
pub(crate) fn open_layer_meta(layout: &StoreLayout, id: &LayerMetaId) -> Result<LayerMeta> {
    LayerMeta::open(
        &layout.layer_meta(id),
        *id,
        &format!("layer metadata {}", id.to_hex()),
    )
}

/// An index that cannot be opened: say how to rebuild it.
fn repair_hint(e: Error) -> Error {
    match e {
        Error::Index { .. } => Error::Usage(format!(
            "{e}; if the index is damaged, `cairn verify --repair-index` rebuilds it from the \
             blobs and bootstraps"
        )),
        other => other,
    }
}

/// Parameters fixed when a store is created.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct InitOptions {
    /// What decides chunk boundaries (FastCDC sizes); fixed for the store's life.
    pub chunker: ChunkerParams,
    /// How new chunks are compressed: algorithm, level, frame size, default delta mode.
    pub compression: CompressionParams,
}

impl InitOptions {
    /// These chunker and compression parameters (checked by `StoreWriter::init`).
    pub fn new(chunker: ChunkerParams, compression: CompressionParams) -> InitOptions {
        InitOptions {
            chunker,
            compression,
        }
    }
}

/// A store opened for reading: needs no lock and works while a writer runs.
pub struct Store {
    layout: StoreLayout,
    config: StoreConfig,
    index: Index,
    /// Decoded frames of delta bases (`view::bases`).
    base_frames: crate::frame_cache::BaseFrames,
    /// The blobs of the images opened so far (`image_layers_by_id`), mapped at once: a gc or
    /// optimize that rewrites an image meanwhile deletes its old blobs, but a file open here
    /// stays readable, so a reader that has started goes on.
    held_blobs: std::sync::Mutex<HashMap<BlobId, Arc<BlobReader>>>,
}

/// What every writer holds (see the module doc). Fields drop in order: the index closes
/// before the writer's directory goes and its locks are released.
pub(crate) struct Writer {
    store: Store,
    dir: WriterDir,
    /// An exclusive writer's commit lock, held for its whole life.
    lock: Option<WriterLock>,
    /// What dead writers left under `tmp/`, removed when this one started.
    reclaimed: TmpReclaimed,
    _writers: WritersGuard,
}

/// The index a writer looks chunks up in: its own, or one opened for the purpose.
pub(crate) enum IndexRef<'a> {
    Borrowed(&'a Index),
    Owned(Box<Index>),
}

impl std::ops::Deref for IndexRef<'_> {
    type Target = Index;

    fn deref(&self) -> &Index {
        match self {
            IndexRef::Borrowed(index) => index,
            IndexRef::Owned(index) => index,
        }
    }
}

/// The index open for writing while a writer commits, with the commit lock. Fields drop in
/// order: the index closes before the lock is released.
pub(crate) struct CommitAccess<'a> {
    index: IndexRef<'a>,
    _lock: Option<WriterLock>,
    /// How long the writer waited for the commit lock.
    pub waited: std::time::Duration,
}

impl std::ops::Deref for CommitAccess<'_> {
    type Target = Index;

    fn deref(&self) -> &Index {
        &self.index
    }
}

impl Writer {
    /// The store, for reading.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Opens for writing: takes `WRITERS` (exclusively or shared), then the commit lock, under
    /// which it finishes or undoes an index swap that a crash interrupted, removes what dead
    /// writers left under `tmp/` and creates its own directory there. A shared writer then
    /// releases the commit lock and keeps the index open read-only.
    fn open(root: &Path, exclusive: bool) -> Result<Writer> {
        let layout = StoreLayout::new(root);
        let mut config = Store::read_config(&layout)?;
        // Only `init` creates an index: a store whose index is gone, empty or lacks a column
        // family stops here, before any lock file, directory or index file is touched. (The
        // open for writing below checks again, under the locks.)
        Store::check_index(&layout)?;
        let writers = match exclusive {
            true => layout.writers_exclusive()?,
            false => layout.writers_shared()?,
        };
        let lock = match exclusive {
            true => layout.lock()?,
            false => layout.lock_wait()?,
        };
        layout.recover_interrupted_swap(&lock)?;
        let reclaimed = layout.reclaim_dead_writers(&lock)?;
        let dir = layout.create_writer_dir(&lock)?;
        let path = layout.index_dir();
        let blobs = layout.blobs_dir();
        let index = match exclusive {
            true => Index::open(&path, &blobs),
            // Under the commit lock: no commit flushes while the files are listed.
            false => Index::open_pinned(&path, &blobs),
        }
        .map_err(repair_hint)?;
        layout.require_not_blank(&index)?;
        if config.format_version == crate::format::store_config::UPGRADABLE_VERSION {
            // A format-4 store is a format-5 store without delta frames; once this writer may
            // add some, cairn releases that know none must refuse it.
            config.format_version = crate::FORMAT_VERSION;
            write_config(&layout, &dir, &config, "open.config.upgrade")?;
        }
        Ok(Writer {
            store: Store::new(layout, config, index),
            dir,
            lock: exclusive.then_some(lock),
            reclaimed,
            _writers: writers,
        })
    }

    /// A fresh, unique path in this writer's directory under `tmp/`.
    pub(crate) fn tmp_file(&self, suffix: &str) -> PathBuf {
        self.dir.file(suffix)
    }

    /// Removes this writer's files in progress (after an error: nothing of them is committed).
    pub(crate) fn clear_tmp(&self) -> Result<()> {
        self.dir.clear()
    }

    /// What dead writers left under `tmp/`, removed when this writer started.
    pub(crate) fn tmp_reclaimed(&self) -> TmpReclaimed {
        self.reclaimed
    }

    /// The index to look chunks up in. An exclusive writer's own is always current; a shared
    /// writer's was opened with it, and `fresh` opens it again (read-only, table files pinned)
    /// to see what writers committed since (this one's earlier images among them).
    pub(crate) fn lookup_index(&self, fresh: bool) -> Result<IndexRef<'_>> {
        if self.lock.is_some() || !fresh {
            return Ok(IndexRef::Borrowed(self.store().index()));
        }
        let layout = self.store().layout();
        let index = Index::open_pinned(&layout.index_dir(), &layout.blobs_dir());
        Ok(IndexRef::Owned(Box::new(index.map_err(repair_hint)?)))
    }

    /// The index open for writing, for a commit: an exclusive writer's own; a shared writer
    /// waits for the commit lock (another writer may be committing) and opens the index.
    pub(crate) fn commit_access(&self) -> Result<CommitAccess<'_>> {
        if self.lock.is_some() {
            return Ok(CommitAccess {
                index: IndexRef::Borrowed(self.store().index()),
                _lock: None,
                waited: std::time::Duration::ZERO,
            });
        }
        let asked = std::time::Instant::now();
        let layout = self.store().layout();
        let lock = layout.lock_wait()?;
        let waited = asked.elapsed();
        let index = Index::open(&layout.index_dir(), &layout.blobs_dir()).map_err(repair_hint)?;
        layout.require_not_blank(&index)?;
        Ok(CommitAccess {
            index: IndexRef::Owned(Box::new(index)),
            _lock: Some(lock),
            waited,
        })
    }
}

/// A store opened for adding images while other writers do the same: holds `WRITERS` shared
/// for as long as it lives (gc, rm and the index repair wait until it is dropped); takes the
/// commit lock only to commit.
pub struct SharedWriter {
    writer: Writer,
}

impl SharedWriter {
    /// The store this writer adds to, for reading (what it committed so far included).
    pub fn store(&self) -> &Store {
        &self.writer.store
    }

    /// What both kinds of writer hold, for the writing machinery.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Opens for adding images; refused at once while gc, rm or the index repair runs.
    pub fn open(root: &Path) -> Result<SharedWriter> {
        Ok(SharedWriter {
            writer: Writer::open(root, false)?,
        })
    }
}

/// A store opened by the one exclusive writer: holds `WRITERS` exclusively and the commit lock
/// for as long as it lives; refused at once while any other writer runs.
pub struct StoreWriter {
    writer: Writer,
}

impl StoreWriter {
    /// The store this writer changes, for reading.
    pub fn store(&self) -> &Store {
        &self.writer.store
    }

    /// What both kinds of writer hold, for the writing machinery.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// What dead writers left under `tmp/`, removed when this writer started.
    pub fn tmp_reclaimed(&self) -> TmpReclaimed {
        self.writer.reclaimed
    }

    /// Creates a new store in `root` (which may exist but must be empty).
    pub fn init(root: &Path, options: &InitOptions) -> Result<StoreWriter> {
        options
            .chunker
            .validate()
            .map_err(|e| Error::Usage(format!("chunker: {e}")))?;
        options
            .compression
            .validate()
            .map_err(|e| Error::Usage(format!("compression: {e}")))?;
        let layout = StoreLayout::new(root);
        if layout.store_json().exists() {
            return Err(Error::Usage(format!(
                "{} is already a cairn store",
                root.display()
            )));
        }
        if root.exists() {
            let mut entries = std::fs::read_dir(root).with_path("read", root)?;
            if entries.next().is_some() {
                return Err(Error::Usage(format!(
                    "{} exists and is not empty; choose a new directory for the store",
                    root.display()
                )));
            }
        }
        layout.create_dirs()?;
        let writers = layout.writers_exclusive()?;
        let lock = layout.lock()?;
        let dir = layout.create_writer_dir(&lock)?;
        let config = StoreConfig::new(options.chunker.clone(), options.compression.clone());
        let index = Index::create(&layout.index_dir(), &layout.blobs_dir())?;
        // store.json is written last: a directory without it is not a store yet.
        write_config(&layout, &dir, &config, "init.config.rename")?;
        Ok(StoreWriter {
            writer: Writer {
                store: Store::new(layout, config, index),
                dir,
                lock: Some(lock),
                reclaimed: TmpReclaimed::default(),
                _writers: writers,
            },
        })
    }

    /// Opens for writing exclusively (see `Writer::open`).
    pub fn open(root: &Path) -> Result<StoreWriter> {
        Ok(StoreWriter {
            writer: Writer::open(root, true)?,
        })
    }
}

/// Writes store.json durably (to the writer's directory under `tmp/`, fsynced, renamed;
/// `fail_at` before the rename).
fn write_config(
    layout: &StoreLayout,
    dir: &WriterDir,
    config: &StoreConfig,
    fail_at: &'static str,
) -> Result<()> {
    crate::fsutil::write_durably(
        &dir.file("store.json"),
        &layout.store_json(),
        &config.to_json(),
        fail_at,
    )
}

impl Store {
    pub(crate) fn read_config(layout: &StoreLayout) -> Result<StoreConfig> {
        let path = layout.store_json();
        if !path.exists() {
            return Err(Error::NotFound(crate::NotFound::Store {
                root: layout.root().to_path_buf(),
            }));
        }
        StoreConfig::read(&path)
    }

    /// Opens for reading; needs no lock and works while a writer runs.
    pub fn open(root: &Path) -> Result<Store> {
        let layout = StoreLayout::new(root);
        let config = Self::read_config(&layout)?;
        let index = Self::check_index(&layout)?;
        Ok(Store::new(layout, config, index))
    }

    /// The index opened read-only, if there is one to open and it is not blank over a store
    /// holding bootstraps (`StoreLayout::require_not_blank`); else an error naming `verify --repair-index`.
    fn check_index(layout: &StoreLayout) -> Result<Index> {
        let path = layout.readable_index_dir()?;
        let index = Index::open_read_only(&path, &layout.blobs_dir()).map_err(repair_hint)?;
        layout.require_not_blank(&index)?;
        Ok(index)
    }

    fn new(layout: StoreLayout, config: StoreConfig, index: Index) -> Store {
        Store {
            layout,
            config,
            index,
            base_frames: Default::default(),
            held_blobs: Default::default(),
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub(crate) fn layout(&self) -> &StoreLayout {
        &self.layout
    }

    /// The parameters recorded in `store.json` at init (chunker, compression, optimize target).
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub(crate) fn base_frames(&self) -> &crate::frame_cache::BaseFrames {
        &self.base_frames
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    testing_pub! {
        /// Where blob `id`'s file is (or would be), under `blobs/`; nothing is checked.
        fn blob_path(&self, id: &BlobId) -> PathBuf {
            self.layout.blob(id)
        }
    }

    testing_pub! {
        /// Where image `id`'s bootstrap file is (or would be); nothing is checked.
        fn bootstrap_path(&self, id: &ImageId) -> PathBuf {
            self.layout.bootstrap(id)
        }
    }

    testing_pub! {
        /// Where layer object `id`'s file is (or would be); nothing is checked.
        fn layer_meta_path(&self, id: &LayerMetaId) -> PathBuf {
            self.layout.layer_meta(id)
        }
    }

    testing_pub! {
        /// Opens a layer metadata object (its id checked; each block checked as it is read).
        fn layer_meta(&self, id: &LayerMetaId) -> Result<LayerMeta> {
            open_layer_meta(&self.layout, id)
        }
    }

    testing_pub! {
        /// The layer objects of image `name`, bottom first, with its bootstrap.
        fn image_layers(&self, name: &str) -> Result<(Bootstrap, Vec<LayerMeta>)> {
            self.image_layers_by_id(&self.resolve(name)?)
        }
    }

    /// The layer objects of image `id`, bottom first, with its bootstrap; each object's diff_id
    /// checked against the bootstrap's.
    pub(crate) fn image_layers_by_id(&self, id: &ImageId) -> Result<(Bootstrap, Vec<LayerMeta>)> {
        let bootstrap = self.bootstrap_by_id(id)?;
        let layers = bootstrap
            .layers
            .iter()
            .map(|l| {
                let meta = self.layer_meta(&l.meta)?;
                let held = meta.info().source.diff_id;
                if held != l.diff_id {
                    return Err(Error::corrupt(
                        format!("layer metadata {} of image {id}", l.meta),
                        format!("holds diff_id {held}, the bootstrap says {}", l.diff_id),
                    ));
                }
                Ok(meta)
            })
            .collect::<Result<Vec<_>>>()?;
        for blob in layers.iter().flat_map(|l| l.blobs()) {
            self.hold_blob(&blob.id).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::Retry(format!(
                        "image {id}: its blob {} is missing: if a gc or optimize ran \
                         meanwhile, it rewrote the image; run the command again (otherwise \
                         `cairn verify` names the damage)",
                        blob.id
                    ))
                }
                other => other,
            })?;
        }
        Ok((bootstrap, layers))
    }

    /// Blob `id`, mapped: the one held since an image using it was opened, else opened now.
    pub(crate) fn hold_blob(&self, id: &BlobId) -> Result<Arc<BlobReader>> {
        let mut held = self.held_blobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reader) = held.get(id) {
            return Ok(reader.clone());
        }
        let reader = Arc::new(BlobReader::open(&self.blob_path(id), *id)?);
        held.insert(*id, reader.clone());
        Ok(reader)
    }

    /// The image id a name refers to.
    pub fn resolve(&self, name: &str) -> Result<ImageId> {
        self.index.get_ref(name)?.ok_or_else(|| {
            Error::NotFound(crate::NotFound::Image {
                name: name.to_string(),
                store: self.root().to_path_buf(),
            })
        })
    }

    /// Reads and checks the bootstrap of a named image.
    pub fn bootstrap(&self, name: &str) -> Result<Bootstrap> {
        let id = self.resolve(name)?;
        self.bootstrap_by_id(&id)
    }

    /// Reads and checks the bootstrap of image `id`: errors with `Error::DigestMismatch` when
    /// the file's BLAKE3 is not `id`, and with an I/O error when it is missing.
    pub fn bootstrap_by_id(&self, id: &ImageId) -> Result<Bootstrap> {
        read_bootstrap(&self.bootstrap_path(id), id)
    }

    /// The index's record of image `id`; errors as corrupt when a name leads to an image
    /// without one.
    pub fn image_record(&self, id: &ImageId) -> Result<ImageRecord> {
        self.index.get_image(id)?.ok_or_else(|| {
            Error::corrupt(
                format!("image {id}"),
                "named in refs but has no record in the index",
            )
        })
    }
}
