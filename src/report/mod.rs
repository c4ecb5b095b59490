//! Reporting: the run directory, the CSV files a person, a plot and CI read, Chrome traces and
//! progress output.
//!
//! A run writes `results/<experiment>/<run-id>/`:
//!
//! | file                | written by                                  |
//! |---------------------|---------------------------------------------|
//! | `config.toml`       | [`RunDir::write_config`]                     |
//! | `metrics.csv`       | [`RunDir::write_metrics`], after every epoch |
//! | `summary.csv`       | [`RunDir::write_summary`]                    |
//! | `per_class.csv`     | [`RunDir::write_per_class`]                  |
//! | `confusion.csv`     | [`RunDir::write_confusion`] (columns: [`CONFUSION_HEADER`]) |
//! | `trace.json`        | [`trace::init_tracing`]'s guard              |
//! | `model.safetensors` | the caller, through [`write_atomic`]         |
//! | `status.json`       | [`RunStatus::write`]: running, finished, interrupted or failed |
//! | `.lock`             | [`FolderLock`], held by the process writing the folder |
//! | `checkpoints/`      | [`crate::train::checkpoint`]: `last.json`, `best.json` and their tensors |
//! | `events.out.tfevents.*` | [`tensorboard::EventLog`]: TensorBoard's scalars, one file per session (appended as the run goes) |
//! | `curves.png`, `curves.svg`, `confusion.png`, `predictions.png` | [`crate::plot::write_run_plots`] |
//!
//! Every file but the event files is replaced atomically (temporary file in the same directory,
//! fsync, rename), so an interrupted run never leaves a half-written file behind under its final
//! name. Event files grow by whole records; one cut short by a kill ends in a partial record,
//! which TensorBoard's readers take as the end of the file.
//!
//! `summary.csv` and `batch.csv` end with a `flags` column ([`ResultFlags`]): empty, or why a
//! finished run's numbers are not a result (a non-finite final loss, say).

use std::path::PathBuf;

mod atomic;
pub mod batch;
pub mod diff;
mod flags;
pub mod progress;
mod run_dir;
pub mod status;
mod tables;
pub mod tensorboard;
pub mod text;
pub mod trace;

pub use atomic::{write_atomic, write_atomic_unsynced};
pub use status::{is_locked, FolderLock, RunState, RunStatus, LOCK_FILE, STATUS_FILE};

/// Removes every temporary file this process has open and exits with `code` at once (the
/// abort of a second signal; see [`crate::interrupt`]).
pub fn abort(code: i32) -> ! {
    atomic::remove_temps_and_exit(code)
}
pub use batch::{batch_csv, batch_md, read_batch, BatchRow, BATCH_CSV, BATCH_HEADER, BATCH_MD};
pub use flags::{flag_names, ResultFlag, ResultFlags, FLAGS_COLUMN};
pub use progress::{epoch_line, Progress};
pub use run_dir::{
    average_model_file, RunDir, CONFIG_FILE, CONFUSION_FILE, METRICS_FILE, MODEL_FILE,
    PER_CLASS_FILE, SUMMARY_FILE, TRACE_FILE,
};
pub use tables::{
    accuracy_cell, confusion_csv, loss_cell, metrics_cells, metrics_csv, per_class_csv,
    read_metrics, read_summary, summary_csv, ClassAccuracy, EpochMetrics, Summary,
    CONFUSION_HEADER, METRICS_HEADER, PER_CLASS_HEADER, SUMMARY_HEADER, TABLE_ROWS,
};
pub use trace::{init_tracing, TraceGuard};

/// Everything that can go wrong while writing or reading a run's results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory (or one of its parents) could not be created.
    #[error("cannot create run directory {}: {source}", path.display())]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The run directory exists but a probe file could not be written to it.
    #[error("run directory {} is not writable: {source}", path.display())]
    NotWritable {
        /// The directory that refused the probe.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The experiment name cannot be used as a single folder name.
    #[error("experiment name {name:?} cannot be used as a folder name (it must be one non-empty path component)")]
    BadExperimentName {
        /// The rejected name.
        name: String,
    },
    /// A file could not be written (or its temporary file could not be renamed into place).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file that was being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file could not be opened or read in full ([`crate::bounded`]: not a regular file, too
    /// large, a symlink loop, ...).
    #[error(transparent)]
    ReadFile(#[from] crate::bounded::ReadError),
    /// A CSV file could not be parsed.
    #[error("cannot parse {}: {source}", path.display())]
    Csv {
        /// The file that was being parsed.
        path: PathBuf,
        /// The underlying error.
        source: csv::Error,
    },
    /// A CSV file with more rows than runner reads from one.
    #[error("{} has more than {limit} rows, the most runner reads from such a table", path.display())]
    TooManyRows {
        /// The file.
        path: PathBuf,
        /// The most rows read.
        limit: usize,
    },
    /// A CSV file's header is not the one this version writes.
    #[error("{} has header {found:?}, expected {expected:?}", path.display())]
    Header {
        /// The file whose header did not match.
        path: PathBuf,
        /// The header line found.
        found: String,
        /// The header line expected.
        expected: &'static str,
    },
    /// `summary.csv` must hold exactly one data row.
    #[error("{} has {rows} data rows, expected exactly 1", path.display())]
    SummaryRows {
        /// The summary file.
        path: PathBuf,
        /// How many data rows it has.
        rows: usize,
    },
    /// A JSON file of runner's (a status, a checkpoint manifest) could not be parsed.
    #[error("cannot parse {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A folder's lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The global tracing subscriber was already installed in this process.
    #[error("cannot install the tracing subscriber: {message}")]
    TracingInit {
        /// Why installing failed.
        message: String,
    },
}
