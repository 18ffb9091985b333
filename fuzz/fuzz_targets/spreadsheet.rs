//! See `kho_ingest::fuzzing::spreadsheet` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kho_ingest::fuzzing::spreadsheet(data));
