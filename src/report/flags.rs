//! The `flags` column of `summary.csv` and `batch.csv`: why a finished run's numbers cannot be
//! taken at face value.
//!
//! A run whose final test loss is `inf` still finishes and writes every file (the weights and
//! curves help find out why), but its row must not pass for a result: it carries a flag, the
//! run prints a warning, and `runner diff` counts a flagged row as a regression whatever the
//! tolerances. The cell is empty when all is well, else the names of [`ResultFlag::ALL`] that
//! apply, in that order, joined by `;`.

use super::EpochMetrics;

/// Name of the column, last in `summary.csv` and `batch.csv`.
pub const FLAGS_COLUMN: &str = "flags";

/// One reason a run's final numbers are not a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFlag {
    /// The last epoch's mean training loss is NaN or infinite (`non_finite_train_loss`).
    NonFiniteTrainLoss,
    /// The last evaluation's mean test loss is NaN or infinite (`non_finite_test_loss`).
    NonFiniteTestLoss,
    /// The last evaluation's test accuracy is NaN or infinite (`non_finite_test_acc`).
    NonFiniteTestAcc,
}

impl ResultFlag {
    /// Every flag, in the order a cell lists them.
    pub const ALL: [ResultFlag; 3] = [
        ResultFlag::NonFiniteTrainLoss,
        ResultFlag::NonFiniteTestLoss,
        ResultFlag::NonFiniteTestAcc,
    ];

    /// The flag's name in the `flags` cell.
    pub fn name(self) -> &'static str {
        match self {
            ResultFlag::NonFiniteTrainLoss => "non_finite_train_loss",
            ResultFlag::NonFiniteTestLoss => "non_finite_test_loss",
            ResultFlag::NonFiniteTestAcc => "non_finite_test_acc",
        }
    }

    /// The value the flag is about, for the warning.
    fn what(self) -> &'static str {
        match self {
            ResultFlag::NonFiniteTrainLoss => "final training loss",
            ResultFlag::NonFiniteTestLoss => "final test loss",
            ResultFlag::NonFiniteTestAcc => "final test accuracy",
        }
    }

    /// The value in `last` that the flag checks.
    fn value(self, last: &EpochMetrics) -> f64 {
        match self {
            ResultFlag::NonFiniteTrainLoss => last.train_loss,
            ResultFlag::NonFiniteTestLoss => last.test_loss,
            ResultFlag::NonFiniteTestAcc => last.test_acc,
        }
    }
}

/// The flags of a run whose last epoch is `last`, with the values that raised them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFlags(Vec<(ResultFlag, f64)>);

impl ResultFlags {
    /// Checks the final numbers of a run.
    pub fn of(last: &EpochMetrics) -> ResultFlags {
        ResultFlags(
            ResultFlag::ALL
                .into_iter()
                .map(|f| (f, f.value(last)))
                .filter(|(_, v)| !v.is_finite())
                .collect(),
        )
    }

    /// Whether no flag applies.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text of the `flags` cell: empty, or the names joined by `;`.
    pub fn cell(&self) -> String {
        self.0
            .iter()
            .map(|(f, _)| f.name())
            .collect::<Vec<_>>()
            .join(";")
    }

    /// One line for stderr naming every flagged value, or `None` when nothing is flagged.
    pub fn warning(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let values = self
            .0
            .iter()
            .map(|(f, v)| format!("the {} is {v}", f.what()))
            .collect::<Vec<_>>()
            .join(", ");
        let numbers = if self.0.len() == 1 {
            "a finite number"
        } else {
            "finite numbers"
        };
        Some(format!(
            "warning: {values} (not {numbers}): flagged in summary.csv as {}",
            self.cell()
        ))
    }
}

/// The flag names of a `flags` cell as read back from a table (unknown names kept as they are).
pub fn flag_names(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(train_loss: f64, test_loss: f64, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: 3,
            train_loss,
            train_acc: 50.0,
            test_loss,
            test_acc,
            lr: 0.1,
            seconds: 1.0,
            train_images_per_sec: 10.0,
            eval_images_per_sec: 20.0,
            val_loss: None,
            val_acc: None,
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    #[test]
    fn flags_name_each_non_finite_value_in_a_fixed_order() {
        let inf = f64::INFINITY;
        let cases = [
            (last(0.3, 0.2, 90.0), "", "all finite"),
            (
                last(0.3, inf, 90.0),
                "non_finite_test_loss",
                "test loss inf",
            ),
            (
                last(0.3, -inf, 90.0),
                "non_finite_test_loss",
                "test loss -inf",
            ),
            (last(0.3, f64::NAN, 90.0), "non_finite_test_loss", "NaN"),
            (last(inf, 0.2, 90.0), "non_finite_train_loss", "train loss"),
            (last(0.3, 0.2, f64::NAN), "non_finite_test_acc", "test acc"),
            (
                last(f64::NAN, inf, f64::NAN),
                "non_finite_train_loss;non_finite_test_loss;non_finite_test_acc",
                "all three, in ALL's order",
            ),
            (last(f64::MAX, 0.0, 0.0), "", "huge but finite"),
        ];
        for (m, want, why) in cases {
            let flags = ResultFlags::of(&m);
            assert_eq!(flags.cell(), want, "{why}");
            assert_eq!(flags.is_empty(), want.is_empty(), "{why}");
            assert_eq!(flags.warning().is_some(), !want.is_empty(), "{why}");
            assert_eq!(
                flag_names(&flags.cell()).collect::<Vec<_>>().join(";"),
                want
            );
        }
    }

    #[test]
    fn the_warning_names_the_values_and_the_flags() {
        let one = ResultFlags::of(&last(0.3, f64::INFINITY, 90.0));
        assert_eq!(
            one.warning().as_deref(),
            Some(
                "warning: the final test loss is inf (not a finite number): flagged in \
                 summary.csv as non_finite_test_loss"
            )
        );
        let two = ResultFlags::of(&last(f64::NAN, f64::INFINITY, 90.0));
        assert_eq!(
            two.warning().as_deref(),
            Some(
                "warning: the final training loss is NaN, the final test loss is inf (not \
                 finite numbers): flagged in summary.csv as \
                 non_finite_train_loss;non_finite_test_loss"
            )
        );
    }

    #[test]
    fn cells_read_back_into_names() {
        assert_eq!(flag_names("").count(), 0);
        assert_eq!(flag_names(" ").count(), 0);
        assert_eq!(
            flag_names("non_finite_test_loss; later_flag").collect::<Vec<_>>(),
            ["non_finite_test_loss", "later_flag"]
        );
        let names: Vec<&str> = ResultFlag::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "non_finite_train_loss",
                "non_finite_test_loss",
                "non_finite_test_acc"
            ]
        );
    }
}
