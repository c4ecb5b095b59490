//! Which rows of a `metrics.csv` are drawn, and what is wrong with the others.
//!
//! One rule, used by every picture of curves (a run's own `curves.png` and `curves.svg`, and
//! `runner plot`'s comparison) and by the warnings `runner plot` prints:
//!
//! - **Repeated epochs**: the last row of an epoch is kept. A resumed run rewrites the epochs after
//!   its checkpoint, so the last row is the one that led to the final model. The kept rows are
//!   sorted by epoch.
//! - **Non-finite values** (NaN, ±inf) in `train_loss`, `train_acc`, `test_loss` or `test_acc`
//!   are not drawn: the line of that column breaks there ([`segments`]) rather than dropping to
//!   zero or joining the points either side. The axis ranges come from the finite values only.
//! - A file with no finite value at all still gives a picture, with empty axes (and a warning):
//!   the legend and the title still say which run it is.

use std::fmt;

use crate::report::EpochMetrics;

/// Reads one column of a row.
pub type Column = fn(&EpochMetrics) -> f64;

/// The columns of `metrics.csv` that curves draw, with how to read them.
pub const DRAWN_COLUMNS: [(&str, Column); 4] = [
    ("train_loss", |m| m.train_loss),
    ("train_acc", |m| m.train_acc),
    ("test_loss", |m| m.test_loss),
    ("test_acc", |m| m.test_acc),
];

/// Most epochs a warning lists before it says "and N more".
pub const LISTED_EPOCHS: usize = 20;

/// Something in a `metrics.csv` that is not drawn as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsProblem {
    /// Columns with non-finite values, each with the epochs where they are (ascending).
    NonFinite(Vec<(&'static str, Vec<usize>)>),
    /// Epochs with more than one row, each with its number of rows (ascending by epoch).
    Repeated(Vec<(usize, usize)>),
    /// No drawn column holds a single finite value.
    NothingToDraw,
}

/// The rows of a `metrics.csv` as they are drawn, and what was wrong with the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedMetrics {
    /// One row per epoch (the last one of the file), ascending; non-finite values are still in
    /// them (they break the lines).
    pub rows: Vec<EpochMetrics>,
    /// What was wrong, at most one problem of each kind; empty when all is well.
    pub problems: Vec<MetricsProblem>,
}

