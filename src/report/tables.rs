//! The CSV tables of a run: their row types, their exact text, and reading them back.
//!
//! Numbers are written with fixed decimals so two identical runs give byte-identical files apart
//! from the time columns: losses 6 decimals, accuracies (percent) 4, `lr` in Rust's shortest
//! round-trip `{:e}` form, seconds 3, images per second 1.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ReportError;

/// Header line of `metrics.csv`.
/// `val_loss` and `val_acc` are empty without a validation split, `ema_test_loss` and
/// `ema_test_acc` without a moving average of the weights.
pub const METRICS_HEADER: &str = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,train_images_per_sec,eval_images_per_sec,val_loss,val_acc,ema_test_loss,ema_test_acc";
/// Header line of `summary.csv`.
pub const SUMMARY_HEADER: &str = "experiment,run_id,seed,device,params,epochs,train_images,test_acc,best_test_acc,best_epoch,final_train_loss,final_test_loss,seconds,train_images_per_sec,flags,selected_on,best_val_acc,stop_reason";
/// Header line of `per_class.csv`.
pub const PER_CLASS_HEADER: &str = "class,correct,total,accuracy";
/// Header of `confusion.csv`: one row per (true class, predicted class) pair, every pair of
/// classes in order (true class major) including those counted 0 times; `count` is the number
/// of images of `true_class` the model predicted as `predicted_class`.
pub const CONFUSION_HEADER: &str = "true_class,predicted_class,count";

/// One row of `metrics.csv`: what one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy in percent.
    pub train_acc: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Test accuracy in percent.
    pub test_acc: f64,
    /// Learning rate used during the epoch (its last value if it changed within the epoch).
    pub lr: f64,
    /// Wall-clock seconds for the epoch, training and evaluation.
    pub seconds: f64,
    /// Training throughput.
    pub train_images_per_sec: f64,
    /// Evaluation throughput (test set).
    pub eval_images_per_sec: f64,
    /// Mean loss on the validation split; `None` without one.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Accuracy on the validation split in percent; `None` without one.
    #[serde(default)]
    pub val_acc: Option<f64>,
    /// Mean test loss of the weights' moving average (`[train.ema]`); empty without one.
    #[serde(default)]
    pub ema_test_loss: Option<f64>,
    /// Test accuracy of the weights' moving average, in percent; empty without one.
    #[serde(default)]
    pub ema_test_acc: Option<f64>,
}

/// The one row of `summary.csv`: what the whole run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Run id (the run directory's name).
    pub run_id: String,
    /// Random seed.
    pub seed: u64,
    /// Device the run trained on, e.g. `cpu` or `cuda:0`.
    pub device: String,
    /// Number of trainable parameters.
    pub params: u64,
    /// Number of epochs trained.
    pub epochs: usize,
    /// Number of training images per epoch.
    pub train_images: u64,
    /// Final test accuracy in percent.
    pub test_acc: f64,
    /// Test accuracy of the best epoch, in percent: the best over all epochs when the best is
    /// chosen on the test set (no validation split).
    pub best_test_acc: f64,
    /// 1-based best epoch, chosen on the split `selected_on` names.
    pub best_epoch: usize,
    /// Training loss of the last epoch.
    pub final_train_loss: f64,
    /// Test loss of the last epoch.
    pub final_test_loss: f64,
    /// Wall-clock seconds for the whole run.
    pub seconds: f64,
    /// Mean training throughput over the run.
    pub train_images_per_sec: f64,
    /// Why the numbers above are not a result: empty when all is well, else `;`-separated
    /// names of [`super::ResultFlag`] (`non_finite_train_loss`, `non_finite_test_loss`,
    /// `non_finite_test_acc`). Empty when read from a file written before the column existed.
    #[serde(default)]
    pub flags: String,
    /// The split that chose `best_epoch` (by accuracy): `val` with a validation split, else
    /// `test` (also when read from a file written before the column existed).
    #[serde(default = "test_split")]
    pub selected_on: String,
    /// Validation accuracy of the best epoch; `None` without a validation split.
    #[serde(default)]
    pub best_val_acc: Option<f64>,
    /// Why training ended before `train.epochs`: empty when every epoch ran, else the early
    /// stopping rule that fired.
    #[serde(default)]
    pub stop_reason: String,
}

fn test_split() -> String {
    "test".into()
}

/// One row of `per_class.csv`: test accuracy of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Class name (or its index, when the dataset has no names).
    pub class: String,
    /// Test images of this class classified correctly.
    pub correct: usize,
    /// Test images of this class.
    pub total: usize,
    /// `correct / total` in percent.
    pub accuracy: f64,
}

