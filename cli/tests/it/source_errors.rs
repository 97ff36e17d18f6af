//! `cairn convert` given something it cannot read says which forms it takes, and the right one
//! where it can tell (a directory holding an OCI layout is oci:DIR).

use crate::helpers::{cairn, ok};

const FORMS: &str = "cairn convert takes oci:DIR[:REF] (an OCI image layout), \
                     docker-archive:FILE (`docker save` output), a layer .tar, .tar.gz or \
                     .tar.zst, or docker://REGISTRY/REPO[:TAG]";

#[test]
fn convert_errors_name_the_accepted_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(cairn(&store, &["init"]));
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let v1 = v1.to_str().unwrap().to_string();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty = empty.to_str().unwrap().to_string();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not a tar\n".repeat(100)).unwrap();
    let text = text.to_str().unwrap().to_string();
    let missing = tmp.path().join("missing.tar");
    let missing = missing.to_str().unwrap().to_string();

    let layout_hint = format!("convert it as oci:{v1} (or oci:{v1}:REF");
    for (source, says) in [
        (v1.clone(), layout_hint.as_str()),
        (
            format!("docker-archive:{v1}"),
            &format!("convert it as oci:{v1}"),
        ),
        (empty.clone(), "is a directory, not an image; "),
        (
            text.clone(),
            "is not a layer tar (no tar, gzip or zstd header); ",
        ),
        (missing, "missing.tar: no such file; "),
        (format!("oci:{text}"), &format!("docker-archive:{text}")),
        (format!("oci:{empty}"), "holds no OCI image layout"),
        (
            "registry.example.com/app:v1".into(),
            "cairn pull registry.example.com/app:v1",
        ),
    ] {
        let out = cairn(&store, &["convert", &source, "--name", "x"]);
        assert!(!out.status.success(), "{source}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{source}: {err}");
        if says.ends_with("; ") || says.contains("no OCI image layout") {
            assert!(err.contains(FORMS), "{source}: {err}");
        }
    }
    // The right form works.
    ok(cairn(
        &store,
        &["convert", &format!("oci:{v1}"), "--name", "x"],
    ));
}
