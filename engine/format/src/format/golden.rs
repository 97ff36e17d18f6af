//! Golden bytes: every encoder of the on-disk and wire formats, fed fixed inputs (no clock, no
//! randomness), and the BLAKE3 of what it writes compared with a constant. The constants were
//! computed with the code as it was before the formats moved into their own crate; a change to
//! any of them changes the bytes stores, bundles and artifacts hold, and so their ids.

use super::blob::{BlobWriter, CompressedWith, FramePart};
use super::bootstrap::{
    BlobRecord, Bootstrap, ChunkRecord, ImageLayer, SourceRecord, StoredObject,
};
use super::bundle::{BundleImage, BundleManifest, BundleWriter, FrameRecord, Kind};
use super::delta::{self, DeltaHeader};
use super::dict::{ChunkDictionary, DictImage};
use super::layer_meta::{LayerEntry, LayerMetaWriter, LayerSource};
use super::store_config::{CompressionParams, StoreConfig};
use super::{Codec, FrameSlice};
use crate::chunk::ChunkerParams;
use crate::layer::{Compression, Encoder, EntryKind, EntryMeta};
use crate::oci::artifact::{self, ArtifactFile, ArtifactManifest};
use crate::platform::Platform;
use crate::{BlobId, ChunkId, ImageId, LayerMetaId, Sha256Digest};
use std::collections::BTreeMap;
use std::io::Write;

/// The fail point name the writers check (unset in tests: never fires).
const FAIL_AT: &str = "convert.blob.fsync";

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Compares the BLAKE3 of an encoding with its golden value.
fn check(what: &str, actual: String, golden: &str) {
    assert_eq!(actual, golden, "{what}: the encoded bytes changed");
}

/// Fixed bytes of `len`, not too regular (so that zstd has something to do).
fn text(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b"cairn stores chunks once; "[(i * 7 + seed as usize) % 26] ^ (i / 97) as u8)
        .collect()
}

fn platform() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: Some("v8".into()),
        os_version: None,
    }
}

fn chunk_record(n: u8, blob: u32, codec: Codec) -> ChunkRecord {
    ChunkRecord {
        id: ChunkId([n; 32]),
        blob,
        slice: FrameSlice {
            offset: 16 + 1000 * n as u64,
            stored_len: if codec == Codec::Raw {
                700
            } else {
                300 + n as u32
            },
            frame_len: 700,
            skip: 0,
            len: 700,
            codec,
        },
    }
}

fn entry(path: &str, kind: EntryKind, chunks: Vec<ChunkRecord>) -> LayerEntry {
    LayerEntry {
        raw_header: text(512, path.len() as u8),
        meta: EntryMeta {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            mtime: 1_700_000_000,
            size: chunks.iter().map(|c| c.slice.len as u64).sum(),
            link_target: (kind == EntryKind::Symlink).then(|| b"bin/busybox".to_vec()),
            xattrs: vec![(b"user.k".to_vec(), b"v".to_vec())],
            dev_major: 0,
            dev_minor: 0,
        },
        chunks,
    }
}

