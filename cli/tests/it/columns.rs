//! Help and human output fit 80 columns: every command's `--help` (wrapped to COLUMNS=80, with
//! examples at the end), and what the main commands print.

use crate::helpers::{cairn, ok};
use std::process::Command;

fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(path)
        .arg("--help")
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(out.status.success(), "{path:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under "Commands:", `help` aside.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

pub fn assert_fits(what: &str, text: &str) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "{what}: over 80 columns ({}): {line:?}",
            line.chars().count()
        );
    }
}

#[test]
fn every_help_fits_80_columns_and_ends_with_examples() {
    let mut pending: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        assert_fits(&format!("cairn {} --help", args.join(" ")), &text);
        let children = subcommands(&text);
        if !path.is_empty() {
            assert!(
                text.contains("\nExamples:\n  "),
                "cairn {} --help has no examples:\n{text}",
                args.join(" ")
            );
        }
        for child in children {
            let mut next = path.clone();
            next.push(child);
            pending.push(next);
        }
        seen += 1;
    }
    // cairn, its commands, and those of dict and bundle.
    assert!(seen >= 25, "only {seen} help texts found");
    // A command's long description shows in --help (not only its one-line summary).
    for (command, says) in [
        ("export", "replaced only with --force"),
        ("push", "--store-format"),
        ("pull", "Credentials"),
        ("verify", "--repair-index, first rebuild"),
    ] {
        let text = help(&[command])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains(says), "cairn {command} --help: {text}");
    }
}

#[test]
fn human_output_of_the_main_commands_fits_80_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("d");
    let store = kept.join("store");
    // The demo converts both images: the convert report, twice, and its own summary.
    let demo = ok(cairn(
        &store,
        &["--quiet", "demo", "--keep", kept.to_str().unwrap()],
    ));
    assert!(demo.contains("delta "), "{demo}");
    assert_fits("cairn demo", &demo);
    for args in [
        vec!["stats", "--matrix"],
        vec!["images"],
        vec!["diff", "demo:v1", "demo:v2"],
        vec!["diff", "demo:v1", "demo:v2", "--by", "file"],
        vec!["inventory"],
        vec!["ls", "--long", "demo:v2", "/app"],
        vec!["verify"],
        vec!["gc", "--dry-run"],
        vec!["optimize", "--dry-run"],
        vec!["optimize"],
    ] {
        let text = ok(cairn(&store, &args));
        assert_fits(&format!("cairn {}", args.join(" ")), &text);
    }
    // Commands that write files say what they did on stderr: that fits too.
    let out = |name: &str| kept.join(name).to_str().unwrap().to_string();
    let (layout, rootfs) = (format!("oci:{}:v2", out("layout")), out("rootfs"));
    let (dict, bundle, other) = (out("v1.dict"), out("v2.bundle"), out("other"));
    let full = out("full.bundle");
    for args in [
        vec!["export", "demo:v2", layout.as_str()],
        vec!["unpack", "demo:v2", rootfs.as_str()],
        vec!["dict", "export", "demo:v1", "-o", dict.as_str()],
        vec![
            "bundle",
            "create",
            "demo:v2",
            "--have-dict",
            &dict,
            "-o",
            &bundle,
        ],
        vec!["bundle", "create", "demo:v2", "-o", &full],
        vec!["bundle", "inspect", bundle.as_str()],
        vec!["plan", "demo:v1", "demo:v2"],
        vec!["rm", "demo:v1"],
    ] {
        let output = cairn(
            &store,
            &["--quiet"].iter().chain(&args).copied().collect::<Vec<_>>(),
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let text = ok(output);
        assert_fits(&format!("cairn {}", args.join(" ")), &text);
        assert_fits(&format!("cairn {} (stderr)", args.join(" ")), &stderr);
    }
    let other_store = std::path::Path::new(&other);
    ok(cairn(other_store, &["init"]));
    let output = cairn(other_store, &["--quiet", "bundle", "import", &full]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_fits("cairn bundle import", &(ok(output) + &stderr));
}
