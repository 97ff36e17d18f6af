//! The malformed-input table: each case is bad input (or damaged store data) and the command
//! that meets it. Every case must fail with an error naming the object, and leave the store
//! exactly as it was (blob and bootstrap files byte for byte, the same index entries and names).

use crate::helpers::*;
use crate::rejects::{gzip_layer_blob, rewrite_image};
use cairn_engine::{NoProgress, PlatformChoice, UnpackOptions};
use cairn_sample::{LayerCompression, SampleEntry};
use serde_json::json;
use std::path::{Path, PathBuf};

enum Act {
    Convert(String),
    ConvertAs(String, &'static str),
    ConvertPlatform(String, &'static str),
    Unpack(&'static str),
    ExportLayer(&'static str),
    Verify,
}

struct Case {
    name: &'static str,
    act: Act,
    /// Every one of these must appear in the error.
    expect: Vec<String>,
}

fn tar_of(entries: &[SampleEntry]) -> Vec<u8> {
    cairn_sample::build_layer_tar(entries, 1).unwrap()
}

fn layout_with(dir: &Path, name: &str, layers: &[Vec<u8>], c: LayerCompression) -> PathBuf {
    let path = dir.join(name);
    write_layout(&path, "t", layers, c);
    path
}

fn oci(path: &Path) -> String {
    format!("oci:{}", path.display())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A ustar header block with the given fields (checksum filled in).
fn raw_header(name: &[u8], typeflag: u8, size_octal: &[u8], link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..124 + size_octal.len()].copy_from_slice(size_octal);
    h[136..147].copy_from_slice(b"00000000001");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// The config blob of a single-image layout.
fn config_path(layout: &Path) -> PathBuf {
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let blob = |digest: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    blob(&manifest["config"]["digest"])
}

fn cases(dir: &Path, store: &cairn_engine::StoreWriter) -> Vec<Case> {
    let good = tricky_layers();
    let mut cases = Vec::new();
    let mut add = |name, act, expect: &[&str]| {
        cases.push(Case {
            name,
            act,
            expect: expect.iter().map(|s| s.to_string()).collect(),
        })
    };
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    };

    let valid = layout_with(dir, "valid", &good, LayerCompression::Gzip);
    let full = gz(&good[0]);
    let p = write(dir, "truncated.tar.gz", &full[..full.len() / 2]);
    add(
        "truncated gzip",
        Act::Convert(p.display().to_string()),
        &["layer 0", "truncated.tar.gz"],
    );
    // With a content checksum, as zstd's CLI writes by default: damage is then always detectable.
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut encoder, &good[0]).unwrap();
    let mut z = encoder.finish().unwrap();
    let mid = z.len() / 2;
    z[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0x5a);
    let p = write(dir, "corrupt.tar.zst", &z);
    add(
        "corrupt zstd",
        Act::Convert(p.display().to_string()),
        &["layer 0", "corrupt.tar.zst"],
    );
    let mut t = good[0].clone();
    t[0] ^= 0x20;
    let p = write(dir, "badsum.tar", &t);
    add(
        "bad tar checksum",
        Act::Convert(p.display().to_string()),
        &["badsum.tar", "checksum"],
    );
    let p = write(dir, "truncated.tar", &good[0][..good[0].len() / 3]);
    add(
        "truncated tar",
        Act::Convert(p.display().to_string()),
        &["truncated.tar", "truncated"],
    );
    let huge = raw_header(b"huge.bin", b'0', b"77777777777", b"");
    let p = write(dir, "huge.tar", &[huge, vec![0u8; 4096]].concat());
    add(
        "header declaring a huge size",
        Act::Convert(p.display().to_string()),
        &["huge.tar", "huge.bin"],
    );
    let mut pax = raw_header(b"PaxHeaders/x", b'x', b"00000000020", b"");
    pax.extend_from_slice(b"99 path=broken\n");
    pax.resize(1024, 0);
    let p = write(
        dir,
        "badpax.tar",
        &[
            pax,
            raw_header(b"x", b'0', b"00000000000", b""),
            vec![0; 1024],
        ]
        .concat(),
    );
    add(
        "malformed PAX record",
        Act::Convert(p.display().to_string()),
        &["badpax.tar", "PAX"],
    );
    let ext = raw_header(b"././@LongLink", b'L', b"77777777777", b"");
    let p = write(dir, "longlink.tar", &[ext, vec![0; 1024]].concat());
    add(
        "extension entry over the limit",
        Act::Convert(p.display().to_string()),
        &["longlink.tar", "extension"],
    );
    let p = write(
        dir,
        "notatar.bin",
        b"this is not a tar file at all, just text that goes on and on",
    );
    add(
        "not a tar",
        Act::Convert(p.display().to_string()),
        &["notatar.bin"],
    );
    add(
        "missing layer file",
        Act::Convert(dir.join("absent.tar").display().to_string()),
        &["absent.tar"],
    );

    // Content the store lacks: a layer whose digest is stored is not read at all.
    let unseen: Vec<Vec<u8>> = good
        .iter()
        .map(|l| [l.as_slice(), &[0u8; 512]].concat())
        .collect();
    let l = layout_with(dir, "wrongdigest", &unseen, LayerCompression::Gzip);
    let blob = gzip_layer_blob(&l);
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 9] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let hexname = blob.file_name().unwrap().to_str().unwrap().to_string();
    add("wrong blob digest", Act::Convert(oci(&l)), &[&hexname]);
    let l = layout_with(dir, "wrongdiffid", &good, LayerCompression::None);
    rewrite_image(&l, |_, c| {
        c["rootfs"]["diff_ids"][1] = json!(sha256_hex(b"other"))
    });
    add(
        "wrong diff_id",
        Act::Convert(oci(&l)),
        &["diff_id", &sha256_hex(b"other")],
    );
    let l = layout_with(dir, "missingblob", &good, LayerCompression::Gzip);
    let blob = gzip_layer_blob(&l);
    std::fs::remove_file(&blob).unwrap();
    let hexname = blob.file_name().unwrap().to_str().unwrap().to_string();
    add(
        "missing blob",
        Act::Convert(oci(&l)),
        &[&hexname, "missing"],
    );
    let l = layout_with(dir, "missingconfig", &good, LayerCompression::Gzip);
    let config = config_path(&l);
    std::fs::remove_file(&config).unwrap();
    let config_hex = config.file_name().unwrap().to_str().unwrap().to_string();
    add(
        "manifest pointing to a missing config",
        Act::Convert(oci(&l)),
        &[&config_hex, "missing"],
    );
    let l = layout_with(dir, "badindex", &good, LayerCompression::Gzip);
    std::fs::write(l.join("index.json"), b"{\"manifests\": [").unwrap();
    add(
        "invalid JSON (index.json)",
        Act::Convert(oci(&l)),
        &["index.json", "invalid JSON"],
    );
    let l = layout_with(dir, "badconfig", &good, LayerCompression::Gzip);
    rewrite_image(&l, |_, c| *c = json!("a string, not a config"));
    add(
        "invalid JSON (config)",
        Act::Convert(oci(&l)),
        &["config", "invalid JSON"],
    );
    let l = layout_with(dir, "mediatype", &good, LayerCompression::Gzip);
    rewrite_image(&l, |m, _| {
        m["layers"][0]["mediaType"] = json!("application/x-lz4-tar")
    });
    add(
        "unsupported layer media type",
        Act::Convert(oci(&l)),
        &["unsupported layer media type", "x-lz4-tar"],
    );
    let l = layout_with(dir, "manifesttype", &good, LayerCompression::Gzip);
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["mediaType"] = json!("application/vnd.example.thing+json");
    std::fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    add(
        "unsupported manifest media type",
        Act::Convert(oci(&l)),
        &["unsupported manifest media type"],
    );
    let l = layout_with(dir, "counts", &good, LayerCompression::Gzip);
    rewrite_image(&l, |_, c| {
        c["rootfs"]["diff_ids"] = json!([sha256_hex(b"x")])
    });
    add(
        "layers and diff_ids disagree",
        Act::Convert(oci(&l)),
        &["2 layers", "1 diff_ids"],
    );
    let l = layout_with(dir, "configdigest", &good, LayerCompression::Gzip);
    let config_path = config_path(&l);
    let mut config = std::fs::read(&config_path).unwrap();
    config[5] ^= 0x01;
    std::fs::write(&config_path, &config).unwrap();
    add(
        "config digest mismatch",
        Act::Convert(oci(&l)),
        &["config", "digest mismatch"],
    );
    add(
        "not an OCI layout",
        Act::Convert(oci(&dir.join("nothing"))),
        &["index.json"],
    );
    add(
        "unknown ref",
        Act::Convert(format!("{}:nope", oci(&valid))),
        &["\"nope\""],
    );
    let p = write(
        dir,
        "notarchive.tar",
        &tar_of(&[file("hello", b"hi".to_vec())]),
    );
    add(
        "docker archive without manifest.json",
        Act::Convert(format!("docker-archive:{}", p.display())),
        &["manifest.json"],
    );
    add(
        "unknown source kind",
        Act::Convert("registry:example/app".into()),
        &["unknown source"],
    );
    add(
        "platform not in the image",
        Act::ConvertPlatform(oci(&valid), "linux/s390x"),
        &["linux/s390x", "linux/amd64"],
    );
    add(
        "name already taken",
        Act::ConvertAs(oci(&valid), "good"),
        &["\"good\"", "already exists"],
    );

    // A name the filesystem cannot hold: converted and exported exactly (a tar may carry it),
    // refused by unpack with the entry named.
    let long_name = format!("dir/{}.txt", "n".repeat(300));
    let l = layout_with(
        dir,
        "longname",
        &[tar_of(&[file(&long_name, b"x".to_vec())])],
        LayerCompression::Gzip,
    );
    convert(store, &oci(&l), "longname", &[]).unwrap();
    add(
        "very long name (unpack)",
        Act::Unpack("longname"),
        &["nnnnnnnn", "too long"],
    );

    // Unpack of converted images whose entries would escape the target directory.
    for (name, layer, expect) in [
        (
            "dotdot",
            tar_of(&[file("../escape.txt", b"x".to_vec())]),
            "../escape.txt",
        ),
        (
            "abs",
            [
                raw_header(b"/abs/file", b'0', b"00000000000", b""),
                vec![0; 1024],
            ]
            .concat(),
            "/abs/file",
        ),
        (
            "symlink-then-write",
            tar_of(&[
                SampleEntry::Symlink {
                    path: b"evil".to_vec(),
                    target: b"/tmp".to_vec(),
                },
                file("evil/pwned", b"x".to_vec()),
            ]),
            "evil/pwned",
        ),
        (
            "hardlink-escape",
            tar_of(&[SampleEntry::Hardlink {
                path: b"h".to_vec(),
                target: b"../../etc/passwd".to_vec(),
            }]),
            "etc/passwd",
        ),
    ] {
        let l = layout_with(dir, name, &[layer], LayerCompression::Gzip);
        convert(store, &oci(&l), name, &[]).unwrap();
        let act = match name {
            "dotdot" => Act::Unpack("dotdot"),
            "abs" => Act::Unpack("abs"),
            "symlink-then-write" => Act::Unpack("symlink-then-write"),
            _ => Act::Unpack("hardlink-escape"),
        };
        add(
            match name {
                "dotdot" => "path traversal (..)",
                "abs" => "absolute path",
                "symlink-then-write" => "symlink escape",
                _ => "hardlink escape",
            },
            act,
            &[expect],
        );
    }
    cases
}

fn convert_as(
    store: &cairn_engine::StoreWriter,
    source: &str,
    name: &str,
    platform: PlatformChoice,
) -> cairn_engine::Result<()> {
    let mut options =
        cairn_engine::ConvertOptions::new(cairn_engine::SourceSpec::parse(source)?, name);
    options.platform = platform;
    store.convert(&options, &NoProgress).map(|_| ())
}

fn run(store: &cairn_engine::StoreWriter, act: &Act, dir: &Path) -> cairn_engine::Result<()> {
    match act {
        Act::Convert(source) => convert_as(store, source, "new-image", PlatformChoice::Default),
        Act::ConvertAs(source, name) => convert_as(store, source, name, PlatformChoice::Default),
        Act::ConvertPlatform(source, platform) => convert_as(
            store,
            source,
            "new-image",
            PlatformChoice::Exact(cairn_engine::Platform::parse(platform).unwrap()),
        ),
        Act::Unpack(name) => store
            .store()
            .unpack(
                name,
                &dir.join(format!("out-{name}")),
                &UnpackOptions::default(),
                &NoProgress,
            )
            .map(|_| ()),
        Act::ExportLayer(name) => store
            .store()
            .export_layer(name, 0, &mut std::io::sink(), &NoProgress)
            .map(|_| ()),
        Act::Verify => {
            let report = store.store().verify(true, &NoProgress)?;
            match report.problems.first() {
                Some(p) => Err(cairn_engine::Error::Usage(format!(
                    "{}: {}",
                    p.object, p.detail
                ))),
                None => Ok(()),
            }
        }
    }
}

#[test]
fn malformed_input_table() {
    let tmp = tempfile::tempdir().unwrap();
    let store = new_store(tmp.path());
    let img = tmp.path().join("img");
    write_layout(&img, "t", &tricky_layers(), LayerCompression::Gzip);
    convert(&store, &oci(&img), "good", &[]).unwrap();
    let work = tmp.path().join("inputs");
    std::fs::create_dir_all(&work).unwrap();
    let mut cases = cases(&work, &store);

    // Damaged store data: a bootstrap and a blob footer (restored after their case).
    let bootstrap = store
        .store()
        .bootstrap_path(&store.store().resolve("good").unwrap());
    let blob = std::fs::read_dir(store.store().root().join("blobs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    cases.push(Case {
        name: "corrupt bootstrap",
        act: Act::ExportLayer("good"),
        expect: vec!["bootstrap".into()],
    });
    // The object of layer 0: one byte flipped in its first entry block (read by export-layer),
    // and one in its tables (checked by the object id at open).
    let object = store.store().bootstrap("good").unwrap().layers[0].meta;
    let object_path = store.store().layer_meta_path(&object);
    cases.push(Case {
        name: "corrupt layer object block",
        act: Act::ExportLayer("good"),
        expect: vec![
            format!("layer metadata {}", object.to_hex()),
            "entry block 0".into(),
        ],
    });
    cases.push(Case {
        name: "corrupt layer object tables",
        act: Act::Verify,
        expect: vec![format!("layer object {object}")],
    });
    cases.push(Case {
        name: "corrupt blob footer",
        act: Act::Verify,
        expect: vec![
            blob.file_name().unwrap().to_str().unwrap().to_string(),
            "footer".into(),
        ],
    });

    let mut table = Vec::new();
    for case in &cases {
        // (file, offset of the flipped byte from its start, or from its end when negative)
        let target: Option<(&PathBuf, i64)> = match case.name {
            "corrupt bootstrap" => Some((
                &bootstrap,
                std::fs::metadata(&bootstrap).unwrap().len() as i64 / 2,
            )),
            "corrupt layer object block" => Some((&object_path, 20)),
            "corrupt layer object tables" => Some((&object_path, -40)),
            "corrupt blob footer" => Some((&blob, -4)),
            _ => None,
        };
        let damaged: Option<(PathBuf, Vec<u8>)> =
            target.map(|(path, _)| (path.clone(), std::fs::read(path).unwrap()));
        if let (Some((path, original)), Some((_, at))) = (&damaged, target) {
            let mut bytes = original.clone();
            let at = if at < 0 {
                (bytes.len() as i64 + at) as usize
            } else {
                at as usize
            };
            bytes[at] ^= 0x10;
            std::fs::write(path, &bytes).unwrap();
        }
        let before = snapshot(store.store());
        let result = run(&store, &case.act, &tmp.path().join("unpacked"));
        let after = snapshot(store.store());
        if let Some((path, original)) = &damaged {
            std::fs::write(path, original).unwrap();
        }
        let err = match result {
            Ok(()) => panic!("case {:?} was accepted", case.name),
            Err(e) => e.to_string(),
        };
        for want in &case.expect {
            assert!(
                err.contains(want.as_str()),
                "case {:?}: error lacks {want:?}: {err}",
                case.name
            );
        }
        assert_eq!(before, after, "case {:?} changed the store", case.name);
        table.push(format!("{:<40} -> {err}", case.name));
    }
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    // The table goes to the test output (`cargo test -- --nocapture malformed`).
    eprintln!("{}", table.join("\n"));
}
