//! Fail points: every durable write step of every write path (`cairn_engine::failpoint::ALL`),
//! made to fail with `CAIRN_FAIL_AT`. Each must be reached (the command exits non-zero and names
//! it). After the failure the names are as before, `verify --full` is clean, the image committed
//! before is exported byte for byte, an export's output is as before, and the command then runs
//! again without the variable and succeeds, leaving `verify --full` clean.

use crate::helpers::{cairn, export_all, files, ok};
use cairn_engine::failpoint;
use std::path::Path;
use std::process::{Command, Output};

fn cairn_failing_at(point: &str, store: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .env(failpoint::ENV, point)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run cairn")
}

fn assert_injected(point: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{point}: the command succeeded");
    assert!(
        err.contains(&format!(
            "injected failure at fail point {point} (CAIRN_FAIL_AT)"
        )),
        "{point}: not reached or not named: {err}"
    );
}

fn assert_verify_clean(store: &Path, context: &str) {
    let out = cairn(store, &["verify", "--full"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("no problems found"),
        "{context}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(store: &Path) -> Vec<String> {
    let images: serde_json::Value =
        serde_json::from_str(&ok(cairn(store, &["images", "--json"]))).unwrap();
    images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_fail_point_is_reached_and_leaves_the_store_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let v1_source = format!("oci:{}", v1.display());
    let v2_source = format!("oci:{}", v2.display());
    for &point in failpoint::ALL {
        let dir = tmp.path().join(point);
        let store = dir.join("store");
        // Where exports go; compared before and after the failure.
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();

        if point.starts_with("init.") {
            assert_injected(point, &cairn_failing_at(point, &store, &["init".into()]));
            // Not mistaken for a store: store.json, written last, is missing.
            let open = cairn(&store, &["images"]);
            assert!(!open.status.success(), "{point}: an unfinished store opens");
            let err = String::from_utf8_lossy(&open.stderr);
            assert!(err.contains("no cairn store"), "{point}: {err}");
            continue;
        }

        ok(cairn(&store, &["init"]));
        ok(cairn(&store, &["convert", &v1_source, "--name", "app:v1"]));
        // The image whose exported bytes must not change.
        let mut kept = "app:v1";
        let layout = format!("oci:{}", out.join("layout").display());
        let args: Vec<String> = match point.split('.').next().unwrap() {
            "open" => {
                // A format-4 store: the first writer to open it upgrades store.json.
                let json = store.join("store.json");
                let text = std::fs::read_to_string(&json).unwrap();
                let old = text.replace("\"format_version\": 5", "\"format_version\": 4");
                assert_ne!(old, text, "{point}: store.json names no format version 5");
                std::fs::write(&json, old).unwrap();
                vec![
                    "convert".into(),
                    v2_source.clone(),
                    "--name".into(),
                    "app:v2".into(),
                ]
            }
            "convert" => vec![
                "convert".into(),
                v2_source.clone(),
                "--name".into(),
                "app:v2".into(),
            ],
            "rm" => {
                ok(cairn(&store, &["convert", &v2_source, "--name", "app:v2"]));
                vec!["rm".into(), "app:v2".into()]
            }
            "gc" if point.starts_with("gc.compact.") => {
                // Blobs of app:v1 partly used by app:v2: removing app:v1 makes gc compact
                // them and rewrite app:v2's bootstrap.
                ok(cairn(&store, &["convert", &v2_source, "--name", "app:v2"]));
                ok(cairn(&store, &["rm", "app:v1"]));
                kept = "app:v2";
                vec!["gc".into(), "--compact-below".into(), "1".into()]
            }
            "gc" => {
                // Something for gc to delete.
                ok(cairn(&store, &["convert", &v2_source, "--name", "app:v2"]));
                ok(cairn(&store, &["rm", "app:v2"]));
                vec!["gc".into()]
            }
            "export" => {
                let target = match point {
                    "export.archive.rename" => {
                        format!("docker-archive:{}", out.join("app.tar").display())
                    }
                    "export.index.rename" => {
                        // A layout holding v1 whose index.json the failed export must not touch.
                        ok(cairn(
                            &store,
                            &["export", "app:v1", &format!("{layout}:v1")],
                        ));
                        format!("{layout}:again")
                    }
                    _ => format!("{layout}:v1"),
                };
                vec!["export".into(), "app:v1".into(), target]
            }
            "import" => {
                // A bundle of app:v2 made by another store, relying on app:v1.
                let sender = dir.join("sender");
                ok(cairn(&sender, &["init"]));
                ok(cairn(&sender, &["convert", &v1_source, "--name", "app:v1"]));
                ok(cairn(&sender, &["convert", &v2_source, "--name", "app:v2"]));
                let bundle = dir.join("app-v2.cairn");
                let bundle = bundle.to_str().unwrap();
                ok(cairn(
                    &sender,
                    &[
                        "bundle", "create", "app:v2", "--have", "app:v1", "-o", bundle,
                    ],
                ));
                vec!["bundle".into(), "import".into(), bundle.into()]
            }
            other => panic!("fail point {point}: no command to test the {other} fail points"),
        };
        let committed = export_all(&store, kept, 3);
        let names_before = names(&store);
        let out_before = files(&out);

        assert_injected(point, &cairn_failing_at(point, &store, &args));
        assert_eq!(names(&store), names_before, "{point}: names changed");
        assert_verify_clean(&store, &format!("after failing at {point}"));
        assert_eq!(
            export_all(&store, kept, 3),
            committed,
            "{point}: {kept} changed"
        );
        assert_eq!(files(&out), out_before, "{point}: export output changed");

        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(cairn(&store, &args));
        if point == "open.config.upgrade" {
            let json = std::fs::read_to_string(store.join("store.json")).unwrap();
            assert!(
                json.contains("\"format_version\": 5"),
                "{point}: not upgraded: {json}"
            );
        }
        assert_verify_clean(&store, &format!("after re-running {args:?}"));
        assert_eq!(
            export_all(&store, kept, 3),
            committed,
            "{point}: {kept} changed"
        );
        match args[0] {
            "convert" | "bundle" => assert!(names(&store).contains(&"app:v2".to_string())),
            "rm" => assert_eq!(names(&store), ["app:v1"]),
            "gc" if point.starts_with("gc.compact.") => {
                let again: serde_json::Value = serde_json::from_str(&ok(cairn(
                    &store,
                    &["gc", "--json", "--dry-run", "--compact-below", "1"],
                )))
                .unwrap();
                assert_eq!(again["compacted_blobs"], 0, "{point}: {again}");
                assert_eq!(again["dead_blobs"], 0, "{point}: {again}");
            }
            "gc" => {
                let again: serde_json::Value =
                    serde_json::from_str(&ok(cairn(&store, &["gc", "--json", "--dry-run"])))
                        .unwrap();
                assert_eq!(again["dead_blobs"], 0, "{point}: {again}");
                assert_eq!(again["dead_bootstraps"], 0, "{point}: {again}");
                assert_eq!(again["dead_layer_objects"], 0, "{point}: {again}");
            }
            _ => assert!(
                files(&out)
                    .keys()
                    .all(|p| !p.to_string_lossy().contains("cairn-partial")),
                "{point}: temporary files left in {}",
                out.display()
            ),
        }
    }
}

#[test]
fn an_unknown_fail_point_name_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::helpers::store_with_demo_v1(tmp.path());
    let out = cairn_failing_at("rm.index.btach", &store, &["rm".into(), "app:v1".into()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"rm.index.btach\", which is no fail point"),
        "{err}"
    );
    assert_eq!(names(&store), ["app:v1"]);
}