#[test]
fn golden_bootstrap() {
    let bootstrap = Bootstrap {
        source: SourceRecord {
            reference: "oci:/images/py:v1".into(),
            platform: Some(platform()),
            manifest: Some(StoredObject {
                digest: Sha256Digest::of(b"manifest"),
                media_type: crate::oci::media_type::OCI_MANIFEST.into(),
                bytes: b"{\"schemaVersion\":2}".to_vec(),
            }),
            config: None,
        },
        layers: vec![ImageLayer {
            digest: Sha256Digest::of(b"layer.tar.gz"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compression: Compression::Gzip,
            compressed_size: 4321,
            diff_id: Sha256Digest::of(b"layer.tar"),
            size: 10240,
            meta: LayerMetaId([9; 32]),
        }],
    };
    let encoded = bootstrap.encode().unwrap();
    check(
        "bootstrap file",
        hash(&encoded),
        "aa2e8e6558a75b61a174a7314fd05b59e1c2050a792f40dcf1a86e7374a945c6",
    );
    assert_eq!(
        super::bootstrap::image_id(&encoded).to_hex(),
        hash(&encoded),
        "the image id is the file's BLAKE3"
    );
}

#[test]
fn golden_blob() {
    let dir = tempfile::tempdir().unwrap();
    let with = CompressedWith {
        level: 3,
        frame_size: 64 << 10,
    };
    let mut writer = BlobWriter::create_recording(dir.path().join("blob"), Some(with)).unwrap();
    let (a, b) = (text(3000, 1), text(1200, 2));
    // One zstd frame holding two chunks, then a raw frame of one.
    let frame = [&a[..], &b[..]].concat();
    let stored = zstd::bulk::compress(&frame, 3).unwrap();
    writer
        .append_frame(
            Codec::Zstd,
            &stored,
            frame.len() as u32,
            &[
                FramePart {
                    id: ChunkId::of(&a),
                    skip: 0,
                    len: a.len() as u32,
                },
                FramePart {
                    id: ChunkId::of(&b),
                    skip: a.len() as u32,
                    len: b.len() as u32,
                },
            ],
        )
        .unwrap();
    let c = text(500, 3);
    writer
        .append_frame(
            Codec::Raw,
            &c,
            c.len() as u32,
            &[FramePart {
                id: ChunkId::of(&c),
                skip: 0,
                len: c.len() as u32,
            }],
        )
        .unwrap();
    let sealed = writer.seal(FAIL_AT).unwrap();
    let bytes = std::fs::read(&sealed.tmp_path).unwrap();
    assert_eq!(sealed.id.to_hex(), hash(&bytes));
    check(
        "blob file",
        hash(&bytes),
        "13a6770dd4c5823deeba90cd8145a13b5a3e7670b72e04220ad8d53a0a1f273d",
    );
    let toc_offset = u64::from_le_bytes(bytes[bytes.len() - 56..][..8].try_into().unwrap());
    let toc = &bytes[toc_offset as usize..bytes.len() - 56];
    check(
        "blob ToC",
        hash(toc),
        "da15ca63cb94bb5610cd8f7ba7e59f1250d4fc983f827562697ce0f8ed184b64",
    );
}

#[test]
fn golden_layer_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LayerMetaWriter::create(dir.path().join("layer")).unwrap();
    let entries = [
        entry("bin/", EntryKind::Directory, vec![]),
        entry(
            "bin/busybox",
            EntryKind::File,
            vec![
                chunk_record(1, 0, Codec::Zstd),
                chunk_record(2, 1, Codec::Raw),
            ],
        ),
        entry("bin/sh", EntryKind::Symlink, vec![]),
        entry("etc/.wh.old", EntryKind::File, vec![]),
        entry("usr/.wh..wh..opq", EntryKind::File, vec![]),
        entry(
            "usr/lib/x",
            EntryKind::File,
            vec![chunk_record(3, 1, Codec::Zstd)],
        ),
    ];
    for e in entries {
        writer.push(e).unwrap();
    }
    let blobs = vec![
        BlobRecord {
            id: BlobId([1; 32]),
            size: 1 << 20,
        },
        BlobRecord {
            id: BlobId([2; 32]),
            size: 5000,
        },
    ];
    let source = LayerSource {
        diff_id: Sha256Digest::of(b"layer.tar"),
        size: 10240,
        trailer: vec![0; 1024],
    };
    let sealed = writer.finish(source, blobs, FAIL_AT).unwrap();
    let bytes = std::fs::read(&sealed.tmp_path).unwrap();
    check(
        "layer object file",
        hash(&bytes),
        "27c81d4b729a3fd7c783a19fd3a1e5798c6b2cd712aa68d71ecc874a8f929314",
    );
    check(
        "layer object id",
        sealed.id.to_hex(),
        "33d4acb75c08434f8511247c547d3ea23f6a90012be2f8f9efb1a1d18a3228d3",
    );
}

#[test]
fn golden_store_config() {
    let default = StoreConfig::new(ChunkerParams::default(), CompressionParams::default());
    check(
        "store.json (defaults)",
        hash(&default.to_json()),
        "fe68fe2e8598be33aae1506eda89efeef93651cd30e24cad6ff3cfd246dcbaa7",
    );
    let compression = CompressionParams {
        level: 9,
        frame_size: 256 << 10,
        ..CompressionParams::default()
    };
    let other = StoreConfig::new(ChunkerParams::fixed(65536).unwrap(), compression);
    check(
        "store.json (fixed chunker, level 9)",
        hash(&other.to_json()),
        "ad61e3caad79dc26b8a94b90c7999f8976b6edd2aadb4a825cb8e41bc9e1569d",
    );
}

#[test]
fn golden_bundle() {
    let mut out = Vec::new();
    let mut writer = BundleWriter::new(&mut out).unwrap();
    writer
        .manifest(&BundleManifest {
            format_version: super::store_config::FORMAT_VERSION,
            chunker: ChunkerParams::default(),
            created: 1_700_000_000,
            images: vec![BundleImage {
                name: "py:v1".into(),
                id: ImageId([4; 32]).to_hex(),
                reference: "oci:/images/py:v1".into(),
                platform: Some(platform()),
                layers: 1,
                files: 3,
                logical_bytes: 10240,
                diff_ids: vec![Sha256Digest::of(b"layer.tar").to_hex()],
            }],
            relies_on: vec![("py:v0".into(), ImageId([5; 32]).to_hex())],
            relied_layers: vec![],
            relied_chunks: 2,
            relied_bytes: 1400,
            frames: 1,
            chunks: 1,
            chunk_bytes: 700,
            objects: 1,
            object_bytes: 5,
        })
        .unwrap();
    writer
        .relied(&[(ChunkId([6; 32]), 700), (ChunkId([7; 32]), 700)])
        .unwrap();
    let data = text(700, 4);
    writer
        .frame(&FrameRecord {
            codec: Codec::Zstd,
            frame_len: 700,
            parts: vec![FramePart {
                id: ChunkId::of(&data),
                skip: 0,
                len: 700,
            }],
            stored: zstd::bulk::compress(&data, 3).unwrap(),
        })
        .unwrap();
    writer
        .object(Kind::Bootstrap, &[8; 32], &mut &b"hello"[..], 5)
        .unwrap();
    let (sum, len) = writer.finish().unwrap();
    assert_eq!(len, out.len() as u64);
    check(
        "bundle file",
        hash(&out),
        "cadc82f7359952aaebc9ca32572e4ff66aaf3ce2ba8e14c3ab3eeb6bd07cf583",
    );
    check(
        "bundle checksum",
        sum.to_hex().to_string(),
        "132376fb814adc310b5eedf3334660f88a1bc594768e230249cac7c72bbc71c1",
    );
}

