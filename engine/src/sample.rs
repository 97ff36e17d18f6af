//! Deterministic sample images, generated in code.
//!
//! Used by the `cairn demo` command (a built-in example that needs no input) and by
//! integration tests. Nothing here touches the network or calls external tools, and every
//! function is deterministic: the same arguments give the same bytes on every run and every
//! platform (fixed mtimes, uid/gid 0, content from seeded generators, integer arithmetic only,
//! no hash-map ordering).
//!
//! Pieces:
//! - [`build_layer_tar`]: an uncompressed layer tar from a list of [`SampleEntry`] (ustar headers,
//!   PAX records for long or non-UTF-8-safe names, link targets and xattrs).
//! - [`OciLayoutWriter`]: an OCI image layout directory (single- and multi-platform images,
//!   uncompressed, gzip or zstd layers).
//! - [`write_docker_archive`]: a `docker save`-style archive.
//! - [`demo_layers`] / [`write_demo_layouts`]: the demo image pair (v1, v2) that shows what
//!   chunk-level dedup finds and layer-level dedup misses.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header};

use crate::oci::media_type;

/// Media type of an OCI image manifest.
const MT_MANIFEST: &str = media_type::OCI_MANIFEST;
/// Media type of an OCI image index.
const MT_INDEX: &str = media_type::OCI_INDEX;
/// Media type of an OCI image config.
const MT_CONFIG: &str = media_type::OCI_CONFIG;
/// Annotation key naming a reference in an OCI layout's `index.json`.
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `created` timestamp written into every generated image config (= [`DEMO_MTIME_V1`]).
const CONFIG_CREATED: &str = "2023-11-14T22:13:20Z";
/// mtime of the files inside a generated docker archive.
const ARCHIVE_MTIME: u64 = DEMO_MTIME_V1;
/// Length of the ustar `name` and `linkname` fields.
const USTAR_NAME_LEN: usize = 100;

/// mtime of every entry in the demo's version 1 layers (2023-11-14T22:13:20Z).
pub const DEMO_MTIME_V1: u64 = 1_700_000_000;
/// mtime of every entry in the demo's version 2 layers (30 days after [`DEMO_MTIME_V1`]).
pub const DEMO_MTIME_V2: u64 = DEMO_MTIME_V1 + 30 * 86_400;
/// Size of the demo's `app/model.bin` in version 1 (3 MiB).
pub const DEMO_MODEL_LEN: usize = 3 << 20;
/// Offset in `app/model.bin` where version 2 inserts [`DEMO_MODEL_INSERT_LEN`] new bytes.
pub const DEMO_MODEL_INSERT_AT: usize = (1 << 20) + 12_345;
/// Number of bytes version 2 inserts into `app/model.bin`.
pub const DEMO_MODEL_INSERT_LEN: usize = 100;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// Uncompressed tar (`application/vnd.oci.image.layer.v1.tar`).
    None,
    /// gzip, level 6, header mtime 0 (`...tar+gzip`).
    Gzip,
    /// zstd, level 3 (`...tar+zstd`).
    Zstd,
}

impl LayerCompression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::None => media_type::OCI_LAYER,
            LayerCompression::Gzip => media_type::OCI_LAYER_GZIP,
            LayerCompression::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }

    /// Compresses `tar` deterministically.
    pub fn compress(self, tar: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            LayerCompression::None => Ok(tar.to_vec()),
            LayerCompression::Gzip => {
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(Vec::new(), flate2::Compression::new(6));
                enc.write_all(tar)?;
                enc.finish()
            }
            LayerCompression::Zstd => zstd::encode_all(tar, 3),
        }
    }
}

/// A tar entry to put in a generated layer.
///
/// Paths and link targets are raw bytes, written exactly as given (no `/` is added to
/// directories; by convention callers end directory paths with `/`). They must be non-empty
/// and must not contain NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// A directory.
    Dir {
        /// Path inside the layer, e.g. `b"etc/"`.
        path: Vec<u8>,
        /// Permission bits, e.g. `0o755`.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Permission bits, e.g. `0o644`.
        mode: u32,
        /// File content.
        data: Vec<u8>,
        /// Extended attributes, written in order as PAX `SCHILY.xattr.<name>` records.
        /// Names must not contain `=`, NUL or newline.
        xattrs: Vec<(String, Vec<u8>)>,
    },
    /// A symbolic link (mode `0o777`).
    Symlink {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Link target, stored verbatim.
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry of the same layer (mode `0o644`, size 0).
    Hardlink {
        /// Path inside the layer.
        path: Vec<u8>,
        /// Path of the earlier entry it links to.
        target: Vec<u8>,
    },
}

impl SampleEntry {
    /// A directory entry.
    pub fn dir(path: impl Into<Vec<u8>>, mode: u32) -> Self {
        SampleEntry::Dir {
            path: path.into(),
            mode,
        }
    }

    /// A regular file without xattrs.
    pub fn file(path: impl Into<Vec<u8>>, mode: u32, data: Vec<u8>) -> Self {
        SampleEntry::File {
            path: path.into(),
            mode,
            data,
            xattrs: Vec::new(),
        }
    }

    /// A symbolic link.
    pub fn symlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        SampleEntry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }

    /// A hard link.
    pub fn hardlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        SampleEntry::Hardlink {
            path: path.into(),
            target: target.into(),
        }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// A ustar header with the fields every generated entry shares (root-owned, fixed mtime).
fn base_header(kind: EntryType, mode: u32, size: u64, mtime: u64) -> io::Result<Header> {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h.set_username("root")?;
    h.set_groupname("root")?;
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    Ok(h)
}

/// Copies up to 100 bytes of `value` into a ustar name-like field (the rest stays NUL).
fn set_name_field(field: &mut [u8; USTAR_NAME_LEN], value: &[u8]) {
    *field = [0; USTAR_NAME_LEN];
    let n = value.len().min(USTAR_NAME_LEN);
    field[..n].copy_from_slice(&value[..n]);
}

