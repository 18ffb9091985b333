//! Reading uploaded tables and checking them, row by row, against a resource's Table Schema.
//!
//! Nothing here knows about HTTP or storage: the caller hands over a file and a schema (with
//! its dictionary terms resolved) plus the reference sets the rules need (administrative codes,
//! the 2025 crosswalk), and gets back a report that names every problem by row, column, value
//! and rule, in Vietnamese and English.

pub mod infer;
pub mod read;
pub mod report;
pub mod stage;
pub mod validate;
pub mod vn;

pub use read::{CsvSource, ReadError};
pub use report::{Problem, Report, RuleCount};
pub use stage::{Diff, KeyIndex, Staged};
pub use validate::{Cell, References, Validator};
