//! Imports trust nothing that arrives. A bundle whose layer object and bootstrap are relabelled
//! with another layer's diff_id and digest (every id and checksum recomputed) is refused, the
//! store unchanged, and the genuine layer converted later is the genuine one; a layer key an
//! older cairn could have indexed for such an object is found by `verify --full`. A bundle of
//! several images commits all or none; its names follow the name rule, two images of one name
//! are refused, and a name another writer took meanwhile is not replaced. Every hostile name is
//! refused by convert, bundle import, `dict build` and `plan` emit.

use crate::helpers::*;
use cairn_engine::bundle::create::BundleOptions;
use cairn_engine::bundle::file::{BundleManifest, BundleReader, BundleWriter, FrameRecord, Kind};
use cairn_engine::bundle::import::BundleImportReport;
use cairn_engine::{
    Bootstrap, ChunkId, EmitRequest, EmitWhat, Follow, LayerMetaId, NoProgress, PlanOptions,
    Progress, Sha256Digest, SharedWriter, Store,
};
use cairn_sample::LayerCompression;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A bundle's records after its manifest, decoded.
enum Record {
    Relied(Vec<(ChunkId, u32)>),
    Frame(FrameRecord),
    Object(Kind, [u8; 32], Vec<u8>),
}

fn decode(bytes: &[u8]) -> (BundleManifest, Vec<Record>) {
    let mut reader = BundleReader::new(bytes, "bundle to craft").unwrap();
    let head = reader.next_head().unwrap().unwrap();
    let manifest = reader.manifest(&head).unwrap();
    let mut records = Vec::new();
    while let Some(head) = reader.next_head().unwrap() {
        records.push(match head.kind {
            Kind::Relied => Record::Relied(reader.relied(&head).unwrap()),
            Kind::Frame => Record::Frame(reader.frame(&head).unwrap()),
            kind => {
                let mut bytes = Vec::new();
                let id = reader.object(&head, &mut bytes).unwrap();
                Record::Object(kind, id, bytes)
            }
        });
    }
    (manifest, records)
}

/// Writes the records again: every length and the end checksum computed afresh.
fn encode(manifest: &BundleManifest, records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = BundleWriter::new(&mut out).unwrap();
    writer.manifest(manifest).unwrap();
    for record in records {
        match record {
            Record::Relied(chunks) => writer.relied(chunks).unwrap(),
            Record::Frame(frame) => writer.frame(frame).unwrap(),
            Record::Object(kind, id, bytes) => writer
                .object(*kind, id, &mut &bytes[..], bytes.len() as u64)
                .unwrap(),
        }
    }
    writer.finish().unwrap();
    out
}

fn object_mut(records: &mut [Record], kind: Kind, id: [u8; 32]) -> (&mut [u8; 32], &mut Vec<u8>) {
    records
        .iter_mut()
        .find_map(|r| match r {
            Record::Object(k, i, bytes) if *k == kind && *i == id => Some((i, bytes)),
            _ => None,
        })
        .expect("the bundle carries the object")
}

/// The bundle with layer `layer` of image `image` claiming `diff_id` and `digest` in its
/// bootstrap, and (with `object`) in its layer object too; every id, the manifest and the
/// checksum made to match.
fn relabel(
    bundle: &[u8],
    dir: &Path,
    (image, layer): (usize, usize),
    object: bool,
    diff_id: Sha256Digest,
    digest: Sha256Digest,
) -> Vec<u8> {
    let (mut manifest, mut records) = decode(bundle);
    let sent = cairn_engine::ImageId::from_hex(&manifest.images[image].id).unwrap();
    let (_, bytes) = object_mut(&mut records, Kind::Bootstrap, sent.0);
    let mut bootstrap = Bootstrap::decode(bytes, "bootstrap to craft").unwrap();
    let target = &mut bootstrap.layers[layer];
    if object {
        let (id, bytes) = object_mut(&mut records, Kind::LayerObject, target.meta.0);
        let (src, dst) = (dir.join("object"), dir.join("relabelled"));
        std::fs::write(&src, bytes.as_slice()).unwrap();
        let new =
            cairn_engine::testing::relabel_layer_object(&src, LayerMetaId(*id), &dst, diff_id)
                .unwrap();
        (*id, *bytes) = (new.0, std::fs::read(&dst).unwrap());
        target.meta = new;
    }
    (target.diff_id, target.digest) = (diff_id, digest);
    let encoded = bootstrap.encode().unwrap();
    let new_id = *blake3::hash(&encoded).as_bytes();
    let (id, bytes) = object_mut(&mut records, Kind::Bootstrap, sent.0);
    (*id, *bytes) = (new_id, encoded);
    manifest.images[image].id = hex::encode(new_id);
    manifest.images[image].diff_ids[layer] = diff_id.to_hex();
    encode(&manifest, &records)
}

