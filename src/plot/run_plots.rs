//! The pictures every run leaves in its directory.

use std::path::{Path, PathBuf};

use super::confusion::{confusion_png, ConfusionMatrix};
use super::curves::{curves_png, curves_svg};
use super::show::predictions_figure;
use super::{write_file, PlotError, CONFUSION_PNG, CURVES_PNG, CURVES_SVG, PREDICTIONS_PNG};
use crate::data::Dataset;
use crate::experiment::Experiment;
use crate::report::text::for_picture;
use crate::report::EpochMetrics;

/// The pictures [`write_run_plots`] writes, in order.
pub const RUN_PLOT_FILES: [&str; 4] = [CURVES_PNG, CURVES_SVG, CONFUSION_PNG, PREDICTIONS_PNG];

/// Draws one picture and encodes it.
type Job<'a> = Box<dyn FnOnce() -> Result<Vec<u8>, PlotError> + 'a>;

/// Test images shown in `predictions.png`.
pub const PREDICTION_COUNT: usize = 24;

/// `confusion.png` of `experiment`'s model on its `split` images (`test`, `train`), encoded.
pub fn confusion_picture(
    experiment: &str,
    split: &str,
    cm: &ConfusionMatrix,
) -> Result<Vec<u8>, PlotError> {
    let title = format!(
        "{}: confusion matrix of the {} {split} images (accuracy {:.2}%)",
        for_picture(experiment),
        cm.total(),
        cm.accuracy()
    );
    confusion_png(&title, cm)?.png()
}

/// Writes `curves.png`, `curves.svg`, `confusion.png` and `predictions.png` into `dir`.
/// `predictions[i]` is the class the final model predicts for test image `i` of `test`, and
/// `cm` their confusion matrix.
///
/// Every picture is attempted even when an earlier one fails; the first error is returned.
pub fn write_run_plots(
    dir: &Path,
    exp: &Experiment,
    metrics: &[EpochMetrics],
    test: &Dataset,
    predictions: &[u32],
    cm: &ConfusionMatrix,
) -> Result<Vec<PathBuf>, PlotError> {
    let _span = tracing::info_span!("plots").entered();
    let jobs: [(&str, Job<'_>); 4] = [
        (
            CURVES_PNG,
            Box::new(|| curves_png(exp.name(), metrics)?.png()),
        ),
        (
            CURVES_SVG,
            Box::new(|| Ok(curves_svg(exp.name(), metrics)?.into_bytes())),
        ),
        (
            CONFUSION_PNG,
            Box::new(|| confusion_picture(exp.name(), "test", cm)),
        ),
        (
            PREDICTIONS_PNG,
            Box::new(|| predictions_figure(exp, test, predictions, PREDICTION_COUNT)?.png()),
        ),
    ];
    let mut written = Vec::with_capacity(jobs.len());
    let mut first_error = None;
    for (name, job) in jobs {
        match job().and_then(|bytes| write_file(dir, name, &bytes)) {
            Ok(p) => written.push(p),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}
