//! `plan`: the proposed bases, and every image rebuilt on them (`--emit-image`), converted back
//! and held to what the plan said: the same filesystem as the original image (mtimes aside),
//! and layer sizes that add up to the plan's "after" figure to the byte. On the demo pair
//! always, and on the family dataset (benches/scripts/gen_family.py: nine images from real
//! Debian packages) when it can be built.

use crate::helpers::*;
use crate::tree::walk_without_mtimes;
use cairn_engine::{
    EmitRequest, EmitWhat, NoProgress, PlanOptions, PlanReport, SharedWriter, Store, StoreWriter,
    UnpackOptions,
};
use std::collections::HashMap;
use std::path::Path;

/// Distinct layers (by diff_id) of these images and their tar bytes.
fn distinct_layers(store: &Store, names: &[String]) -> (usize, u64) {
    let mut seen = HashMap::new();
    for name in names {
        for layer in store.bootstrap(name).unwrap().layers {
            seen.insert(layer.diff_id, layer.size);
        }
    }
    (seen.len(), seen.values().sum())
}

/// Plans `names`, emits every image rebuilt on its bases into `work/rebuilt`, converts them
/// back as `<name>-rebuilt`, and checks the figures and (for `compare`) the filesystems.
fn plan_and_rebuild(
    writer: &StoreWriter,
    work: &Path,
    names: &[String],
    compare: &[&str],
) -> PlanReport {
    let layout = work.join("rebuilt");
    let emit = names
        .iter()
        .map(|n| EmitRequest {
            what: EmitWhat::Image(n.clone()),
            target: format!("oci:{}:{n}", layout.display()),
        })
        .collect();
    let mut options = PlanOptions::new(names.to_vec());
    options.min_images = 2;
    options.min_saving = 1_000_000;
    options.emit = emit;
    let report = writer.store().plan(&options, &NoProgress).unwrap();
    let mut rebuilt = Vec::new();
    for name in names {
        let new = format!("{name}-rebuilt");
        convert(
            writer,
            &format!("oci:{}:{name}", layout.display()),
            &new,
            &[],
        )
        .unwrap();
        rebuilt.push(new);
    }
    let (layers_before, bytes_before) = distinct_layers(writer.store(), names);
    let (layers_after, bytes_after) = distinct_layers(writer.store(), &rebuilt);
    let t = &report.totals;
    assert_eq!(
        (t.layers_before, t.bytes_before),
        (layers_before, bytes_before)
    );
    assert_eq!((t.layers_after, t.bytes_after), (layers_after, bytes_after));
    assert_eq!(t.saved_bytes, bytes_before as i64 - bytes_after as i64);
    for (image, name) in report.images.iter().zip(&rebuilt) {
        let layers = writer.store().bootstrap(name).unwrap().layers;
        assert_eq!(layers.len(), image.bases.len() + 1, "{name}");
        assert_eq!(layers.last().unwrap().size, image.release_bytes_after);
        for (layer, base) in layers.iter().zip(&image.bases) {
            assert_eq!(layer.size, report.bases[base - 1].layer_bytes, "{name}");
        }
    }
    for name in compare {
        let original = work.join(format!("{name}.original"));
        let again = work.join(format!("{name}.rebuilt"));
        let options = UnpackOptions::default();
        writer
            .store()
            .unpack(name, &original, &options, &NoProgress)
            .unwrap();
        let rebuilt_name = format!("{name}-rebuilt");
        writer
            .store()
            .unpack(&rebuilt_name, &again, &options, &NoProgress)
            .unwrap();
        let (a, b) = (walk_without_mtimes(&original), walk_without_mtimes(&again));
        assert!(a.len() > 10);
        assert_eq!(a, b, "{name} rebuilt differs from the original");
    }
    report
}