/// The full text of `metrics.csv` for `rows`.
pub fn metrics_csv(rows: &[EpochMetrics]) -> String {
    table(METRICS_HEADER, rows.iter().map(metrics_cells))
}

/// The cells of `m`'s row of `metrics.csv`, in [`METRICS_HEADER`]'s order, as the file writes
/// them (the TensorBoard event files carry these same numbers, see
/// [`super::tensorboard::EventLog::epoch`]).
pub fn metrics_cells(m: &EpochMetrics) -> Vec<String> {
    vec![
        m.epoch.to_string(),
        loss_cell(m.train_loss),
        accuracy_cell(m.train_acc),
        loss_cell(m.test_loss),
        accuracy_cell(m.test_acc),
        format!("{:e}", m.lr),
        format!("{:.3}", m.seconds),
        format!("{:.1}", m.train_images_per_sec),
        format!("{:.1}", m.eval_images_per_sec),
        m.val_loss.map_or_else(String::new, loss_cell),
        m.val_acc.map_or_else(String::new, accuracy_cell),
        m.ema_test_loss.map_or_else(String::new, loss_cell),
        m.ema_test_acc.map_or_else(String::new, accuracy_cell),
    ]
}

/// The full text of `summary.csv` for `s`.
pub fn summary_csv(s: &Summary) -> String {
    table(
        SUMMARY_HEADER,
        std::iter::once(vec![
            s.experiment.clone(),
            s.run_id.clone(),
            s.seed.to_string(),
            s.device.clone(),
            s.params.to_string(),
            s.epochs.to_string(),
            s.train_images.to_string(),
            accuracy_cell(s.test_acc),
            accuracy_cell(s.best_test_acc),
            s.best_epoch.to_string(),
            loss_cell(s.final_train_loss),
            loss_cell(s.final_test_loss),
            format!("{:.3}", s.seconds),
            format!("{:.1}", s.train_images_per_sec),
            s.flags.clone(),
            s.selected_on.clone(),
            s.best_val_acc.map_or_else(String::new, accuracy_cell),
            s.stop_reason.clone(),
        ]),
    )
}

/// The full text of `per_class.csv` for `rows`.
pub fn per_class_csv(rows: &[ClassAccuracy]) -> String {
    table(
        PER_CLASS_HEADER,
        rows.iter().map(|c| {
            vec![
                c.class.clone(),
                c.correct.to_string(),
                c.total.to_string(),
                accuracy_cell(c.accuracy),
            ]
        }),
    )
}

/// The full text of `confusion.csv` for `cm` (columns: [`CONFUSION_HEADER`]).
pub fn confusion_csv(cm: &crate::plot::ConfusionMatrix) -> String {
    let k = cm.len();
    table(
        CONFUSION_HEADER,
        (0..k * k).map(|i| {
            let (t, p) = (i / k, i % k);
            vec![
                cm.classes[t].clone(),
                cm.classes[p].clone(),
                cm.count(t, p).to_string(),
            ]
        }),
    )
}

/// An accuracy in percent as every table writes it (4 decimals).
pub fn accuracy_cell(v: f64) -> String {
    format!("{v:.4}")
}

/// A loss as every table writes it (6 decimals).
pub fn loss_cell(v: f64) -> String {
    format!("{v:.6}")
}

/// Header line plus one line per record, `\n`-terminated, fields quoted only where CSV needs it.
pub(super) fn table(header: &str, rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(header);
    out.push('\n');
    for row in rows {
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_field(&mut out, field);
        }
        out.push('\n');
    }
    out
}

/// Appends one CSV field, quoted (RFC 4180) when it holds a separator, quote or line break.
fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Reads back a `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>, ReportError> {
    read_table(path, METRICS_HEADER)
}

/// Reads back a `summary.csv`, which must hold exactly one row.
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let mut rows: Vec<Summary> = read_table(path, SUMMARY_HEADER)?;
    match rows.len() {
        1 => Ok(rows.remove(0)),
        n => Err(ReportError::SummaryRows {
            path: path.to_path_buf(),
            rows: n,
        }),
    }
}

/// Columns added to a table after it was first written, each with a `#[serde(default)]` field:
/// a file from before lacks them at the end of its header and still reads.
pub(super) const LATER_COLUMNS: &[&str] = &[
    super::FLAGS_COLUMN,
    "val_loss",
    "val_acc",
    EMA_TEST_LOSS,
    EMA_TEST_ACC,
    "selected_on",
    "best_val_acc",
    "stop_reason",
];

