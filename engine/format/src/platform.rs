//! Platforms (`os/arch[/variant]`) and how a platform is chosen from a multi-arch image.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum PlatformChoice {
    /// The only platform, or else the host's.
    #[default]
    Default,
    Exact(Platform),
    All,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "platform {text:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8"
            ));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        })
    }

    /// The platform this program runs on, in OCI's names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.into(),
            architecture: architecture.into(),
            variant: None,
            os_version: None,
        }
    }

    /// True if `self`, as asked for, is satisfied by `offered` (a missing variant matches any).
    pub fn matches(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && (self.variant.is_none() || self.variant == offered.variant)
    }

    /// Attestation manifests in multi-arch indexes carry `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks from `(platform, item)` candidates as `choice` says; `what` names the image in errors.
pub fn choose<T>(
    candidates: Vec<(Platform, T)>,
    choice: &PlatformChoice,
    what: &str,
) -> Result<Vec<(Platform, T)>, String> {
    let list = |c: &[(Platform, T)]| {
        c.iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if candidates.is_empty() {
        return Err(format!("{what} holds no image manifest"));
    }
    match choice {
        PlatformChoice::All => Ok(candidates),
        PlatformChoice::Exact(want) => {
            let offered = list(&candidates);
            let chosen: Vec<_> = candidates
                .into_iter()
                .filter(|(p, _)| want.matches(p))
                .collect();
            match chosen.len() {
                0 => Err(format!("{what} has no platform {want}; it has: {offered}")),
                _ => Ok(chosen.into_iter().take(1).collect()),
            }
        }
        PlatformChoice::Default => {
            if candidates.len() == 1 {
                return Ok(candidates);
            }
            let host = Platform::host();
            let offered = list(&candidates);
            let chosen: Vec<_> = candidates
                .into_iter()
                .filter(|(p, _)| host.matches(p))
                .collect();
            match chosen.len() {
                0 => Err(format!(
                    "{what} has several platforms ({offered}) and none is the host's ({host}); \
                     choose one with --platform OS/ARCH[/VARIANT] or use --all-platforms"
                )),
                _ => Ok(chosen.into_iter().take(1).collect()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux/arm64").unwrap().matches(&p));
        assert!(!Platform::parse("linux/amd64").unwrap().matches(&p));
        assert!(Platform::parse("linux").is_err());
    }
}
