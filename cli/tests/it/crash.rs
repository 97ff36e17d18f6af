//! Crash safety: `cairn convert` and `cairn gc` killed with SIGKILL at arbitrary instants. After
//! every kill the store opens, `verify --full` is clean, the image committed before is exported
//! byte for byte, and re-running the killed command succeeds.
//!
//! `CAIRN_CRASH_KILLS=N` sets how many kills (default 200).

use super::{cairn, export_all, ok};
use cairn_sample::Rng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    let kills: usize = std::env::var("CAIRN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
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
    // converted first); with x removed, `gc --compact-below 1` rewrites those blobs and v1.
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
            vec!["gc", "--compact-below", "1"]
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
