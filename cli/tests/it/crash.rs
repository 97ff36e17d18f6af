//! Crash safety: `cairn convert`, `cairn gc` and `cairn optimize` killed with SIGKILL at
//! arbitrary instants. After every kill the store opens, `verify --full` is clean, the image
//! committed before is exported byte for byte, and re-running the killed command succeeds. And
//! one of several converts running at once killed: the others succeed, and the same holds.
//!
//! `CAIRN_CRASH_KILLS=N` sets how many kills (default 200; a tenth of them, at least 10, among
//! concurrent converts).

use crate::concurrency::write_random_layer;
use crate::helpers::{cairn, export_all, ok};
use cairn_sample::Rng;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn kills() -> usize {
    std::env::var("CAIRN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Starts `cairn ARGS` and kills it after `delay`; returns whether it had already finished.
fn run_and_kill(store: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cairn");
    std::thread::sleep(delay);
    let finished = child.try_wait().expect("wait").is_some();
    if !finished {
        let _ = child.kill(); // SIGKILL
    }
    let _ = child.wait();
    finished
}

#[test]
fn kills_at_random_instants_lose_nothing_committed() {
    let kills = kills();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    ok(cairn(&store, &["init"]));
    ok(cairn(
        &store,
        &["convert", &format!("oci:{}", v1.display()), "--name", "v1"],
    ));
    let committed = export_all(&store, "v1", 3);
    let v1_source = format!("oci:{}", v1.display());
    let v2_source = format!("oci:{}", v2.display());
    // For compaction rounds: a store where v1 uses part of the blobs of an image "x" (v2,
    // converted first); with x removed, `gc --compact-below 1` rewrites those blobs and v1, and
    // `optimize` every blob.
    let compact_store = tmp.path().join("compact");
    let compact_setup = |store: &Path| {
        let _ = std::fs::remove_dir_all(store);
        ok(cairn(store, &["init"]));
        ok(cairn(store, &["convert", &v2_source, "--name", "x"]));
        ok(cairn(store, &["convert", &v1_source, "--name", "v1"]));
        ok(cairn(store, &["rm", "x"]));
    };
    let mut compactions = 0;

    // A deterministic spread of delays over a convert's whole run (a few tens of ms here).
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut killed = 0;
    let mut round = 0;
    while killed < kills {
        round += 1;
        assert!(
            round < kills * 5,
            "commands finish before the kill too often"
        );
        let delay = Duration::from_micros(rng.below(60_000));
        let compact_round = round % 8 == 4;
        let args: Vec<&str> = if compact_round {
            compact_setup(&compact_store);
            match round % 16 {
                4 => vec!["gc", "--compact-below", "1"],
                // The same write path with every blob rewritten: optimize.
                _ => vec!["optimize", "--quiet"],
            }
        } else if round % 8 == 0 {
            // Give gc something to delete: drop v2 (if it was committed) first.
            let _ = cairn(&store, &["rm", "v2"]);
            vec!["gc"]
        } else {
            vec!["convert", &v2_source, "--name", "v2", "--replace"]
        };
        let store = if compact_round {
            compact_store.as_path()
        } else {
            store.as_path()
        };
        if !run_and_kill(store, &args, delay) {
            killed += 1;
            compactions += usize::from(compact_round);
        }
        // The store is whole: opens, verifies, gives v1 back; the command can run again.
        let verify = cairn(store, &["verify", "--full"]);
        assert!(
            verify.status.success(),
            "after killing {args:?} at {delay:?}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        if round % 10 == 0 || compact_round {
            assert_eq!(
                export_all(store, "v1", 3),
                committed,
                "v1 changed after a kill"
            );
        }
        ok(cairn(store, &args));
    }
    assert_eq!(export_all(&store, "v1", 3), committed);
    assert!(compactions > 0, "no compacting gc was killed");
    eprintln!("{killed} kills survived in {round} rounds ({compactions} of gc compacting)");
}

fn spawn_cairn(store: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cairn")
}

#[test]
fn killing_one_of_several_concurrent_converts_loses_nothing() {
    let kills = (kills() / 10).max(10);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
    write_random_layer(&a, 3, 41);
    write_random_layer(&b, 3, 42);
    ok(cairn(&store, &["init"]));
    ok(cairn(
        &store,
        &["convert", &format!("oci:{}", v1.display()), "--name", "v1"],
    ));
    let committed = export_all(&store, "v1", 3);
    let v2_source = format!("oci:{}", v2.display());
    let converts: [(&str, &str); 3] = [
        (&v2_source, "v2"),
        (a.to_str().unwrap(), "a"),
        (b.to_str().unwrap(), "b"),
    ];
    let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
    let (mut killed, mut round) = (0, 0);
    while killed < kills {
        round += 1;
        assert!(
            round < kills * 5,
            "converts finish before the kill too often"
        );
        let victim = round % converts.len();
        let children: Vec<Child> = converts
            .iter()
            .map(|(source, name)| {
                spawn_cairn(&store, &["convert", source, "--name", name, "--replace"])
            })
            .collect();
        std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        for (i, mut child) in children.into_iter().enumerate() {
            if i == victim {
                if child.try_wait().expect("wait").is_none() {
                    let _ = child.kill(); // SIGKILL
                    killed += 1;
                }
                let _ = child.wait();
                continue;
            }
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: convert {} failed while another was killed: {}",
                converts[i].1,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let verify = cairn(&store, &["verify", "--full"]);
        assert!(
            verify.status.success(),
            "round {round}, after killing {:?}: {}",
            converts[victim].1,
            String::from_utf8_lossy(&verify.stdout)
        );
        if round % 5 == 0 {
            assert_eq!(
                export_all(&store, "v1", 3),
                committed,
                "v1 changed after a kill"
            );
        }
    }
    // Each image, converted again, comes back exactly; gc leaves the store whole.
    for (source, name) in converts {
        ok(cairn(
            &store,
            &["convert", source, "--name", name, "--replace"],
        ));
    }
    ok(cairn(&store, &["gc"]));
    assert!(ok(cairn(&store, &["verify", "--full"])).contains("no problems found"));
    assert_eq!(export_all(&store, "v1", 3), committed);
    assert_eq!(
        export_all(&store, "v2", 3),
        cairn_sample::demo_layers(2).unwrap()
    );
    assert!(export_all(&store, "a", 1)[0] == std::fs::read(&a).unwrap());
    assert!(export_all(&store, "b", 1)[0] == std::fs::read(&b).unwrap());
    assert!(
        std::fs::read_dir(store.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "tmp/ not empty after gc"
    );
    eprintln!("{killed} kills among concurrent converts survived in {round} rounds");
}
