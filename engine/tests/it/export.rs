//! Exporting images as OCI layouts and docker archives, and reading them back (with cairn, and
//! with skopeo when it is installed).

use crate::helpers::*;
use cairn_engine::{
    Compression, ExportOptions, ExportReport, ExportTarget, NoProgress, Progress, Store,
    StoreWriter, WholeImage,
};
use cairn_sample::LayerCompression;
use cairn_testkit::{probe, require};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A store holding the demo images as `app:v1` and `app:v2`.
fn demo_store(dir: &Path) -> StoreWriter {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("demo")).unwrap();
    let store = new_store(dir);
    convert(&store, &format!("oci:{}", v1.display()), "app:v1", &[]).unwrap();
    convert(&store, &format!("oci:{}", v2.display()), "app:v2", &[]).unwrap();
    store
}

fn export(store: &Store, name: &str, target: &str, compression: Compression) -> ExportReport {
    let mut options = ExportOptions::new(ExportTarget::parse(target).unwrap());
    options.compression = compression;
    store.export(name, &options, &NoProgress).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
}

/// The ref names of `index.json`, in order.
fn refs(layout: &Path) -> Vec<String> {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The index entry and the manifest of the image named `reference`.
fn manifest(layout: &Path, reference: &str) -> (Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("no ref {reference} in {index}"))
        .clone();
    let bytes = blob(layout, entry["digest"].as_str().unwrap());
    assert_eq!(entry["size"], bytes.len() as u64);
    (entry, serde_json::from_slice(&bytes).unwrap())
}

fn decompress(media_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match media_type {
        "application/vnd.oci.image.layer.v1.tar" => out = bytes.to_vec(),
        "application/vnd.oci.image.layer.v1.tar+gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => out = zstd::decode_all(bytes).unwrap(),
        other => panic!("unexpected layer media type {other}"),
    }
    out
}

/// The files of a layout directory, relative to it.
fn files(layout: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![layout.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(layout).unwrap();
                out.insert(rel.display().to_string());
            }
        }
    }
    out
}

/// Checks image `reference` of `layout` against the stored image: the config byte for byte, each
/// layer blob named by its digest and decompressing to the original tar. Returns the blob
/// digests the image uses.
fn check_image(
    layout: &Path,
    reference: &str,
    bootstrap: &WholeImage,
    tars: &[Vec<u8>],
    media_type: &str,
) -> BTreeSet<String> {
    let (entry, manifest) = manifest(layout, reference);
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(entry["platform"]["os"], "linux");
    assert_eq!(entry["platform"]["architecture"], "amd64");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let source_config = bootstrap.source.config.as_ref().unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        source_config.digest.to_string()
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        blob(layout, manifest["config"]["digest"].as_str().unwrap()),
        source_config.bytes
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), tars.len());
    let mut used = BTreeSet::from([
        entry["digest"].as_str().unwrap().to_string(),
        source_config.digest.to_string(),
    ]);
    for ((desc, tar), record) in layers.iter().zip(tars).zip(&bootstrap.layers) {
        assert_eq!(desc["mediaType"], media_type);
        let bytes = blob(layout, desc["digest"].as_str().unwrap());
        assert_eq!(desc["size"], bytes.len() as u64);
        let plain = decompress(media_type, &bytes);
        assert_eq!(sha256_hex(&plain), record.diff_id.to_string());
        assert!(&plain == tar, "layer {} differs", record.diff_id);
        used.insert(desc["digest"].as_str().unwrap().to_string());
    }
    used
}