fn bundle_of(store: &Path, images: &[&str]) -> Vec<u8> {
    let mut options = BundleOptions::default();
    options.images = images.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    Store::open(store)
        .unwrap()
        .create_bundle(&options, &mut out, &NoProgress)
        .unwrap();
    out
}

fn import_with(
    store: &Path,
    bytes: &[u8],
    progress: &dyn Progress,
) -> cairn_engine::Result<BundleImportReport> {
    let writer = SharedWriter::open(store).unwrap();
    writer.import_bundle(&mut &bytes[..], "crafted bundle", false, progress)
}

fn import(store: &Path, bytes: &[u8]) -> cairn_engine::Result<BundleImportReport> {
    import_with(store, bytes, &NoProgress)
}

/// A layout of one gzip layer holding `/etc/os-release` with `content`.
pub fn one_file_image(dir: &Path, content: &[u8]) -> String {
    let tar = cairn_sample::build_layer_tar(
        &[dir_entry("etc"), file("etc/os-release", content.to_vec())],
        1_700_000_000,
    )
    .unwrap();
    write_layout(dir, "t", &[tar], LayerCompression::Gzip);
    format!("oci:{}:t", dir.display())
}

fn dir_entry(path: &str) -> cairn_sample::SampleEntry {
    crate::helpers::dir(path)
}

pub fn store_at(dir: &Path) -> PathBuf {
    drop(new_store(dir));
    dir.join("store")
}

fn os_release(store: &Path, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Store::open(store)
        .unwrap()
        .cat(name, "/etc/os-release", Follow::Symlinks, &mut out)
        .unwrap();
    out
}

/// A sender holding the demo's v1 and v2, and their sources.
fn demo_sender(dir: &Path) -> (PathBuf, String, String) {
    let (v1, v2) = cairn_sample::write_demo_layouts(&dir.join("images")).unwrap();
    let (v1, v2) = (
        format!("oci:{}:v1", v1.display()),
        format!("oci:{}:v2", v2.display()),
    );
    let store = new_store(&dir.join("sender"));
    convert(&store, &v1, "v1", &[]).unwrap();
    convert(&store, &v2, "v2", &[]).unwrap();
    (dir.join("sender/store"), v1, v2)
}

#[test]
fn a_bundle_relabelling_its_layer_as_another_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let genuine = one_file_image(&tmp.path().join("genuine"), b"genuine\n");
    let evil = one_file_image(&tmp.path().join("evil"), b"evil\n");
    let sender = store_at(&tmp.path().join("sender"));
    SharedWriter::open(&sender)
        .unwrap()
        .convert(&options(&evil, "app", &[]), &NoProgress)
        .unwrap();
    let reference = store_at(&tmp.path().join("reference"));
    SharedWriter::open(&reference)
        .unwrap()
        .convert(&options(&genuine, "g", &[]), &NoProgress)
        .unwrap();
    let g = Store::open(&reference)
        .unwrap()
        .bootstrap("g")
        .unwrap()
        .layers[0]
        .clone();
    let own = Store::open(&sender)
        .unwrap()
        .bootstrap("app")
        .unwrap()
        .layers[0]
        .clone();
    let bundle = bundle_of(&sender, &["app"]);

    // The crafting itself is sound: relabelled with the layer's own ids, the bundle imports.
    let honest = relabel(&bundle, tmp.path(), (0, 0), true, own.diff_id, own.digest);
    let control = store_at(&tmp.path().join("control"));
    import(&control, &honest).unwrap();
    assert_eq!(os_release(&control, "app"), b"evil\n");

    // Relabelled as the genuine layer, every checksum right: refused, naming it; unchanged.
    let crafted = relabel(&bundle, tmp.path(), (0, 0), true, g.diff_id, g.digest);
    let receiver = store_at(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let err = import(&receiver, &crafted).unwrap_err().to_string();
    for part in [
        "crafted bundle",
        "image \"app\" layer 0",
        &g.diff_id.to_string(),
        &own.diff_id.to_string(),
        "re-created",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);

    // The genuine image converted afterwards holds the genuine file.
    SharedWriter::open(&receiver)
        .unwrap()
        .convert(&options(&genuine, "g", &[]), &NoProgress)
        .unwrap();
    assert_eq!(os_release(&receiver, "g"), b"genuine\n");
}

