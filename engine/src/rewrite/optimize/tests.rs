use super::*;
use crate::lease::{Lease, LeaseGuard};
use crate::progress::NoProgress;
use crate::source::SourceSpec;
use crate::store::InitOptions;
use crate::{BlobId, ConvertOptions, PlatformChoice};
use std::collections::BTreeSet;
use std::path::Path;

fn blobs(writer: &StoreWriter) -> BTreeSet<BlobId> {
    std::fs::read_dir(writer.store().layout().blobs_dir())
        .unwrap()
        .map(|e| BlobId::from_hex(&e.unwrap().file_name().to_string_lossy()).unwrap())
        .collect()
}

fn image_blobs(writer: &StoreWriter, name: &str) -> BTreeSet<BlobId> {
    let (_, layers) = writer.store().image_layers(name).unwrap();
    layers
        .iter()
        .flat_map(|l| l.blobs().iter().map(|b| b.id))
        .collect()
}

#[test]
fn a_mounted_images_blobs_wait_for_a_later_run() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.path().join("demo")).unwrap();
    let store = StoreWriter::init(&dir.path().join("store"), &InitOptions::default()).unwrap();
    for (layout, name) in [(v1, "v1"), (v2, "v2")] {
        let options = ConvertOptions {
            source: SourceSpec::parse(&format!("oci:{}", layout.display())).unwrap(),
            name: name.into(),
            dict: Vec::new(),
            platform: PlatformChoice::Default,
            replace: false,
            delta: None,
            layers_in_flight: None,
            optimize: false,
        };
        store.convert(&options, &NoProgress).unwrap();
    }
    let pinned = image_blobs(&store, "v1");
    let all = blobs(&store);
    assert!(pinned.len() < all.len(), "v2 has blobs of its own");

    // A mount of v1 holds a lease: its blobs stay where they are, the others are rewritten.
    let guard = LeaseGuard::shared(store.store().layout()).unwrap();
    let v1_id = store.store().resolve("v1").unwrap();
    let lease = Lease::take(store.store().layout(), &[v1_id], Path::new("/mnt/v1")).unwrap();
    drop(guard);
    let options = OptimizeOptions::default();
    let report = optimize(&store, &options, &NoProgress).unwrap();
    assert_eq!(report.mounted_images, 1, "{report:?}");
    assert_eq!(
        report.rewritten_blobs as usize,
        all.len() - pinned.len(),
        "{report:?}"
    );
    assert_eq!(report.remaining_blobs as usize, pinned.len());
    assert_eq!(report.remaining_pinned_blobs as usize, pinned.len());
    let now = blobs(&store);
    assert!(pinned.is_subset(&now), "a blob the mount reads was deleted");
    assert!(all.difference(&pinned).all(|b| !now.contains(b)));

    // Unmounted: the next run takes the rest.
    drop(lease);
    let report = optimize(&store, &options, &NoProgress).unwrap();
    assert_eq!(report.mounted_images, 0);
    assert_eq!(report.rewritten_blobs as usize, pinned.len());
    assert_eq!(report.remaining_blobs, 0);
    assert!(pinned.is_disjoint(&blobs(&store)));
}

#[test]
fn a_reader_that_opened_an_image_reads_it_through_an_optimize() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, _) = cairn_sample::write_demo_layouts(&dir.path().join("demo")).unwrap();
    let root = dir.path().join("store");
    let store = StoreWriter::init(&root, &InitOptions::default()).unwrap();
    let options = ConvertOptions {
        source: SourceSpec::parse(&format!("oci:{}", v1.display())).unwrap(),
        name: "v1".into(),
        dict: Vec::new(),
        platform: PlatformChoice::Default,
        replace: false,
        delta: None,
        layers_in_flight: None,
        optimize: false,
    };
    store.convert(&options, &NoProgress).unwrap();
    let before = blobs(&store);

    // A reader opens the image, then optimize rewrites every blob it uses and deletes them.
    let reader = crate::Store::open(&root).unwrap();
    let (bootstrap, layers) = reader.image_layers("v1").unwrap();
    let report = optimize(&store, &OptimizeOptions::default(), &NoProgress).unwrap();
    assert_eq!(report.rewritten_blobs as usize, before.len());
    assert!(before.is_disjoint(&blobs(&store)));

    let mut chunks = crate::ChunkReader::new(&reader);
    for (layer, meta) in bootstrap.layers.iter().zip(&layers) {
        let tar = crate::view::LayerTar {
            meta,
            diff_id: layer.diff_id,
            label: "v1",
        };
        let mut out = Vec::new();
        let diff_id = crate::view::write_layer_tar(
            &mut chunks,
            &tar,
            &mut out,
            Path::new("memory"),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(diff_id, layer.diff_id);
    }
}
