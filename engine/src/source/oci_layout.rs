//! OCI image layout directories: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`. Indexes may
//! nest (multi-arch); a `:REF` picks the top-level entry annotated with that ref name.

use super::resolve::{parse_digest, Blobs};
use super::{read_verified, ByteRange, ImageSource, LayerBytes};
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Descriptor, Index, REF_NAME};
use crate::Sha256Digest;
use cairn_format::platform::PlatformChoice;
use std::path::{Path, PathBuf};

struct Layout {
    dir: PathBuf,
}

impl Blobs for Layout {
    fn read_json(&self, desc: &Descriptor, what: &str) -> Result<(Sha256Digest, Vec<u8>)> {
        let digest = parse_digest(&desc.digest, what)?;
        let bytes = read_verified(&self.blob_range(&digest)?, &digest, desc.size, what)?;
        Ok((digest, bytes))
    }

    fn layer(&self, digest: &Sha256Digest, size: Option<u64>) -> Result<LayerBytes> {
        let bytes = self.blob_range(digest)?;
        if let Some(size) = size.filter(|&s| s != bytes.len) {
            return Err(Error::bad_input(
                format!("layer {digest}"),
                format!("manifest says {size} bytes, the blob has {}", bytes.len),
            ));
        }
        Ok(LayerBytes::File(bytes))
    }
}

impl Layout {
    fn blob_range(&self, digest: &Sha256Digest) -> Result<ByteRange> {
        let path = self.dir.join("blobs/sha256").join(digest.to_hex());
        if !path.is_file() {
            return Err(Error::bad_input(
                format!("blob {digest}"),
                format!(
                    "missing from the layout ({} does not exist)",
                    path.display()
                ),
            ));
        }
        ByteRange::whole_file(&path)
    }
}

pub(super) fn resolve(
    dir: &Path,
    reference: Option<&str>,
    choice: &PlatformChoice,
) -> Result<Vec<ImageSource>> {
    let layout = Layout {
        dir: dir.to_path_buf(),
    };
    let index_path = dir.join("index.json");
    if !index_path.is_file() {
        return Err(Error::bad_input(
            dir.display().to_string(),
            "not an OCI image layout (no index.json)",
        ));
    }
    let meta = std::fs::metadata(&index_path).with_path("read", &index_path)?;
    if meta.len() > super::MAX_JSON_LEN {
        return Err(Error::bad_input(
            index_path.display().to_string(),
            "index.json is too large",
        ));
    }
    let index_bytes = std::fs::read(&index_path).with_path("read", &index_path)?;
    let index: Index = oci::parse(&index_bytes, &index_path.display().to_string())?;

    let top = top_entries(&index, dir, reference)?;

    let what = format!(
        "oci:{}{}",
        dir.display(),
        reference.map(|r| format!(":{r}")).unwrap_or_default()
    );
    let top: Vec<Descriptor> = top.into_iter().cloned().collect();
    super::resolve::images(&layout, &top, choice, &what)
}

/// The entries of `index.json` to read: those with the ref name `reference`, or all of them
/// when no reference is given, as long as at most one of them carries a ref name.
fn top_entries<'a>(
    index: &'a Index,
    dir: &Path,
    reference: Option<&str>,
) -> Result<Vec<&'a Descriptor>> {
    let top: Vec<&Descriptor> = match reference {
        Some(r) => index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(r))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    if top.is_empty() {
        let refs: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        return Err(Error::bad_input(
            dir.display().to_string(),
            match reference {
                Some(r) => format!("no image with ref {r:?}; refs present: {}", refs.join(", ")),
                None => "index.json lists no manifests".to_string(),
            },
        ));
    }
    if top.len() > 1 && reference.is_none() {
        let refs: Vec<String> = top
            .iter()
            .map(|d| {
                d.annotations
                    .get(REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| d.digest.clone())
            })
            .collect();
        // Several untagged entries that are platforms of one image are fine; several refs are not.
        let named = top
            .iter()
            .filter(|d| d.annotations.contains_key(REF_NAME))
            .count();
        if named > 1 {
            return Err(Error::Usage(format!(
                "{} holds several images ({}); name one as oci:{}:REF",
                dir.display(),
                refs.join(", "),
                dir.display()
            )));
        }
    }
    Ok(top)
}