#[test]
fn an_imported_layer_is_reused_by_its_diff_id_without_being_read() {
    let tmp = tempfile::tempdir().unwrap();
    let source = one_file_image(&tmp.path().join("img"), b"shared\n");
    let sender = store_at(&tmp.path().join("sender"));
    SharedWriter::open(&sender)
        .unwrap()
        .convert(&options(&source, "a", &[]), &NoProgress)
        .unwrap();
    let receiver = store_at(&tmp.path().join("receiver"));
    import(&receiver, &bundle_of(&sender, &["a"])).unwrap();
    // A convert of the same image reuses the imported layer (by the diff_id it re-created)
    // without reading it.
    let report = SharedWriter::open(&receiver)
        .unwrap()
        .convert(&options(&source, "b", &[]), &NoProgress)
        .unwrap();
    assert!(report.images[0].layers[0].reused_metadata, "{report:?}");
    assert_eq!(os_release(&receiver, "b"), b"shared\n");
}

#[test]
fn verify_full_finds_a_layer_key_planted_for_a_relabelled_object() {
    let tmp = tempfile::tempdir().unwrap();
    let genuine = one_file_image(&tmp.path().join("genuine"), b"genuine\n");
    let evil = one_file_image(&tmp.path().join("evil"), b"evil\n");
    let store = new_store(tmp.path());
    convert(&store, &evil, "app", &[]).unwrap();
    convert(&store, &genuine, "g", &[]).unwrap();
    let evil_meta = store.store().bootstrap("app").unwrap().layers[0].meta;
    let g = store.store().bootstrap("g").unwrap().layers[0].clone();
    assert!(store.store().verify(true, &NoProgress).unwrap().is_clean());

    // As an older cairn's import of a relabelled bundle left it.
    let planted =
        cairn_engine::testing::plant_relabelled_layer(&store, &evil_meta, g.diff_id).unwrap();
    let report = store.store().verify(true, &NoProgress).unwrap();
    let found = |object: &str, detail: &str| {
        report
            .problems
            .iter()
            .any(|p| p.object.contains(object) && p.detail.contains(detail))
    };
    assert!(
        found(&format!("layer object {planted}"), "re-created"),
        "{report:#?}"
    );
    assert!(
        found(&format!("diff_id {}", g.diff_id), &planted.to_string()),
        "{report:#?}"
    );
}

#[test]
fn a_bundle_whose_second_image_is_bad_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, _, _) = demo_sender(tmp.path());
    let bundle = bundle_of(&sender, &["v1", "v2"]);
    let (manifest, _) = decode(&bundle);
    let last = manifest.images[1].diff_ids.len() - 1;
    let wrong = Sha256Digest::of(b"not this layer");
    let crafted = relabel(&bundle, tmp.path(), (1, last), false, wrong, wrong);
    let receiver = store_at(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let err = import(&receiver, &crafted).unwrap_err().to_string();
    assert!(err.contains(&wrong.to_string()), "{err}");
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);
    // Whole, both come in together.
    let report = import(&receiver, &bundle).unwrap();
    assert_eq!(report.images.len(), 2);
}

#[test]
fn two_images_of_one_name_in_a_bundle_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, _, _) = demo_sender(tmp.path());
    let (mut manifest, records) = decode(&bundle_of(&sender, &["v1", "v2"]));
    manifest.images[1].name = "v1".into();
    let receiver = store_at(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let err = import(&receiver, &encode(&manifest, &records))
        .unwrap_err()
        .to_string();
    assert!(err.contains("two images named \"v1\""), "{err}");
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);
}

/// Converts `source` as `name` into `store` through another writer while the import checks
/// (after it read the bundle and looked its names up, before it takes the commit lock).
struct TakeNameMeanwhile {
    store: PathBuf,
    source: String,
    name: String,
    done: AtomicBool,
}

