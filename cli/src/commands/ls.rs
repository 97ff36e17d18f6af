//! `cairn ls`: a directory of an image's merged view, from the bootstrap alone.

use crate::args::{Cli, LsArgs};
use crate::output::escape;
use cairn_engine::{ListEntry, Store};
use std::io::Write;

pub fn run(cli: &Cli, args: &LsArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store)?;
    let mut out = super::buffered_stdout();
    if !args.long && !args.json {
        // Names only: the path index alone answers, no entry is decoded.
        for entry in store.ls_names(&args.name, &args.path, crate::args::follow(args.no_follow))? {
            writeln!(out, "{}", escape(base_name(&entry.path)))?;
        }
        out.flush()?;
        return Ok(());
    }
    let entries = store.ls(&args.name, &args.path, crate::args::follow(args.no_follow))?;
    if args.json {
        return super::print_json(&entries);
    }
    for entry in &entries {
        writeln!(out, "{}", long_line(entry, &escape(base_name(&entry.path))))?;
    }
    out.flush()?;
    Ok(())
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn long_line(e: &ListEntry, name: &str) -> String {
    let type_char = match e.kind {
        "directory" => 'd',
        "symlink" => 'l',
        "hardlink" => 'h',
        "character device" => 'c',
        "block device" => 'b',
        "fifo" => 'p',
        _ => '-',
    };
    let mut line = format!(
        "{type_char}{} {:>5} {:>5} {:>10} {} {name}",
        mode_string(e.mode),
        e.uid,
        e.gid,
        e.size,
        e.mtime
    );
    if let Some(target) = &e.link_target {
        line += &format!(" -> {}", escape(target));
    }
    line
}

/// `rwxr-xr-x`, with setuid/setgid/sticky shown as `ls` does.
fn mode_string(mode: u32) -> String {
    let mut out = String::new();
    for (shift, special, special_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => special_char,
            (false, true) => special_char.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mode_string;

    #[test]
    fn modes() {
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
        assert_eq!(mode_string(0o2644), "rw-r-Sr--");
    }
}
