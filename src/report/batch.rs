//! `batch.csv` and `batch.md`: one row per experiment variant of a `runner batch`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tables::{read_table, table};
use super::text::{for_markdown_cell, for_markdown_code};
use super::{ReportError, Summary};

/// Header line of `batch.csv`.
pub const BATCH_HEADER: &str = "index,experiment,variant,overrides,status,seed,params,epochs,train_images,test_acc,best_test_acc,best_epoch,final_test_loss,seconds,train_images_per_sec,run_dir,flags,selected_on,best_val_acc,stop_reason";

/// File name of the batch table.
pub const BATCH_CSV: &str = "batch.csv";
/// File name of the batch table as markdown.
pub const BATCH_MD: &str = "batch.md";

/// One row of `batch.csv`: one variant and how its run went. The numbers are empty for a
/// failed run; `flags` is a finished run's `flags` from its `summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// Position of the variant in the whole batch (before sharding), from 0.
    pub index: usize,
    /// Experiment name.
    pub experiment: String,
    /// Sweep variant name, empty for a file without `[sweep]`.
    pub variant: String,
    /// Every override applied, space-separated `key.path=value`.
    pub overrides: String,
    /// `ok`, or `failed: <reason>`.
    pub status: String,
    /// Random seed.
    pub seed: Option<u64>,
    /// Trainable parameters.
    pub params: Option<u64>,
    /// Epochs trained.
    pub epochs: Option<usize>,
    /// Training images per epoch.
    pub train_images: Option<u64>,
    /// Final test accuracy, percent.
    pub test_acc: Option<f64>,
    /// Best test accuracy, percent.
    pub best_test_acc: Option<f64>,
    /// Epoch of the best test accuracy.
    pub best_epoch: Option<usize>,
    /// Test loss after the last epoch.
    pub final_test_loss: Option<f64>,
    /// Wall-clock seconds of the run.
    pub seconds: Option<f64>,
    /// Mean training throughput.
    pub train_images_per_sec: Option<f64>,
    /// The run's folder, relative to the batch's output folder.
    pub run_dir: String,
    /// Why a finished run's numbers are not a result, as in `summary.csv`: empty when all is
    /// well, else `;`-separated names of [`super::ResultFlag`] (`non_finite_train_loss`,
    /// `non_finite_test_loss`, `non_finite_test_acc`). Empty for a failed run, and when read
    /// from a file written before the column existed.
    #[serde(default)]
    pub flags: String,
    /// The split the best epoch was chosen on, as in `summary.csv`: `val` or `test`. Empty for
    /// a failed run, and when read from a file written before the column existed.
    #[serde(default)]
    pub selected_on: String,
    /// Validation accuracy of the best epoch, percent, when the run held out a validation
    /// split (`data.val_split`).
    #[serde(default)]
    pub best_val_acc: Option<f64>,
    /// Why training stopped before its last epoch (`early_stopping`), empty when it ran them all.
    #[serde(default)]
    pub stop_reason: String,
}

impl BatchRow {
    /// A finished run's row.
    pub fn done(
        index: usize,
        variant: &str,
        overrides: &[String],
        s: &Summary,
        run_dir: &str,
    ) -> Self {
        BatchRow {
            index,
            experiment: s.experiment.clone(),
            variant: variant.to_string(),
            overrides: overrides.join(" "),
            status: "ok".into(),
            seed: Some(s.seed),
            params: Some(s.params),
            epochs: Some(s.epochs),
            train_images: Some(s.train_images),
            test_acc: Some(s.test_acc),
            best_test_acc: Some(s.best_test_acc),
            best_epoch: Some(s.best_epoch),
            final_test_loss: Some(s.final_test_loss),
            seconds: Some(s.seconds),
            train_images_per_sec: Some(s.train_images_per_sec),
            run_dir: run_dir.to_string(),
            flags: s.flags.clone(),
            selected_on: s.selected_on.clone(),
            best_val_acc: s.best_val_acc,
            stop_reason: s.stop_reason.clone(),
        }
    }

