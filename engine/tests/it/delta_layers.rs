//! Delta frames against the image's own earlier layers: a file that a later layer rewrites with
//! a few bytes changed is stored as differences to the nearest lower layer's version, even in
//! the first convert of the image (no base image), read back exactly, checked by verify and
//! kept readable by gc. Converted with one layer in flight, so the bases found do not depend
//! on timing.

use crate::delta::{assert_verify_clean, store_bytes};
use crate::helpers::*;
use cairn_engine::{ConvertReport, DeltaMode, GcOptions, NoProgress, Store, StoreWriter};
use cairn_sample::LayerCompression;

const BIG: &str = "usr/lib/libbig.so";

/// `data` with one byte in every `step` changed (about 300 for 2 MB at step 7,000).
fn scattered(data: &[u8], step: usize) -> Vec<u8> {
    let mut changed = data.to_vec();
    for i in (step / 2..changed.len()).step_by(step) {
        changed[i] ^= 0xa5;
    }
    changed
}

/// Four layers rewriting `BIG`: A (2 MB, incompressible), A with ~300 scattered bytes
/// changed, B (unrelated to A), B with ~300 bytes changed. Layers 1 and 3 should be stored as
/// differences to layers 0 and 2; layer 3's nearest lower version is layer 2's, not A.
fn layers() -> Vec<Vec<u8>> {
    let a = pseudo_random(2 << 20, 11);
    let b = pseudo_random(2 << 20, 12);
    let tar = |entries: Vec<cairn_sample::SampleEntry>| {
        cairn_sample::build_layer_tar(&entries, 1_700_000_000).unwrap()
    };
    vec![
        tar(vec![
            dir("usr"),
            dir("usr/lib"),
            file(BIG, a.clone()),
            file("etc-motd", b"hello\n".to_vec()),
        ]),
        tar(vec![dir("usr/lib"), file(BIG, scattered(&a, 7_000))]),
        tar(vec![dir("usr/lib"), file(BIG, b.clone())]),
        tar(vec![dir("usr/lib"), file(BIG, scattered(&b, 7_000))]),
    ]
}

fn convert_one_layer_at_a_time(
    writer: &StoreWriter,
    source: &str,
    delta: DeltaMode,
) -> ConvertReport {
    let mut options = options(source, "app:v1", &[]);
    options.delta = Some(delta);
    options.layers_in_flight = Some(1);
    writer.convert(&options, &NoProgress).unwrap()
}

#[test]
fn a_file_a_later_layer_rewrites_is_stored_as_differences_to_the_earlier_layers_version() {
    let tmp = tempfile::tempdir().unwrap();
    let tars = layers();
    write_layout(&tmp.path().join("img"), "v1", &tars, LayerCompression::Gzip);
    let source = format!("oci:{}:v1", tmp.path().join("img").display());
    let init = |name: &str| StoreWriter::init(&tmp.path().join(name), &Default::default()).unwrap();
    let off_store = init("off");
    let off = convert_one_layer_at_a_time(&off_store, &source, DeltaMode::Off);
    let store = init("auto");
    let auto = convert_one_layer_at_a_time(&store, &source, DeltaMode::Auto);
    let (off, auto) = (&off.images[0], &auto.images[0]);
    assert_eq!(off.totals.delta.chunks, 0, "{:?}", off.totals.delta);
    // The first convert of the image: no base image, every delta base is an earlier layer's.
    let delta = auto.totals.delta;
    assert_eq!(delta.by_path + delta.by_sketch, 0, "{delta:?}");
    assert_eq!(delta.by_earlier_layer, delta.chunks, "{delta:?}");
    for changed in [1, 3] {
        let layer = &auto.layers[changed];
        assert!(
            layer.delta.by_earlier_layer > 0,
            "layer {changed}: {layer:?}"
        );
        // Most of the file's bytes went into delta frames, at under 5 % of what the layer
        // adds with delta off.
        assert!(layer.delta.bytes > 3 << 19, "layer {changed}: {layer:?}");
        let plain = off.layers[changed].stored_bytes;
        assert!(
            layer.stored_bytes * 20 < plain,
            "layer {changed}: {} with deltas, {plain} without",
            layer.stored_bytes
        );
        eprintln!(
            "layer {changed}: {} stored with deltas, {plain} without",
            layer.stored_bytes
        );
    }
    // Layer 2 is unrelated to what lies below it: nothing to gain from a delta.
    assert_eq!(auto.layers[2].delta.chunks, 0, "{:?}", auto.layers[2]);
    let (with, without) = (store_bytes(store.store()), store_bytes(off_store.store()));
    assert!(
        with * 10 < without * 6,
        "store: {with} with deltas, {without} without"
    );
    // Every layer comes back bit for bit; verify decodes every delta frame.
    assert_eq!(export_all(store.store(), "app:v1"), tars);
    assert_verify_clean(store.store());
    // gc keeps the bases (live in the same image); compaction moves them and the deltas.
    for compact_below in [0.0, 1.0] {
        store
            .gc(&GcOptions::default().with_compact_below(compact_below))
            .unwrap();
        assert_eq!(export_all(store.store(), "app:v1"), tars);
        assert_verify_clean(store.store());
    }
    drop(store);
    let reopened = Store::open(&tmp.path().join("auto")).unwrap();
    assert_eq!(export_all(&reopened, "app:v1"), tars);
    let stats = reopened.stats(&[], false).unwrap();
    assert_eq!(stats.delta.chunks, delta.chunks);
}

#[test]
fn layers_in_flight_must_be_at_least_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let mut options = options("oci:nowhere:v1", "app:v1", &[]);
    options.layers_in_flight = Some(0);
    let err = store
        .convert(&options, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layers in flight"), "{err}");
}
