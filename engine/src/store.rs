//! `Store`: a store directory opened for reading or writing. It owns the paths, the
//! configuration, the writer lock and the index; each operation is one method that calls into
//! `ops/`.
//!
//! ```text
//! STORE/store.json      format version, chunker and compression (fixed at init)
//! STORE/index/          RocksDB: chunks, images, refs
//! STORE/index.new/, index.old/  only while `verify --repair-index` swaps in a rebuilt index
//! STORE/blobs/<hex>     sealed data blobs
//! STORE/bootstraps/<hex> one per image
//! STORE/tmp/            files being written; emptied whenever a writer opens the store
//! STORE/LOCK            held (flock) by the one writer; names it for whoever waits
//! ```

use crate::chunk::ChunkerParams;
use crate::error::{Error, IoContext, Result};
use crate::format::bootstrap::Bootstrap;
use crate::format::store_config::{CompressionParams, StoreConfig};
use crate::index::{ImageRecord, Index};
use crate::{BlobId, ImageId};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The index directory inside a store.
pub(crate) const INDEX_DIR: &str = "index";

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

fn missing_index(root: &Path) -> Error {
    Error::corrupt(
        root.join(INDEX_DIR).display().to_string(),
        "the index is missing; `cairn verify --repair-index` rebuilds it from the blobs and \
         bootstraps",
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
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub compression: CompressionParams,
}

pub struct Store {
    root: PathBuf,
    config: StoreConfig,
    index: Index,
    /// Held for the life of a writable store.
    lock: Option<File>,
}

impl Store {
    /// Creates a new store in `root` (which may exist but must be empty).
    pub fn init(root: &Path, options: &InitOptions) -> Result<Store> {
        options
            .chunker
            .validate()
            .map_err(|e| Error::Usage(format!("chunker: {e}")))?;
        options
            .compression
            .validate()
            .map_err(|e| Error::Usage(format!("compression: {e}")))?;
        if root.join("store.json").exists() {
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
        for dir in ["blobs", "bootstraps", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).with_path("create", &root.join(dir))?;
        }
        let lock = Self::lock(root)?;
        let config = StoreConfig::new(options.chunker.clone(), options.compression.clone());
        let index = Index::open(&root.join(INDEX_DIR))?;
        // store.json is written last: a directory without it is not a store yet.
        crate::fsutil::write_durably(
            &root.join("tmp/store.json"),
            &root.join("store.json"),
            &config.to_json(),
            "init.config.rename",
        )?;
        Ok(Store {
            root: root.to_path_buf(),
            config,
            index,
            lock: Some(lock),
        })
    }

    pub(crate) fn read_config(root: &Path) -> Result<StoreConfig> {
        let path = root.join("store.json");
        if !path.exists() {
            return Err(Error::Usage(format!(
                "no cairn store at {}; create one with `cairn init --store {}`",
                root.display(),
                root.display()
            )));
        }
        StoreConfig::read(&path)
    }

    /// Opens for writing: takes the writer lock, finishes or undoes an index swap that a crash
    /// interrupted (see `ops::repair`) and clears `tmp/` of any interrupted work.
    pub fn open(root: &Path) -> Result<Store> {
        let config = Self::read_config(root)?;
        let lock = Self::lock(root)?;
        crate::ops::repair::recover_interrupted_swap(root)?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_path("clear", &tmp)?;
        }
        std::fs::create_dir_all(&tmp).with_path("create", &tmp)?;
        let path = root.join(INDEX_DIR);
        // `init` creates the index before store.json, so a store without one has lost it.
        // Opening would create an empty index, and gc would then see no image at all.
        if !path.exists() {
            return Err(missing_index(root));
        }
        let index = Index::open(&path).map_err(repair_hint)?;
        Ok(Store {
            root: root.to_path_buf(),
            config,
            index,
            lock: Some(lock),
        })
    }

    /// Opens for reading; needs no lock and works while a writer runs.
    pub fn open_read_only(root: &Path) -> Result<Store> {
        let config = Self::read_config(root)?;
        let mut path = root.join(INDEX_DIR);
        if !path.exists() {
            // Between the two renames of an index swap (or after a crash there, until the next
            // writer opens the store) the complete old index is `index.old`.
            let old = root.join(crate::ops::repair::INDEX_OLD_DIR);
            if !old.exists() {
                return Err(missing_index(root));
            }
            path = old;
        }
        let index = Index::open_read_only(&path).map_err(repair_hint)?;
        Ok(Store {
            root: root.to_path_buf(),
            config,
            index,
            lock: None,
        })
    }

    /// Takes the writer lock of the store in `root` and writes who holds it into `LOCK`.
    pub(crate) fn lock(root: &Path) -> Result<File> {
        let path = root.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_path("open", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::Locked {
                    store: root.to_path_buf(),
                    holder: if holder.trim().is_empty() {
                        "unknown process".into()
                    } else {
                        holder.trim().to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let who = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0).with_path("write", &path)?;
        file.write_all(who.as_bytes()).with_path("write", &path)?;
        Ok(file)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.lock.is_some()
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blob_path(&self, id: &BlobId) -> PathBuf {
        self.root.join("blobs").join(id.to_hex())
    }

    pub fn bootstrap_path(&self, id: &ImageId) -> PathBuf {
        self.root.join("bootstraps").join(id.to_hex())
    }

    /// The image id a name refers to.
    pub fn resolve(&self, name: &str) -> Result<ImageId> {
        self.index.get_ref(name)?.ok_or_else(|| {
            Error::Usage(format!(
                "no image named {name:?} in {}; `cairn images` lists them",
                self.root.display()
            ))
        })
    }

    /// Reads and checks the bootstrap of a named image.
    pub fn bootstrap(&self, name: &str) -> Result<Bootstrap> {
        let id = self.resolve(name)?;
        self.bootstrap_by_id(&id)
    }

    pub fn bootstrap_by_id(&self, id: &ImageId) -> Result<Bootstrap> {
        read_bootstrap(&self.bootstrap_path(id), id)
    }

    pub fn image_record(&self, id: &ImageId) -> Result<ImageRecord> {
        self.index.get_image(id)?.ok_or_else(|| {
            Error::corrupt(
                format!("image {id}"),
                "named in refs but has no record in the index",
            )
        })
    }

    /// Converts an image source into the store.
    pub fn convert(
        &self,
        options: &crate::ops::convert::ConvertOptions,
        progress: &dyn crate::Progress,
    ) -> Result<crate::ops::convert::ConvertReport> {
        crate::ops::convert::convert(self, options, progress)
    }

    /// Every named image with its record.
    pub fn images(&self) -> Result<Vec<crate::ops::images::ImageSummary>> {
        crate::ops::images::list(self)
    }

    /// Writes layer `layer` of image `name` as its exact uncompressed tar; returns its diff_id.
    pub fn export_layer(
        &self,
        name: &str,
        layer: usize,
        out: &mut dyn std::io::Write,
        progress: &dyn crate::Progress,
    ) -> Result<crate::Sha256Digest> {
        crate::ops::read::export_layer(self, name, layer, out, progress)
    }

    /// What of image `new` image `old` already has (`top`: how many files to list).
    pub fn diff(
        &self,
        old: &str,
        new: &str,
        top: usize,
    ) -> Result<crate::ops::report::diff::DiffReport> {
        crate::ops::report::diff::diff(self, old, new, top)
    }

    /// The store's footprint; `names` to detail (all when empty), `matrix` for pairwise sharing.
    pub fn stats(
        &self,
        names: &[String],
        matrix: bool,
    ) -> Result<crate::ops::report::stats::StatsReport> {
        crate::ops::report::stats::stats(self, names, matrix)
    }

    /// One row per image, platform and layer.
    pub fn inventory(&self) -> Result<Vec<crate::ops::report::inventory::InventoryRow>> {
        crate::ops::report::inventory::inventory(self)
    }

    /// Writes image `name` out as an OCI image layout or a docker archive.
    pub fn export(
        &self,
        name: &str,
        options: &crate::ops::export::ExportOptions,
        progress: &dyn crate::Progress,
    ) -> Result<crate::ops::export::ExportReport> {
        crate::ops::export::export(self, name, options, progress)
    }

    /// Checks blobs, bootstraps and the index; `full` also decodes every chunk.
    pub fn verify(
        &self,
        full: bool,
        progress: &dyn crate::Progress,
    ) -> Result<crate::ops::verify::VerifyReport> {
        crate::ops::verify::verify(self, full, progress)
    }

    /// Rebuilds the index of the store in `root` from its blobs and bootstraps, keeping the
    /// names the old index still gives (see `ops::repair`). Needs no readable index, so it is
    /// not a method of an opened store; it takes the writer lock itself.
    pub fn repair_index(
        root: &Path,
        progress: &dyn crate::Progress,
    ) -> Result<crate::ops::repair::RepairReport> {
        crate::ops::repair::repair_index(root, progress)
    }

    /// Removes image names; their data stays until `gc`.
    pub fn remove(&self, names: &[String]) -> Result<Vec<ImageId>> {
        crate::ops::remove::remove(self, names)
    }

    /// Deletes the blobs and bootstraps no named image uses.
    pub fn gc(&self, options: &crate::ops::gc::GcOptions) -> Result<crate::ops::gc::GcReport> {
        crate::ops::gc::gc(self, options)
    }

    /// Lists a directory of the merged view (or one entry).
    pub fn ls(&self, name: &str, path: &str) -> Result<Vec<crate::ops::read::ListEntry>> {
        crate::ops::read::ls(self, name, path)
    }

    /// Streams the content of one file of the merged image (upper layers win; whiteouts apply).
    pub fn cat(&self, name: &str, path: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        crate::ops::read::cat(self, name, path, out)
    }

    /// Writes the root filesystem of image `name` (as of `options.top_layer`) into `dir`.
    pub fn unpack(
        &self,
        name: &str,
        dir: &Path,
        options: &crate::ops::unpack::UnpackOptions,
        progress: &dyn crate::Progress,
    ) -> Result<crate::ops::unpack::UnpackReport> {
        crate::ops::unpack::unpack(self, name, dir, options, progress)
    }
}
