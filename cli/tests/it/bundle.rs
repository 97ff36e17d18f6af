//! `cairn dict export` and `cairn bundle` through pipes, as sites use them (`-o -` into
//! `import -`), and their output.

use crate::helpers::{cairn, export_all, ok};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// `cairn --store FROM bundle create ARGS -o - | cairn --store TO bundle import - --json`.
fn pipe(from: &Path, create: &[&str], to: &Path) -> serde_json::Value {
    let mut sender = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(from)
        .args(["bundle", "create"])
        .args(create)
        .args(["-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let receiver = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(to)
        .args(["bundle", "import", "-", "--json"])
        .stdin(sender.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(sender.wait().unwrap().success(), "bundle create failed");
    serde_json::from_str(&ok(receiver)).unwrap()
}

#[test]
fn bundles_and_dictionaries_stream_through_pipes() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let sender = tmp.path().join("sender");
    ok(cairn(&sender, &["init"]));
    ok(cairn(
        &sender,
        &[
            "convert",
            &format!("oci:{}:v1", v1.display()),
            "--name",
            "app:v1",
        ],
    ));
    ok(cairn(
        &sender,
        &[
            "convert",
            &format!("oci:{}:v2", v2.display()),
            "--name",
            "app:v2",
        ],
    ));
    let site = tmp.path().join("site");
    ok(cairn(&site, &["init"]));

    let full = pipe(&sender, &["app:v1"], &site);
    assert_eq!(full["images"][0]["name"], "app:v1");
    // The site tells what it holds; the sender bundles v2 against that.
    let dict = cairn(&site, &["dict", "export", "--all", "-o", "-"]);
    let dict_path = tmp.path().join("site.dict");
    std::fs::File::create(&dict_path)
        .unwrap()
        .write_all(&ok_bytes(dict))
        .unwrap();
    let incremental = pipe(
        &sender,
        &["app:v2", "--have-dict", dict_path.to_str().unwrap()],
        &site,
    );
    assert!(
        incremental["relied_chunks"].as_u64().unwrap() > 0,
        "{incremental}"
    );
    for name in ["app:v1", "app:v2"] {
        assert_eq!(export_all(&site, name, 2), export_all(&sender, name, 2));
    }

    // A bundle file, inspected.
    let file = tmp.path().join("v2.cairn");
    ok(cairn(
        &sender,
        &[
            "bundle",
            "create",
            "app:v2",
            "--have",
            "app:v1",
            "-o",
            file.to_str().unwrap(),
        ],
    ));
    let info: serde_json::Value = serde_json::from_str(&ok(cairn(
        &sender,
        &["bundle", "inspect", file.to_str().unwrap(), "--json"],
    )))
    .unwrap();
    assert_eq!(info["images"][0]["name"], "app:v2");
    assert_eq!(info["relies_on"][0][0], "app:v1");
    assert_eq!(
        info["bytes"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    // A failed create leaves no file behind.
    let missing = tmp.path().join("nothing.cairn");
    let out = cairn(
        &sender,
        &["bundle", "create", "nope", "-o", missing.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("nothing")
            })
            .count(),
        0
    );
}

fn ok_bytes(output: std::process::Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
