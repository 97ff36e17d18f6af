//! `cairn plan`: human output within 80 columns, the JSON plan, `--emit-base` writing an OCI
//! image that converts back into the store, and clear errors.

use crate::helpers::{cairn, ok, store_with_demo_pair};

#[test]
fn plan_prints_the_bases_and_emits_one_that_converts_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_pair(tmp.path());

    let text = ok(cairn(&store, &["plan", "app:v1", "app:v2"]));
    assert!(text.contains("1 base proposed"), "{text}");
    assert!(text.contains("Base 1: app:v1, app:v2"), "{text}");
    assert!(text.contains("saved"), "{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }

    let layout = tmp.path().join("bases");
    let target = format!("oci:{}:os", layout.display());
    let json = ok(cairn(
        &store,
        &[
            "plan",
            "app:v1",
            "app:v2",
            "--json",
            "--emit-base",
            "1",
            &target,
        ],
    ));
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        plan["bases"][0]["images"],
        serde_json::json!(["app:v1", "app:v2"])
    );
    let layer = &plan["emitted"][0]["layers"][0];
    assert_eq!(layer["size"], plan["bases"][0]["layer_bytes"]);
    ok(cairn(&store, &["convert", &target, "--name", "base"]));
    let images = ok(cairn(&store, &["images", "--json"]));
    assert!(images.contains("\"base\""), "{images}");

    for (args, says) in [
        (vec!["plan", "app:v1"], "2"),
        (vec!["plan", "app:v1", "nope"], "nope"),
        (
            vec!["plan", "app:v1", "app:v2", "--emit-base", "x", &target],
            "--emit-base x",
        ),
        (
            vec!["plan", "app:v1", "app:v2", "--emit-base", "7", &target],
            "bases 1 to 1",
        ),
    ] {
        let out = cairn(&store, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
