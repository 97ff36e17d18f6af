//! Shared fixtures: generated images and store snapshots.

use cairn_engine::{
    ConvertOptions, ConvertReport, InitOptions, NoProgress, SourceSpec, Store, StoreWriter,
};
use cairn_sample::{
    build_layer_tar, LayerCompression, OciLayoutWriter, Rng, SampleEntry, SamplePlatform,
};
use std::collections::BTreeMap;
use std::path::Path;

pub fn amd64() -> SamplePlatform {
    SamplePlatform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    }
}

pub fn arm64() -> SamplePlatform {
    SamplePlatform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: Some("v8".into()),
    }
}

/// `len` bytes for fixture files: one byte (bits 32..40) per xorshift64 step, from a mixed seed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::xorshift64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..len).map(|_| (rng.next_u64() >> 32) as u8).collect()
}

pub fn file(path: &str, data: Vec<u8>) -> SampleEntry {
    SampleEntry::File {
        path: path.as_bytes().to_vec(),
        mode: 0o644,
        data,
        xattrs: vec![],
    }
}

pub fn dir(path: &str) -> SampleEntry {
    SampleEntry::Dir {
        path: path.as_bytes().to_vec(),
        mode: 0o755,
    }
}

/// Two layers covering the corner cases of the tar and OCI formats.
pub fn tricky_layers() -> Vec<Vec<u8>> {
    let base = vec![
        dir("etc"),
        file("etc/motd", b"welcome\n".to_vec()),
        file("etc/issue", b"cairn test\n".to_vec()),
        dir("lib"),
        dir("lib/plugins"),
        file("lib/plugins/old.so", pseudo_random(10_000, 1)),
        file("empty", Vec::new()),
        file("big.bin", pseudo_random(3 * 1024 * 1024 + 17, 2)),
        file("dup-a.bin", pseudo_random(200_000, 3)),
        file("dup-b.bin", pseudo_random(200_000, 3)),
        SampleEntry::File {
            path: b"caf\xe9-latin1.txt".to_vec(),
            mode: 0o600,
            data: b"non-utf8 name".to_vec(),
            xattrs: vec![],
        },
        file(
            &format!("deep/{}/name.txt", "d".repeat(120)),
            b"long path".to_vec(),
        ),
        dir("zeros"),
        file("zeros/z.bin", vec![0u8; 2 * 1024 * 1024]),
    ];
    let upper = vec![
        file("etc/.wh.motd", Vec::new()),
        dir("lib/plugins"),
        file("lib/plugins/.wh..wh..opq", Vec::new()),
        file("lib/plugins/new.so", pseudo_random(5_000, 4)),
        SampleEntry::File {
            path: b"app/main.py".to_vec(),
            mode: 0o755,
            data: b"print('hi')\n".to_vec(),
            xattrs: vec![
                ("user.comment".into(), b"hello".to_vec()),
                (
                    "security.capability".into(),
                    vec![1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0],
                ),
            ],
        },
        SampleEntry::Hardlink {
            path: b"app/main-link.py".to_vec(),
            target: b"app/main.py".to_vec(),
        },
        SampleEntry::Symlink {
            path: b"app/current".to_vec(),
            target: b"main.py".to_vec(),
        },
    ];
    vec![
        build_layer_tar(&base, 1_700_000_000).unwrap(),
        build_layer_tar(&upper, 1_700_000_100).unwrap(),
    ]
}

/// Writes one single-platform layout with the given layers (gzip) and ref.
pub fn write_layout(
    dir: &Path,
    reference: &str,
    layers: &[Vec<u8>],
    compression: LayerCompression,
) -> String {
    let mut writer = OciLayoutWriter::create(dir).unwrap();
    let layers: Vec<(Vec<u8>, LayerCompression)> =
        layers.iter().map(|l| (l.clone(), compression)).collect();
    let digest = writer
        .add_image(Some(reference), &amd64(), &layers)
        .unwrap();
    writer.finish().unwrap();
    digest
}

pub fn new_store(dir: &Path) -> StoreWriter {
    StoreWriter::init(&dir.join("store"), &InitOptions::default()).unwrap()
}

pub fn options(source: &str, name: &str, dict: &[&str]) -> ConvertOptions {
    let mut options = ConvertOptions::new(SourceSpec::parse(source).unwrap(), name);
    options.dict = dict.iter().map(|d| d.to_string()).collect();
    options
}

pub fn convert(
    writer: &StoreWriter,
    source: &str,
    name: &str,
    dict: &[&str],
) -> cairn_engine::Result<ConvertReport> {
    writer.convert(&options(source, name, dict), &NoProgress)
}

/// Every file under the store's root with its size, for "the store is exactly as before".
pub fn store_files(store: &Store) -> BTreeMap<String, u64> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, u64>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                walk(root, &entry.path(), files);
            } else {
                let path = entry.path();
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, meta.len());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(store.root(), store.root(), &mut files);
    files
}

/// Every file of the store that matters (blobs, bootstraps, store.json) with its bytes' hash,
/// plus the image list: equal snapshots mean an unchanged store.
pub fn snapshot(store: &Store) -> (BTreeMap<String, String>, String) {
    let mut files = BTreeMap::new();
    for sub in ["blobs", "layers", "bootstraps", "store.json"] {
        let path = store.root().join(sub);
        let paths: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![path]
        };
        for p in paths {
            let bytes = std::fs::read(&p).unwrap();
            files.insert(
                p.strip_prefix(store.root()).unwrap().display().to_string(),
                blake3::hash(&bytes).to_hex().to_string(),
            );
        }
    }
    let images = serde_json::to_string(&store.images().unwrap()).unwrap();
    (files, images)
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Every layer of image `name` as its exact tar.
pub fn export_all(store: &cairn_engine::Store, name: &str) -> Vec<Vec<u8>> {
    let layers = store.bootstrap(name).unwrap().layers.len();
    (0..layers)
        .map(|i| {
            let mut out = Vec::new();
            store
                .export_layer(name, i, &mut out, &cairn_engine::NoProgress)
                .unwrap();
            out
        })
        .collect()
}
