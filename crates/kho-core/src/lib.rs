//! kho's domain core: the types every other crate speaks, the stable error codes, the one
//! authorisation policy, Table Schema checks and the audit hash chain. It knows nothing of HTTP,
//! SQL or files.

pub mod audit;
pub mod error;
pub mod feedback;
#[doc(hidden)]
pub mod fuzz;
pub mod license;
pub mod masking;
pub mod model;
pub mod policy;
pub mod quality;
pub mod sector;
pub mod table_schema;
pub mod text;

pub use error::{Detail, Error, ErrorCode, Result};
