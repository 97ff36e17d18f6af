//! Reading images to convert (inputs from outside, below the commands; knows nothing of the
//! store): an OCI image layout directory (`oci_layout`), a `docker save` archive
//! (`docker_archive`), a bare layer tar, or a registry (`registry`, over the registry client
//! `crate::registry`). Each source is resolved into `ImageSource`s: the
//! manifest and config bytes (verified against their digests) and, per layer, where its bytes
//! are and which digests they must have. Layer bytes are verified later, while they stream
//! through the convert. The OCI JSON documents read here are `oci`'s types.

mod docker_archive;
mod oci_layout;
#[cfg(feature = "registry")]
pub mod registry;
mod resolve;

pub use cairn_format::platform::{Platform, PlatformChoice};
#[cfg(feature = "registry")]
pub(crate) use resolve::parse_digest;

use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;
use crate::Sha256Digest;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cairn_format::format::bootstrap::ImageLayer;

/// Bound on manifests, indexes and configs read whole into memory.
pub(crate) use crate::oci::limits::MAX_JSON_LEN;

/// What the user named as the image to convert.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// `oci:DIR[:REF]`: an OCI image layout directory.
    OciLayout {
        /// The layout directory (the one holding `index.json`).
        dir: PathBuf,
        /// The ref name (`org.opencontainers.image.ref.name`) of the `index.json` entry to
        /// read; `None`: every entry, as long as at most one carries a ref name.
        reference: Option<String>,
    },
    /// `docker-archive:FILE`: a `docker save` tar archive.
    DockerArchive {
        /// The archive file.
        file: PathBuf,
    },
    /// A bare layer tar (plain, gzip or zstd), converted as a one-layer image without a
    /// manifest or config.
    LayerFile {
        /// The layer tar file.
        file: PathBuf,
    },
    /// `docker://REGISTRY/REPO[:TAG|@DIGEST]`.
    #[cfg(feature = "registry")]
    Registry(registry::RegistrySpec),
    /// An image a program put together: layers the store holds (`LayerSource::stored`) and
    /// layers made as they are read (`LayerBytes::Stream`), e.g. a snapshot's applied tree.
    Resolved(Box<ImageSource>),
}

impl SourceSpec {
    /// Parses `oci:DIR[:REF]`, `docker-archive:FILE` or a path to a layer tar.
    pub fn parse(text: &str) -> Result<SourceSpec> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = split_oci_reference(text, rest)?;
            Ok(SourceSpec::OciLayout { dir, reference })
        } else if let Some(reference) = text.strip_prefix("docker://") {
            Self::registry(text, reference)
        } else if let Some(file) = text.strip_prefix("docker-archive:") {
            Ok(SourceSpec::DockerArchive {
                file: PathBuf::from(file),
            })
        } else if text.contains(':') && !Path::new(text).exists() {
            Err(Error::Usage(format!(
                "{text}: unknown source; use oci:DIR[:REF], docker://REGISTRY/REPO[:TAG], docker-archive:FILE or a path to a layer .tar/.tar.gz/.tar.zst"
            )))
        } else {
            Ok(SourceSpec::LayerFile {
                file: PathBuf::from(text),
            })
        }
    }

    #[cfg(feature = "registry")]
    fn registry(_text: &str, reference: &str) -> Result<SourceSpec> {
        Ok(SourceSpec::Registry(registry::RegistrySpec {
            reference: reference.to_string(),
            insecure: false,
            credentials: None,
            timeouts: Default::default(),
        }))
    }

    #[cfg(not(feature = "registry"))]
    fn registry(text: &str, _reference: &str) -> Result<SourceSpec> {
        Err(Error::Usage(format!(
            "{text}: this cairn was built without registry support"
        )))
    }

    /// Resolves the source into the single-platform images to convert.
    pub fn resolve(&self, choice: &PlatformChoice) -> Result<Vec<ImageSource>> {
        match self {
            SourceSpec::OciLayout { dir, reference } => {
                oci_layout::resolve(dir, reference.as_deref(), choice)
            }
            SourceSpec::DockerArchive { file } => docker_archive::resolve(file, choice),
            SourceSpec::LayerFile { file } => layer_file(file),
            #[cfg(feature = "registry")]
            SourceSpec::Registry(spec) => registry::resolve(spec, choice),
            SourceSpec::Resolved(image) => Ok(vec![(**image).clone()]),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::OciLayout { dir, reference } => {
                write!(f, "oci:{}", dir.display())?;
                match reference {
                    Some(r) => write!(f, ":{r}"),
                    None => Ok(()),
                }
            }
            SourceSpec::DockerArchive { file } => write!(f, "docker-archive:{}", file.display()),
            SourceSpec::LayerFile { file } => write!(f, "{}", file.display()),
            #[cfg(feature = "registry")]
            SourceSpec::Registry(spec) => write!(f, "docker://{}", spec.reference),
            SourceSpec::Resolved(image) => write!(f, "{}", image.reference),
        }
    }
}

