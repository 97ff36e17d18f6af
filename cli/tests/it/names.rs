//! Names reach the terminal escaped: an image name an older cairn let in (planted in the index
//! here) or a file name inside an image holding escape sequences, newlines or bidi controls is
//! printed by `images`, `diff`, `ls` and `stats` with those characters escaped; and such a
//! name cannot be created now.

use crate::helpers::{cairn, ok, store_with_demo_v1};
use cairn_engine::StoreWriter;
use cairn_sample::{LayerCompression, OciLayoutWriter, SampleEntry, SamplePlatform};

const HOSTILE: &str = "\x1b[2J\x1b]0;owned\x07evil\nname\u{202e}";

fn assert_escaped(out: &str) {
    assert!(
        !out.contains('\x1b') && !out.contains('\x07') && !out.contains('\u{202e}'),
        "{out:?}"
    );
    assert!(out.contains("\\u{1b}[2J"), "{out:?}");
}

#[test]
fn hostile_names_are_escaped_on_the_terminal_and_refused_as_new_names() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_demo_v1(tmp.path());

    // An image whose file name is hostile.
    let layout = tmp.path().join("files");
    let tar = cairn_sample::build_layer_tar(
        &[SampleEntry::File {
            path: HOSTILE.replace('\n', "-").into_bytes(),
            mode: 0o644,
            data: b"x".to_vec(),
            xattrs: vec![],
        }],
        1_700_000_000,
    )
    .unwrap();
    let platform = SamplePlatform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let mut writer = OciLayoutWriter::create(&layout).unwrap();
    writer
        .add_image(Some("t"), &platform, &[(tar, LayerCompression::Gzip)])
        .unwrap();
    writer.finish().unwrap();
    let source = format!("oci:{}:t", layout.display());
    ok(cairn(&store, &["convert", &source, "--name", "files"]));
    for args in [&["ls", "files", "/"][..], &["ls", "-l", "files", "/"][..]] {
        let out = ok(cairn(&store, args));
        assert!(
            !out.contains('\x1b') && out.contains("\\u{1b}[2J"),
            "{out:?}"
        );
    }

    // A name no command creates any more, as an older cairn could have left it.
    let refused = cairn(&store, &["convert", &source, "--name", HOSTILE]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not allowed"));
    let writer = StoreWriter::open(&store).unwrap();
    let id = writer.store().resolve("app:v1").unwrap();
    cairn_engine::testing::plant_name(&writer, HOSTILE, id).unwrap();
    drop(writer);
    assert_escaped(&ok(cairn(&store, &["images"])));
    assert_escaped(&ok(cairn(&store, &["diff", "app:v1", HOSTILE])));
    assert_escaped(&ok(cairn(&store, &["stats", "app:v1", HOSTILE])));
}
