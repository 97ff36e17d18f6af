//! Human output: sizes with units, counts with separators, aligned tables, and names and
//! paths escaped for a terminal (`escape`: every name or path from a store or an image goes
//! through it before it is printed as text; JSON and CSV output carry them as data).

use cairn_engine::is_invisible;
use std::borrow::Cow;

/// `text` safe to print to a terminal: control characters (C0, DEL, C1) and invisible
/// formatting characters (bidi overrides, zero-width ones) are shown escaped, as Rust escapes
/// them (`\n`, `\u{1b}`), so a hostile image or file name cannot move the cursor, rewrite
/// the screen or hide text; everything else is printed as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    let hostile = |c: char| c.is_control() || is_invisible(c);
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `74.3 MB` (SI units, as `du --si` and the dataset tables use).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1e3 {
        format!("{n} B")
    } else if n < 1e6 {
        format!("{:.1} KB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.2} GB", n / 1e9)
    }
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Human output fits this many columns.
pub const WIDTH: usize = 80;

/// `prefix` then `text`, wrapped at `WIDTH` columns between words; the lines after the first
/// indented as wide as `prefix`, so a labelled field reads as one block. A word wider than the
/// line (a digest, a path) goes on a line of its own.
pub fn wrap(prefix: &str, text: &str) -> String {
    let indent = prefix.chars().count();
    let mut out = prefix.to_string();
    let mut column = indent;
    // A unit stays with its number: "8.0 MB" is one word here.
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        let unit = word.trim_end_matches([',', ':', ';', ')', '.']);
        match words.last_mut() {
            Some(last) if ["B", "KB", "MB", "GB", "TB", "s"].contains(&unit) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    for (i, word) in words.iter().enumerate() {
        let width = word.chars().count();
        if i > 0 {
            if column + 1 + width > WIDTH && column > indent {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                column = indent;
            } else {
                out.push(' ');
                column += 1;
            }
        }
        out.push_str(word);
        column += width;
    }
    out
}

/// One `  label      text` line of a report (label in 10 columns), wrapped by `wrap`, with its
/// newline.
pub fn field(label: &str, text: &str) -> String {
    wrap(&format!("  {label:<10} "), text) + "\n"
}

/// Shortens `text` to at most `max` characters by eliding its middle.
pub fn shorten(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max || max < 5 {
        return text.to_string();
    }
    let keep = max - 3;
    let head: String = chars[..keep / 3].iter().collect();
    let tail: String = chars[chars.len() - (keep - keep / 3)..].iter().collect();
    format!("{head}...{tail}")
}

/// Shortens a path to at most `max` characters by eliding its start (`…`), since the end of a
/// path tells it apart; the cut is moved to a `/` when that keeps most of what fits.
pub fn shorten_path(path: &str, max: usize) -> String {
    let chars: Vec<char> = path.chars().collect();
    if chars.len() <= max || max < 2 {
        return path.to_string();
    }
    let mut tail = &chars[chars.len() - (max - 1)..];
    if let Some(slash) = tail.iter().position(|&c| c == '/') {
        if slash < tail.len() / 3 {
            tail = &tail[slash..];
        }
    }
    std::iter::once('…').chain(tail.iter().copied()).collect()
}

/// Left-aligns the first column, right-aligns the others; every cell escaped (`escape`).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(74_300_000), "74.3 MB");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(percent(1, 4), "25.0%");
        let long = "word ".repeat(30);
        let wrapped = field("chunks", long.trim_end());
        assert!(wrapped.lines().all(|l| l.len() <= WIDTH), "{wrapped}");
        assert!(wrapped.starts_with("  chunks     word word"), "{wrapped}");
        assert!(wrapped
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("             word"));
        assert_eq!(field("image", "abc"), "  image      abc\n");
        assert_eq!(shorten_path("usr/bin/x", 20), "usr/bin/x");
        assert_eq!(
            shorten_path("usr/lib/python3/site-packages/pkg/module_07.py", 24),
            "…/pkg/module_07.py"
        );
        assert_eq!(
            shorten_path("a/very_long_directory_name_here/module.py", 12),
            "…/module.py"
        );
        let sizes = wrap("  ", "12.5 MB, ".repeat(12).trim_end());
        assert!(sizes.lines().all(|l| l.ends_with("MB,")), "{sizes}");
        assert_eq!(
            table(&["a", "bb"], &[vec!["x".into(), "1".into()]]),
            "a  bb\nx   1"
        );
    }

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(escape("py:v1"), "py:v1");
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\x1b[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(escape("a\u{202e}b\0"), "a\\u{202e}b\\u{0}");
        assert_eq!(escape("é/x"), "é/x");
        let t = table(&["NAME"], &[vec!["\x1b]0;x\x07".into()]]);
        assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t}");
    }
}