/// Splits the `DIR[:REF]` of `oci:DIR[:REF]` (`text` is the whole spec, for errors). A trailing
/// `:REF` is taken off only if it cannot be part of a path, so a REF never holds `:` or `/`.
pub(crate) fn split_oci_reference(text: &str, rest: &str) -> Result<(PathBuf, Option<String>)> {
    let (dir, reference) = match rest.rsplit_once(':') {
        Some((dir, r)) if !r.contains('/') && !dir.is_empty() => (dir, Some(r.to_string())),
        _ => (rest, None),
    };
    if dir.is_empty() {
        return Err(Error::Usage(format!("{text}: expected oci:DIR[:REF]")));
    }
    Ok((PathBuf::from(dir), reference.filter(|r| !r.is_empty())))
}

/// A JSON object of the source, kept byte for byte with its digest.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// The sha256 of `bytes`, checked when the object was read.
    pub digest: Sha256Digest,
    /// The object's media type (e.g. `application/vnd.oci.image.manifest.v1+json`).
    pub media_type: String,
    /// The object's JSON, exactly as the source holds it.
    pub bytes: Vec<u8>,
}

/// A byte range of a file.
#[derive(Clone, Debug)]
pub struct ByteRange {
    /// The file holding the bytes.
    pub path: PathBuf,
    /// Where the range starts in the file, in bytes.
    pub offset: u64,
    /// Length of the range in bytes.
    pub len: u64,
}

impl ByteRange {
    /// The whole of the file at `path`; errors if it cannot be read or is not a regular file.
    pub fn whole_file(path: &Path) -> Result<ByteRange> {
        let meta = std::fs::metadata(path).with_path("read", path)?;
        if !meta.is_file() {
            return Err(Error::bad_input(
                path.display().to_string(),
                "not a regular file",
            ));
        }
        Ok(ByteRange {
            path: path.to_path_buf(),
            offset: 0,
            len: meta.len(),
        })
    }

    /// Opens the file and returns a reader over exactly this range.
    pub fn open(&self) -> Result<impl Read> {
        let mut file = File::open(&self.path).with_path("open", &self.path)?;
        file.seek(SeekFrom::Start(self.offset))
            .with_path("seek in", &self.path)?;
        Ok(file.take(self.len))
    }
}

/// Where a layer's stored (compressed) bytes are read from.
#[derive(Clone, Debug)]
pub enum LayerBytes {
    /// A range of a local file (a blob of an OCI layout, a member of an archive, a layer tar).
    File(ByteRange),
    /// Streamed from a registry as the convert reads it.
    #[cfg(feature = "registry")]
    Remote(registry::RemoteBlob),
    /// A layer the store holds already (`LayerSource::stored`): its object is reused and
    /// nothing is read; a convert that does not find it fails. `len`: its compressed size.
    Stored {
        /// The compressed size the store recorded.
        len: u64,
    },
    /// A plain tar made as it is read (e.g. a directory walked into a tar).
    Stream(Arc<dyn LayerStream>),
}

/// A layer tar made on demand, read once by a convert.
pub trait LayerStream: Send + Sync + std::fmt::Debug {
    /// Starts making the tar; errors while making it come back from the reader.
    fn open(&self) -> Result<Box<dyn Read + Send>>;
    /// What the tar is made from, for messages.
    fn describe(&self) -> String;
}

impl LayerBytes {
    /// Length of the stored (compressed) bytes, as the source states it.
    pub fn len(&self) -> u64 {
        match self {
            LayerBytes::File(range) => range.len,
            #[cfg(feature = "registry")]
            LayerBytes::Remote(blob) => blob.len(),
            LayerBytes::Stored { len } => *len,
            LayerBytes::Stream(_) => 0,
        }
    }

    /// Whether `len` is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes from the start; nothing is read (or downloaded) before this is called.
    pub fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            LayerBytes::File(range) => Ok(Box::new(range.open()?)),
            #[cfg(feature = "registry")]
            LayerBytes::Remote(blob) => Ok(Box::new(blob.open()?)),
            LayerBytes::Stored { .. } => Ok(Box::new(std::io::empty())),
            LayerBytes::Stream(stream) => stream.open(),
        }
    }

    /// Where the bytes are, for messages.
    pub fn describe(&self) -> String {
        match self {
            LayerBytes::File(range) => range.path.display().to_string(),
            #[cfg(feature = "registry")]
            LayerBytes::Remote(blob) => blob.describe(),
            LayerBytes::Stored { .. } => "a layer in the store".to_string(),
            LayerBytes::Stream(stream) => stream.describe(),
        }
    }
}

