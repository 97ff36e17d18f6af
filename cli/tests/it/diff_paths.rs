//! `diff --by file` keeps the end of a long path (its start elided with `…`), so files that
//! differ only in their names stay apart; `--json` keeps every path whole.

use crate::helpers::{cairn, ok};
use cairn_sample::{build_layer_tar, Rng, SampleEntry};

const DIR: &str = "usr/lib/python3.12/site-packages/somepackage/subpackage";

#[test]
fn diff_by_file_keeps_the_end_of_long_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(cairn(&store, &["init"]));
    let mut rng = Rng::from_label("diff paths");
    let old = build_layer_tar(&[SampleEntry::file("README", 0o644, b"old\n".to_vec())], 1).unwrap();
    let new: Vec<SampleEntry> = (0..10)
        .map(|i| {
            let path = format!("{DIR}/module_{i:02}_handlers.py");
            SampleEntry::file(path, 0o644, rng.bytes(20_000 + i * 1000))
        })
        .collect();
    let new = build_layer_tar(&new, 1).unwrap();
    for (name, tar) in [("old", old), ("new", new)] {
        let file = tmp.path().join(format!("{name}.tar"));
        std::fs::write(&file, tar).unwrap();
        ok(cairn(
            &store,
            &["convert", file.to_str().unwrap(), "--name", name],
        ));
    }

    let text = ok(cairn(&store, &["diff", "old", "new", "--by", "file"]));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("_handlers.py"))
        .collect();
    assert_eq!(rows.len(), 10, "{text}");
    let mut paths: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap())
        .collect();
    for path in &paths {
        assert!(
            path.starts_with('…') && path.ends_with("_handlers.py"),
            "{text}"
        );
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 10, "rows that read the same:\n{text}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["diff", "old", "new", "--json"]))).unwrap();
    let whole = format!("{DIR}/module_09_handlers.py");
    assert!(json.to_string().contains(&whole), "{json}");
}
