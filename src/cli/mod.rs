//! Command-line verbs, one file each. `main.rs` only parses arguments and maps results to exit codes.

pub mod batch;
pub mod bench;
pub mod check;
pub mod device_check;
pub mod diff;
pub mod eval;
pub mod export_images;
pub mod out;
pub mod plot;
pub mod predict;
pub mod run;
pub mod schema;
pub mod show_data;
mod trained;

/// `--set KEY.PATH=VALUE`, shared by every verb that reads experiment files.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SetArgs {
    /// Override a value of the experiment, typed as in the file: `--set train.optimizer.lr=0.1`,
    /// `--set data.shuffle=false`, `--set model.layers.0.out=8` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
}

/// The `--set` overrides of a verb, followed by its own flags that set a value of the
/// experiment (`--epochs`, `--train-limit`) written as the `--set` they stand for: every
/// override is applied to the file before it is checked, so values derived from it (a cosine
/// schedule's `t_max` from the epochs) follow it.
pub fn overrides(sets: &[String], epochs: Option<u64>, train_limit: Option<u64>) -> Vec<String> {
    let mut all = sets.to_vec();
    all.extend(epochs.map(|e| format!("train.epochs={e}")));
    all.extend(train_limit.map(|l| format!("data.train_limit={l}")));
    all
}

/// Exit codes shared by every verb.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A comparison found a regression (`runner diff`).
    pub const REGRESSION: i32 = 1;
    /// Invalid input or a failed run.
    pub const ERROR: i32 = 2;
}
