//! `inventory --format parquet`: the tables DuckDB reads, and a SQL query over the chunk table
//! that reproduces `cairn diff`'s shared bytes to the byte. Needs python3 with duckdb (`.ci/setup`
//! installs it); the DuckDB part is skipped with a note where it is missing (failed with
//! `CAIRN_TEST_STRICT=1`).

use crate::helpers::{cairn, ok};
use cairn_testkit::probe;
use std::process::Command;

fn duckdb(sql: &str) -> Option<String> {
    cairn_testkit::require("the DuckDB part", probe::python_module("duckdb"))?;
    let script = format!("import duckdb\nprint(duckdb.sql({sql:?}).fetchall())");
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[test]
fn duckdb_reads_the_tables_and_reproduces_diffs_shared_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    ok(cairn(&store, &["init"]));
    ok(cairn(
        &store,
        &[
            "convert",
            &format!("oci:{}:v1", v1.display()),
            "--name",
            "app/v1",
        ],
    ));
    ok(cairn(
        &store,
        &[
            "convert",
            &format!("oci:{}:v2", v2.display()),
            "--name",
            "app/v2",
        ],
    ));
    let out = tmp.path().join("tables");
    for level in ["image", "layer", "file"] {
        let file = out.join(format!("{level}.parquet"));
        std::fs::create_dir_all(&out).unwrap();
        let printed = ok(cairn(
            &store,
            &[
                "inventory",
                "--format",
                "parquet",
                "--level",
                level,
                "-o",
                file.to_str().unwrap(),
            ],
        ));
        assert!(printed.contains("rows"), "{printed}");
        assert!(file.is_file());
    }
    // A directory: a Hive-style tree, one file per level and image (names percent-encoded),
    // levels side by side; nothing replaced without --force.
    let tree = tmp.path().join("tree");
    let dir = format!("{}/", tree.display());
    let parquet_to_dir = |level: &str, force: bool| {
        let mut args = vec![
            "inventory",
            "--format",
            "parquet",
            "--level",
            level,
            "-o",
            &dir,
        ];
        if force {
            args.push("--force");
        }
        cairn(&store, &args)
    };
    ok(parquet_to_dir("chunk", false));
    ok(parquet_to_dir("layer", false));
    for (level, image) in [
        ("chunk", "app%2Fv1"),
        ("chunk", "app%2Fv2"),
        ("layer", "app%2Fv1"),
    ] {
        let file = tree.join(format!("level={level}/image={image}/part-0.parquet"));
        assert!(file.is_file(), "{} missing", file.display());
    }
    let part = tree.join("level=chunk/image=app%2Fv1/part-0.parquet");
    let before = std::fs::read(&part).unwrap();
    let again = parquet_to_dir("chunk", false);
    assert!(
        !again.status.success(),
        "a second chunk level replaced the first"
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("exists; give --force"), "{stderr}");
    assert_eq!(std::fs::read(&part).unwrap(), before);
    ok(parquet_to_dir("chunk", true));
    let single = out.join("image.parquet");
    let refused = cairn(
        &store,
        &[
            "inventory",
            "--format",
            "parquet",
            "--level",
            "image",
            "-o",
            single.to_str().unwrap(),
        ],
    );
    assert!(
        !refused.status.success(),
        "FILE.parquet replaced without --force"
    );
    let refused = cairn(&store, &["inventory", "--format", "parquet"]);
    assert!(!refused.status.success());

    let diff: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["diff", "app/v1", "app/v2", "--json"]))).unwrap();
    // Hive partitioning decodes image=app%2Fv1 back to the name the `image` column holds.
    let chunks = format!("read_parquet('{dir}level=chunk/*/*.parquet', hive_partitioning = true)");
    let sql = format!(
        "with n as (select distinct chunk_id, length from {chunks} where image = 'app/v2'), \
         o as (select distinct chunk_id from {chunks} where image = 'app/v1') \
         select sum(length) from n where chunk_id in (select chunk_id from o)"
    );
    let Some(shared) = duckdb(&sql) else { return };
    assert_eq!(shared, format!("[({},)]", diff["shared_bytes"]));
    let images = duckdb(&format!(
        "select image, layers from '{}' order by image",
        out.join("image.parquet").display()
    ))
    .unwrap();
    assert_eq!(images, "[('app/v1', 3), ('app/v2', 3)]");
    let files = duckdb(&format!(
        "select count(*) from '{}' where kind = 'file' and content_id is null",
        out.join("file.parquet").display()
    ))
    .unwrap();
    assert_eq!(files, "[(0,)]");
    let levels = duckdb(&format!(
        "select level, image, count(*) from read_parquet('{dir}**/*.parquet', \
         hive_partitioning = true, union_by_name = true) group by all order by all"
    ))
    .unwrap();
    assert!(
        levels.starts_with("[('chunk', 'app/v1', ") && levels.contains("('layer', 'app/v2', 3)"),
        "{levels}"
    );
}
