//! What `cairn convert` is given, looked at before the engine reads it: a missing path, a
//! directory, or a file that is not what its form says gets an error naming the forms cairn
//! accepts, and the right form when it can tell (a directory holding an OCI image layout is
//! `oci:DIR`).

use anyhow::bail;
use cairn_engine::SourceSpec;
use std::io::Read;
use std::path::Path;

/// Every form of source, for the errors.
const FORMS: &str = "cairn convert takes oci:DIR[:REF] (an OCI image layout), \
                     docker-archive:FILE (`docker save` output), a layer .tar, .tar.gz or \
                     .tar.zst, or docker://REGISTRY/REPO[:TAG] (as `cairn pull` does)";

/// Parses the source and checks that it is there in the form it claims.
pub fn parse(text: &str) -> anyhow::Result<SourceSpec> {
    let spec = SourceSpec::parse(text).map_err(|e| match text.contains('/') {
        // REGISTRY/REPO:TAG without docker://.
        true => anyhow::anyhow!("{e} (a registry image: cairn pull {text} --name NAME)"),
        false => e.into(),
    })?;
    if let SourceSpec::LayerFile { file } = &spec {
        layer_file(text, file)?;
    } else if let SourceSpec::OciLayout { dir, .. } = &spec {
        layout(dir)?;
    } else if let SourceSpec::DockerArchive { file } = &spec {
        archive(file)?;
    }
    Ok(spec)
}

/// Whether `dir` looks like an OCI image layout.
fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() || dir.join("index.json").is_file()
}

fn layer_file(text: &str, file: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(file) else {
        bail!("{text}: no such file; {FORMS}");
    };
    if meta.is_dir() && is_layout(file) {
        bail!(
            "{text} is a directory holding an OCI image layout: convert it as oci:{text} (or \
             oci:{text}:REF for the image tagged REF)"
        );
    }
    if meta.is_dir() {
        bail!("{text} is a directory, not an image; {FORMS}");
    }
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(file)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| anyhow::anyhow!("read {text}: {e}"))?;
    if meta.is_file() && !head.is_empty() && !looks_like_a_layer(&head) {
        bail!("{text} is not a layer tar (no tar, gzip or zstd header); {FORMS}");
    }
    Ok(())
}

/// A tar header block (its checksum right, or all zeros: an empty tar), or gzip or zstd data.
fn looks_like_a_layer(head: &[u8]) -> bool {
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    if head.len() < 512 {
        return false;
    }
    if head.iter().all(|&b| b == 0) || &head[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&head[148..156]);
    let Ok(recorded) = u64::from_str_radix(field.trim_matches(['\0', ' ']), 8) else {
        return false;
    };
    let sum: u64 = head
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    sum == recorded
}

fn layout(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(_) => bail!("oci:{shown}: no such directory; {FORMS}"),
        Ok(meta) if meta.is_file() => bail!(
            "oci:{shown}: {shown} is a file, not an OCI layout directory; a `docker save` \
             archive is docker-archive:{shown}, a layer tar is given as its path"
        ),
        Ok(_) if !is_layout(dir) => bail!(
            "oci:{shown}: {shown} holds no OCI image layout (no oci-layout or index.json); \
             {FORMS}"
        ),
        Ok(_) => Ok(()),
    }
}

fn archive(file: &Path) -> anyhow::Result<()> {
    let shown = file.display();
    if file.is_dir() && is_layout(file) {
        bail!(
            "docker-archive:{shown}: {shown} is a directory holding an OCI image layout: \
             convert it as oci:{shown} (or oci:{shown}:REF)"
        );
    }
    if file.is_dir() {
        bail!("docker-archive:{shown}: {shown} is a directory, not an archive; {FORMS}");
    }
    if !file.exists() {
        bail!("docker-archive:{shown}: no such file; {FORMS}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_layers_by_their_first_bytes() {
        assert!(looks_like_a_layer(&[0x1f, 0x8b, 8, 0]));
        assert!(looks_like_a_layer(&[0x28, 0xb5, 0x2f, 0xfd, 0]));
        assert!(looks_like_a_layer(&[0; 512]));
        let mut header = [0u8; 512];
        header[..5].copy_from_slice(b"a.txt");
        let sum: u64 = header.iter().map(|&b| b as u64).sum::<u64>() + 8 * 32;
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(looks_like_a_layer(&header));
        let text = b"hello, this is a text file\n".repeat(20);
        assert!(!looks_like_a_layer(&text));
    }
}
