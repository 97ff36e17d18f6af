//! Reading a stage's input without measuring the read: a byte range of a file (a layer blob,
//! a decoded tar, the compressed frames) is loaded into memory up to `WINDOW` bytes at a
//! time, and the span spent loading is kept apart (`excluded`) so the stage can subtract it.
//! In a convert these bytes come out of the decoder or the previous step already in memory,
//! so the stages are measured on bytes in memory too.

use super::clock::{timed, Span};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes loaded at a time: large enough that the loads are few (their timing costs nothing
/// next to the work), small enough that a multi-GB layer never sits in memory.
pub const WINDOW: usize = 64 << 20;

/// A byte range of a file, read through an in-memory window.
pub struct Window {
    file: File,
    path: PathBuf,
    /// The range: `base..base + len` of the file.
    base: u64,
    len: u64,
    buf: Vec<u8>,
    /// Offset in the range of `buf[0]`, and how many bytes of `buf` are loaded.
    start: u64,
    filled: usize,
    excluded: Span,
}

impl Window {
    pub fn open(path: &Path, base: u64, len: u64) -> io::Result<Window> {
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        Ok(Window {
            file,
            path: path.to_path_buf(),
            base,
            len,
            buf: Vec::new(),
            start: 0,
            filled: 0,
            excluded: Span::default(),
        })
    }

    /// A whole file.
    pub fn whole(path: &Path) -> io::Result<Window> {
        let len = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("stat {}: {e}", path.display())))?
            .len();
        Window::open(path, 0, len)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The span spent loading so far.
    pub fn excluded(&self) -> Span {
        self.excluded
    }

    /// `len` bytes (at most `WINDOW`) at `offset` of the range; loads the window from
    /// `offset` on when they are not all in it.
    pub fn get(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let end = offset + len as u64;
        if len > WINDOW || end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: {len} bytes at {offset} are past the {} bytes read here",
                    self.path.display(),
                    self.len
                ),
            ));
        }
        if offset < self.start || end > self.start + self.filled as u64 {
            self.load(offset)?;
        }
        let at = (offset - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }

    fn load(&mut self, offset: u64) -> io::Result<()> {
        let filled = (self.len - offset).min(WINDOW as u64) as usize;
        let (file, buf, base) = (&self.file, &mut self.buf, self.base);
        timed(&mut self.excluded, || {
            if buf.len() < filled {
                buf.resize(filled, 0);
            }
            file.read_exact_at(&mut buf[..filled], base + offset)
        })
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", self.path.display())))?;
        self.start = offset;
        self.filled = filled;
        Ok(())
    }

    /// The bytes `offset..offset + len` as a reader (for the chunker, which reads a file's
    /// content into its own buffer as it reads the tar stream in a convert).
    pub fn range(&mut self, offset: u64, len: u64) -> RangeReader<'_> {
        RangeReader {
            window: self,
            pos: offset,
            end: offset + len,
        }
    }
}

/// A byte range of a `Window`, read in order.
pub struct RangeReader<'w> {
    window: &'w mut Window,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.pos)
            .min(buf.len() as u64)
            .min(WINDOW as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        buf[..n].copy_from_slice(self.window.get(self.pos, n)?);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_through_the_window() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut window = Window::open(&path, 10, 90_000).unwrap();
        assert_eq!(window.get(5, 3).unwrap(), &data[15..18]);
        assert_eq!(window.get(0, 90_000).unwrap(), &data[10..90_010]);
        assert!(window.get(89_999, 2).is_err());
        let mut out = Vec::new();
        window.range(100, 1000).read_to_end(&mut out).unwrap();
        assert_eq!(out, &data[110..1110]);
        assert!(window.excluded().wall_s > 0.0);
        assert_eq!(Window::whole(&path).unwrap().len(), 100_000);
    }
}