fn check_name(what: &str, value: &[u8]) -> io::Result<()> {
    if value.is_empty() {
        return Err(invalid(format!("sample tar: empty {what}")));
    }
    if value.contains(&0) {
        return Err(invalid(format!("sample tar: {what} contains a NUL byte")));
    }
    Ok(())
}

/// Appends one PAX record (`"<len> <key>=<value>\n"`) to `out`.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Name of the PAX extended header for `path`: `<dir>/PaxHeaders.0/<base>` (as Go's
/// archive/tar writes it), cut to 100 bytes.
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&trimmed[..0], trimmed),
    };
    let mut name = Vec::with_capacity(path.len() + 13);
    name.extend_from_slice(dir);
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(base);
    name.truncate(USTAR_NAME_LEN);
    name
}

fn append_entry<W: Write>(b: &mut Builder<W>, entry: &SampleEntry, mtime: u64) -> io::Result<()> {
    let no_xattrs: &[(String, Vec<u8>)] = &[];
    let (kind, path, mode, data, link, xattrs): (_, &[u8], u32, &[u8], Option<&[u8]>, _) =
        match entry {
            SampleEntry::Dir { path, mode } => {
                (EntryType::Directory, path, *mode, &[], None, no_xattrs)
            }
            SampleEntry::File {
                path,
                mode,
                data,
                xattrs,
            } => (
                EntryType::Regular,
                path,
                *mode,
                data,
                None,
                xattrs.as_slice(),
            ),
            SampleEntry::Symlink { path, target } => (
                EntryType::Symlink,
                path,
                0o777,
                &[],
                Some(target),
                no_xattrs,
            ),
            SampleEntry::Hardlink { path, target } => {
                (EntryType::Link, path, 0o644, &[], Some(target), no_xattrs)
            }
        };
    check_name("path", path)?;
    if let Some(link) = link {
        check_name("link target", link)?;
    }

    let mut pax = Vec::new();
    if path.len() > USTAR_NAME_LEN {
        pax_record(&mut pax, "path", path);
    }
    if let Some(link) = link.filter(|l| l.len() > USTAR_NAME_LEN) {
        pax_record(&mut pax, "linkpath", link);
    }
    for (name, value) in xattrs {
        if name.is_empty() || name.contains(['=', '\0', '\n']) {
            return Err(invalid(format!("sample tar: bad xattr name {name:?}")));
        }
        pax_record(&mut pax, &format!("SCHILY.xattr.{name}"), value);
    }
    if !pax.is_empty() {
        let mut h = base_header(EntryType::XHeader, 0o644, pax.len() as u64, mtime)?;
        let ustar = h
            .as_ustar_mut()
            .ok_or_else(|| io::Error::other("ustar header expected"))?;
        set_name_field(&mut ustar.name, &pax_header_name(path));
        h.set_cksum();
        b.append(&h, pax.as_slice())?;
    }

    let mut h = base_header(kind, mode, data.len() as u64, mtime)?;
    let ustar = h
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("ustar header expected"))?;
    set_name_field(&mut ustar.name, path);
    if let Some(link) = link {
        set_name_field(&mut ustar.linkname, link);
    }
    h.set_cksum();
    b.append(&h, data)
}

/// Builds an uncompressed layer tar from `entries`, in the given order.
///
/// Every entry gets `mtime`, uid/gid 0 and uname/gname `root`. Headers are ustar; a path or
/// link target longer than 100 bytes is carried by a PAX `path` / `linkpath` record (the ustar
/// field then holds its first 100 bytes), and xattrs by PAX `SCHILY.xattr.<name>` records.
/// Non-UTF-8 bytes are written verbatim. The archive ends with the usual two zero blocks.
pub fn build_layer_tar(entries: &[SampleEntry], mtime: u64) -> io::Result<Vec<u8>> {
    let mut b = Builder::new(Vec::new());
    for entry in entries {
        append_entry(&mut b, entry, mtime)?;
    }
    b.into_inner()
}

/// Uncompressed layer tars, each with the compression it gets in the image.
pub type SampleLayers = Vec<(Vec<u8>, LayerCompression)>;

/// The platform of a generated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePlatform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// e.g. `v8` for arm64.
    pub variant: Option<String>,
}

impl SamplePlatform {
    /// A platform without variant.
    pub fn new(os: &str, architecture: &str) -> Self {
        SamplePlatform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// `linux/amd64`, the platform of the demo images.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64")
    }
}

/// `sha256:<hex>` of `data`.
fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Serialize, Clone)]
struct PlatformJson {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl From<&SamplePlatform> for PlatformJson {
    fn from(p: &SamplePlatform) -> Self {
        PlatformJson {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [Descriptor],
}

#[derive(Serialize)]
struct ImageConfig {
    created: &'static str,
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    config: ConfigBody,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(Serialize)]
struct ConfigBody {
    #[serde(rename = "Env")]
    env: Vec<&'static str>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

/// The image config JSON for `platform` with layers whose uncompressed digests are `diff_ids`.
fn config_json(platform: &SamplePlatform, diff_ids: Vec<String>) -> io::Result<Vec<u8>> {
    let history = (0..diff_ids.len())
        .map(|i| History {
            created: CONFIG_CREATED,
            created_by: format!("cairn sample layer {i}"),
        })
        .collect();
    let config = ImageConfig {
        created: CONFIG_CREATED,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: ConfigBody {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
        history,
    };
    Ok(serde_json::to_vec(&config)?)
}

fn ref_annotations(ref_name: Option<&str>) -> Option<BTreeMap<String, String>> {
    ref_name.map(|r| BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), r.to_string())]))
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) incrementally.
///
/// Blobs are written as images are added; `index.json` and `oci-layout` only by
/// [`finish`](Self::finish). An existing `index.json` in the directory is replaced, not merged.
#[derive(Debug)]
pub struct OciLayoutWriter {
    dir: PathBuf,
    /// Top-level `index.json` entries, serialized, in the order they were added.
    manifests: Vec<serde_json::Value>,
}

impl OciLayoutWriter {
    /// Creates `dir` and `dir/blobs/sha256` (parents included) if missing.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        Ok(OciLayoutWriter {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        })
    }

