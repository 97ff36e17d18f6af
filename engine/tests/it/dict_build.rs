//! `dict build`: a dictionary image of the chunks K images share; converting an image against
//! it reuses exactly what its coverage figure said.

use crate::helpers::*;
use cairn_engine::{NoProgress, SharedWriter, Store};

#[test]
fn a_dictionary_of_shared_chunks_is_reused_as_its_coverage_says() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    let v2 = format!("oci:{}:v2", v2.display());
    {
        let store = new_store(tmp.path());
        convert(&store, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();
        convert(&store, &v2, "v2", &[]).unwrap();
    }
    let root = tmp.path().join("store");
    let writer = SharedWriter::open(&root).unwrap();
    let names = ["v1".to_string(), "v2".to_string()];
    let report = writer.build_dict(&names, 2, "dict", &NoProgress).unwrap();
    // A writer reads the index as it was when it opened: read the new image through a reader.
    let store = Store::open(&root).unwrap();
    let shared = store.diff("v1", "v2", 0).unwrap().shared_bytes;
    assert_eq!(report.bytes, shared, "{report:?}");
    let v2_coverage = report.coverage.iter().find(|c| c.image == "v2").unwrap();
    assert_eq!(v2_coverage.covered_bytes, shared);
    // The dictionary reads back like any image, and stored no chunk of its own.
    assert_eq!(export_all(&store, "dict").len(), 1);
    assert_eq!(
        store
            .image_record(&store.resolve("dict").unwrap())
            .unwrap()
            .new_chunks,
        0
    );

    // v2 again, against the dictionary only: it reuses what the coverage said, and stores the
    // rest anew.
    let mut options = options(&v2, "v2-again", &["dict"]);
    options.delta = Some(cairn_engine::DeltaMode::Off);
    let again = writer.convert(&options, &NoProgress).unwrap();
    let totals = &again.images[0].totals;
    let store = Store::open(&root).unwrap();
    assert_eq!(
        store.diff("dict", "v2-again", 0).unwrap().shared_bytes,
        v2_coverage.covered_bytes
    );
    assert_eq!(
        totals.new.bytes,
        v2_coverage.unique_bytes - v2_coverage.covered_bytes
    );
    assert!(writer.build_dict(&names, 3, "x", &NoProgress).is_err());
}
