//! A reader on a thread of its own: `pump` reads a stream (a layer's decoder) into blocks and
//! hands them through a bounded channel to a `PipeReader` on another thread, which reads them
//! as one stream. Decompression then runs beside what consumes its output (the tar walker,
//! the diff_id hash, the chunker) instead of taking turns with it on one thread: for a layer
//! that runs alone (a large last layer, or content the store already holds) that halves the
//! time on two cores. At most `BLOCKS_IN_FLIGHT` blocks of `BLOCK` bytes are in flight; the
//! reader hands emptied blocks back for reuse.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};

pub const BLOCK: usize = 1 << 20;
pub const BLOCKS_IN_FLIGHT: usize = 4;

/// A filled block: the buffer and how many of its bytes are data.
type Filled = io::Result<(Vec<u8>, usize)>;

/// The two ends: give `Pump` to the thread that reads the source, read from `PipeReader`.
pub fn pipe() -> (Pump, PipeReader) {
    let (filled_tx, filled_rx) = mpsc::sync_channel(BLOCKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel(BLOCKS_IN_FLIGHT + 1);
    (
        Pump {
            filled: filled_tx,
            empty: empty_rx,
        },
        PipeReader {
            filled: filled_rx,
            empty: empty_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
        },
    )
}

pub struct Pump {
    filled: SyncSender<Filled>,
    empty: Receiver<Vec<u8>>,
}

impl Pump {
    /// Passes `error` to the reader instead of a stream (the source could not be opened).
    pub fn fail(self, error: io::Error) {
        let _ = self.filled.send(Err(error));
    }

    /// Reads `source` to its end, block by block, into the pipe; an error is passed on to the
    /// reader. Returns early, with nothing more read, once the reader is gone.
    pub fn run(self, mut source: impl Read) {
        loop {
            let mut block = self.empty.try_recv().unwrap_or_default();
            block.resize(BLOCK, 0);
            let filled = fill(&mut source, &mut block);
            let end = matches!(filled, Ok(0) | Err(_));
            let message = filled.map(|n| (block, n));
            if (!matches!(message, Ok((_, 0))) && self.filled.send(message).is_err()) || end {
                return;
            }
        }
    }
}

/// Reads until `block` is full or the source ends; the bytes read.
fn fill(source: &mut impl Read, block: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < block.len() {
        match source.read(&mut block[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub struct PipeReader {
    filled: Receiver<Filled>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            match self.filled.recv() {
                // The pump is done: the stream has ended.
                Err(_) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Ok(Ok((block, len))) => {
                    let used = std::mem::replace(&mut self.current, block);
                    if !used.is_empty() {
                        let _ = self.empty.try_send(used);
                    }
                    self.len = len;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_arrives_whole_and_errors_pass_through() {
        let data: Vec<u8> = (0..3 * BLOCK + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (pump, mut reader) = pipe();
        let source = data.clone();
        let handle = std::thread::spawn(move || pump.run(source.as_slice()));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        handle.join().unwrap();
        assert_eq!(out, data);

        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("broken gzip"));
                }
                let n = out.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let (pump, mut reader) = pipe();
        let handle = std::thread::spawn(move || pump.run(Failing(BLOCK + 5)));
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("broken gzip"));
        handle.join().unwrap();

        // A reader that stops early lets the pump end.
        let (pump, mut reader) = pipe();
        let handle = std::thread::spawn(move || pump.run(io::repeat(1)));
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        drop(reader);
        handle.join().unwrap();
    }
}