    /// Writes `data` as a blob unless it is already present; returns its descriptor.
    fn write_blob(&self, media_type: &'static str, data: &[u8]) -> io::Result<Descriptor> {
        let digest = sha256_digest(data);
        let hex = &digest["sha256:".len()..];
        let blobs = self.dir.join("blobs").join("sha256");
        let path = blobs.join(hex);
        if !path.exists() {
            let tmp = blobs.join(format!(".{hex}.tmp"));
            fs::write(&tmp, data)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(Descriptor {
            media_type,
            digest,
            size: data.len() as u64,
            platform: None,
            annotations: None,
        })
    }

    /// Writes layers, config and manifest of one platform image; returns the manifest
    /// descriptor with its platform set.
    fn write_image(
        &self,
        platform: &SamplePlatform,
        layers: &[(Vec<u8>, LayerCompression)],
    ) -> io::Result<Descriptor> {
        let mut diff_ids = Vec::with_capacity(layers.len());
        let mut layer_descs = Vec::with_capacity(layers.len());
        for (tar, compression) in layers {
            diff_ids.push(sha256_digest(tar));
            let blob = compression.compress(tar)?;
            layer_descs.push(self.write_blob(compression.media_type(), &blob)?);
        }
        let config = config_json(platform, diff_ids)?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: MT_MANIFEST,
            config: self.write_blob(MT_CONFIG, &config)?,
            layers: layer_descs,
        };
        let mut desc = self.write_blob(MT_MANIFEST, &serde_json::to_vec(&manifest)?)?;
        desc.platform = Some(platform.into());
        Ok(desc)
    }

    /// Adds one single-platform image.
    ///
    /// Compresses each layer tar as asked and writes the layer blobs, an OCI config
    /// (architecture, os, variant, `rootfs.diff_ids` = sha256 of each uncompressed tar, one
    /// history entry per layer) and an OCI image manifest. Adds the manifest's descriptor
    /// (with platform, and annotation `org.opencontainers.image.ref.name` = `ref_name` if
    /// given) to the top-level `index.json`. Returns the manifest digest `sha256:<hex>`.
    pub fn add_image(
        &mut self,
        ref_name: Option<&str>,
        platform: &SamplePlatform,
        layers: &[(Vec<u8>, LayerCompression)],
    ) -> io::Result<String> {
        let mut desc = self.write_image(platform, layers)?;
        desc.annotations = ref_annotations(ref_name);
        let digest = desc.digest.clone();
        self.manifests.push(serde_json::to_value(&desc)?);
        Ok(digest)
    }

    /// Adds a multi-platform image.
    ///
    /// Writes each platform's layers, config and manifest, then a nested image index blob
    /// (`application/vnd.oci.image.index.v1+json`) listing the manifests with their
    /// platforms, and adds that index (annotated with `ref_name` if given, no platform) to the
    /// top-level `index.json`. Returns the nested index digest `sha256:<hex>`.
    pub fn add_multi_arch(
        &mut self,
        ref_name: Option<&str>,
        images: &[(SamplePlatform, SampleLayers)],
    ) -> io::Result<String> {
        let manifests = images
            .iter()
            .map(|(platform, layers)| self.write_image(platform, layers))
            .collect::<io::Result<Vec<_>>>()?;
        let index = ImageIndex {
            schema_version: 2,
            media_type: MT_INDEX,
            manifests: &manifests,
        };
        let mut desc = self.write_blob(MT_INDEX, &serde_json::to_vec(&index)?)?;
        desc.annotations = ref_annotations(ref_name);
        let digest = desc.digest.clone();
        self.manifests.push(serde_json::to_value(&desc)?);
        Ok(digest)
    }

    /// Writes `index.json` (entries in the order added) and `oci-layout`.
    pub fn finish(self) -> io::Result<()> {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": self.manifests,
        });
        fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)?;
        fs::write(
            self.dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(())
    }
}

#[derive(Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn append_archive_file<W: Write>(b: &mut Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    append_entry(
        b,
        &SampleEntry::file(name, 0o644, data.to_vec()),
        ARCHIVE_MTIME,
    )
}

/// Writes a `docker save`-style archive (an uncompressed tar) at `path`.
///
/// Contents, in this order: for each distinct layer a directory `<sha256-of-layer>/` with
/// `layer.tar` (the layer as given, uncompressed); the config `<sha256-of-config>.json` (with
/// `rootfs.diff_ids`); `manifest.json` (`[{"Config", "RepoTags": [repo_tag], "Layers"}]`) and
/// `repositories` (`{"<repo>": {"<tag>": "<last layer hex>"}}`). A `repo_tag` without a tag
/// gets `:latest`.
pub fn write_docker_archive(
    path: &Path,
    repo_tag: &str,
    platform: &SamplePlatform,
    layers: &[Vec<u8>],
) -> io::Result<()> {
    let (repo, tag) = match repo_tag.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() => (repo, tag),
        _ => (repo_tag, "latest"),
    };
    let file = fs::File::create(path)?;
    let mut b = Builder::new(io::BufWriter::new(file));

    let hexes: Vec<String> = layers
        .iter()
        .map(|l| hex::encode(Sha256::digest(l)))
        .collect();
    let mut written: Vec<&str> = Vec::new();
    for (hex, layer) in hexes.iter().zip(layers) {
        if written.contains(&hex.as_str()) {
            continue;
        }
        written.push(hex);
        append_entry(
            &mut b,
            &SampleEntry::dir(format!("{hex}/"), 0o755),
            ARCHIVE_MTIME,
        )?;
        append_archive_file(&mut b, &format!("{hex}/layer.tar"), layer)?;
    }

    let diff_ids = hexes.iter().map(|h| format!("sha256:{h}")).collect();
    let config = config_json(platform, diff_ids)?;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    append_archive_file(&mut b, &config_name, &config)?;

    let manifest = [DockerManifestEntry {
        config: config_name,
        repo_tags: vec![format!("{repo}:{tag}")],
        layers: hexes.iter().map(|h| format!("{h}/layer.tar")).collect(),
    }];
    append_archive_file(&mut b, "manifest.json", &serde_json::to_vec(&manifest)?)?;

    let mut repositories = BTreeMap::new();
    if let Some(last) = hexes.last() {
        repositories.insert(repo, BTreeMap::from([(tag, last.as_str())]));
    }
    append_archive_file(&mut b, "repositories", &serde_json::to_vec(&repositories)?)?;

    let mut out = b.into_inner()?;
    out.flush()?;
    Ok(())
}

