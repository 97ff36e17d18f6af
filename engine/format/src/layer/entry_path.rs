//! The rule every path in a layer must pass before unpack writes anything (rule (1) of
//! `ops::unpack`): relative to the root, without a `..` component. Here, apart from the store,
//! so that the fuzz targets reach it with the tar walker's output.

/// Refuses a path (or hardlink target) that is absolute or has a `..` component.
pub fn check_path(path: &[u8]) -> Result<(), &'static str> {
    if path.starts_with(b"/") {
        return Err("absolute path; paths in a layer must be relative to its root");
    }
    if path.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err("path has a `..` component, which could reach outside the root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        for bad in [
            &b"/etc/passwd"[..],
            b"..",
            b"a/../../b",
            b"a/..",
            b"//x",
            b"./../x",
        ] {
            assert!(
                check_path(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [&b"a/b"[..], b"./a", b"a/..b/c", b"...", b"", b"a//b/"] {
            assert!(
                check_path(good).is_ok(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
    }
}
