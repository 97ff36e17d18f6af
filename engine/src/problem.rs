//! `Problem`: one thing found wrong, as `verify` reports it and `verify --repair-index` lists
//! what it could not recover (store layer vocabulary, shared by both commands).

use serde::Serialize;

/// One thing found wrong: the object (blob and offset, image and path, index entry) and what.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub object: String,
    pub detail: String,
}
