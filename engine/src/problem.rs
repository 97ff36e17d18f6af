//! `Problem`: one thing found wrong, as `verify` reports it and `verify --repair-index` lists
//! what it could not recover (store layer vocabulary, shared by both commands).

use serde::Serialize;

/// One thing found wrong: the object (blob and offset, image and path, index entry) and what.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// The object at fault, e.g. `blob <id>`, `layer object <id>`, `image "py:v1"`.
    pub object: String,
    /// What is wrong with it.
    pub detail: String,
}
