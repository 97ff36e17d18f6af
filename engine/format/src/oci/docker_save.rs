//! The `manifest.json` of a `docker save` archive: one entry per image, naming its config, its
//! tags and its layer tars by their paths in the archive. `source::docker_archive` reads it,
//! `ops::export` writes it (one image, `<diff_id hex>/layer.tar` layers).

use serde::{Deserialize, Serialize};

/// One image of a `docker save` archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveManifest {
    /// Path of the config in the archive (`<hex>.json` or `blobs/sha256/<hex>`).
    pub config: String,
    /// `repo:tag` names; missing or `null` for an untagged image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars in the archive, bottom first.
    #[serde(default)]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{encode, parse};

    #[test]
    fn encoding_is_pinned() {
        let entry = ArchiveManifest {
            config: "c.json".into(),
            repo_tags: Some(vec![]),
            layers: vec!["a/layer.tar".into(), "b/layer.tar".into()],
        };
        let expected =
            r#"[{"Config":"c.json","RepoTags":[],"Layers":["a/layer.tar","b/layer.tar"]}]"#;
        assert_eq!(
            String::from_utf8(encode(&[&entry], "test").unwrap()).unwrap(),
            expected
        );
        assert_eq!(
            parse::<Vec<ArchiveManifest>>(expected.as_bytes(), "test").unwrap(),
            vec![entry]
        );
        let untagged: Vec<ArchiveManifest> = parse(
            br#"[{"Config":"c.json","RepoTags":null,"Other":1}]"#,
            "test",
        )
        .unwrap();
        assert_eq!(untagged[0].repo_tags, None);
        assert!(untagged[0].layers.is_empty());
    }
}
