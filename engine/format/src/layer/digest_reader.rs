//! A reader and a writer that hash (sha256) and count what passes through them, so that a
//! layer's digest and diff_id are checked in the same pass that converts or exports it.

use crate::progress::Progress;
use crate::Sha256Digest;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

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

pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything written, and the inner writer (not flushed).
    pub fn finish(self) -> (Sha256Digest, u64, W) {
        (
            Sha256Digest(self.hasher.finalize().into()),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
