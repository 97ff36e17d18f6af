//! `cairn snapshotter` under a real containerd (our own: own root, state and socket, never the
//! host's) and real runc, with the py images from the loopback registry: pulls apply every
//! layer through the snapshotter into the store, containers run python from it, writes stay in
//! the container's upper directory, one view serves every container of a chain, the merged
//! view equals GNU tar applying the layers, records survive a restart, and removing the image
//! lets `cairn gc` free its data while the other version still runs. Skipped, with a note,
//! without root, FUSE, containerd, ctr or runc; failed for that under `CAIRN_TEST_STRICT=1`.

use crate::helpers::{cairn, ok};
use cairn_testkit::registry::LocalRegistry;
use cairn_testkit::tree::{gnu_tar_reference, walk};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Node {
    store: PathBuf,
    socket: PathBuf,
    snapshotter_socket: PathBuf,
    /// runc's state: ours, not the host's `/run/containerd/runc`.
    runc_root: PathBuf,
    snapshotter: Option<Killed>,
    containerd: Option<Killed>,
}

impl Node {
    fn start(dir: &Path) -> Node {
        let store = dir.join("store");
        ok(cairn(&store, &["init"]));
        let mut node = Node {
            store,
            socket: dir.join("containerd.sock"),
            snapshotter_socket: dir.join("cairn.sock"),
            runc_root: dir.join("runc"),
            snapshotter: None,
            containerd: None,
        };
        node.start_snapshotter();
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
                 [proxy_plugins]\n  [proxy_plugins.cairn]\n    type = \"snapshot\"\n    \
                 address = \"{snap}\"\n",
                root = dir.join("ctd-root").display(),
                state = dir.join("ctd-state").display(),
                sock = node.socket.display(),
                snap = node.snapshotter_socket.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.containerd = Some(Killed(child));
        wait_for("containerd lists the cairn plugin as ok", || {
            node.ctr_try(&["plugins", "ls"]).is_some_and(|out| {
                out.lines()
                    .any(|l| l.contains(" cairn ") && l.contains("ok"))
            })
        });
        node
    }