#[test]
fn golden_dict_file() {
    let dict = ChunkDictionary::new(
        vec![DictImage {
            name: "py:v1".into(),
            id: ImageId([4; 32]).to_hex(),
        }],
        false,
        (0..50u8).map(|n| (ChunkId::of(&[n]), 1000 + n as u32)),
    );
    let mut out = Vec::new();
    dict.write(&mut out).unwrap();
    check(
        "dict file",
        hash(&out),
        "9868431e47747c413643fe7cf3b25c572bfb73d52c6c80c71fbc3d76f2a684ae",
    );
}

#[test]
fn golden_delta_frame() {
    let base = text(4000, 5);
    let mut data = base.clone();
    data[1000..1010].copy_from_slice(b"0123456789");
    data.extend_from_slice(b"a few new bytes at the end");
    let header = DeltaHeader {
        bases: vec![ChunkId::of(&base), ChunkId([3; 32])],
        plain_stored: 1234,
    };
    let mut stored = Vec::with_capacity(header.encoded_len());
    header.encode(&mut stored);
    assert_eq!(stored.len(), header.encoded_len());
    stored.extend_from_slice(&delta::compress(&data, &base, 3).unwrap());
    check(
        "delta frame",
        hash(&stored),
        "381280de61690fcde8b655804af0fd80ca4d178222b944a05e45d7213e5ab709",
    );
    let (back, zstd) = DeltaHeader::decode(&stored).unwrap();
    assert_eq!(back, header);
    assert_eq!(delta::decompress(zstd, &base, data.len()).unwrap(), data);
}

#[test]
fn golden_layer_compression() {
    let tar = text(20_000, 6);
    let expected = [
        (
            Compression::None,
            0,
            "6c7fc13b6efb386c6a831c6de6378dc71706d63298dcc10a58124af8a4959eb5",
        ),
        (
            Compression::Gzip,
            6,
            "6a40e07ed5bf8851db3c5f4e88e623001dd0047a508e8c770cc0e4e19f96f471",
        ),
        (
            Compression::Zstd,
            3,
            "a97e3fa34b439572d60098c4d24b1a14d9326e8eeb5fffbbc3cb182256c5302d",
        ),
    ];
    for (compression, level, golden) in expected {
        let mut encoder = Encoder::new(compression, level, Vec::new()).unwrap();
        match &mut encoder {
            Encoder::None(w) => w.write_all(&tar).unwrap(),
            Encoder::Gzip(w) => w.write_all(&tar).unwrap(),
            Encoder::Zstd(w) => w.write_all(&tar).unwrap(),
        }
        let what = format!("layer compressed with {compression:?} {level}");
        check(&what, hash(&encoder.finish().unwrap()), golden);
    }
}

#[test]
fn golden_artifact() {
    let bases = BTreeMap::from([(BlobId([2; 32]).to_hex(), vec![ChunkId([3; 32]).to_hex()])]);
    let config = artifact::new_config(&ChunkerParams::default(), &ImageId([4; 32]), "py:v1", bases);
    let config_bytes = crate::oci::encode(&config, "config").unwrap();
    check(
        "artifact config",
        hash(&config_bytes),
        "55f759e94c77a2ecc2e68b8b55f5d2628151945f08b06333c48b04e9b6495083",
    );
    let config_desc = crate::oci::Descriptor::new(
        artifact::CONFIG_TYPE,
        &Sha256Digest::of(&config_bytes),
        config_bytes.len() as u64,
    );
    let layers = vec![
        ArtifactFile::Bootstrap(ImageId([4; 32])).descriptor(&Sha256Digest([5; 32]), 100),
        ArtifactFile::LayerMeta(LayerMetaId([6; 32])).descriptor(&Sha256Digest([7; 32]), 200),
        ArtifactFile::Blob(BlobId([1; 32])).descriptor(&Sha256Digest([8; 32]), 300),
        ArtifactFile::BaseBlob(BlobId([2; 32])).descriptor(&Sha256Digest([9; 32]), 400),
    ];
    let manifest = ArtifactManifest::new(config_desc, layers);
    check(
        "artifact manifest",
        hash(&crate::oci::encode(&manifest, "manifest").unwrap()),
        "bbbca5e203a360ea64e5f5a75822d04b133f08e4f8aba4ed68926c7c879b002c",
    );
}