/// `metrics.csv`'s column of the moving average's test loss (a later column).
pub const EMA_TEST_LOSS: &str = "ema_test_loss";
/// `metrics.csv`'s column of the moving average's test accuracy (a later column).
pub const EMA_TEST_ACC: &str = "ema_test_acc";

/// Whether a file with header `found` can be read as a table whose header is `expected`: the
/// same columns, or the same less some trailing [`LATER_COLUMNS`].
fn header_fits(found: &csv::StringRecord, expected: &str) -> bool {
    let expected: Vec<&str> = expected.split(',').collect();
    found.len() <= expected.len()
        && found.iter().eq(expected[..found.len()].iter().copied())
        && expected[found.len()..]
            .iter()
            .all(|c| LATER_COLUMNS.contains(c))
}

/// Parses a CSV file whose header must be `expected` (or an older one, see [`header_fits`]).
pub(super) fn read_table<T: DeserializeOwned>(
    path: &Path,
    expected: &'static str,
) -> Result<Vec<T>, ReportError> {
    let text = crate::bounded::read(path, crate::bounded::TABLE_LIMIT)?;
    let csv_err = |source| ReportError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_reader(text.as_slice());
    let found = reader.headers().map_err(csv_err)?;
    // Checked up front so that a file from another version fails with both headers in the
    // message rather than as a missing field on some row.
    if !header_fits(found, expected) {
        return Err(ReportError::Header {
            path: path.to_path_buf(),
            found: found.iter().collect::<Vec<_>>().join(","),
            expected,
        });
    }
    let rows = reader
        .deserialize()
        .take(TABLE_ROWS + 1)
        .collect::<Result<Vec<T>, _>>()
        .map_err(csv_err)?;
    if rows.len() > TABLE_ROWS {
        return Err(ReportError::TooManyRows {
            path: path.to_path_buf(),
            limit: TABLE_ROWS,
        });
    }
    Ok(rows)
}

