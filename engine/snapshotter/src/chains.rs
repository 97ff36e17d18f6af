//! Chains the store holds already: an image in the store (pulled, converted, imported from a
//! bundle) is a stack of layers whose diff_ids give containerd's chain IDs
//! (`chainID(1) = diffID(1)`, `chainID(n) = sha256(chainID(n-1) + " " + diffID(n))`). When
//! containerd prepares a snapshot to unpack a layer with the `containerd.io/snapshot.ref`
//! label naming such a chain, the snapshotter answers that it exists (as remote snapshotters
//! do), and containerd applies nothing. The snapshotter's own images (`snapshot/N`) are left
//! out: their layers are re-serialised trees, whose diff_ids are not the image's.

use crate::error::SnapResult;
use crate::records::ChainImage;
use crate::snapshots::IMAGE_PREFIX;
use cairn_engine::Store;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The label containerd's unpacker puts on a layer's snapshot: the chain ID it will have.
pub const SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";

/// The chain ID of `diff_id` on top of the chain `parent` (`None`: a bottom layer).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(parent) => format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{parent} {diff_id}").as_bytes()))
        ),
    }
}

/// A stored image whose layers up to some top make chain `target`.
pub fn find_chain(store: &Path, target: &str) -> SnapResult<Option<ChainImage>> {
    let store = Store::open(store)?;
    for image in store.images()? {
        if image.name.starts_with(IMAGE_PREFIX) {
            continue;
        }
        let bootstrap = store.bootstrap_by_id(&image.record.image_id)?;
        let mut chain: Option<String> = None;
        for (top, layer) in bootstrap.layers.iter().enumerate() {
            let id = chain_id(chain.as_deref(), &layer.diff_id.to_string());
            if id == target {
                return Ok(Some(ChainImage {
                    name: image.name.clone(),
                    top,
                    image_id: image.record.image_id.to_string(),
                    layer_bytes: layer.size,
                    layer_entries: 0,
                }));
            }
            chain = Some(id);
        }
    }
    Ok(None)
}
