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
    let mut h = Fnv::default();
    for part in parts {
        h.write(part.as_ref());
        h.write(&[0x1f]);
    }
    h.0
}

/// Maps keyed by a value that is already a 64-bit hash (FNV-1a of a key or row): hashing it
/// again with SipHash only costs time, so the key is just mixed (splitmix64's finalizer, which
/// spreads FNV's weaker low bits over the whole word for the table's bucket choice).
pub type HashIndex<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<Premixed>>;

#[derive(Default, Clone, Copy)]
pub struct Premixed(u64);

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are stored; this path exists for completeness.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        let mut z = v ^ (v >> 30);
        z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^= z >> 27;
        z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
}

/// The FNV-1a state, fed piece by piece.
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
pub use report::{Problem, Report, RuleCount};
pub use stage::{Diff, KeyIndex, Staged};
pub use validate::{Cell, ForeignKeySet, References, Validator};