/// Every blob of a layout is named by its sha256, and the layout holds nothing else but
/// `oci-layout` and `index.json` (no temporary files left over).
fn check_blob_names(layout: &Path) -> BTreeSet<String> {
    let mut blobs = BTreeSet::new();
    for name in files(layout) {
        if name == "oci-layout" || name == "index.json" {
            continue;
        }
        let hex = name
            .strip_prefix("blobs/sha256/")
            .unwrap_or_else(|| panic!("stray file {name} in the layout"));
        let bytes = std::fs::read(layout.join(&name)).unwrap();
        assert_eq!(sha256_hex(&bytes), format!("sha256:{hex}"));
        blobs.insert(format!("sha256:{hex}"));
    }
    assert_eq!(
        read_json(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    blobs
}

/// Counts the bytes an export reports.
#[derive(Default)]
struct Counter {
    length: AtomicU64,
    done: AtomicU64,
}

impl Progress for Counter {
    fn set_length(&self, total: u64, _unit: cairn_engine::Unit) {
        self.length.store(total, Ordering::Relaxed);
    }

    fn inc(&self, delta: u64) {
        self.done.fetch_add(delta, Ordering::Relaxed);
    }
}

#[test]
fn oci_layouts_hold_the_original_images() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let tars = [
        cairn_sample::demo_layers(1).unwrap(),
        cairn_sample::demo_layers(2).unwrap(),
    ];
    let bootstraps = [
        store.store().whole_image("app:v1").unwrap(),
        store.store().whole_image("app:v2").unwrap(),
    ];
    for (dir, compression, media_type) in [
        (
            "gzip",
            Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (
            "zstd",
            Compression::Zstd,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        (
            "none",
            Compression::None,
            "application/vnd.oci.image.layer.v1.tar",
        ),
    ] {
        let layout = tmp.path().join(dir);
        let counter = Counter::default();
        let mut options = ExportOptions::new(
            ExportTarget::parse(&format!("oci:{}:v1", layout.display())).unwrap(),
        );
        options.compression = compression;
        let r1 = store.store().export("app:v1", &options, &counter).unwrap();
        let tar_bytes: u64 = tars[0].iter().map(|t| t.len() as u64).sum();
        assert_eq!(r1.tar_bytes, tar_bytes);
        assert_eq!(counter.length.load(Ordering::Relaxed), tar_bytes);
        assert_eq!(counter.done.load(Ordering::Relaxed), tar_bytes);
        assert_eq!(r1.reference.as_deref(), Some("v1"));
        assert_eq!(
            r1.config_digest,
            bootstraps[0]
                .source
                .config
                .as_ref()
                .unwrap()
                .digest
                .to_string()
        );
        assert!(!r1.config_synthesized);
        let r2 = export(
            store.store(),
            "app:v2",
            &format!("oci:{}:v2", layout.display()),
            compression,
        );
        assert_eq!(refs(&layout), vec!["v1", "v2"]);

        let mut expected = BTreeSet::new();
        for (reference, (bootstrap, tars)) in ["v1", "v2"].iter().zip(bootstraps.iter().zip(&tars))
        {
            expected.extend(check_image(&layout, reference, bootstrap, tars, media_type));
        }
        // Configs, 3 layers each, manifests: nothing in common between v1 and v2 (every layer
        // of v2 has new mtimes), nothing more.
        assert_eq!(expected.len(), 2 * 5);
        assert_eq!(check_blob_names(&layout), expected);
        for (report, bootstrap) in [(&r1, &bootstraps[0]), (&r2, &bootstraps[1])] {
            let (entry, _) = manifest(&layout, report.reference.as_deref().unwrap());
            assert_eq!(
                Some(entry["digest"].as_str().unwrap()),
                report.manifest_digest.as_deref()
            );
            for (layer, record) in report.layers.iter().zip(&bootstrap.layers) {
                assert_eq!(layer.diff_id, record.diff_id.to_string());
                assert_eq!(layer.size, record.size);
                assert_eq!(layer.media_type, media_type);
                assert!(!layer.already_present);
            }
        }

        // Exported again, under the same ref and under another: the same blobs serve both, and
        // an entry with the same ref is replaced, not repeated. (Compression plays no part.)
        if compression != Compression::Gzip {
            continue;
        }
        let again = export(
            store.store(),
            "app:v1",
            &format!("oci:{}:v1", layout.display()),
            compression,
        );
        assert_eq!(again.manifest_digest, r1.manifest_digest);
        assert!(again.layers.iter().all(|l| l.already_present));
        let other = export(
            store.store(),
            "app:v1",
            &format!("oci:{}:latest", layout.display()),
            compression,
        );
        assert_eq!(other.manifest_digest, r1.manifest_digest);
        assert_eq!(refs(&layout), vec!["v2", "v1", "latest"]);
        assert_eq!(check_blob_names(&layout), expected);
    }
}

/// The two bootstraps describe the same image: the same config bytes and platform, the same
/// layers (see `assert_same_layers`).
fn assert_same_image(a: &WholeImage, b: &WholeImage) {
    assert_eq!(
        a.source.config.as_ref().map(|c| &c.bytes),
        b.source.config.as_ref().map(|c| &c.bytes)
    );
    assert_eq!(a.source.platform, b.source.platform);
    assert_same_layers(a, b);
}

/// The same layers (diff_id, size, trailer) with the same entries (raw headers, metadata, and
/// the chunk ids of each file in order).
fn assert_same_layers(a: &WholeImage, b: &WholeImage) {
    assert_eq!(a.layers.len(), b.layers.len());
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        assert_eq!(la.diff_id, lb.diff_id);
        assert_eq!(la.size, lb.size);
        assert_eq!(la.trailer, lb.trailer);
        assert_eq!(la.entries.len(), lb.entries.len());
        for (ea, eb) in la.entries.iter().zip(&lb.entries) {
            assert_eq!(ea.raw_header, eb.raw_header);
            assert_eq!(ea.meta, eb.meta);
            let ids = |bootstrap: &WholeImage, chunks: &[u32]| -> Vec<_> {
                chunks
                    .iter()
                    .map(|&c| bootstrap.chunks[c as usize].id)
                    .collect()
            };
            assert_eq!(ids(a, &ea.chunks), ids(b, &eb.chunks));
        }
    }
}

#[test]
fn an_exported_layout_converts_back_to_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let layout = tmp.path().join("out");
    export(
        store.store(),
        "app:v1",
        &format!("oci:{}:v1", layout.display()),
        Compression::Gzip,
    );
    export(
        store.store(),
        "app:v2",
        &format!("oci:{}:v2", layout.display()),
        Compression::Zstd,
    );
    let second = StoreWriter::init(&tmp.path().join("second"), &Default::default()).unwrap();
    for (name, reference) in [("app:v1", "v1"), ("app:v2", "v2")] {
        let report = convert(
            &second,
            &format!("oci:{}:{reference}", layout.display()),
            name,
            &[],
        )
        .unwrap();
        let (entry, _) = manifest(&layout, reference);
        assert_eq!(
            report.images[0].manifest_digest.as_deref(),
            entry["digest"].as_str()
        );
        assert_same_image(
            &store.store().whole_image(name).unwrap(),
            &second.store().whole_image(name).unwrap(),
        );
    }
}

/// The members of a tar file: path -> bytes.
fn tar_members(file: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(file).unwrap());
    let mut out = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            out.insert(path, bytes);
        }
    }
    out
}