/// splitmix64, seeded from the BLAKE3 hash of a label: a fixed, portable byte stream.
struct Rng(u64);

impl Rng {
    fn new(label: &str) -> Self {
        let hash = blake3::hash(label.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash.as_bytes()[..8]);
        Rng(u64::from_le_bytes(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A size spread log-uniformly-ish over `[min, min << buckets)`, integer arithmetic only.
    fn size(&mut self, min: usize, buckets: u64) -> usize {
        let lo = min << self.below(buckets);
        lo + self.below(lo as u64) as usize
    }
}

/// `len` incompressible bytes derived from `label`.
fn random_bytes(label: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(label);
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        let v = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    out
}

const WORDS: &[&str] = &[
    "the",
    "image",
    "layer",
    "chunk",
    "store",
    "content",
    "defined",
    "boundary",
    "digest",
    "config",
    "manifest",
    "index",
    "platform",
    "registry",
    "container",
    "runtime",
    "snapshot",
    "version",
    "release",
    "build",
    "cache",
    "file",
    "directory",
    "symlink",
    "mode",
    "owner",
    "group",
    "size",
    "offset",
    "length",
    "hash",
    "blake3",
    "sha256",
    "gzip",
    "zstd",
    "tar",
    "header",
    "entry",
    "path",
    "value",
    "option",
    "enabled",
    "disabled",
    "default",
    "server",
    "client",
    "request",
    "response",
    "timeout",
    "retry",
    "error",
    "warning",
    "info",
    "debug",
    "and",
    "of",
    "to",
    "in",
    "is",
    "for",
    "with",
    "on",
    "by",
    "from",
];

/// `len` bytes of compressible, text-like content (config-ish lines of words) from `label`.
fn text_bytes(label: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(label);
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        if rng.below(4) == 0 {
            let key = WORDS[rng.below(WORDS.len() as u64) as usize];
            let n = rng.below(10_000);
            out.extend_from_slice(format!("{key}_{n} = {}\n", rng.below(1 << 20)).as_bytes());
            continue;
        }
        let words = 4 + rng.below(10);
        for i in 0..words {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        }
        out.extend_from_slice(b".\n");
    }
    out.truncate(len);
    out
}

/// Content of a demo file: text-like or random, seeded by `label`.
fn content(label: &str, text: bool, len: usize) -> Vec<u8> {
    if text {
        text_bytes(label, len)
    } else {
        random_bytes(label, len)
    }
}

/// Layer 0, "base": identical entries in both versions (only the tar mtime differs).
fn demo_base_entries() -> Vec<SampleEntry> {
    let mut entries: Vec<SampleEntry> = [
        "bin/",
        "etc/",
        "usr/",
        "usr/bin/",
        "usr/lib/",
        "usr/share/",
        "usr/share/doc/",
        "var/",
        "var/lib/",
    ]
    .into_iter()
    .map(|d| SampleEntry::dir(d, 0o755))
    .collect();
    entries.push(SampleEntry::file(
        "bin/busybox",
        0o755,
        random_bytes("base/bin/busybox", 300_000),
    ));
    entries.push(SampleEntry::symlink("bin/sh", "busybox"));
    entries.push(SampleEntry::file(
        "etc/motd",
        0o644,
        b"Welcome to the cairn demo image.\nThis file is deleted by the app layer.\n".to_vec(),
    ));
    entries.push(SampleEntry::file(
        "etc/os-release",
        0o644,
        b"NAME=\"Cairn Demo Linux\"\nID=cairn-demo\nVERSION_ID=1\n".to_vec(),
    ));
    let mut rng = Rng::new("base/sizes");
    for i in 0..57 {
        let (path, text, mode) = match i % 5 {
            0 => (format!("usr/bin/tool-{i:02}"), false, 0o755),
            1 => (format!("usr/lib/libbase-{i:02}.so"), false, 0o644),
            2 => (format!("usr/share/doc/guide-{i:02}.txt"), true, 0o644),
            3 => (format!("etc/conf-{i:02}.conf"), true, 0o644),
            _ => (format!("var/lib/data-{i:02}.db"), i % 2 == 0, 0o644),
        };
        // 2 KiB .. 256 KiB
        let len = rng.size(2 << 10, 7);
        let data = content(&format!("base/{path}"), text, len);
        entries.push(SampleEntry::file(path, mode, data));
    }
    entries
}

/// Library names of the "lib" layer; v2 drops the last one and adds `libfresh`.
const LIB_NAMES: [&str; 17] = [
    "libalpha",
    "libbeta",
    "libgamma",
    "libdelta",
    "libepsilon",
    "libzeta",
    "libeta",
    "libtheta",
    "libiota",
    "libkappa",
    "liblambda",
    "libmu",
    "libnu",
    "libxi",
    "libomicron",
    "libpi",
    "libdeprecated",
];
/// Libraries v2 edits in place (a few bytes each).
const LIB_CHANGED: [&str; 3] = ["libbeta", "libtheta", "libmu"];

/// Content of `lib/<name>.so.1`, the same in every version before edits.
fn lib_content(name: &str) -> Vec<u8> {
    let seed = blake3::hash(name.as_bytes()).as_bytes()[0];
    let mut rng = Rng::new(&format!("lib/{name}/size"));
    // 8 KiB .. 256 KiB; one library in three is text-like (think: a big symbol table).
    let len = rng.size(8 << 10, 5);
    content(&format!("lib/{name}"), seed.is_multiple_of(3), len)
}

/// Layer 1, "lib": ~20 libraries; v2 edits 3, removes 1, adds 1.
fn demo_lib_entries(version: u8) -> Vec<SampleEntry> {
    let mut entries = vec![
        SampleEntry::dir("lib/", 0o755),
        SampleEntry::dir("lib/plugins/", 0o755),
    ];
    let mut names: Vec<&str> = LIB_NAMES.to_vec();
    if version == 2 {
        names.retain(|n| *n != "libdeprecated");
        names.push("libfresh");
    }
    for name in names {
        let mut data = lib_content(name);
        if version == 2 && LIB_CHANGED.contains(&name) {
            // "a few bytes edited": 4 bytes at each quarter point, flipped.
            let len = data.len();
            for pos in [len / 4, len / 2, 3 * len / 4] {
                for byte in &mut data[pos..(pos + 4).min(len)] {
                    *byte ^= 0xa5;
                }
            }
        }
        entries.push(SampleEntry::file(format!("lib/{name}.so.1"), 0o755, data));
    }
    for plugin in ["auth", "metrics", "storage"] {
        let path = format!("lib/plugins/{plugin}.so");
        let data = random_bytes(&path, 24_000 + 1_000 * plugin.len());
        entries.push(SampleEntry::file(path, 0o755, data));
    }
    entries
}

/// Directory of the demo's long path (the file in it makes a path over 100 bytes).
const LONG_DIR: &str =
    "app/data/a-directory-with-a-name-long-enough-that-its-files-need-pax-path-records/";

/// Layer 2, "app": the model file (v2 inserts bytes), whiteouts, links, xattrs, odd names.
fn demo_app_entries(version: u8) -> Vec<SampleEntry> {
    let mut entries = vec![
        SampleEntry::dir("app/", 0o755),
        SampleEntry::dir("app/bin/", 0o755),
        SampleEntry::dir("app/data/", 0o755),
        SampleEntry::dir(LONG_DIR, 0o755),
        SampleEntry::dir("etc/", 0o755),
    ];
    let mut model = random_bytes("app/model.bin", DEMO_MODEL_LEN);
    if version == 2 {
        let insert = random_bytes("app/model.bin/insert", DEMO_MODEL_INSERT_LEN);
        model.splice(DEMO_MODEL_INSERT_AT..DEMO_MODEL_INSERT_AT, insert);
    }
    entries.push(SampleEntry::file("app/model.bin", 0o644, model));
    entries.push(SampleEntry::file(
        "app/bin/demo-server",
        0o755,
        random_bytes("app/bin/demo-server", 200_000),
    ));
    entries.push(SampleEntry::hardlink("app/bin/demo", "app/bin/demo-server"));
    entries.push(SampleEntry::File {
        path: b"app/config.toml".to_vec(),
        mode: 0o644,
        data: text_bytes("app/config.toml", 4_000),
        xattrs: vec![("user.comment".to_string(), b"demo configuration".to_vec())],
    });
    entries.push(SampleEntry::file(
        format!("{LONG_DIR}notes-with-a-long-file-name.txt"),
        0o644,
        text_bytes("app/data/long", 3_000),
    ));
    // Latin-1 "café": not valid UTF-8.
    entries.push(SampleEntry::file(
        b"app/data/caf\xe9-latin1.txt".to_vec(),
        0o644,
        b"caf\xe9 au lait\n".to_vec(),
    ));
    // Deletes base's etc/motd.
    entries.push(SampleEntry::file("etc/.wh.motd", 0o644, Vec::new()));
    if version == 2 {
        entries.push(SampleEntry::dir("lib/", 0o755));
        entries.push(SampleEntry::dir("lib/plugins/", 0o755));
        // Hides lib/plugins/* of the lib layer; only the replacement below remains.
        entries.push(SampleEntry::file(
            "lib/plugins/.wh..wh..opq",
            0o644,
            Vec::new(),
        ));
        entries.push(SampleEntry::file(
            "lib/plugins/replacement.so",
            0o755,
            random_bytes("lib/plugins/replacement.so", 20_000),
        ));
    }
    entries
}

/// The demo image pair: two versions of a small application image (about 8 MB of
/// uncompressed content each), built to show what chunk-level dedup finds.
///
/// Returns the uncompressed layer tars of version 1 or 2 (any other version is an
/// `InvalidInput` error). All entries of version 1 have mtime [`DEMO_MTIME_V1`], those of
/// version 2 [`DEMO_MTIME_V2`].
///
/// - layer 0 "base": 60 files (`etc/motd` and `etc/os-release` are tiny, the others 2 KiB to
///   300 KB, text-like or random), 9 directories and the symlink `bin/sh -> busybox`. v2 has the very same entries and contents;
///   only the mtimes differ (new layer digest, same content).
/// - layer 1 "lib": `lib/` with 17 libraries `lib/<name>.so.1` and 3 in `lib/plugins/`. v2
///   edits a few bytes of `libbeta`, `libtheta` and `libmu`, removes `libdeprecated` and adds
///   `libfresh`.
/// - layer 2 "app": `app/model.bin` (3 MiB random; v2 inserts [`DEMO_MODEL_INSERT_LEN`] bytes at
///   [`DEMO_MODEL_INSERT_AT`]), `app/bin/demo-server` and its hardlink `app/bin/demo`,
///   `app/config.toml` with xattr `user.comment`, a file whose path is over 100 bytes (PAX),
///   a file with a non-UTF-8 name (`app/data/caf\xe9-latin1.txt`), the whiteout `etc/.wh.motd`;
///   v2 only: `lib/plugins/.wh..wh..opq` plus `lib/plugins/replacement.so`.
pub fn demo_layers(version: u8) -> io::Result<Vec<Vec<u8>>> {
    let mtime = match version {
        1 => DEMO_MTIME_V1,
        2 => DEMO_MTIME_V2,
        _ => {
            return Err(invalid(format!(
                "demo image version {version}: expected 1 or 2"
            )))
        }
    };
    Ok(vec![
        build_layer_tar(&demo_base_entries(), mtime)?,
        build_layer_tar(&demo_lib_entries(version), mtime)?,
        build_layer_tar(&demo_app_entries(version), mtime)?,
    ])
}

/// Writes the demo pair as two OCI layouts `dir/v1` and `dir/v2` (refs `v1` and `v2`,
/// platform linux/amd64, gzip layers), creating directories as needed, and returns their
/// paths.
pub fn write_demo_layouts(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let write = |version: u8| -> io::Result<PathBuf> {
        let name = format!("v{version}");
        let path = dir.join(&name);
        let mut writer = OciLayoutWriter::create(&path)?;
        let layers: Vec<_> = demo_layers(version)?
            .into_iter()
            .map(|tar| (tar, LayerCompression::Gzip))
            .collect();
        writer.add_image(Some(&name), &SamplePlatform::linux_amd64(), &layers)?;
        writer.finish()?;
        Ok(path)
    };
    // gzip dominates the run time: build the two layouts side by side.
    std::thread::scope(|scope| {
        let v2 = scope.spawn(|| write(2));
        let v1 = write(1);
        let v2 = v2
            .join()
            .map_err(|_| io::Error::other("demo layout writer thread panicked"))?;
        Ok((v1?, v2?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("cairn-sample-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Parsed {
        kind: EntryType,
        path: Vec<u8>,
        link: Option<Vec<u8>>,
        mode: u32,
        mtime: u64,
        data: Vec<u8>,
        xattrs: Vec<(String, Vec<u8>)>,
    }

    fn parse(tar: &[u8]) -> Vec<Parsed> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut xattrs = Vec::new();
            if let Some(pax) = entry.pax_extensions().unwrap() {
                for ext in pax {
                    let ext = ext.unwrap();
                    if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
            let h = entry.header();
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.username().unwrap(), Some("root"));
            assert_eq!(h.groupname().unwrap(), Some("root"));
            let (kind, mode, mtime) = (h.entry_type(), h.mode().unwrap(), h.mtime().unwrap());
            let path = entry.path_bytes().into_owned();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push(Parsed {
                kind,
                path,
                link,
                mode,
                mtime,
                data,
                xattrs,
            });
        }
        out
    }

    fn find<'a>(entries: &'a [Parsed], path: &[u8]) -> Option<&'a Parsed> {
        entries.iter().find(|e| e.path == path)
    }

    fn read_json(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn tar_round_trips_paths_links_and_xattrs() {
        let long: Vec<u8> = format!("{}/file.txt", "d".repeat(120)).into_bytes();
        let long_target: Vec<u8> = format!("../{}", "t".repeat(150)).into_bytes();
        let odd = b"dir/\xff\xfe-not-utf8".to_vec();
        let entries = vec![
            SampleEntry::dir("dir/", 0o755),
            SampleEntry::File {
                path: b"dir/a.txt".to_vec(),
                mode: 0o640,
                data: b"hello".to_vec(),
                xattrs: vec![
                    ("user.comment".into(), b"hi there".to_vec()),
                    ("security.capability".into(), vec![1, 0, 0xff, 2]),
                ],
            },
            SampleEntry::file(long.clone(), 0o644, vec![7; 1000]),
            SampleEntry::file(odd.clone(), 0o600, b"x".to_vec()),
            SampleEntry::symlink("dir/short-link", "a.txt"),
            SampleEntry::symlink("dir/long-link", long_target.clone()),
            SampleEntry::hardlink("dir/hard", long.clone()),
        ];
        let tar = build_layer_tar(&entries, 1234).unwrap();
        assert_eq!(tar.len() % 512, 0);
        assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));

        let parsed = parse(&tar);
        let paths: Vec<&[u8]> = parsed.iter().map(|e| e.path.as_slice()).collect();
        let expected: Vec<&[u8]> = vec![
            b"dir/",
            b"dir/a.txt",
            &long,
            &odd,
            b"dir/short-link",
            b"dir/long-link",
            b"dir/hard",
        ];
        assert_eq!(paths, expected);
        assert!(parsed.iter().all(|e| e.mtime == 1234));
        assert_eq!(parsed[0].kind, EntryType::Directory);
        assert_eq!(parsed[0].mode, 0o755);
        assert_eq!(parsed[1].data, b"hello");
        assert_eq!(parsed[1].mode, 0o640);
        assert_eq!(
            parsed[1].xattrs,
            vec![
                ("user.comment".to_string(), b"hi there".to_vec()),
                ("security.capability".to_string(), vec![1, 0, 0xff, 2]),
            ]
        );
        assert_eq!(parsed[2].data, vec![7; 1000]);
        assert!(parsed[2].xattrs.is_empty());
        assert_eq!(parsed[3].data, b"x");
        assert_eq!(parsed[4].kind, EntryType::Symlink);
        assert_eq!(parsed[4].link.as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(parsed[5].link.as_deref(), Some(long_target.as_slice()));
        assert_eq!(parsed[6].kind, EntryType::Link);
        assert_eq!(parsed[6].link.as_deref(), Some(long.as_slice()));
        assert!(parsed[6].data.is_empty());
    }

    #[test]
    fn tar_rejects_bad_input() {
        assert!(build_layer_tar(&[SampleEntry::file("", 0o644, vec![])], 0).is_err());
        assert!(build_layer_tar(&[SampleEntry::file(b"a\0b".to_vec(), 0o644, vec![])], 0).is_err());
        let bad_xattr = SampleEntry::File {
            path: b"f".to_vec(),
            mode: 0o644,
            data: vec![],
            xattrs: vec![("a=b".into(), vec![])],
        };
        assert!(build_layer_tar(&[bad_xattr], 0).is_err());
    }

    #[test]
    fn pax_record_lengths_are_self_consistent() {
        for n in [0usize, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 997] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; n]);
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value length {n}");
        }
    }

