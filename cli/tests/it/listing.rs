//! What `stats`, `images` and `gc` say beyond their figures: the random-read line explains
//! itself, a `dict build` dictionary is marked as one, and gc names the images that keep what a
//! removed image shared.

use crate::helpers::{cairn, ok, store_with_demo_pair};

#[test]
fn images_mark_dictionaries_and_gc_names_who_keeps_shared_data() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_pair(tmp.path());
    let stats = ok(cairn(&store, &["stats"]));
    assert!(
        stats.contains("bytes decoded per byte read: reading one chunk")
            && stats.contains("cheaper random reads"),
        "{stats}"
    );

    ok(cairn(
        &store,
        &["dict", "build", "app:v1", "app:v2", "--name", "shared"],
    ));
    let images = ok(cairn(&store, &["images"]));
    let mark = |name: &str| {
        images
            .lines()
            .find(|l| l.starts_with(name))
            .is_some_and(|l| l.contains("(dictionary)"))
    };
    assert!(mark("shared") && !mark("app:v1"), "{images}");

    ok(cairn(&store, &["rm", "app:v1"]));
    // Joined back into one line: the sentence wraps at 80 columns.
    let gc = ok(cairn(&store, &["gc"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        gc.contains("what the removed images shared is kept: 2 named images still use it")
            && gc.contains("(app:v2, shared)"),
        "{gc}"
    );
}
