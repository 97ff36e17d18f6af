//! File contents for the demo images, derived from a label (usually the file's path): random
//! bytes that do not compress, or text-like lines that do. Each label gets its own
//! [`Rng::from_label`] stream, so adding a file does not change the others.

use crate::rng::Rng;

/// `len` incompressible bytes derived from `label`.
pub(crate) fn random_bytes(label: &str, len: usize) -> Vec<u8> {
    Rng::from_label(label).bytes(len)
}

const WORDS: &[&str] = &[
    "the",
    "image",
    "layer",
    "chunk",
    "store",
    "content",
    "defined",
    "boundary",
    "digest",
    "config",
    "manifest",
    "index",
    "platform",
    "registry",
    "container",
    "runtime",
    "snapshot",
    "version",
    "release",
    "build",
    "cache",
    "file",
    "directory",
    "symlink",
    "mode",
    "owner",
    "group",
    "size",
    "offset",
    "length",
    "hash",
    "blake3",
    "sha256",
    "gzip",
    "zstd",
    "tar",
    "header",
    "entry",
    "path",
    "value",
    "option",
    "enabled",
    "disabled",
    "default",
    "server",
    "client",
    "request",
    "response",
    "timeout",
    "retry",
    "error",
    "warning",
    "info",
    "debug",
    "and",
    "of",
    "to",
    "in",
    "is",
    "for",
    "with",
    "on",
    "by",
    "from",
];

/// `len` bytes of compressible, text-like content (config-ish lines of words) from `label`.
pub(crate) fn text_bytes(label: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::from_label(label);
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        if rng.below(4) == 0 {
            let key = WORDS[rng.below(WORDS.len() as u64) as usize];
            let n = rng.below(10_000);
            out.extend_from_slice(format!("{key}_{n} = {}\n", rng.below(1 << 20)).as_bytes());
            continue;
        }
        let words = 4 + rng.below(10);
        for i in 0..words {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        }
        out.extend_from_slice(b".\n");
    }
    out.truncate(len);
    out
}

/// Content of a demo file: text-like or random, seeded by `label`.
pub(crate) fn content(label: &str, text: bool, len: usize) -> Vec<u8> {
    if text {
        text_bytes(label, len)
    } else {
        random_bytes(label, len)
    }
}
