//! Reading uploaded tables and checking them, row by row, against a resource's Table Schema.
//!
//! Nothing here knows about HTTP or storage: the caller hands over a file and a schema (with
//! its dictionary terms resolved) plus the reference sets the rules need (administrative codes,
//! the 2025 crosswalk), and gets back a report that names every problem by row, column, value
//! and rule, in Vietnamese and English.

pub mod convert;
pub mod infer;
pub mod read;
pub mod report;
pub mod stage;
pub mod validate;
pub mod vn;

pub use read::{CsvSource, ReadError};

/// FNV-1a, 64 bits: a stable, fast hash for keys and rows (the standard library's hasher may
/// change between releases, and versions are compared across releases).
pub(crate) fn fnv1a(parts: impl IntoIterator<Item = impl AsRef<[u8]>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.as_ref() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0x1f;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
pub use report::{Problem, Report, RuleCount};
pub use stage::{Diff, KeyIndex, Staged};
pub use validate::{Cell, References, Validator};
