//! Path resolution inside an image, the way a shell in the container resolves a path: component
//! by component, following symlinks (an absolute target starts again at the image's root, a
//! relative one at the directory holding the link), `..` going up one directory and never above
//! the root. Nothing outside the image is ever reached: the root is the image's.

use super::{Found, LayerPaths, MergedView};
use crate::error::{Error, Result};
use crate::layer::EntryKind;
use crate::view::tree::join;

/// Symlinks followed while resolving one path before it is refused (Linux's limit).
pub(crate) const MAX_SYMLINKS: usize = 40;

impl<L: LayerPaths> MergedView<'_, L> {
    /// The normalized path `path` leads to, with symlinks followed (the last component's only
    /// if `follow_last`); it may name nothing visible. `link_target(layer, entry)` gives a
    /// symlink's target. A path through a missing directory or a non-directory resolves to
    /// `None`; more than `MAX_SYMLINKS` symlinks is an error naming the path.
    pub(crate) fn resolve(
        &self,
        path: &[u8],
        follow_last: bool,
        link_target: impl Fn(usize, u64) -> Result<Option<Vec<u8>>>,
    ) -> Result<Option<Vec<u8>>> {
        // Components still to walk, last first.
        let mut todo: Vec<Vec<u8>> = components(path).rev().collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name == b".." {
                done.pop();
                continue;
            }
            let here = join(&done.join(&b'/'), &name);
            let found = self.get(&here)?;
            let is_last = todo.is_empty();
            let symlink = match &found {
                Some(Found::Entry(layer, record)) if record.kind == Some(EntryKind::Symlink) => {
                    Some((layer, record))
                }
                _ => None,
            }
            .filter(|_| !is_last || follow_last);
            if let Some((layer, record)) = symlink {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::Usage(format!(
                        "{}: more than {MAX_SYMLINKS} symlinks on the way (a loop?)",
                        String::from_utf8_lossy(path)
                    )));
                }
                let target = match record.entry {
                    Some(entry) => link_target(*layer, entry)?.unwrap_or_default(),
                    None => Vec::new(),
                };
                if target.first() == Some(&b'/') {
                    done.clear();
                }
                todo.extend(components(&target).rev());
                continue;
            }
            if !is_last && !found.is_some_and(|f| f.is_dir()) {
                return Ok(None);
            }
            done.push(name);
        }
        Ok(Some(done.join(&b'/')))
    }
}

/// The non-empty, non-`.` components of `path`.
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}
