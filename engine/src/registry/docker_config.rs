//! Credentials from `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), where `docker
//! login` and `skopeo login` keep them: `auths.<registry>.auth`, base64 of `user:password`, or
//! `username` and `password`. Credential helpers (`credsStore`) are not run.

use super::Credentials;
use crate::error::{Error, Result};
use base64::Engine;
use std::path::PathBuf;

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json")),
    }
}

/// The credentials stored for `registry`, if any.
pub(crate) fn credentials(registry: &str) -> Result<Option<Credentials>> {
    let Some(path) = config_path().filter(|p| p.is_file()) else {
        return Ok(None);
    };
    let text = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let config: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::bad_input(path.display().to_string(), e.to_string()))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    // Docker Hub is stored under its old URL.
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        if registry == "docker.io" {
            "https://index.docker.io/v1/".to_string()
        } else {
            String::new()
        },
    ];
    let Some(entry) = keys.iter().find_map(|k| auths.get(k)) else {
        return Ok(None);
    };
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(String::from);
    if let (Some(user), Some(password)) = (field("username"), field("password")) {
        return Ok(Some(Credentials { user, password }));
    }
    let Some(encoded) = field("auth") else {
        return Ok(None);
    };
    let bad = |reason: &str| {
        Error::bad_input(
            format!("{} auths.{registry}.auth", path.display()),
            reason.to_string(),
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad("not UTF-8"))?;
    Credentials::parse(&text)
        .map(Some)
        .map_err(|_| bad("not user:password"))
}
