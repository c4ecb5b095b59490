//! Which epoch is the best, and when training stops early: both read only the rows of
//! `metrics.csv`, so a resumed run decides exactly as the uninterrupted one did.

use std::fmt;

use crate::experiment::format::StopMetric;
use crate::experiment::EarlyStopping;
use crate::report::EpochMetrics;

/// The split whose accuracy chooses the best epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The validation split (whenever the run has one).
    Val,
    /// The test set (runs without a validation split, as before it existed).
    Test,
}

impl Selection {
    /// How `rows` are judged: on the validation split when they have its numbers.
    pub fn of(rows: &[EpochMetrics]) -> Selection {
        if rows.first().is_some_and(|r| r.val_acc.is_some()) {
            Selection::Val
        } else {
            Selection::Test
        }
    }

    /// `val` or `test`, as `summary.csv` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Selection::Val => "val",
            Selection::Test => "test",
        }
    }

    /// The accuracy that is judged; a non-finite one never wins.
    fn score(self, r: &EpochMetrics) -> f64 {
        let v = match self {
            Selection::Val => r.val_acc.unwrap_or(f64::NAN),
            Selection::Test => r.test_acc,
        };
        if v.is_finite() {
            v
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The best of `rows`: the highest accuracy on [`Selection::of`]'s split, the earliest such
/// epoch on a tie. `None` for no rows.
pub fn best(rows: &[EpochMetrics]) -> Option<&EpochMetrics> {
    let on = Selection::of(rows);
    rows.iter()
        .fold(None, |b: Option<&EpochMetrics>, r| match b {
            Some(b) if on.score(r) <= on.score(b) => Some(b),
            _ => Some(r),
        })
}

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The rule that fired.
    pub rule: EarlyStopping,
    /// The epoch after which training stopped.
    pub epoch: usize,
    /// The epoch with the best value of the metric.
    pub best_epoch: usize,
    /// That value.
    pub best_value: f64,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.rule;
        write!(
            f,
            "early stopping after epoch {}: {} has not improved by more than {} for {} epoch{} (best {} at epoch {})",
            self.epoch,
            r.metric.name(),
            r.min_delta,
            r.patience,
            if r.patience == 1 { "" } else { "s" },
            value_text(r.metric, self.best_value),
            self.best_epoch,
        )
    }
}

fn value_text(m: StopMetric, v: f64) -> String {
    if m.lower_is_better() {
        crate::report::loss_cell(v)
    } else {
        crate::report::accuracy_cell(v)
    }
}

/// The metric's value in `r`; `None` when the row lacks it (no validation split).
fn value(m: StopMetric, r: &EpochMetrics) -> Option<f64> {
    match m {
        StopMetric::ValLoss => r.val_loss,
        StopMetric::ValAcc => r.val_acc,
        StopMetric::TrainLoss => Some(r.train_loss),
        StopMetric::TrainAcc => Some(r.train_acc),
    }
}