#[test]
fn a_docker_archive_converts_back_to_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let file = tmp.path().join("app.tar");
    let report = export(
        store.store(),
        "app:v2",
        &format!("docker-archive:{}", file.display()),
        Compression::None,
    );
    assert_eq!(report.reference.as_deref(), Some("app:v2"));
    assert!(!tmp.path().join("app.tar.cairn-partial").exists());
    let members = tar_members(&file);
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["app:v2"]));
    let bootstrap = store.store().whole_image("app:v2").unwrap();
    let config = bootstrap.source.config.as_ref().unwrap();
    assert_eq!(
        members[manifest[0]["Config"].as_str().unwrap()],
        config.bytes
    );
    let tars = cairn_sample::demo_layers(2).unwrap();
    let layer_names = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layer_names.len(), tars.len());
    for (name, tar) in layer_names.iter().zip(&tars) {
        assert!(&members[name.as_str().unwrap()] == tar);
    }
    let repositories: Value = serde_json::from_slice(&members["repositories"]).unwrap();
    assert!(repositories["app"]["v2"].is_string());

    let second = StoreWriter::init(&tmp.path().join("second"), &Default::default()).unwrap();
    convert(
        &second,
        &format!("docker-archive:{}", file.display()),
        "back",
        &[],
    )
    .unwrap();
    assert_same_image(&bootstrap, &second.store().whole_image("back").unwrap());

    // A name that is not a docker repo:tag leaves the image untagged.
    let untagged = tmp.path().join("untagged.tar");
    let mut options = ExportOptions::new(
        ExportTarget::parse(&format!("docker-archive:{}", untagged.display())).unwrap(),
    );
    options.reference = Some("Not-A-Repo".into());
    let report = store
        .store()
        .export("app:v1", &options, &NoProgress)
        .unwrap();
    assert_eq!(report.reference, None);
    let manifest: Value = serde_json::from_slice(&tar_members(&untagged)["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!([]));
}

#[test]
fn a_bare_layer_gets_a_made_up_config() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = tricky_layers();
    let bare = tmp.path().join("layer.tar.gz");
    std::fs::write(&bare, LayerCompression::Gzip.compress(&layers[1]).unwrap()).unwrap();
    let store = new_store(tmp.path());
    convert(&store, bare.to_str().unwrap(), "bare", &[]).unwrap();
    let layout = tmp.path().join("out");
    let report = export(
        store.store(),
        "bare",
        &format!("oci:{}", layout.display()),
        Compression::Zstd,
    );
    assert!(report.config_synthesized);
    assert_eq!(report.reference.as_deref(), Some("bare"));
    assert_eq!(report.platform.as_deref(), Some("linux/amd64"));
    let (entry, manifest) = manifest(&layout, "bare");
    assert_eq!(entry["platform"]["architecture"], "amd64");
    let config: Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256_hex(&layers[1])])
    );
    check_blob_names(&layout);

    // cairn reads it back as the same layer.
    let second = StoreWriter::init(&tmp.path().join("second"), &Default::default()).unwrap();
    convert(
        &second,
        &format!("oci:{}:bare", layout.display()),
        "bare",
        &[],
    )
    .unwrap();
    assert_same_layers(
        &store.store().whole_image("bare").unwrap(),
        &second.store().whole_image("bare").unwrap(),
    );
    if let Some(skopeo) = require("the skopeo check", probe::tool("skopeo")) {
        let out =
            run(Command::new(&skopeo).args(["inspect", &format!("oci:{}:bare", layout.display())]));
        let inspect: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            inspect["Digest"].as_str(),
            report.manifest_digest.as_deref()
        );
    }
}

