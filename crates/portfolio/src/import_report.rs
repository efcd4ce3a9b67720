//! What a CSV import did or refused, row by row: a leaf shared by the
//! import (`transfer`) and the error it is refused with.
use serde::{Deserialize, Serialize};

/// Largest accepted upload.
pub const MAX_BYTES: usize = 256 * 1024;
/// Most rows accepted in one upload (CSV, JSON import, one create).
pub const MAX_ROWS: usize = 5000;

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// The offending column, when known.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What an import did or would have done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: usize,
    /// Rows applied (0 when any row was refused).
    pub applied: usize,
    /// Refused rows.
    pub errors: Vec<RowError>,
}