/// Whether `rule` stops training after the last of `rows`, the epochs so far.
///
/// As Keras' and Lightning's `EarlyStopping`: the first epoch sets the best value; a later one
/// improves on it when it is lower than `best - min_delta` (losses) or higher than
/// `best + min_delta` (accuracies), and then becomes the best; training stops once `patience`
/// epochs in a row have not improved. A non-finite value never improves.
pub fn early_stop(rule: &EarlyStopping, rows: &[EpochMetrics]) -> Option<Stopped> {
    let mut best: Option<(usize, f64)> = None;
    let mut waited = 0;
    for r in rows {
        let v = value(rule.metric, r).filter(|v| v.is_finite());
        let improved = match (v, best) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some((_, b))) if rule.metric.lower_is_better() => v < b - rule.min_delta,
            (Some(v), Some((_, b))) => v > b + rule.min_delta,
        };
        if improved {
            best = v.map(|v| (r.epoch, v));
            waited = 0;
        } else {
            waited += 1;
        }
        if waited >= rule.patience {
            let (best_epoch, best_value) = best.unwrap_or((0, f64::NAN));
            return Some(Stopped {
                rule: *rule,
                epoch: r.epoch,
                best_epoch,
                best_value,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, val_loss: f64, val_acc: f64, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_acc: 50.0 + epoch as f64,
            test_loss: 0.5,
            test_acc,
            lr: 0.1,
            seconds: 1.0,
            train_images_per_sec: 1.0,
            eval_images_per_sec: 1.0,
            val_loss: Some(val_loss),
            val_acc: Some(val_acc),
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    fn rule(metric: StopMetric, patience: usize, min_delta: f64) -> EarlyStopping {
        EarlyStopping {
            metric,
            patience,
            min_delta,
        }
    }

    /// Validation losses that fall until epoch 3, then stall.
    fn stalling() -> Vec<EpochMetrics> {
        [1.0, 0.8, 0.7, 0.71, 0.69995, 0.75, 0.7]
            .iter()
            .enumerate()
            .map(|(i, &l)| row(i + 1, l, 90.0, 80.0))
            .collect()
    }

    #[test]
    fn training_stops_after_patience_epochs_without_improvement() {
        let rows = stalling();
        let stop = |r| early_stop(&r, &rows).map(|s| (s.epoch, s.best_epoch));
        // Epoch 5's 0.69995 improves on 0.7 with no min_delta: epochs 6 and 7 wait.
        assert_eq!(stop(rule(StopMetric::ValLoss, 2, 0.0)), Some((7, 5)));
        assert_eq!(stop(rule(StopMetric::ValLoss, 3, 0.0)), None);
        // With min_delta 0.001 it does not count: epochs 4, 5, 6 wait.
        assert_eq!(stop(rule(StopMetric::ValLoss, 3, 0.001)), Some((6, 3)));
        assert_eq!(stop(rule(StopMetric::ValLoss, 1, 0.0)), Some((4, 3)));
        // The same rows, one at a time, as the training loop sees them: it fires first at 6.
        let first = (1..=rows.len())
            .find(|&n| early_stop(&rule(StopMetric::ValLoss, 3, 0.001), &rows[..n]).is_some());
        assert_eq!(first, Some(6));
    }

    #[test]
    fn accuracies_must_rise_and_losses_fall() {
        let rows: Vec<EpochMetrics> = [80.0, 82.0, 81.0, 82.0]
            .iter()
            .enumerate()
            .map(|(i, &a)| row(i + 1, 0.5, a, 70.0))
            .collect();
        let s = early_stop(&rule(StopMetric::ValAcc, 2, 0.0), &rows).expect("stops");
        assert_eq!((s.epoch, s.best_epoch, s.best_value), (4, 2, 82.0));
        // Train loss falls every epoch (1/epoch): never stops.
        assert_eq!(
            early_stop(&rule(StopMetric::TrainLoss, 1, 0.0), &rows),
            None
        );
        assert_eq!(
            s.to_string(),
            "early stopping after epoch 4: val_acc has not improved by more than 0 for 2 epochs (best 82.0000 at epoch 2)"
        );
    }

    #[test]
    fn a_nan_never_improves() {
        let rows = vec![row(1, f64::NAN, 1.0, 1.0), row(2, f64::NAN, 1.0, 1.0)];
        let s = early_stop(&rule(StopMetric::ValLoss, 2, 0.0), &rows).expect("stops");
        assert_eq!(s.epoch, 2);
    }

    #[test]
    fn the_best_epoch_is_chosen_on_validation_whenever_there_is_a_split() {
        // Test accuracy peaks at epoch 1, validation accuracy at epoch 3.
        let rows = vec![
            row(1, 0.5, 80.0, 95.0),
            row(2, 0.5, 85.0, 90.0),
            row(3, 0.5, 88.0, 85.0),
            row(4, 0.5, 88.0, 99.0),
        ];
        assert_eq!(Selection::of(&rows), Selection::Val);
        assert_eq!(best(&rows).map(|r| r.epoch), Some(3), "earliest of the tie");
        let no_split: Vec<EpochMetrics> = rows
            .into_iter()
            .map(|r| EpochMetrics {
                val_loss: None,
                val_acc: None,
                ..r
            })
            .collect();
        assert_eq!(Selection::of(&no_split), Selection::Test);
        assert_eq!(best(&no_split).map(|r| r.epoch), Some(4));
        assert!(best(&[]).is_none());
    }

    #[test]
    fn a_nan_is_never_the_best() {
        let mut rows = vec![row(1, 0.5, f64::NAN, 1.0), row(2, 0.5, 10.0, 1.0)];
        assert_eq!(best(&rows).map(|r| r.epoch), Some(2));
        rows[1].val_acc = Some(f64::NAN);
        assert_eq!(best(&rows).map(|r| r.epoch), Some(1));
    }
}
