//! A real registry on loopback for the registry tests: the CNCF distribution registry
//! (Debian's `docker-registry`), fed by `skopeo copy`; `start` returns `None`, with a note,
//! where either is missing.

use crate::helpers::*;
use cairn_engine::source::registry::RegistrySpec;
use cairn_engine::{ConvertOptions, PlatformChoice, SourceSpec};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker-registry serve` on a free loopback port with its own storage; stopped when dropped.
pub struct LocalRegistry {
    pub child: Child,
    pub address: String,
}

impl LocalRegistry {
    pub fn start(dir: &Path) -> Option<LocalRegistry> {
        for tool in ["docker-registry", "skopeo"] {
            if !which(tool) {
                eprintln!(
                    "note: registry test skipped: {tool} is not installed (.ci/setup installs it)"
                );
                return None;
            }
        }
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.join("registry.yml");
        let storage = dir.join("registry-data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = LocalRegistry { child, address };
        let start = Instant::now();
        while TcpStream::connect(&registry.address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    pub fn push(&self, layout: &Path, reference: &str, target: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn pull_options(reference: &str, name: &str, dict: &[&str]) -> ConvertOptions {
    ConvertOptions {
        source: SourceSpec::Registry(RegistrySpec {
            reference: reference.to_string(),
            insecure: true,
            credentials: None,
        }),
        platform: PlatformChoice::Default,
        ..options("oci:unused", name, dict)
    }
}