#[test]
fn bad_targets_and_damaged_blobs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&layout, "t", &tricky_layers(), LayerCompression::Gzip);
    let store = new_store(tmp.path());
    convert(&store, &format!("oci:{}", layout.display()), "t", &[]).unwrap();
    let try_export = |target: &str, change: &dyn Fn(&mut ExportOptions)| {
        let mut options = ExportOptions::new(ExportTarget::parse(target).unwrap());
        change(&mut options);
        store
            .store()
            .export("t", &options, &NoProgress)
            .map_err(|e| e.to_string())
    };

    // A directory that holds something else is not taken over.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let err = try_export(&format!("oci:{}", busy.display()), &|_| {}).unwrap_err();
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert_eq!(files(&busy), BTreeSet::from(["notes.txt".to_string()]));

    let out = tmp.path().join("out");
    let target = format!("oci:{}", out.display());
    let err = try_export(&target, &|o| o.level = Some(12)).unwrap_err();
    assert!(err.contains("gzip compression level 12"), "{err}");
    let err = try_export(
        &format!("docker-archive:{}", tmp.path().join("x.tar").display()),
        &|o| o.compression = Compression::Gzip,
    )
    .unwrap_err();
    assert!(
        err.contains("docker archive holds uncompressed layers"),
        "{err}"
    );
    let err = store
        .store()
        .export(
            "nope",
            &ExportOptions::new(ExportTarget::parse(&target).unwrap()),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("no image named \"nope\""), "{err}");

    // A good export, then one from a damaged store: it fails, and leaves the layout as it was
    // (layers that were done may have left their blobs, which nothing names).
    try_export(&target, &|_| {}).unwrap();
    let before: Vec<(String, Vec<u8>)> = files(&out)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).unwrap();
            (f, bytes)
        })
        .collect();
    for entry in std::fs::read_dir(store.store().root().join("blobs")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        for b in &mut bytes[100..200] {
            *b ^= 0x55;
        }
        std::fs::write(&path, &bytes).unwrap();
    }
    let err = try_export(&format!("{target}:other"), &|o| {
        o.compression = Compression::Zstd
    })
    .unwrap_err();
    assert!(
        err.contains("blob"),
        "the error should name the blob: {err}"
    );
    for (file, bytes) in &before {
        assert!(
            &std::fs::read(out.join(file)).unwrap() == bytes,
            "{file} changed"
        );
    }
    assert_eq!(refs(&out), vec!["t"]);
    check_blob_names(&out);
    let archive = tmp.path().join("damaged.tar");
    try_export(&format!("docker-archive:{}", archive.display()), &|_| {}).unwrap_err();
    assert!(!archive.exists());
    assert!(!tmp.path().join("damaged.tar.cairn-partial").exists());
}