    #[test]
    fn demo_is_deterministic_and_sized() {
        for version in [1, 2] {
            let a = demo_layers(version).unwrap();
            let b = demo_layers(version).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), 3);
            let total: usize = a.iter().map(Vec::len).sum();
            assert!((6_000_000..=12_000_000).contains(&total), "{total}");
        }
        assert!(demo_layers(0).is_err());
        assert!(demo_layers(3).is_err());
    }

    #[test]
    fn demo_versions_differ_as_specified() {
        let v1 = demo_layers(1).unwrap();
        let v2 = demo_layers(2).unwrap();
        let (p1, p2): (Vec<_>, Vec<_>) = (
            v1.iter().map(|t| parse(t)).collect(),
            v2.iter().map(|t| parse(t)).collect(),
        );
        assert!(p1.iter().flatten().all(|e| e.mtime == DEMO_MTIME_V1));
        assert!(p2.iter().flatten().all(|e| e.mtime == DEMO_MTIME_V2));

        // base: same entries and contents, different tar bytes.
        assert_ne!(v1[0], v2[0]);
        let strip = |es: &[Parsed]| {
            es.iter()
                .map(|e| Parsed {
                    mtime: 0,
                    ..e.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&p1[0]), strip(&p2[0]));
        let files = p1[0]
            .iter()
            .filter(|e| e.kind == EntryType::Regular)
            .count();
        assert_eq!(files, 60);
        assert!(p1[0].iter().any(|e| e.kind == EntryType::Symlink));
        assert!(find(&p1[0], b"etc/motd").is_some());
        let sizes: Vec<usize> = p1[0].iter().map(|e| e.data.len()).collect();
        assert!(sizes.iter().any(|&s| s > 100_000));

        // lib: 3 changed slightly, 1 removed, 1 added, rest unchanged.
        let (mut same, mut changed, mut removed) = (0, 0, 0);
        for e in p1[1].iter().filter(|e| e.kind == EntryType::Regular) {
            match find(&p2[1], &e.path) {
                None => removed += 1,
                Some(n) if n.data == e.data => same += 1,
                Some(n) => {
                    assert_eq!(n.data.len(), e.data.len());
                    let diff = n.data.iter().zip(&e.data).filter(|(a, b)| a != b).count();
                    assert!((1..=16).contains(&diff), "{diff}");
                    changed += 1;
                }
            }
        }
        let added = p2[1]
            .iter()
            .filter(|e| find(&p1[1], &e.path).is_none())
            .count();
        assert_eq!((same, changed, removed, added), (16, 3, 1, 1));
        assert!(find(&p2[1], b"lib/libfresh.so.1").is_some());

        // app: model.bin insertion, whiteouts, hardlink, xattrs, odd names.
        let m1 = &find(&p1[2], b"app/model.bin").unwrap().data;
        let m2 = &find(&p2[2], b"app/model.bin").unwrap().data;
        assert_eq!(m1.len(), DEMO_MODEL_LEN);
        assert_eq!(m2.len(), DEMO_MODEL_LEN + DEMO_MODEL_INSERT_LEN);
        assert_eq!(m1[..DEMO_MODEL_INSERT_AT], m2[..DEMO_MODEL_INSERT_AT]);
        assert_eq!(
            m1[DEMO_MODEL_INSERT_AT..],
            m2[DEMO_MODEL_INSERT_AT + DEMO_MODEL_INSERT_LEN..]
        );
        for p in [&p1[2], &p2[2]] {
            assert!(find(p, b"etc/.wh.motd").unwrap().data.is_empty());
            let link = find(p, b"app/bin/demo").unwrap();
            assert_eq!(link.kind, EntryType::Link);
            assert_eq!(link.link.as_deref(), Some(&b"app/bin/demo-server"[..]));
            let config = find(p, b"app/config.toml").unwrap();
            assert_eq!(
                config.xattrs,
                vec![("user.comment".to_string(), b"demo configuration".to_vec())]
            );
            assert!(p.iter().any(|e| e.path.len() > 100));
            assert!(p.iter().any(|e| std::str::from_utf8(&e.path).is_err()));
        }
        assert!(find(&p1[2], b"lib/plugins/.wh..wh..opq").is_none());
        assert!(find(&p2[2], b"lib/plugins/.wh..wh..opq").is_some());
    }

    /// Checks a blob's file against a descriptor; returns the blob's bytes.
    fn check_blob(layout: &Path, desc: &serde_json::Value) -> Vec<u8> {
        let digest = desc["digest"].as_str().unwrap();
        let hex = digest.strip_prefix("sha256:").unwrap();
        let data = fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256_digest(&data), digest);
        assert_eq!(desc["size"].as_u64().unwrap(), data.len() as u64);
        data
    }

    fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar" => blob.to_vec(),
            "application/vnd.oci.image.layer.v1.tar+gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(blob)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "application/vnd.oci.image.layer.v1.tar+zstd" => zstd::decode_all(blob).unwrap(),
            other => panic!("unexpected layer media type {other}"),
        }
    }

    /// Checks a manifest and everything under it; returns the uncompressed layers.
    fn check_manifest(layout: &Path, desc: &serde_json::Value) -> Vec<Vec<u8>> {
        assert_eq!(desc["mediaType"], MT_MANIFEST);
        let manifest: serde_json::Value =
            serde_json::from_slice(&check_blob(layout, desc)).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MT_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], MT_CONFIG);
        let config: serde_json::Value =
            serde_json::from_slice(&check_blob(layout, &manifest["config"])).unwrap();
        assert_eq!(config["rootfs"]["type"], "layers");
        assert_eq!(config["architecture"], desc["platform"]["architecture"]);
        assert_eq!(config["os"], desc["platform"]["os"]);
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(diff_ids.len(), layers.len());
        assert_eq!(config["history"].as_array().unwrap().len(), layers.len());
        layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| {
                let blob = check_blob(layout, layer);
                let tar = decompress(layer["mediaType"].as_str().unwrap(), &blob);
                assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap());
                tar
            })
            .collect()
    }

    #[test]
    fn demo_layouts_are_valid() {
        let tmp = TempDir::new("demo-layouts");
        let (v1, v2) = write_demo_layouts(&tmp.0).unwrap();
        assert_eq!(
            (v1.clone(), v2.clone()),
            (tmp.0.join("v1"), tmp.0.join("v2"))
        );
        for (layout, version) in [(v1, 1), (v2, 2)] {
            assert_eq!(
                read_json(&layout.join("oci-layout")),
                serde_json::json!({"imageLayoutVersion": "1.0.0"})
            );
            let index = read_json(&layout.join("index.json"));
            assert_eq!(index["schemaVersion"], 2);
            assert_eq!(index["mediaType"], MT_INDEX);
            let manifests = index["manifests"].as_array().unwrap();
            assert_eq!(manifests.len(), 1);
            let desc = &manifests[0];
            assert_eq!(
                desc["annotations"][ANNOTATION_REF_NAME],
                format!("v{version}")
            );
            assert_eq!(
                desc["platform"],
                serde_json::json!({"architecture": "amd64", "os": "linux"})
            );
            let layers = check_manifest(&layout, desc);
            assert_eq!(layers, demo_layers(version).unwrap());
        }
    }

    #[test]
    fn multi_arch_and_compressions() {
        let tmp = TempDir::new("multi-arch");
        let tar_a = build_layer_tar(&[SampleEntry::file("a", 0o644, vec![1; 3000])], 5).unwrap();
        let tar_b = build_layer_tar(&[SampleEntry::file("b", 0o644, vec![2; 3000])], 5).unwrap();
        let mut w = OciLayoutWriter::create(&tmp.0).unwrap();
        let single = w
            .add_image(
                None,
                &SamplePlatform::linux_amd64(),
                &[(tar_a.clone(), LayerCompression::None)],
            )
            .unwrap();
        let arm = SamplePlatform {
            variant: Some("v8".into()),
            ..SamplePlatform::new("linux", "arm64")
        };
        let multi = w
            .add_multi_arch(
                Some("multi"),
                &[
                    (
                        SamplePlatform::linux_amd64(),
                        vec![
                            (tar_a.clone(), LayerCompression::Gzip),
                            (tar_b.clone(), LayerCompression::Zstd),
                        ],
                    ),
                    (arm, vec![(tar_b.clone(), LayerCompression::Zstd)]),
                ],
            )
            .unwrap();
        w.finish().unwrap();

        let index = read_json(&tmp.0.join("index.json"));
        let top = index["manifests"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0]["digest"], single);
        assert!(top[0].get("annotations").is_none());
        assert_eq!(check_manifest(&tmp.0, &top[0]), vec![tar_a.clone()]);

        assert_eq!(top[1]["digest"], multi);
        assert_eq!(top[1]["mediaType"], MT_INDEX);
        assert_eq!(top[1]["annotations"][ANNOTATION_REF_NAME], "multi");
        assert!(top[1].get("platform").is_none());
        let nested: serde_json::Value =
            serde_json::from_slice(&check_blob(&tmp.0, &top[1])).unwrap();
        assert_eq!(nested["mediaType"], MT_INDEX);
        let platforms = nested["manifests"].as_array().unwrap();
        assert_eq!(platforms.len(), 2);
        assert_eq!(
            platforms[1]["platform"],
            serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        );
        assert_eq!(
            check_manifest(&tmp.0, &platforms[0]),
            vec![tar_a, tar_b.clone()]
        );
        assert_eq!(check_manifest(&tmp.0, &platforms[1]), vec![tar_b]);
        // The zstd blob of tar_b is shared by both platforms and stored once.
        let blobs = fs::read_dir(tmp.0.join("blobs/sha256")).unwrap().count();
        // 1 + 2 + 1 layers minus 1 shared, 3 configs, 3 manifests, 1 index.
        assert_eq!(blobs, 3 + 3 + 3 + 1);
    }

    #[test]
    fn docker_archive_is_valid() {
        let tmp = TempDir::new("docker-archive");
        let path = tmp.0.join("image.tar");
        let tar_a = build_layer_tar(&[SampleEntry::file("a", 0o644, vec![1; 100])], 5).unwrap();
        let tar_b = build_layer_tar(&[SampleEntry::file("b", 0o644, vec![2; 100])], 5).unwrap();
        let layers = vec![tar_a.clone(), tar_b.clone(), tar_a.clone()];
        write_docker_archive(
            &path,
            "example.com:5000/demo",
            &SamplePlatform::linux_amd64(),
            &layers,
        )
        .unwrap();
        let bytes = fs::read(&path).unwrap();
        let entries = parse(&bytes);
        let file = |name: &str| find(&entries, name.as_bytes()).unwrap().data.clone();

        let manifest: serde_json::Value = serde_json::from_slice(&file("manifest.json")).unwrap();
        let m = &manifest[0];
        assert_eq!(
            m["RepoTags"],
            serde_json::json!(["example.com:5000/demo:latest"])
        );
        let config_name = m["Config"].as_str().unwrap();
        let config_bytes = file(config_name);
        assert_eq!(
            format!("{}.json", hex::encode(Sha256::digest(&config_bytes))),
            config_name
        );
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layer_names = m["Layers"].as_array().unwrap();
        assert_eq!(layer_names.len(), 3);
        for ((name, diff_id), tar) in layer_names.iter().zip(diff_ids).zip(&layers) {
            let data = file(name.as_str().unwrap());
            assert_eq!(&data, tar);
            assert_eq!(sha256_digest(&data), diff_id.as_str().unwrap());
        }
        // The repeated layer is stored once.
        let layer_files = entries
            .iter()
            .filter(|e| e.path.ends_with(b"/layer.tar"))
            .count();
        assert_eq!(layer_files, 2);
        let repos: serde_json::Value = serde_json::from_slice(&file("repositories")).unwrap();
        let last = hex::encode(Sha256::digest(&tar_a));
        assert_eq!(
            repos,
            serde_json::json!({"example.com:5000/demo": {"latest": last}})
        );
    }
}
