#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_format::fuzzing::artifact_config(data);
});
