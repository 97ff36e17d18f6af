//! `cairn export-layer`: one layer's exact uncompressed tar.

use crate::args::{Cli, ExportLayerArgs};
use crate::progress::Bar;
use anyhow::Context;
use cairn_engine::Store;
use std::io::{BufWriter, Write};

pub fn run(cli: &Cli, args: &ExportLayerArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let to_stdout = args.output.as_os_str() == "-";
    let bar = Bar::new(cli.quiet || to_stdout, &format!("layer {}", args.index));
    // A regular file is written beside its target and renamed, so a failed export leaves no
    // partial file; anything else (a device such as /dev/null, a fifo) is written in place.
    let special = std::fs::metadata(&args.output).is_ok_and(|m| !m.is_file());
    if !to_stdout && !special && !args.force && args.output.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} exists; give --force to replace it",
            args.output.display()
        );
    }
    let diff_id = if to_stdout {
        let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let d = store.export_layer(&args.name, args.index, &mut out, &bar)?;
        out.flush()?;
        d
    } else if special {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&args.output)
            .with_context(|| format!("open {}", args.output.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let d = store.export_layer(&args.name, args.index, &mut out, &bar)?;
        out.flush()?;
        d
    } else {
        let mut tmp_name = args.output.as_os_str().to_owned();
        tmp_name.push(".cairn-partial");
        let tmp = std::path::PathBuf::from(tmp_name);
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let result = store
            .export_layer(&args.name, args.index, &mut out, &bar)
            .map_err(anyhow::Error::from)
            .and_then(|d| {
                out.flush()?;
                Ok(d)
            });
        match result {
            Ok(d) => {
                std::fs::rename(&tmp, &args.output)
                    .with_context(|| format!("rename to {}", args.output.display()))?;
                d
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
    };
    if !to_stdout {
        eprintln!(
            "wrote {} (diff_id {diff_id} verified)",
            args.output.display()
        );
    }
    Ok(())
}