/// One layer to convert and the digests its bytes must have.
#[derive(Clone, Debug)]
pub struct LayerSource {
    /// sha256 of the stored (compressed) blob, when the source states it.
    pub digest: Option<Sha256Digest>,
    /// The layer's media type as the manifest states it (kept in the bootstrap).
    pub media_type: String,
    /// `None`: recognise from the first bytes.
    pub compression: Option<Compression>,
    /// sha256 of the uncompressed tar, from the image config.
    pub diff_id: Option<Sha256Digest>,
    /// Where the layer's stored bytes are read from.
    pub bytes: LayerBytes,
}

impl LayerSource {
    /// A layer of a stored image, to be reused as it is by a convert (nothing is read).
    pub fn stored(layer: &ImageLayer) -> LayerSource {
        LayerSource {
            digest: Some(layer.digest),
            media_type: layer.media_type.clone(),
            compression: Some(layer.compression),
            diff_id: Some(layer.diff_id),
            bytes: LayerBytes::Stored {
                len: layer.compressed_size,
            },
        }
    }

    /// A plain tar layer made as it is read; its digests are computed by the convert.
    pub fn stream(stream: Arc<dyn LayerStream>) -> LayerSource {
        LayerSource {
            digest: None,
            media_type: String::new(),
            compression: Some(Compression::None),
            diff_id: None,
            bytes: LayerBytes::Stream(stream),
        }
    }
}

/// One single-platform image, ready to convert.
#[derive(Clone, Debug)]
pub struct ImageSource {
    /// How the user can name this source again (e.g. `oci:/images/py:v1`).
    pub reference: String,
    /// The platform the index or the config names; `None` for a bare layer tar.
    pub platform: Option<Platform>,
    /// The manifest, byte for byte (for a `docker save` archive, its own manifest format);
    /// `None` for a bare layer tar.
    pub manifest: Option<RawObject>,
    /// The image config, byte for byte; `None` for a bare layer tar.
    pub config: Option<RawObject>,
    /// The layers, bottom first.
    pub layers: Vec<LayerSource>,
}

fn layer_file(file: &Path) -> Result<Vec<ImageSource>> {
    let bytes = ByteRange::whole_file(file)?;
    Ok(vec![ImageSource {
        reference: file.display().to_string(),
        platform: None,
        manifest: None,
        config: None,
        layers: vec![LayerSource {
            digest: None,
            media_type: String::new(),
            compression: None,
            diff_id: None,
            bytes: LayerBytes::File(bytes),
        }],
    }])
}

/// Reads a JSON object whole (bounded) and checks its digest and size.
pub(crate) fn read_verified(
    range: &ByteRange,
    expected: &Sha256Digest,
    expected_size: Option<u64>,
    what: &str,
) -> Result<Vec<u8>> {
    let object = format!("{what} {expected}");
    if range.len > MAX_JSON_LEN {
        return Err(Error::bad_input(
            object,
            format!("{} bytes is over the {MAX_JSON_LEN}-byte limit", range.len),
        ));
    }
    if let Some(size) = expected_size {
        if size != range.len {
            return Err(Error::bad_input(
                object,
                format!(
                    "descriptor says {size} bytes, {} has {}",
                    range.path.display(),
                    range.len
                ),
            ));
        }
    }
    let mut bytes = Vec::with_capacity(range.len as usize);
    range
        .open()?
        .read_to_end(&mut bytes)
        .with_path("read", &range.path)?;
    let actual = Sha256Digest::of(&bytes);
    if &actual != expected {
        return Err(Error::DigestMismatch {
            object: format!("{what} {}", range.path.display()),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_specs() {
        let parsed = |text: &str| format!("{:?}", SourceSpec::parse(text).unwrap());
        let spec = |spec: SourceSpec| format!("{spec:?}");
        assert_eq!(
            parsed("oci:/a/b:v1"),
            spec(SourceSpec::OciLayout {
                dir: "/a/b".into(),
                reference: Some("v1".into())
            })
        );
        assert_eq!(
            parsed("oci:dir"),
            spec(SourceSpec::OciLayout {
                dir: "dir".into(),
                reference: None
            })
        );
        assert_eq!(
            parsed("docker-archive:x.tar"),
            spec(SourceSpec::DockerArchive {
                file: "x.tar".into()
            })
        );
        assert!(SourceSpec::parse("registry:foo").is_err());
        assert_eq!(
            parsed("layer.tar.gz"),
            spec(SourceSpec::LayerFile {
                file: "layer.tar.gz".into()
            })
        );
    }
}
