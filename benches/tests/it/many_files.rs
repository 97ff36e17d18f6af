use crate::helpers::{bench, ok, sibling_cairn};
use serde_json::Value;
use std::path::Path;

const STEPS: [&str; 11] = [
    "convert v1",
    "convert v2",
    "cat",
    "ls",
    "ls -l",
    "diff",
    "export-layer",
    "unpack",
    "optimize",
    "rm v1",
    "gc",
];

/// many-files at 300 files with 1 MB large files, through `cairn`: its output and JSON report.
fn run(tmp: &Path, cairn: &Path) -> (String, Value) {
    let json = tmp.join("many.json");
    let work = tmp.join("work");
    let stdout = ok(bench(&[
        "many-files",
        "--files",
        "300",
        "--large-mb",
        "1",
        "--work",
        &work.display().to_string(),
        "--cairn",
        &cairn.display().to_string(),
        "--json",
        &json.display().to_string(),
    ]));
    assert!(!work.exists(), "the work directory is removed");
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (stdout, report)
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

#[test]
fn many_files_measures_every_step() {
    let Some(cairn) = sibling_cairn("the many-files test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (stdout, report) = run(tmp.path(), &cairn);
    assert!(stdout.contains("| step | wall s |"), "{stdout}");

    let layers = &report["layers"];
    assert_eq!(layers["v1"]["files"], 300);
    assert!(layers["v1"]["tar_bytes"].as_u64().unwrap() > 1_750_000);
    assert!(layers["v1"]["symlinks"].as_u64().unwrap() >= 1);
    assert!(layers["v1"]["hardlinks"].as_u64().unwrap() >= 1);
    assert_ne!(layers["v1"]["tar_bytes"], layers["v2"]["tar_bytes"]);

    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, STEPS);
    for name in STEPS {
        let s = step(&report, name);
        assert_eq!(s["ok"], true, "{s:#}");
        assert!(s["usage"]["max_rss_kib"].as_u64().unwrap() > 0, "{s:#}");
        assert!(s["usage"]["wall_s"].as_f64().is_some(), "{s:#}");
    }
    for name in ["cat", "ls", "ls -l"] {
        assert!(step(&report, name)["first_run"]["wall_s"].is_number());
    }
    for name in ["ls", "ls -l"] {
        assert_eq!(
            step(&report, name)["stdout_lines"],
            report["layers"]["ls_entries"]
        );
    }
    assert!(step(&report, "convert v1")["mb_s"].as_f64().unwrap() > 0.0);
    // convert v1, convert v2, diff, optimize and gc: RSS; cat, ls and ls -l: RSS and wall.
    assert_eq!(report["bars"].as_array().unwrap().len(), 11);

    for when in ["store_after_v1", "store_after_v2"] {
        let store = &report[when];
        for dir in ["blobs", "bootstraps", "index"] {
            assert!(store["entries"][dir].as_u64().unwrap() > 0, "{store:#}");
        }
        assert!(store["metadata_bytes_per_file"].as_f64().unwrap() > 0.0);
        assert!(store["unique_chunks"].as_u64().unwrap() > 300, "{store:#}");
        assert!(store["index_bytes_per_chunk"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn many_files_reports_a_failed_step_and_goes_on() {
    let Some(cairn) = sibling_cairn("the many-files test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // A cairn that refuses `diff`.
    let wrapper = tmp.path().join("cairn-without-diff");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = diff ]; then echo 'diff refused by the test' >&2; exit 3; fi\ndone\nexec '{}' \"$@\"\n",
            cairn.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wrapper, permissions).unwrap();

    let (stdout, report) = run(tmp.path(), &wrapper);
    let diff = step(&report, "diff");
    assert_eq!(diff["ok"], false);
    assert_eq!(diff["status"], "exit status 3");
    assert!(diff["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("diff refused"));
    assert!(stdout.contains("diff failed (exit status 3)"), "{stdout}");
    for name in ["export-layer", "unpack"] {
        assert_eq!(
            step(&report, name)["ok"],
            true,
            "steps after the failure run"
        );
    }
    let bar = report["bars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["step"] == "diff")
        .unwrap();
    assert_ne!(bar["verdict"], "within");
}
