use crate::helpers::{bench, demo_sources, ok};

#[test]
fn sweep_on_the_demo_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = demo_sources(&tmp.path().join("images"));
    let json = tmp.path().join("sweep.json");
    let stdout = ok(bench(&[
        "sweep",
        "--old",
        &old,
        "--new",
        &new,
        "--params",
        "16/64/1024,32/128/1024",
        "--json",
        &json.display().to_string(),
    ]));
    assert!(stdout.contains("32K/128K/1024K"), "{stdout}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert!(r["after_old_bytes"].as_u64().unwrap() > 0);
        assert!(r["new_adds_bytes"].as_u64().unwrap() > 0);
    }
}