    /// A failed run's row.
    pub fn failed(
        index: usize,
        experiment: &str,
        variant: &str,
        overrides: &[String],
        reason: &str,
    ) -> Self {
        BatchRow {
            index,
            experiment: experiment.to_string(),
            variant: variant.to_string(),
            overrides: overrides.join(" "),
            status: format!("failed: {}", reason.replace(['\n', '\r'], " ")),
            seed: None,
            params: None,
            epochs: None,
            train_images: None,
            test_acc: None,
            best_test_acc: None,
            best_epoch: None,
            final_test_loss: None,
            seconds: None,
            train_images_per_sec: None,
            run_dir: String::new(),
            flags: String::new(),
            selected_on: String::new(),
            best_val_acc: None,
            stop_reason: String::new(),
        }
    }

    /// The row of a variant that has a run folder but no result yet: `status` is `running`
    /// (another process is training it) or `interrupted`.
    pub fn unfinished(
        index: usize,
        experiment: &str,
        variant: &str,
        overrides: &[String],
        status: &str,
        run_dir: &str,
    ) -> Self {
        BatchRow {
            status: status.to_string(),
            run_dir: run_dir.to_string(),
            ..BatchRow::failed(index, experiment, variant, overrides, "")
        }
    }

    /// `experiment` or `experiment [variant]`.
    pub fn label(&self) -> String {
        if self.variant.is_empty() {
            self.experiment.clone()
        } else {
            format!("{} [{}]", self.experiment, self.variant)
        }
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or(String::new(), f)
}

/// The full text of `batch.csv` (same number formats as `summary.csv`).
pub fn batch_csv(rows: &[BatchRow]) -> String {
    table(
        BATCH_HEADER,
        rows.iter().map(|r| {
            vec![
                r.index.to_string(),
                r.experiment.clone(),
                r.variant.clone(),
                r.overrides.clone(),
                r.status.clone(),
                opt(r.seed, |x| x.to_string()),
                opt(r.params, |x| x.to_string()),
                opt(r.epochs, |x| x.to_string()),
                opt(r.train_images, |x| x.to_string()),
                opt(r.test_acc, |x| format!("{x:.4}")),
                opt(r.best_test_acc, |x| format!("{x:.4}")),
                opt(r.best_epoch, |x| x.to_string()),
                opt(r.final_test_loss, |x| format!("{x:.6}")),
                opt(r.seconds, |x| format!("{x:.3}")),
                opt(r.train_images_per_sec, |x| format!("{x:.1}")),
                r.run_dir.clone(),
                r.flags.clone(),
                r.selected_on.clone(),
                opt(r.best_val_acc, |x| format!("{x:.4}")),
                r.stop_reason.clone(),
            ]
        }),
    )
}

/// Reads back a `batch.csv`.
pub fn read_batch(path: &Path) -> Result<Vec<BatchRow>, ReportError> {
    read_table(path, BATCH_HEADER)
}

/// `batch.md`: the same rows as a markdown table, ready to paste into a pull request. Names,
/// statuses and flags are cut and escaped for a cell ([`for_markdown_cell`]); variants are code
/// spans ([`for_markdown_code`]). The full texts are in `batch.csv`.
pub fn batch_md(rows: &[BatchRow]) -> String {
    let mut out = String::from(
        "| # | experiment | variant | params | test acc (%) | best (%) @ epoch | epochs | seconds | train img/s | flags |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let thousands = |n: u64| crate::graph::summary::thousands(n);
    for r in rows {
        let flags = super::flag_names(&r.flags)
            .map(|f| format!("**{}**", for_markdown_cell(f)))
            .collect::<Vec<_>>()
            .join(" ");
        let cells = if r.status == "ok" {
            [
                opt(r.params, thousands),
                opt(r.test_acc, |x| format!("{x:.2}")),
                match (r.best_test_acc, r.best_epoch, r.best_val_acc) {
                    (Some(a), Some(e), Some(v)) if r.selected_on == "val" => {
                        format!("{a:.2} @ {e} (val {v:.2})")
                    }
                    (Some(a), Some(e), _) => format!("{a:.2} @ {e}"),
                    _ => String::new(),
                },
                opt(r.epochs, |x| x.to_string()),
                opt(r.seconds, |x| format!("{x:.1}")),
                opt(r.train_images_per_sec, |x| format!("{x:.0}")),
            ]
        } else {
            [
                String::new(),
                for_markdown_cell(&r.status).into_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {flags} |",
            r.index,
            for_markdown_cell(&r.experiment),
            if r.variant.is_empty() {
                "-".to_string()
            } else {
                for_markdown_code(&r.variant)
            },
            cells.join(" | ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            experiment: "mnist_cnn".into(),
            run_id: "20261127-000000".into(),
            seed: 1,
            device: "cpu".into(),
            params: 6422,
            epochs: 1,
            train_images: 60000,
            test_acc: 94.46,
            best_test_acc: 94.46,
            best_epoch: 1,
            final_train_loss: 0.3,
            final_test_loss: 0.18,
            seconds: 61.25,
            train_images_per_sec: 930.4,
            flags: String::new(),
            selected_on: "test".into(),
            best_val_acc: None,
            stop_reason: String::new(),
        }
    }

    #[test]
    fn batch_csv_round_trips_ok_and_failed_rows() {
        let rows = vec![
            BatchRow::done(
                0,
                "shuffle=true",
                &["data.shuffle=true".into()],
                &summary(),
                "mnist_cnn/shuffle=true/20261127-000000",
            ),
            BatchRow::failed(
                1,
                "mnist_cnn",
                "shuffle=false",
                &[],
                "loss became NaN, at step 2",
            ),
            BatchRow::done(
                2,
                "std=tiny",
                &[],
                &Summary {
                    final_test_loss: f64::INFINITY,
                    flags: "non_finite_test_loss".into(),
                    ..summary()
                },
                "mnist_cnn/std=tiny/20261127-000001",
            ),
        ];
        assert_eq!(rows[0].flags, "", "an unflagged run");
        assert_eq!(
            rows[2].flags, "non_finite_test_loss",
            "done() copies the flags"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BATCH_CSV);
        std::fs::write(&path, batch_csv(&rows)).unwrap();
        let back = read_batch(&path).unwrap();
        assert_eq!(back, rows);
        let md = batch_md(&back);
        assert!(
            md.contains("| 0 | mnist_cnn | `shuffle=true` | 6,422 | 94.46 | 94.46 @ 1 |"),
            "{md}"
        );
        assert!(md.contains("failed: loss became NaN"), "{md}");
        assert!(
            md.contains("| 2 | mnist_cnn | `std=tiny` | 6,422 | 94.46 | 94.46 @ 1 | 1 | 61.2 | 930 | **non_finite_test_loss** |"),
            "{md}"
        );
        let csv = batch_csv(&back);
        assert!(
            csv.lines().nth(3).is_some_and(|l| l.ends_with(
                ",inf,61.250,930.4,mnist_cnn/std=tiny/20261127-000001,non_finite_test_loss,test,,"
            )),
            "{csv}"
        );
    }

    #[test]
    fn a_run_selected_on_validation_keeps_its_split_and_stop_in_the_table() {
        let s = Summary {
            selected_on: "val".into(),
            best_val_acc: Some(95.125),
            best_test_acc: 94.0,
            best_epoch: 3,
            stop_reason: "early_stopping: val_acc did not improve for 2 epochs".into(),
            ..summary()
        };
        let rows = vec![BatchRow::done(0, "", &[], &s, "mnist_cnn/20261127-000000")];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BATCH_CSV);
        let csv = batch_csv(&rows);
        assert!(
            csv.lines().nth(1).is_some_and(|l| l
                .ends_with(",val,95.1250,early_stopping: val_acc did not improve for 2 epochs")),
            "{csv}"
        );
        std::fs::write(&path, csv).unwrap();
        assert_eq!(read_batch(&path).unwrap(), rows);
        let md = batch_md(&rows);
        assert!(md.contains("| 94.00 @ 3 (val 95.12) |"), "{md}");
    }

    #[test]
    fn a_batch_table_from_before_the_flags_column_still_reads() {
        // Written before `flags` existed (results/baselines/README.md says by which commands).
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baselines/ablations/q1.batch.csv");
        let rows = read_batch(&path).expect("the q1 baseline reads");
        assert!(!rows.is_empty());
        assert!(
            rows.iter().all(|r| r.flags.is_empty()),
            "no column, no flags"
        );
        assert_eq!(rows[0].test_acc, Some(94.46));
        assert!(rows
            .iter()
            .all(|r| r.selected_on.is_empty() && r.best_val_acc.is_none()));
        assert!(BATCH_HEADER.contains(",run_dir,flags,selected_on,best_val_acc,stop_reason"));
    }
}
