//! The rule every image name obeys, checked on every path that creates or renames one (convert
//! and registry pull, store-format pull and bundle import, `dict build`, `plan --emit-*`
//! references, containerd snapshot names): a name reaches terminals (`cairn images`), mount
//! directories (`mount --all` makes one directory per name) and other tools, so it holds no
//! control or invisible characters and no path step that could climb or confuse.

use crate::error::{Error, Result};

/// Longest image name, in bytes.
pub const MAX_IMAGE_NAME: usize = 255;

/// Checks an image name: 1 to `MAX_IMAGE_NAME` bytes of printable characters (no control
/// character, C0 or C1, no DEL, no invisible formatting character such as a bidi override or a
/// zero-width space); not starting or ending with `/`, and no `/`-separated step that is empty,
/// `.` or `..`. `py:v1`, `library/py:3.12@linux/arm64/v8` pass; `..`, `../../x`, `/abs`,
/// `a//b` and `a\nb` do not. The error quotes the name with its characters escaped.
pub fn check_image_name(name: &str) -> Result<()> {
    let refuse = |why: &str| {
        let shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
        let more = if name.chars().count() > 64 { "..." } else { "" };
        Err(Error::Usage(format!(
            "image name \"{shown}\"{more} is not allowed: {why} (a name is 1 to \
             {MAX_IMAGE_NAME} bytes of printable characters, with no empty, `.` or `..` step \
             between slashes)"
        )))
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_IMAGE_NAME {
        return refuse(&format!("it is {} bytes long", name.len()));
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || is_invisible(c)) {
        return refuse(&format!("it holds the character {:?}", c));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return refuse("it starts or ends with a slash");
    }
    if name.split('/').any(|step| matches!(step, "" | "." | "..")) {
        return refuse("it has an empty, `.` or `..` step");
    }
    Ok(())
}

/// Characters that print as nothing or reorder what follows: zero-width ones, bidi controls,
/// the byte-order mark, and other Unicode format characters a terminal does not show. Image
/// names may not hold them; printers of other text (file names in images) escape them.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

#[cfg(test)]
mod tests {
    use super::check_image_name;

    #[test]
    fn names() {
        for good in [
            "py:v1",
            "library/py:3.12@linux/arm64/v8",
            "a..b",
            "x.y",
            "é",
        ] {
            assert!(check_image_name(good).is_ok(), "{good:?}");
        }
        let long = "a".repeat(4096);
        for bad in [
            "",
            "a\0b",
            "a\nb",
            "\x1b[2J",
            "a\u{9b}b",
            "a\u{202e}b",
            "..",
            ".",
            "../../x",
            "a/../b",
            "/abs",
            "a/",
            "a//b",
            &long,
        ] {
            let e = check_image_name(bad).unwrap_err().to_string();
            assert!(!e.contains('\n') && !e.contains('\x1b'), "{e}");
        }
    }
}