/// Runs a command that must succeed; returns its stdout.
fn run(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn skopeo_reads_what_we_write() {
    let Some(skopeo) = require("the skopeo test", probe::tool("skopeo")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let layout = tmp.path().join("out");
    let mut reports = Vec::new();
    for (name, reference, compression) in [
        ("app:v1", "v1", Compression::Gzip),
        ("app:v2", "v2", Compression::Zstd),
    ] {
        reports.push(export(
            store.store(),
            name,
            &format!("oci:{}:{reference}", layout.display()),
            compression,
        ));
    }
    for report in &reports {
        let image = format!(
            "oci:{}:{}",
            layout.display(),
            report.reference.as_deref().unwrap()
        );
        let inspect: Value =
            serde_json::from_slice(&run(Command::new(&skopeo).args(["inspect", &image]))).unwrap();
        assert_eq!(
            inspect["Digest"].as_str(),
            report.manifest_digest.as_deref()
        );
        let layers: Vec<&str> = report.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(inspect["Layers"], serde_json::json!(layers));
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Architecture"], "amd64");
        // skopeo's view of the manifest is the blob we wrote, byte for byte.
        let raw = run(Command::new(&skopeo).args(["inspect", "--raw", &image]));
        assert_eq!(
            raw,
            blob(&layout, report.manifest_digest.as_deref().unwrap())
        );
    }
    let copied = tmp.path().join("copied.tar");
    run(Command::new(&skopeo).args([
        "--insecure-policy",
        "copy",
        "--quiet",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker-archive:{}:app:v1", copied.display()),
    ]));
    assert!(copied.is_file());

    let archive = tmp.path().join("app.tar");
    let report = export(
        store.store(),
        "app:v2",
        &format!("docker-archive:{}", archive.display()),
        Compression::None,
    );
    let inspect: Value =
        serde_json::from_slice(&run(Command::new(&skopeo)
            .args(["inspect", &format!("docker-archive:{}", archive.display())])))
        .unwrap();
    let diff_ids: Vec<&str> = report.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(inspect["Layers"], serde_json::json!(diff_ids));
}
