//! A real registry on loopback for the registry tests of the engine and the CLI: the CNCF
//! distribution registry (Debian's `docker-registry`), fed by `skopeo copy`; both are
//! [`require`]d (`start` returns `None`, with a note, where either is missing). Open, or asking
//! for basic auth (`start_with_auth`: htpasswd).

use crate::{probe, require};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The one user of a registry started by `start_with_auth`, and the password it accepts.
pub const USER: &str = "cairn";
pub const PASSWORD: &str = "pull-me-please";
/// `USER:PASSWORD` in base64, as `docker login` keeps it in config.json (`auths.*.auth`).
pub const USER_PASSWORD_BASE64: &str = "Y2Fpcm46cHVsbC1tZS1wbGVhc2U=";
/// The htpasswd line for `USER` and `PASSWORD`, made once by `htpasswd -Bbn -C 5` (the
/// registry takes bcrypt only, and checks it on every request: cost 5 keeps that quick). Kept
/// here rather than made per run so that the tests need no htpasswd tool (apache2-utils).
const HTPASSWD: &str = "cairn:$2y$05$JY4UhD49NzTLfaoaTnI/gO1Uf6DNAxDJyI6rt67eBl0iiqBIaMfl.\n";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker-registry serve` on a free loopback port with its own storage; stopped when dropped.
pub struct LocalRegistry {
    /// `None` once killed.
    child: Mutex<Option<Child>>,
    config: PathBuf,
    pub address: String,
    /// `USER:PASSWORD` where the registry asks for them (given to skopeo).
    pub credentials: Option<String>,
}

impl LocalRegistry {
    /// An open registry: anyone may pull and push.
    pub fn start(dir: &Path) -> Option<LocalRegistry> {
        LocalRegistry::start_with(dir, "")
    }

    /// A registry that answers only requests with basic auth `USER`:`PASSWORD`.
    pub fn start_with_auth(dir: &Path) -> Option<LocalRegistry> {
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, HTPASSWD).unwrap();
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: cairn-test\n    path: {}\n",
            htpasswd.display()
        );
        let mut registry = LocalRegistry::start_with(dir, &auth)?;
        registry.credentials = Some(format!("{USER}:{PASSWORD}"));
        Some(registry)
    }

    fn start_with(dir: &Path, auth: &str) -> Option<LocalRegistry> {
        for tool in ["docker-registry", "skopeo"] {
            require("the registry test", probe::tool(tool))?;
        }
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.join("registry.yml");
        let storage = dir.join("registry-data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let registry = LocalRegistry {
            child: Mutex::new(None),
            config,
            address,
            credentials: None,
        };
        registry.restart();
        Some(registry)
    }

    /// Starts the registry again, on the same port and storage, after `kill`.
    pub fn restart(&self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut slot = self.child.lock().unwrap();
        assert!(slot.is_none(), "the registry is running");
        *slot = Some(child);
        let start = Instant::now();
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the registry at once (SIGKILL), as a crash would; its storage stays.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn push(&self, layout: &Path, reference: &str, target: &str) {
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "-q", "--all", "--dest-tls-verify=false"]);
        if let Some(credentials) = &self.credentials {
            skopeo.arg("--dest-creds").arg(credentials);
        }
        let out = skopeo
            .arg(format!("oci:{}:{reference}", layout.display()))
            .arg(format!("docker://{}/{target}", self.address))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `skopeo inspect` reads `REGISTRY/REPO:TAG` (plain HTTP).
pub fn assert_skopeo_reads(reference: &str) {
    skopeo_inspect(&[], reference);
}

/// The manifest the registry serves for `REGISTRY/REPO:TAG`, byte for byte (`skopeo inspect
/// --raw`, plain HTTP).
pub fn served_manifest(reference: &str) -> Vec<u8> {
    skopeo_inspect(&["--raw"], reference)
}

/// `skopeo inspect ARGS docker://REFERENCE` over plain HTTP, which must succeed; its stdout.
fn skopeo_inspect(args: &[&str], reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("inspect")
        .args(args)
        .arg("--tls-verify=false")
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