#[test]
fn demo_pair_rebuilt_on_its_base_is_the_same_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let store = new_store(tmp.path());
    convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
    convert(&store, &format!("oci:{}:v2", v2.display()), "v2", &[]).unwrap();
    let names = ["v1".to_string(), "v2".to_string()];
    let report = plan_and_rebuild(&store, tmp.path(), &names, &["v1", "v2"]);
    assert_eq!(report.bases.len(), 1, "{report:#?}");
    assert_eq!(report.bases[0].images, names);
    assert!(report.totals.saved_bytes > 0, "{:?}", report.totals);

    // The base on its own: one layer, the same bytes as the rebuilt images' first layer.
    let layout = tmp.path().join("base");
    let mut options = PlanOptions::new(names.to_vec());
    options.min_images = 2;
    options.min_saving = 1_000_000;
    options.emit = vec![EmitRequest {
        what: EmitWhat::Base(1),
        target: format!("oci:{}:base", layout.display()),
    }];
    let again = store.store().plan(&options, &NoProgress).unwrap();
    let base = &again.emitted[0];
    assert_eq!(base.layers.len(), 1);
    let rebuilt = store.store().bootstrap("v1-rebuilt").unwrap();
    assert_eq!(
        base.layers[0].diff_id,
        rebuilt.layers[0].diff_id.to_string()
    );
    convert(
        &store,
        &format!("oci:{}:base", layout.display()),
        "base",
        &[],
    )
    .unwrap();

    // A bad request says what to do, and nothing is written, not even the good requests.
    for (what, text) in [
        (EmitWhat::Base(2), "bases 1 to 1"),
        (EmitWhat::Image("nope".into()), "not one of the images"),
    ] {
        let target = tmp.path().join("bad");
        let request = |what| EmitRequest {
            what,
            target: format!("oci:{}:x", target.display()),
        };
        let mut options = options.clone();
        options.emit = vec![request(EmitWhat::Base(1)), request(what)];
        let err = store
            .store()
            .plan(&options, &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(err.contains(text), "{err}");
        assert!(!target.exists());
    }
    options.min_images = 3;
    assert!(store.store().plan(&options, &NoProgress).is_err());
}

#[test]
fn family_plan_finds_the_os_and_runtime_bases_and_its_savings_are_real() {
    let Some(data) = cairn_testkit::datasets::family() else {
        return;
    };
    let family: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("family.json")).unwrap()).unwrap();
    let names: Vec<String> = family["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    for name in &names {
        let source = format!("oci:{}:{name}", data.join("oci").display());
        convert(&store, &source, name, &[]).unwrap();
    }
    let report = plan_and_rebuild(&store, tmp.path(), &names, &["py-cli-v1", "java-batch-v2"]);

    // The ground truth: an OS base under all nine, the Python runtime's five images, the Java
    // runtime's four.
    let images_of = |key: &str| -> Vec<String> {
        let mut list: Vec<String> = family["sharing"][key]["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
        list.sort();
        list
    };
    let base_for = |images: &[String], holding: &str| {
        report.bases.iter().find(|b| {
            let mut served = b.images.clone();
            served.sort();
            served == images && b.prefixes.iter().any(|p| p.prefix.starts_with(holding))
        })
    };
    let os = base_for(&images_of("os:common"), "usr/lib/x86_64-linux-gnu");
    let os = os.unwrap_or_else(|| panic!("no OS base: {report:#?}"));
    assert!(os.packages.iter().any(|p| p == "libc6"), "{os:?}");
    let python = base_for(&images_of("runtime:python"), "usr/lib/python3.11");
    let java = base_for(&images_of("runtime:java"), "usr/lib/jvm");
    for (base, what) in [(python, "python"), (java, "java")] {
        let base = base.unwrap_or_else(|| panic!("no {what} runtime base: {report:#?}"));
        assert_eq!(base.parent, Some(os.number), "{what}");
    }

    // A dictionary of the chunks two images share covers what it says when converting again.
    drop(store);
    let writer = SharedWriter::open(&tmp.path().join("store")).unwrap();
    let dict = writer
        .build_dict(&names, 2, "family-dict", &NoProgress)
        .unwrap();
    let last = names.last().unwrap();
    let coverage = dict.coverage.iter().find(|c| &c.image == last).unwrap();
    let source = format!("oci:{}:{last}", data.join("oci").display());
    let mut again = options(&source, "again", &["family-dict"]);
    again.delta = Some(cairn_engine::DeltaMode::Off);
    let converted = writer.convert(&again, &NoProgress).unwrap();
    let totals = &converted.images[0].totals;
    assert_eq!(
        totals.new.bytes,
        coverage.unique_bytes - coverage.covered_bytes
    );
}
