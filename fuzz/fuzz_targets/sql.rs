//! See `kho_query::fuzzing::sql` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kho_query::fuzzing::sql(data));
