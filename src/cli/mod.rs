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
pub fn overrides(sets: &[String], epochs: Option<f64>, train_limit: Option<u64>) -> Vec<String> {
    let mut all = sets.to_vec();
    all.extend(epochs.map(|e| format!("train.epochs={e}")));
    all.extend(train_limit.map(|l| format!("data.train_limit={l}")));
    all
}

/// `--epochs N`: a positive number of epochs, whole or fractional, at most 1,000,000 (`1` is
/// written back as the integer `train.epochs=1`, `0.25` as a float).
pub fn parse_epochs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(e) if e.is_finite() && e > 0.0 && e <= 1_000_000.0 => Ok(e),
        Ok(_) => Err(format!("{s} is not in 0 < N <= 1000000")),
        Err(_) => Err(format!("{s:?} is not a number of epochs")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_may_be_fractional_and_are_written_back_as_the_file_would_have_them() {
        assert_eq!(parse_epochs("0.25"), Ok(0.25));
        assert_eq!(
            overrides(&[], Some(1.0), None),
            vec!["train.epochs=1".to_string()]
        );
        assert_eq!(
            overrides(&[], Some(0.25), Some(8)),
            vec![
                "train.epochs=0.25".to_string(),
                "data.train_limit=8".to_string()
            ]
        );
        for bad in ["0", "-1", "inf", "NaN", "1e7", "ten"] {
            assert!(parse_epochs(bad).is_err(), "{bad} accepted");
        }
    }
}
