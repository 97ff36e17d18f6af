//! `cairn mount` in the background, `cairn umount`, and SIGTERM to a foreground mount: the
//! files read as `cat` gives them, the mount is nosuid,nodev, the lease is there while mounted
//! and gone after. Skipped, with a note, where FUSE cannot be mounted (not root); with
//! `CAIRN_TEST_STRICT=1`, failed where /dev/fuse or fusermount3 is missing.

use crate::helpers::{cairn, ok, store_with_demo_v1};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(dir) && l.contains(" cairn:"))
}

/// The mount options of `dir` (the per-mount ones of /proc/self/mountinfo: ro, nosuid...).
fn mount_options(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir))
        .expect("mounted");
    let options = line.split(' ').nth(5).unwrap();
    options.split(',').map(str::to_string).collect()
}

fn leases(store: &Path) -> usize {
    std::fs::read_dir(store.join("leases")).map_or(0, |dir| {
        dir.filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".lease")
        })
        .count()
    })
}

/// Waits (at most 10 s) for `done`.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mount_in_the_background_then_umount_and_sigterm_in_the_foreground() {
    if !cairn_testkit::can_mount("mount test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let log = tmp.path().join("mount.log");

    let said = ok(cairn(
        &store,
        &["mount", "app:v1", dir_arg, "--log", log.to_str().unwrap()],
    ));
    assert!(said.starts_with("mounted image \"app:v1\""), "{said}");
    assert!(is_mounted(&dir) && leases(&store) == 1);
    let options = mount_options(&dir);
    assert!(options.contains(&"nosuid".to_string()) && options.contains(&"nodev".to_string()));
    let config = ok(cairn(&store, &["cat", "app:v1", "app/config.toml"]));
    assert_eq!(
        std::fs::read_to_string(dir.join("app/config.toml")).unwrap(),
        config
    );
    ok(cairn(&store, &["umount", dir_arg]));
    assert!(!is_mounted(&dir));
    wait_for("the lease to go", || leases(&store) == 0);

    // Without --log, the log is under the store, named after the image.
    let said = ok(cairn(&store, &["mount", "app:v1", dir_arg]));
    let logged = said.lines().find_map(|l| l.strip_prefix("log: "));
    let logged = Path::new(logged.unwrap_or_else(|| panic!("no log line: {said}")));
    assert_eq!(
        logged.parent(),
        Some(store.join("logs").as_path()),
        "{said}"
    );
    let file_name = logged.file_name().unwrap().to_string_lossy();
    assert!(file_name.starts_with("mount-app_v1-"), "{said}");
    assert!(logged.is_file());
    ok(cairn(&store, &["umount", dir_arg]));
    wait_for("the lease to go", || leases(&store) == 0);

    let out = cairn(&store, &["umount", dir_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a cairn mount"));
    let out = cairn(
        &store,
        &["mount", "app:v1", dir_arg, "--suid-dev", "--allow-other"],
    );
    assert!(!out.status.success() && !is_mounted(&dir));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-other"));
    let out = cairn(&store, &["mount", "nope", dir_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image named \"nope\""));

    // In the foreground, SIGTERM unmounts and the process exits cleanly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(&store)
        .args(["mount", "--all", dir_arg, "--foreground"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the mount", || is_mounted(&dir));
    assert!(dir.join("app:v1/app/config.toml").is_file());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&dir));
    assert_eq!(leases(&store), 0);
}