/// The most rows runner reads from one of its own tables (`metrics.csv`: epochs; `batch.csv`:
/// variants; `summary.csv`: one), so that a hostile file of short rows cannot cost more than a
/// few hundred megabytes.
pub const TABLE_ROWS: usize = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_csv_has_one_row_per_pair_of_classes_zeros_included() {
        let classes = ["cat".to_string(), "a,b".to_string()];
        // Two cats (one called `a,b`), one `a,b` right.
        let cm = crate::plot::ConfusionMatrix::from_predictions(&classes, &[0, 0, 1], &[0, 1, 1]);
        assert_eq!(
            confusion_csv(&cm),
            "true_class,predicted_class,count\ncat,cat,1\ncat,\"a,b\",1\n\"a,b\",cat,0\n\"a,b\",\"a,b\",1\n"
        );
    }

    fn epoch(n: usize) -> EpochMetrics {
        let x = n as f64;
        EpochMetrics {
            epoch: n,
            train_loss: 1.0 / (x + 1.0),
            train_acc: 100.0 - 50.0 / x,
            test_loss: 0.9 / (x + 1.0),
            test_acc: 100.0 - 40.0 / 3.0 / x,
            lr: 0.1 / 3.0_f64.powi(n as i32),
            seconds: 12.345_678 * x,
            train_images_per_sec: 4_500.25 + x,
            eval_images_per_sec: 9_000.75,
            val_loss: None,
            val_acc: None,
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    /// [`epoch`] of a run with a moving average of the weights.
    fn epoch_with_ema(n: usize) -> EpochMetrics {
        EpochMetrics {
            ema_test_loss: Some(0.8 / (n as f64 + 1.0)),
            ema_test_acc: Some(100.0 - 10.0 / 3.0 / n as f64),
            ..epoch(n)
        }
    }

    fn summary() -> Summary {
        Summary {
            experiment: "mnist, \"small\"".into(),
            run_id: "20261127-204501-2".into(),
            seed: u64::MAX,
            device: "cuda:0".into(),
            params: 101_770,
            epochs: 2,
            train_images: 60_000,
            test_acc: 97.12,
            best_test_acc: 97.5,
            best_epoch: 1,
            final_train_loss: 0.123_456_789,
            final_test_loss: 0.1,
            seconds: 61.25,
            train_images_per_sec: 4_500.0,
            flags: String::new(),
            selected_on: "test".into(),
            best_val_acc: None,
            stop_reason: String::new(),
        }
    }

    #[test]
    fn metrics_text_is_exact() {
        // Expected text worked out by hand from `epoch(1)`, `epoch(2)` and the format widths; lr digits
        // from Python `repr(0.1/3)`, `repr(0.1/9)`. Ties (4501.25, 9000.75) round to even.
        // The moving average's cells are empty without one; with one 0.8/2, 0.8/3 and
        // 100 - 10/3, 100 - 10/6 in the loss and accuracy formats.
        let want = "\
epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,train_images_per_sec,eval_images_per_sec,val_loss,val_acc,ema_test_loss,ema_test_acc
1,0.500000,50.0000,0.450000,86.6667,3.333333333333333e-2,12.346,4501.2,9000.8,,,,
2,0.333333,75.0000,0.300000,93.3333,1.1111111111111112e-2,24.691,4502.2,9000.8,0.250000,91.1250,0.266667,98.3333
";
        let with_val = EpochMetrics {
            val_loss: Some(0.25),
            val_acc: Some(91.125),
            ..epoch_with_ema(2)
        };
        assert_eq!(metrics_csv(&[epoch(1), with_val]), want);
    }

    #[test]
    fn a_metrics_file_from_before_the_moving_average_reads_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let old = "\
epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,train_images_per_sec,eval_images_per_sec
1,0.500000,50.0000,0.450000,86.6667,3.333333333333333e-2,12.346,4501.2,9000.8
";
        crate::report::write_atomic(&path, old.as_bytes()).unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].ema_test_loss, back[0].ema_test_acc), (None, None));
        assert_eq!(back[0].test_acc, 86.6667);
    }

    #[test]
    fn headers_are_exact() {
        let cases = [
            (metrics_csv(&[]), METRICS_HEADER, "metrics"),
            (summary_csv(&summary()), SUMMARY_HEADER, "summary"),
            (per_class_csv(&[]), PER_CLASS_HEADER, "per_class"),
        ];
        for (text, header, why) in cases {
            assert_eq!(text.lines().next(), Some(header), "{why}");
        }
        assert_eq!(
            METRICS_HEADER,
            "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,train_images_per_sec,eval_images_per_sec,val_loss,val_acc,ema_test_loss,ema_test_acc"
        );
        assert_eq!(
            SUMMARY_HEADER,
            "experiment,run_id,seed,device,params,epochs,train_images,test_acc,best_test_acc,best_epoch,final_train_loss,final_test_loss,seconds,train_images_per_sec,flags,selected_on,best_val_acc,stop_reason"
        );
    }

    #[test]
    fn formatting_is_deterministic_and_stable_under_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<EpochMetrics> = (1..=5)
            .map(|n| {
                if n % 2 == 0 {
                    epoch_with_ema(n)
                } else {
                    epoch(n)
                }
            })
            .collect();
        let text = metrics_csv(&rows);
        assert_eq!(text, metrics_csv(&rows.clone()), "same input, same bytes");
        let path = dir.path().join("metrics.csv");
        crate::report::write_atomic(&path, text.as_bytes()).unwrap();
        let back = read_metrics(&path).unwrap();
        // Reading rounds to the written decimals; writing what was read changes nothing.
        assert_eq!(metrics_csv(&back), text);
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(a.epoch, b.epoch);
            assert_eq!(a.lr, b.lr, "lr is written exactly");
            assert!((a.train_loss - b.train_loss).abs() <= 5e-7);
            assert!((a.test_acc - b.test_acc).abs() <= 5e-5);
            assert_eq!(
                a.ema_test_acc.is_some(),
                b.ema_test_acc.is_some(),
                "epoch {}",
                a.epoch
            );
            let ema = a.ema_test_loss.zip(b.ema_test_loss);
            assert!(ema.is_none_or(|(a, b)| (a - b).abs() <= 5e-7));
        }
    }

    #[test]
    fn summary_round_trips_with_quoted_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        let s = summary();
        let text = summary_csv(&s);
        assert_eq!(
            text.lines().nth(1),
            Some("\"mnist, \"\"small\"\"\",20261127-204501-2,18446744073709551615,cuda:0,101770,2,60000,97.1200,97.5000,1,0.123457,0.100000,61.250,4500.0,,test,,")
        );
        crate::report::write_atomic(&path, text.as_bytes()).unwrap();
        let back = read_summary(&path).unwrap();
        assert_eq!(
            back,
            Summary {
                final_train_loss: 0.123457,
                ..s
            }
        );
    }

    #[test]
    fn a_flagged_summary_round_trips_with_its_non_finite_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        let s = Summary {
            final_test_loss: f64::INFINITY,
            flags: "non_finite_test_loss".into(),
            ..summary()
        };
        let text = summary_csv(&s);
        assert!(
            text.ends_with(",0.123457,inf,61.250,4500.0,non_finite_test_loss,test,,\n"),
            "{text}"
        );
        crate::report::write_atomic(&path, text.as_bytes()).unwrap();
        let back = read_summary(&path).unwrap();
        assert_eq!(
            (back.final_test_loss, back.flags.as_str()),
            (f64::INFINITY, "non_finite_test_loss")
        );
    }

    #[test]
    fn a_summary_from_before_the_flags_column_still_reads() {
        // The CI baseline, written before `flags` existed (results/baselines/README.md).
        let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results/baselines/ci/mnist_cnn.summary.csv");
        let s = read_summary(&baseline).expect("the CI baseline reads");
        assert_eq!((s.experiment.as_str(), s.test_acc), ("mnist_cnn", 94.38));
        assert_eq!(s.flags, "", "no column, no flags");

        let dir = tempfile::tempdir().unwrap();
        // Before `flags` and the columns after it.
        let old_header = SUMMARY_HEADER
            .split_once(",flags")
            .expect("a flags column")
            .0;
        let row = summary_csv(&summary());
        let old_row = row.lines().nth(1).unwrap().rsplitn(5, ',').nth(4).unwrap();
        let cases = [
            (format!("{old_header}\n{old_row}\n"), true, "older header"),
            (row.clone(), true, "current header"),
            (
                format!("{},extra\n{old_row},,x\n", SUMMARY_HEADER),
                false,
                "a column this version does not know",
            ),
            (
                format!(
                    "{}\n{}\n",
                    old_header.trim_end_matches(",train_images_per_sec"),
                    old_row.rsplit_once(',').unwrap().0
                ),
                false,
                "a column missing that is not a later one",
            ),
            (
                format!(
                    "{}\n{old_row}\n",
                    old_header.replacen("experiment,run_id", "run_id,experiment", 1)
                ),
                false,
                "columns out of order",
            ),
        ];
        for (i, (text, ok, why)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("s{i}.csv"));
            std::fs::write(&path, text).unwrap();
            match read_summary(&path) {
                Ok(s) => {
                    assert!(ok, "{why}: read as {s:?}");
                    let written = Summary {
                        final_train_loss: 0.123457,
                        ..summary()
                    };
                    assert_eq!(s, written, "{why}");
                }
                Err(e) => {
                    assert!(!ok, "{why}: {e}");
                    assert!(matches!(e, ReportError::Header { .. }), "{why}: {e}");
                }
            }
        }
    }

    #[test]
    fn per_class_text_is_exact() {
        let rows = [
            ClassAccuracy {
                class: "airplane".into(),
                correct: 912,
                total: 1000,
                accuracy: 91.2,
            },
            ClassAccuracy {
                class: "7".into(),
                correct: 1,
                total: 3,
                accuracy: 100.0 / 3.0,
            },
        ];
        assert_eq!(
            per_class_csv(&rows),
            "class,correct,total,accuracy\nairplane,912,1000,91.2000\n7,1,3,33.3333\n"
        );
    }

    #[test]
    fn reading_bad_files_gives_errors() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let two_rows = format!(
            "{}{}",
            summary_csv(&summary()),
            summary_csv(&summary()).lines().nth(1).unwrap()
        );
        let cases: [(&str, Result<(), ReportError>); 5] = [
            (
                "missing file",
                read_metrics(&dir.path().join("nope.csv")).map(drop),
            ),
            (
                "wrong header",
                read_metrics(&write("h.csv", "epoch,loss\n1,0.5\n")).map(drop),
            ),
            (
                "bad number",
                read_metrics(&write(
                    "n.csv",
                    &format!("{METRICS_HEADER}\n1,x,1,1,1,1,1,1,1\n"),
                ))
                .map(drop),
            ),
            (
                "empty summary",
                read_summary(&write("e.csv", &format!("{SUMMARY_HEADER}\n"))).map(drop),
            ),
            (
                "two summary rows",
                read_summary(&write("t.csv", &two_rows)).map(drop),
            ),
        ];
        for (why, result) in cases {
            let err = result.expect_err(why);
            let kind_ok = match why {
                "missing file" => matches!(&err, ReportError::ReadFile(e) if e.kind.is_not_found()),
                "wrong header" => matches!(err, ReportError::Header { .. }),
                "bad number" => matches!(err, ReportError::Csv { .. }),
                _ => matches!(err, ReportError::SummaryRows { .. }),
            };
            assert!(kind_ok, "{why}: {err}");
        }
    }
}
