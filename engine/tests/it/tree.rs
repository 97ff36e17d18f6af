//! The tree comparison helpers live in cairn-testkit (the CLI's snapshotter tests use them too).

pub(crate) use cairn_testkit::tree::*;
