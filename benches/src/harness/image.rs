//! An image source's layers as the benchmark needs them: resolved by cairn's own source code
//! (`SourceSpec`, so `oci:`, `docker-archive:` and layer files all work), each layer's stored
//! bytes, its uncompressed tar stream (cairn's decoders), and GNU tar unpacking it into a
//! directory; and `append`, for the benches that write image archives.

use anyhow::{bail, Context, Result};
use cairn_engine::source::ImageSource;
use cairn_engine::{Compression, PlatformChoice, Sha256Digest, SourceSpec};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One layer blob of a source: where its stored (compressed) bytes are and what they must be.
#[derive(Clone, Debug)]
pub struct Layer {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    /// sha256 of the stored bytes, when the source states it.
    pub digest: Option<Sha256Digest>,
    /// sha256 of the uncompressed tar, when the source states it.
    pub diff_id: Option<Sha256Digest>,
    /// `None`: recognised from the first bytes.
    pub compression: Option<Compression>,
}

/// The one image `source` (`oci:DIR[:REF]`, ...) resolves to, for the default platform.
pub fn resolve_one(source: &str) -> Result<ImageSource> {
    let spec = SourceSpec::parse(source).with_context(|| format!("source {source}"))?;
    let mut images = spec
        .resolve(&PlatformChoice::Default)
        .with_context(|| format!("resolve {source}"))?;
    if images.len() != 1 {
        bail!(
            "{source} resolves to {} images; the bench takes one",
            images.len()
        );
    }
    Ok(images.remove(0))
}

/// Resolves `source` to the layers of its one image (the default platform).
pub fn layers(source: &str) -> Result<Vec<Layer>> {
    resolve_one(source)?
        .layers
        .iter()
        .map(|l| {
            let cairn_engine::LayerBytes::File(range) = &l.bytes else {
                bail!("{source}: the bench reads local images only");
            };
            Ok(Layer {
                path: range.path.clone(),
                offset: range.offset,
                len: range.len,
                digest: l.digest,
                diff_id: l.diff_id,
                compression: l.compression,
            })
        })
        .collect()
}

impl Layer {
    /// The stored bytes, as they are in the source.
    pub fn open_stored(&self) -> Result<impl Read> {
        let mut file =
            File::open(&self.path).with_context(|| format!("open {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("seek in {}", self.path.display()))?;
        Ok(file.take(self.len))
    }

    /// The uncompressed tar stream.
    pub fn open_tar(&self) -> Result<Box<dyn Read>> {
        decoded(self.open_stored()?, self.compression)
    }

    /// Bytes of the uncompressed tar.
    pub fn tar_bytes(&self) -> Result<u64> {
        std::io::copy(&mut self.open_tar()?, &mut std::io::sink())
            .with_context(|| format!("decompress layer {}", self.name()))
    }

    /// The layer's digest, or its file name when the source states none.
    pub fn name(&self) -> String {
        match &self.digest {
            Some(d) => d.to_string(),
            None => self.path.display().to_string(),
        }
    }

    /// Unpacks the layer into `dest` (created) with GNU tar, default options: the way a
    /// snapshotter or a backup tool's input directory would hold it.
    pub fn unpack(&self, dest: &Path) -> Result<()> {
        untar(&mut self.open_tar()?, dest, &self.name())
    }
}

/// A layer's stored bytes decompressed: `compression`, or recognised from the first bytes.
pub fn decoded<'a>(
    stored: impl Read + 'a,
    compression: Option<Compression>,
) -> Result<Box<dyn Read + 'a>> {
    let mut stored = BufReader::with_capacity(256 * 1024, stored);
    let compression = match compression {
        Some(c) => c,
        None => Compression::sniff(stored.fill_buf().context("read layer")?),
    };
    Ok(compression.decoder(stored)?)
}

/// Feeds the tar stream `tar` (layer `what`) to GNU tar, default options, unpacking it into
/// `dest` (created).
pub fn untar(tar: &mut dyn Read, dest: &Path, what: &str) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("create {}", dest.display()))?;
    let mut child = Command::new("tar")
        .arg("-x")
        .arg("-f")
        .arg("-")
        .arg("-C")
        .arg(dest)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run GNU tar")?;
    let mut stdin = child.stdin.take().context("tar's stdin")?;
    let copied = std::io::copy(tar, &mut stdin);
    drop(stdin);
    let output = child.wait_with_output().context("wait for tar")?;
    if !output.status.success() {
        bail!(
            "tar -x of layer {what} into {} failed ({}): {}",
            dest.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    copied.with_context(|| format!("feed layer {what} to tar"))?;
    Ok(())
}

/// Appends a regular file `name` of `len` bytes, read from `data`, to the archive.
pub fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    len: u64,
    data: &mut dyn Read,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
        .with_context(|| format!("write {name} into the archive"))
}
