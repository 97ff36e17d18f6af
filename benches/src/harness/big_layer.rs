//! A bare layer tar holding one large file, streamed to disk: blocks of pseudo-random bytes
//! alternating with blocks of repeated text, so that compression has work; optionally with
//! scattered bytes changed. `big-file`, `delta-pair` and `mount` convert it.

use anyhow::{Context, Result};
use cairn_sample::Rng;
use std::io::Write;
use std::path::Path;

const BLOCK: usize = 64 << 10;

/// A ustar header for one regular file.
fn ustar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// Writes the layer tar: `big.bin` of `size` bytes; with `changes` (per mille, seed), that many
/// bytes of every thousand are changed at scattered offsets (the rest is the same file).
pub fn write_layer(path: &Path, size: u64, changes: Option<(u32, u64)>) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let err = || format!("write {}", path.display());
    out.write_all(&ustar_header("big.bin", size))
        .with_context(err)?;
    let mut rng = Rng::xorshift64(0x2545_F491_4F6C_DD1D);
    let text: Vec<u8> = b"cairn big-file bench: a line of text that repeats. "
        .iter()
        .copied()
        .cycle()
        .take(BLOCK)
        .collect();
    let mut block = vec![0u8; BLOCK];
    let mut written = 0u64;
    let mut n = 0u64;
    let mut change_rng = Rng::xorshift64(changes.map_or(1, |(_, seed)| seed.max(1)));
    while written < size {
        let take = (size - written).min(BLOCK as u64) as usize;
        if n.is_multiple_of(2) {
            for byte in block.iter_mut() {
                *byte = rng.next_u64() as u8;
            }
        } else {
            block.copy_from_slice(&text);
        }
        if let Some((permille, _)) = changes {
            for _ in 0..BLOCK * permille as usize / 1000 {
                let at = change_rng.next_u64() as usize % BLOCK;
                block[at] = block[at].wrapping_add(1 + (change_rng.next_u64() % 255) as u8);
            }
        }
        out.write_all(&block[..take]).with_context(err)?;
        written += take as u64;
        n += 1;
    }
    let pad = (512 - size % 512) % 512;
    out.write_all(&vec![0u8; pad as usize + 1024])
        .with_context(err)?;
    out.flush().with_context(err)?;
    Ok(())
}