    fn start_snapshotter(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--store")
            .arg(&self.store)
            .arg("snapshotter")
            .arg("--socket")
            .arg(&self.snapshotter_socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.snapshotter = Some(Killed(child));
        let socket = self.snapshotter_socket.clone();
        wait_for("the snapshotter's socket", || socket.exists());
    }

    fn ctr_try(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ctr run ARGS` with our runc root.
    fn ctr_run(&self, args: &[&str]) -> String {
        let root = self.runc_root.to_str().unwrap();
        let all: Vec<&str> = ["run", "--runc-root", root]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        self.ctr(&all)
    }

    fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn snapshots(&self) -> Vec<serde_json::Value> {
        let out = ok(cairn(&self.store, &["snapshots", "--json"]));
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn views(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let views = self.store.join("snapshotter").join("views");
        info.lines()
            .filter(|l| l.contains(" cairn:"))
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|p| p.starts_with(&views))
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Containers first (their overlays stand on the views), then the daemons and views.
        if let Some(tasks) = self.ctr_try(&["tasks", "ls", "-q"]) {
            for task in tasks.lines() {
                let _ = self.ctr_try(&["tasks", "kill", "-s", "SIGKILL", task]);
                let _ = self.ctr_try(&["tasks", "rm", "-f", task]);
            }
        }
        self.containerd.take();
        self.snapshotter.take();
        for view in self.views() {
            let _ = Command::new("umount").arg("-l").arg(&view).status();
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.store.parent().unwrap().to_string_lossy().into_owned();
        for line in info.lines() {
            if let Some(point) = line.split(' ').nth(4).filter(|p| p.starts_with(&*root)) {
                let _ = Command::new("umount").arg("-l").arg(point).status();
            }
        }
    }
}

/// Runs `python3 -c CODE` in a new container of `image`, removed after; returns its stdout.
fn run(node: &Node, image: &str, id: &str, code: &str) -> String {
    node.ctr_run(&[
        "--rm",
        "--snapshotter",
        "cairn",
        image,
        id,
        "python3",
        "-c",
        code,
    ])
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn requirements() -> bool {
    if !cairn_testkit::can_mount("containerd snapshotter test") {
        return false;
    }
    ["containerd", "ctr", "runc"].iter().all(|tool| {
        cairn_testkit::require(
            "containerd snapshotter test",
            cairn_testkit::probe::tool(tool),
        )
        .is_some()
    })
}

/// The layer tars of the py layout `layout` (ref `reference`), bottom first.
fn layer_tars(layout: &Path, reference: &str, work: &Path) -> Vec<Vec<u8>> {
    let store = work.join(format!("tars-{reference}"));
    ok(cairn(&store, &["init"]));
    let source = format!("oci:{}:{reference}", layout.display());
    ok(cairn(&store, &["convert", &source, "--name", "x"]));
    let images: serde_json::Value =
        serde_json::from_str(&ok(cairn(&store, &["images", "--json"]))).unwrap();
    let layers = images[0]["layers"].as_u64().unwrap() as usize;
    crate::helpers::export_all(&store, "x", layers)
}

#[test]
fn pulled_py_images_run_from_the_store_through_containerd() {
    if !requirements() {
        return;
    }
    let Some(data) = cairn_testkit::datasets::py() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("registry")).unwrap();
    let Some(registry) = LocalRegistry::start(&tmp.path().join("registry")) else {
        return;
    };
    registry.push(&data.join("v1"), "v1", "py:v1");
    registry.push(&data.join("v2"), "v2", "py:v2");
    let mut node = Node::start(tmp.path());
    let v1 = format!("{}/py:v1", registry.address);
    let v2 = format!("{}/py:v2", registry.address);
    // v2 is in the store already (as `cairn pull` or a bundle import would leave it). ctr 1.6
    // applies its layers anyway (it sends no `containerd.io/snapshot.ref` label; CRI does, see
    // the snapshotter's `stored_chains` test), and the commits store next to nothing new.
    let source = format!("oci:{}:v2", data.join("v2").display());
    ok(cairn(&node.store, &["convert", &source, "--name", "py:v2"]));
    let added = |node: &Node, prefix: &str| -> u64 {
        let images: serde_json::Value =
            serde_json::from_str(&ok(cairn(&node.store, &["images", "--json"]))).unwrap();
        images
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["name"].as_str().unwrap().starts_with(prefix))
            .map(|i| i["added_stored_bytes"].as_u64().unwrap())
            .sum()
    };
    let converted = added(&node, "py:v2");
    for image in [&v2, &v1] {
        let args = [
            "images",
            "pull",
            "--plain-http",
            "--snapshotter",
            "cairn",
            image,
        ];
        node.ctr(&args);
        if image == &v2 {
            let committed = added(&node, "snapshot/");
            eprintln!("v2's commits added {committed} bytes; its convert added {converted}");
            assert!(
                committed * 20 < converted,
                "v2's commits added {committed} bytes, its convert {converted}"
            );
        }
    }
    let v2_layers = layer_tars(&data.join("v2"), "v2", tmp.path());
    let version = "import pandas; print(pandas.__version__)";
    assert_eq!(run(&node, &v1, "py1", version).trim(), "2.1.4");
    assert_eq!(run(&node, &v2, "py2", version).trim(), "2.2.0");

    // Every layer is a committed snapshot held in the store, nothing unpacked.
    let committed: Vec<_> = node
        .snapshots()
        .into_iter()
        .filter(|s| s["kind"] == "committed")
        .collect();
    assert!(committed.len() >= v2_layers.len(), "{committed:?}");

    // The merged view of v2's top chain equals GNU tar applying v2's layers.
    let packages = "/usr/local/lib/python3.11/dist-packages";
    let top = committed
        .iter()
        .filter_map(|s| s["image"].as_object())
        .find(|chain| {
            let name = chain["name"].as_str().unwrap();
            let listed = cairn(&node.store, &["ls", name, packages]);
            chain["top"] == v2_layers.len() as u64 - 1
                && String::from_utf8_lossy(&listed.stdout).contains("pandas-2.2.0")
        })
        .expect("a committed chain of v2's layers");
    let view = tmp.path().join("view");
    std::fs::create_dir(&view).unwrap();
    let name = top["name"].as_str().unwrap();
    ok(cairn(&node.store, &["mount", name, view.to_str().unwrap()]));
    let reference = gnu_tar_reference(&v2_layers, &tmp.path().join("reference-work"));
    let ours = walk(&view);
    let theirs = walk(&reference);
    let _ = Command::new("umount").arg("-l").arg(&view).status();
    let differing: Vec<_> = theirs
        .iter()
        .filter(|(path, node)| ours.get(*path) != Some(*node))
        .map(|(path, _)| path.clone())
        .chain(ours.keys().filter(|p| !theirs.contains_key(*p)).cloned())
        .take(10)
        .collect();
    assert!(
        differing.is_empty(),
        "view and GNU tar differ at {differing:?}"
    );

    // A container's writes stay in its upper directory.
    node.ctr_run(&[
        "--snapshotter",
        "cairn",
        &v1,
        "writer",
        "python3",
        "-c",
        "open('/written.txt', 'w').write('written-by-the-container\\n')",
    ]);
    let active = node
        .snapshots()
        .into_iter()
        .find(|s| s["key"].as_str().unwrap().ends_with("/writer"))
        .expect("the writer's snapshot");
    let upper = node
        .store
        .join("snapshotter/snapshots")
        .join(active["id"].to_string())
        .join("fs/written.txt");
    assert_eq!(
        std::fs::read_to_string(&upper).unwrap(),
        "written-by-the-container\n"
    );
    for image in committed.iter().filter_map(|s| s["image"]["name"].as_str()) {
        assert!(!cairn(&node.store, &["cat", image, "/written.txt"])
            .status
            .success());
    }
    node.ctr(&["containers", "rm", "writer"]);

    // Two containers of one image share one view.
    for id in ["sleeper1", "sleeper2"] {
        node.ctr_run(&["-d", "--snapshotter", "cairn", &v1, id, "sleep", "600"]);
    }
    // (Views of containers that ran before may still be mounted until containerd's gc
    // removes their snapshots: count the lower directories of the sleepers' overlays.)
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let lowers: std::collections::BTreeSet<&str> = info
        .lines()
        .filter(|l| l.contains(" - overlay "))
        .filter_map(|l| l.split(',').find_map(|o| o.strip_prefix("lowerdir=")))
        .filter(|lower| node.views().iter().any(|v| v.to_str() == Some(*lower)))
        .collect();
    let overlays = info
        .lines()
        .filter(|l| l.contains(" - overlay ") && lowers.iter().any(|d| l.contains(d)))
        .count();
    assert_eq!(
        (lowers.len(), overlays),
        (1, 2),
        "{lowers:?} {:?}",
        node.views()
    );

    // The snapshotter restarts: records and views are still there, containers still start.
    node.snapshotter.take();
    let before = node.snapshots().len();
    node.start_snapshotter();
    assert_eq!(node.snapshots().len(), before);
    // containerd reconnects to the plugin's socket with its gRPC back-off.
    wait_for("containerd reaches the restarted snapshotter", || {
        node.ctr_try(&["snapshots", "--snapshotter", "cairn", "usage"])
            .is_some()
    });
    assert_eq!(run(&node, &v2, "py2-again", version).trim(), "2.2.0");
    for id in ["sleeper1", "sleeper2"] {
        let _ = node.ctr_try(&["tasks", "kill", "-s", "SIGKILL", id]);
        wait_for("the sleeper stops", || {
            node.ctr_try(&["tasks", "rm", id]).is_some()
        });
        node.ctr(&["containers", "rm", id]);
    }

    // v1 removed: containerd's gc removes its snapshots, cairn gc frees its data, v2 runs.
    node.ctr(&["images", "rm", "--sync", &v1]);
    wait_for("v1's snapshots are removed", || {
        node.snapshots().len() < before
    });
    let gc = ok(cairn(&node.store, &["gc", "--json"]));
    let freed = serde_json::from_str::<serde_json::Value>(&gc).unwrap();
    assert!(freed["freed_bytes"].as_u64().unwrap_or(0) > 0, "{gc}");
    assert_eq!(run(&node, &v2, "py2-after-gc", version).trim(), "2.2.0");
    ok(cairn(&node.store, &["verify"]));
}