impl Progress for TakeNameMeanwhile {
    fn set_message(&self, message: &str) {
        if message == "checking" && !self.done.swap(true, Ordering::SeqCst) {
            SharedWriter::open(&self.store)
                .unwrap()
                .convert(&options(&self.source, &self.name, &[]), &NoProgress)
                .unwrap();
        }
    }
}

#[test]
fn a_name_another_writer_took_meanwhile_is_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, _, _) = demo_sender(tmp.path());
    let other = one_file_image(&tmp.path().join("other"), b"other\n");
    let receiver = store_at(&tmp.path().join("receiver"));
    let hook = TakeNameMeanwhile {
        store: receiver.clone(),
        source: other,
        name: "v1".into(),
        done: AtomicBool::new(false),
    };
    let err = import_with(&receiver, &bundle_of(&sender, &["v1"]), &hook)
        .unwrap_err()
        .to_string();
    assert!(hook.done.load(Ordering::SeqCst));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(os_release(&receiver, "v1"), b"other\n");
}

/// Names no command may create.
pub fn hostile_names() -> Vec<String> {
    [
        "",
        "a\0b",
        "a\nb",
        "\x1b[2J\x1b[31mred",
        "\x1b]0;title\x07",
        "a\u{9b}31m",
        "a\u{202e}b",
        ".",
        "..",
        "../../x",
        "/abs",
        "a//b",
    ]
    .into_iter()
    .map(String::from)
    .chain([&"x".repeat(4096)].map(|s| s.to_string()))
    .collect()
}

#[test]
fn hostile_names_are_refused_by_every_command_that_names_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (sender, v1, _) = demo_sender(tmp.path());
    let bundle = bundle_of(&sender, &["v1"]);
    let (manifest, records) = decode(&bundle);
    let receiver = store_at(&tmp.path().join("receiver"));
    let before = snapshot(&Store::open(&receiver).unwrap());
    let senders_images = Store::open(&sender).unwrap().images().unwrap().len();
    let names = ["v1".to_string(), "v2".to_string()];
    for name in hostile_names() {
        let writer = SharedWriter::open(&sender).unwrap();
        let shown = format!("{name:?}");
        let converted = writer.convert(&options(&v1, &name, &[]), &NoProgress);
        assert!(converted.is_err(), "convert {shown}");
        let built = writer.build_dict(&names, 1, &name, &NoProgress);
        assert!(built.is_err(), "dict build {shown}");
        drop(writer);

        let mut renamed = manifest.clone();
        renamed.images[0].name = name.clone();
        let err = import(&receiver, &encode(&renamed, &records)).unwrap_err();
        assert!(
            err.to_string().contains("not allowed"),
            "import {shown}: {err}"
        );

        // `oci:DIR:REF`: an empty REF, or one with a slash, is no reference but part of DIR.
        if !name.is_empty() && !name.contains('/') {
            let layout = tmp.path().join("emitted");
            let planned = emit_base(&sender, &names, &layout, &name);
            assert!(planned.is_err(), "plan emit {shown}");
            assert!(!layout.exists(), "plan emit {shown}");
        }
    }
    // The same requests with a good name succeed.
    emit_base(&sender, &names, &tmp.path().join("emitted"), "base").unwrap();
    let writer = SharedWriter::open(&sender).unwrap();
    writer.build_dict(&names, 1, "dict", &NoProgress).unwrap();
    drop(writer);
    assert_eq!(snapshot(&Store::open(&receiver).unwrap()), before);
    let mut renamed = manifest.clone();
    renamed.images[0].name = "v1.renamed".into();
    import(&receiver, &encode(&renamed, &records)).unwrap();
    assert_eq!(
        Store::open(&sender).unwrap().images().unwrap().len(),
        senders_images + 1
    );
}

fn emit_base(
    store: &Path,
    names: &[String],
    layout: &Path,
    reference: &str,
) -> cairn_engine::Result<cairn_engine::PlanReport> {
    let mut options = PlanOptions::new(names.to_vec());
    options.min_images = 2;
    options.min_saving = 0;
    options.emit = vec![EmitRequest {
        what: EmitWhat::Base(1),
        target: format!("oci:{}:{reference}", layout.display()),
    }];
    Store::open(store).unwrap().plan(&options, &NoProgress)
}
