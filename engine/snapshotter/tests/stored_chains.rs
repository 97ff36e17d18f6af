//! containerd's CRI unpacker prepares each layer's snapshot with the label
//! `containerd.io/snapshot.ref` = the chain ID it will have. For chains an image in the store
//! already makes, the snapshotter answers AlreadyExists and records a committed snapshot that
//! containerd then finds by listing with its filter (label and parent), as with remote
//! snapshotters. The chain IDs here are computed by the OCI definition from the layer tars
//! themselves (sha256 of each uncompressed tar), not read from the store.

use cairn_engine::{ConvertOptions, InitOptions, NoProgress, SourceSpec, StoreWriter};
use cairn_sample::{LayerCompression, OciLayoutWriter, SamplePlatform};
use cairn_snapshotter::records::Kind;
use cairn_snapshotter::{Layout, SnapError, Snapshots};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[test]
fn chains_the_store_holds_answer_already_exists_and_are_found_by_containerds_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = cairn_sample::demo_layers(1).unwrap();
    let layout = tmp.path().join("layout");
    let mut writer = OciLayoutWriter::create(&layout).unwrap();
    let platform = SamplePlatform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let gzipped: Vec<_> = layers
        .iter()
        .map(|l| (l.clone(), LayerCompression::Gzip))
        .collect();
    writer.add_image(Some("v1"), &platform, &gzipped).unwrap();
    writer.finish().unwrap();
    let store = tmp.path().join("store");
    let source = SourceSpec::parse(&format!("oci:{}:v1", layout.display())).unwrap();
    StoreWriter::init(&store, &InitOptions::default())
        .unwrap()
        .convert(&ConvertOptions::new(source, "app:v1"), &NoProgress)
        .unwrap();

    let snapshots = Snapshots::open(Layout {
        store: store.clone(),
        root: tmp.path().join("root"),
        mount_command: vec!["false".into()],
    })
    .unwrap();
    let mut chain: Option<String> = None;
    let mut parent = String::new();
    for (i, layer) in layers.iter().enumerate() {
        let diff_id = sha256(layer);
        let id = match &chain {
            None => diff_id,
            Some(prev) => sha256(format!("{prev} {diff_id}").as_bytes()),
        };
        let labels = BTreeMap::from([("containerd.io/snapshot.ref".to_string(), id.clone())]);
        let key = format!("default/{i}/extract-x {id}");
        let err = snapshots
            .prepare(&key, &parent, labels, Kind::Active)
            .unwrap_err();
        assert!(
            matches!(err, SnapError::AlreadyExists(_)),
            "layer {i}: {err}"
        );
        // What containerd's metadata layer then looks for.
        let found: Vec<_> = snapshots
            .list()
            .into_iter()
            .filter(|r| r.labels.get("containerd.io/snapshot.ref") == Some(&id))
            .filter(|r| r.parent == parent && r.kind == Kind::Committed)
            .collect();
        assert_eq!(found.len(), 1, "layer {i}");
        let image = found[0].image.as_ref().unwrap();
        assert_eq!((image.name.as_str(), image.top), ("app:v1", i));
        assert!(!found[0].owns_image);
        parent = found[0].key.clone();
        chain = Some(id);
    }
    // An unknown chain is prepared as usual (an empty parent: a bind mount, no view needed).
    let labels = BTreeMap::from([(
        "containerd.io/snapshot.ref".to_string(),
        sha256(b"not a layer"),
    )]);
    let mounts = snapshots
        .prepare("default/9/extract-y", "", labels, Kind::Active)
        .unwrap();
    assert_eq!(mounts[0].r#type, "bind");
    // The records survive a reopen.
    drop(snapshots);
    let again = Snapshots::open(Layout {
        store,
        root: tmp.path().join("root"),
        mount_command: vec!["false".into()],
    })
    .unwrap();
    assert_eq!(again.list().len(), layers.len() + 1);
}
