//! A reader that hashes (sha256) and counts what passes through it, so that a layer's digest
//! and diff_id are checked in the same pass that converts it.

use crate::progress::Progress;
use crate::Sha256Digest;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

pub struct DigestReader<'p, R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    progress: Option<&'p dyn Progress>,
}

impl<'p, R: Read> DigestReader<'p, R> {
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            progress: None,
        }
    }

    /// Also reports every byte read to `progress`.
    pub fn with_progress(inner: R, progress: &'p dyn Progress) -> Self {
        DigestReader {
            progress: Some(progress),
            ..DigestReader::new(inner)
        }
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads what is left, then returns the digest and byte count of everything read.
    pub fn finish(mut self) -> io::Result<(Sha256Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Sha256Digest(self.hasher.finalize().into()), self.count))
    }
}

impl<R: Read> Read for DigestReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(p) = self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}
