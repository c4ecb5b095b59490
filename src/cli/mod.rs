//! Command-line verbs, one file each. `main.rs` only parses arguments and maps results to exit codes.

pub mod check;
pub mod plot;
pub mod run;
pub mod schema;
pub mod show_data;

/// Exit codes shared by every verb.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A comparison found a regression (`runner diff`).
    pub const REGRESSION: i32 = 1;
    /// Invalid input or a failed run.
    pub const ERROR: i32 = 2;
}
