//! The one unmeasured pass over each layer: its blob decoded once into a tar file under the
//! work directory, and where every regular file's content lies in that tar. The stages after
//! decode read these files back (`window.rs`) instead of decoding again, so that no stage pays
//! for another's work and no large layer is held in memory.

use crate::harness::image::Layer;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A layer's decoded tar on disk.
pub struct LayerTar {
    pub path: PathBuf,
    pub tar_bytes: u64,
    /// Offset in the tar and length of each regular file's content (non-empty ones), in tar
    /// order: what the convert cuts into chunks.
    pub files: Vec<(u64, u64)>,
}

impl LayerTar {
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|(_, len)| len).sum()
    }
}

/// Everything read through it is written to `out` as well.
struct Tee<R, W> {
    reader: R,
    out: W,
    bytes: u64,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Decodes `layer` into `path` and lists its regular files' contents.
pub fn prepare(layer: &Layer, path: &Path) -> Result<LayerTar> {
    let out = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let tee = Tee {
        reader: layer.open_tar()?,
        out: BufWriter::with_capacity(1 << 20, out),
        bytes: 0,
    };
    let mut archive = tar::Archive::new(tee);
    let mut files = Vec::new();
    let entries = archive
        .entries()
        .with_context(|| format!("read the tar of layer {}", layer.name()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("read the tar of layer {}", layer.name()))?;
        // cairn chunks the content of every entry that has one: regular files (hard links,
        // directories and the rest have none).
        if entry.header().entry_type().is_file() && entry.size() > 0 {
            files.push((entry.raw_file_position(), entry.size()));
        }
    }
    // The end-of-archive blocks and any padding after them are part of the tar too.
    let mut tee = archive.into_inner();
    io::copy(&mut tee, &mut io::sink())
        .with_context(|| format!("decode layer {}", layer.name()))?;
    tee.out
        .flush()
        .with_context(|| format!("write {}", path.display()))?;
    let on_disk = std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len();
    if on_disk != tee.bytes {
        bail!(
            "{}: {on_disk} bytes written of {} decoded",
            path.display(),
            tee.bytes
        );
    }
    Ok(LayerTar {
        path: path.to_path_buf(),
        tar_bytes: tee.bytes,
        files,
    })
}
