//! Reading uploaded tables and checking them, row by row, against a resource's Table Schema.
//!
//! Nothing here knows about HTTP or storage: the caller hands over a file and a schema (with
//! its dictionary terms resolved) plus the reference sets the rules need (administrative codes,
//! the 2025 crosswalk), and gets back a report that names every problem by row, column, value
//! and rule, in Vietnamese and English.

pub mod changes;
pub mod convert;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod hostile;
pub mod infer;
pub mod keys;
pub mod layout;
pub mod legacy;
mod outliers;
pub mod read;
pub mod report;
pub mod sheet;
pub mod stage;
pub mod validate;
pub mod vn;

pub use read::{CsvSource, ReadError};

/// XXH3 (64 bits) of some bytes: a published algorithm that does not change between releases
/// (unlike the standard library's hasher), which matters because the key hashes kept beside a
/// version are compared with those of later versions; and fast on short inputs such as cells.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot(bytes)
}

/// The hash of several texts (a key of several fields), each followed by a separator that no
/// cell holds, so that ("ab", "c") and ("a", "bc") differ.
pub(crate) fn hash_parts(parts: &[&str]) -> u64 {
    if let [one] = parts {
        return hash64(one.as_bytes());
    }
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        buf.extend_from_slice(p.as_bytes());
        buf.push(0x1f);
    }
    hash64(&buf)
}

/// A hasher for sets of values that are already 64-bit hashes: hashing them again with SipHash
/// only costs time, so the value is just mixed (splitmix64's finalizer).
#[derive(Default, Clone, Copy)]
pub struct Premixed(u64);

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are stored; this path exists for completeness.
        self.write_u64(hash64(bytes) ^ self.0);
    }

    fn write_u64(&mut self, v: u64) {
        let mut z = v ^ (v >> 30);
        z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^= z >> 27;
        z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
}

pub use keys::{Diff, KeySummary};
pub use report::{Note, Problem, Report, RuleCount};
pub use stage::Staged;
pub use validate::{Cell, ForeignKeySet, References, Validator};