/// Applies the module's rule to `rows` (in file order).
pub fn check_metrics(rows: &[EpochMetrics]) -> CheckedMetrics {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    // Stable: rows of one epoch stay in file order, so the last of each run is the one kept.
    order.sort_by_key(|&i| rows[i].epoch);
    let mut kept: Vec<EpochMetrics> = Vec::with_capacity(rows.len());
    let mut repeated: Vec<(usize, usize)> = Vec::new();
    for i in order {
        let row = &rows[i];
        match kept.last_mut() {
            Some(last) if last.epoch == row.epoch => {
                *last = row.clone();
                match repeated.last_mut() {
                    Some((e, n)) if *e == row.epoch => *n += 1,
                    _ => repeated.push((row.epoch, 2)),
                }
            }
            _ => kept.push(row.clone()),
        }
    }
    let mut problems = Vec::new();
    let non_finite: Vec<(&'static str, Vec<usize>)> = DRAWN_COLUMNS
        .iter()
        .map(|&(name, get)| {
            let epochs = kept
                .iter()
                .filter(|m| !get(m).is_finite())
                .map(|m| m.epoch)
                .collect::<Vec<_>>();
            (name, epochs)
        })
        .filter(|(_, epochs)| !epochs.is_empty())
        .collect();
    if !non_finite.is_empty() {
        problems.push(MetricsProblem::NonFinite(non_finite));
    }
    if !repeated.is_empty() {
        problems.push(MetricsProblem::Repeated(repeated));
    }
    let drawable = kept
        .iter()
        .any(|m| DRAWN_COLUMNS.iter().any(|(_, get)| get(m).is_finite()));
    if !kept.is_empty() && !drawable {
        problems.push(MetricsProblem::NothingToDraw);
    }
    CheckedMetrics {
        rows: kept,
        problems,
    }
}

/// The runs of consecutive points of `points` whose value is finite: where a value is NaN or
/// infinite the line breaks, and neither it nor a line through it is drawn.
pub fn segments(points: &[(f64, f64)]) -> Vec<&[(f64, f64)]> {
    points
        .split(|(x, y)| !x.is_finite() || !y.is_finite())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `items` joined by ", ", the first [`LISTED_EPOCHS`] only, then "and N more".
fn capped<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let mut out: Vec<String> = items.iter().take(LISTED_EPOCHS).map(show).collect();
    if items.len() > LISTED_EPOCHS {
        out.push(format!("and {} more", items.len() - LISTED_EPOCHS));
    }
    out.join(", ")
}

/// "epoch 3" or "epochs 3, 4".
fn epochs(list: &[usize]) -> String {
    let s = if list.len() == 1 { "" } else { "s" };
    format!("epoch{s} {}", capped(list, usize::to_string))
}

impl fmt::Display for MetricsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsProblem::NonFinite(columns) => {
                for (i, (name, list)) in columns.iter().enumerate() {
                    if i == 0 {
                        write!(f, "{name} is not finite at {}", epochs(list))?;
                    } else {
                        write!(f, "; {name} at {}", epochs(list))?;
                    }
                }
                write!(f, " (not drawn)")
            }
            MetricsProblem::Repeated(list) => {
                let each = capped(list, |(e, n)| format!("epoch {e} appears {n} times"));
                let which = if list.len() == 1 { "" } else { " of each" };
                write!(f, "{each}; the last row{which} is drawn")
            }
            MetricsProblem::NothingToDraw => write!(
                f,
                "no finite value in {}: the curves are empty",
                DRAWN_COLUMNS.map(|c| c.0).join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, test_loss: f64, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_acc: 50.0 + epoch as f64,
            test_loss,
            test_acc,
            lr: 0.1,
            seconds: 1.0,
            train_images_per_sec: 10.0,
            eval_images_per_sec: 10.0,
            val_loss: None,
            val_acc: None,
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    #[test]
    fn segments_break_at_non_finite_values() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let p = |y: &[f64]| -> Vec<(f64, f64)> {
            y.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect()
        };
        let cases: [(&[f64], &[usize], &str); 6] = [
            (&[1.0, 2.0, 3.0], &[3], "all finite: one segment"),
            (&[1.0, nan, 3.0, 4.0], &[1, 2], "a NaN in the middle"),
            (&[nan, -inf, 3.0], &[1], "bad points at the start"),
            (
                &[1.0, inf, nan, 4.0, -inf],
                &[1, 1],
                "bad points side by side",
            ),
            (&[nan, nan], &[], "nothing finite"),
            (&[], &[], "no point"),
        ];
        for (ys, lens, msg) in cases {
            let pts = p(ys);
            let segs = segments(&pts);
            let got: Vec<usize> = segs.iter().map(|s| s.len()).collect();
            assert_eq!(got, lens, "{msg}");
            assert!(
                segs.iter().flat_map(|s| s.iter()).all(|q| q.1.is_finite()),
                "{msg}"
            );
        }
    }

    #[test]
    fn repeated_epochs_keep_the_last_row_and_non_finite_values_are_named() {
        let rows = [
            row(1, 0.5, 80.0),
            row(2, 0.4, 81.0),
            row(3, f64::NAN, 82.0),
            row(2, 0.3, 85.0),
            row(4, f64::NEG_INFINITY, f64::INFINITY),
            row(2, 0.2, 86.0),
        ];
        let c = check_metrics(&rows);
        let kept: Vec<(usize, f64)> = c.rows.iter().map(|m| (m.epoch, m.test_acc)).collect();
        assert_eq!(
            kept,
            [(1, 80.0), (2, 86.0), (3, 82.0), (4, f64::INFINITY)],
            "one row per epoch, the last, sorted"
        );
        assert_eq!(
            c.problems,
            [
                MetricsProblem::NonFinite(vec![("test_loss", vec![3, 4]), ("test_acc", vec![4])]),
                MetricsProblem::Repeated(vec![(2, 3)]),
            ]
        );
        assert_eq!(
            c.problems[0].to_string(),
            "test_loss is not finite at epochs 3, 4; test_acc at epoch 4 (not drawn)"
        );
        assert_eq!(
            c.problems[1].to_string(),
            "epoch 2 appears 3 times; the last row is drawn"
        );
    }

    #[test]
    fn clean_empty_and_hopeless_files() {
        assert_eq!(check_metrics(&[row(1, 0.5, 80.0)]).problems, []);
        assert_eq!(check_metrics(&[]).problems, []);
        let nan = f64::NAN;
        let hopeless = [EpochMetrics {
            train_loss: nan,
            train_acc: nan,
            ..row(1, nan, nan)
        }];
        let c = check_metrics(&hopeless);
        assert_eq!(c.problems.len(), 2);
        assert_eq!(c.problems[1], MetricsProblem::NothingToDraw);
    }

    #[test]
    fn long_lists_are_capped() {
        let rows: Vec<EpochMetrics> = (1..=25).map(|e| row(e, f64::NAN, 80.0)).collect();
        let text = check_metrics(&rows).problems[0].to_string();
        assert!(
            text.starts_with("test_loss is not finite at epochs 1, 2, 3,"),
            "{text}"
        );
        assert!(text.ends_with("19, 20, and 5 more (not drawn)"), "{text}");
    }
}
