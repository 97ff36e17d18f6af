//! `cairn pull` from the loopback registry with basic auth (`cairn_testkit::registry`), the
//! credentials read from a docker config file as `docker login` writes it. `DOCKER_CONFIG` is
//! set on the child process only: the environment is process-wide, and tests run in threads.

use crate::helpers::{cairn, export_all, files, ok, store_with_demo_v1};
use cairn_testkit::registry::{LocalRegistry, USER, USER_PASSWORD_BASE64};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `cairn pull --insecure REFERENCE --name app:v1` with `$DOCKER_CONFIG/config.json` holding
/// `auth` (an `auths` entry) for `registry`.
fn pull(store: &Path, reference: &str, registry: &str, auth: serde_json::Value) -> Output {
    let config = store.with_extension("docker");
    std::fs::create_dir_all(&config).unwrap();
    let json = serde_json::json!({ "auths": { registry: auth } });
    std::fs::write(config.join("config.json"), json.to_string()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store")
        .arg(store)
        .args(["pull", "--insecure", reference, "--name", "app:v1"])
        .env("DOCKER_CONFIG", &config)
        .env_remove("CAIRN_REGISTRY_USER")
        .output()
        .unwrap()
}

/// Every file of the store with its bytes, but for those each process that opens the store
/// rewrites: RocksDB's log and manifest in `index/`, and the lock files, which name their
/// last holder.
fn data_files(store: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let own = [store.join("LOCK"), store.join("WRITERS")];
    files(store)
        .into_iter()
        .filter(|(path, _)| !path.starts_with(store.join("index")) && !own.contains(path))
        .collect()
}

#[test]
fn pull_takes_credentials_from_the_docker_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start_with_auth(tmp.path()) else {
        return;
    };
    let local = store_with_demo_v1(&tmp.path().join("local"));
    registry.push(&tmp.path().join("local/images/v1"), "v1", "demo:v1");
    let reference = format!("{}/demo:v1", registry.address);

    // `auths.<host:port>.auth`, base64 of USER:PASSWORD, as `docker login` writes it.
    let store = tmp.path().join("pulled");
    ok(cairn(&store, &["init"]));
    let auth = serde_json::json!({ "auth": USER_PASSWORD_BASE64 });
    ok(pull(&store, &reference, &registry.address, auth));
    assert_eq!(
        export_all(&store, "app:v1", 3),
        export_all(&local, "app:v1", 3)
    );

    // A wrong password there (`username` and `password`, the other form): the pull fails
    // saying so, and the store is as it was.
    let store = tmp.path().join("refused");
    ok(cairn(&store, &["init"]));
    let before = data_files(&store);
    let auth = serde_json::json!({ "username": USER, "password": "wrong" });
    let out = pull(&store, &reference, &registry.address, auth);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&registry.address)
            && err.contains("refused the credentials of user cairn"),
        "{err}"
    );
    assert_eq!(data_files(&store), before);
    assert_eq!(ok(cairn(&store, &["images", "--json"])).trim(), "[]");
}

/// A registry that accepts connections and never answers: `pull` gives up after its tries of
/// `--read-timeout` each, naming the registry and the stall, and leaves the store as it was;
/// a timeout of 0 is refused before anything is sent.
#[test]
fn pull_from_a_stalled_registry_fails_within_its_timeouts_and_names_the_stall() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let before = data_files(&store);
    let reference = format!("{address}/demo:v1");
    let args = ["pull", "--insecure", &reference, "--name", "x:v1"];
    let timeouts = [
        "--read-timeout",
        "1",
        "--connect-timeout",
        "1",
        "--attempts",
        "2",
    ];
    let output = cairn(&store, &[&args[..], &timeouts[..]].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&address) && stderr.contains("stalled") && stderr.contains("2 tries"),
        "{stderr}"
    );
    assert_eq!(data_files(&store), before);
    let zero = cairn(&store, &[&args[..], &["--read-timeout", "0"][..]].concat());
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(
        !zero.status.success() && stderr.contains("--read-timeout"),
        "{stderr}"
    );
}
