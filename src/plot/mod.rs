//! Pictures: data grids, training curves, confusion matrices, predictions and comparisons.
//!
//! Everything is drawn in Rust with [plotters](https://docs.rs/plotters) onto an in-memory RGB
//! [`Picture`] (or an SVG string), encoded to PNG in memory and written with
//! [`crate::report::write_atomic`], so no half-written picture is ever left behind. Text uses the
//! DejaVu Sans font embedded in the binary ([`font`]); no system font, fontconfig or display is
//! needed.
//!
//! | picture                              | drawn by                                  |
//! |--------------------------------------|-------------------------------------------|
//! | `runner show-data` grid              | [`data_figure`]                           |
//! | `curves.png`, `curves.svg`           | [`curves::curves_png`], [`curves::curves_svg`] |
//! | `confusion.png`                      | [`confusion::confusion_png`]               |
//! | `predictions.png`                    | [`predictions_figure`]                    |
//! | `compare_curves.*`, `compare_accuracy.png` | [`compare::plot_comparison`]        |

use std::path::{Path, PathBuf};

use plotters::prelude::*;

pub mod canvas;
pub mod compare;
pub mod confusion;
pub mod curves;
pub mod font;
pub mod grid;
mod picture;
pub mod points;
mod run_plots;
mod show;

pub use compare::{load_run, plot_comparison, ComparedRun};
pub use confusion::ConfusionMatrix;
pub use grid::{GridLayout, Panel, Tile};
pub use picture::Picture;
pub use points::{check_metrics, CheckedMetrics, MetricsProblem};
pub use run_plots::{confusion_picture, write_run_plots, RUN_PLOT_FILES};
pub use show::{data_figure, display_image, predictions_figure, DataFigure, Split};

/// File name of the training curves (PNG).
pub const CURVES_PNG: &str = "curves.png";
/// File name of the training curves (SVG).
pub const CURVES_SVG: &str = "curves.svg";
/// File name of the confusion matrix.
pub const CONFUSION_PNG: &str = "confusion.png";
/// File name of the predictions grid.
pub const PREDICTIONS_PNG: &str = "predictions.png";
/// File name of the overlaid curves of several runs (PNG).
pub const COMPARE_CURVES_PNG: &str = "compare_curves.png";
/// File name of the overlaid curves of several runs (SVG).
pub const COMPARE_CURVES_SVG: &str = "compare_curves.svg";
/// File name of the final-accuracy bar chart of several runs.
pub const COMPARE_ACCURACY_PNG: &str = "compare_accuracy.png";

/// Everything that can go wrong while drawing or writing a picture.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed to draw (this includes text layout).
    #[error("cannot draw {what}: {message}")]
    Draw {
        /// The picture being drawn.
        what: &'static str,
        /// plotters' message.
        message: String,
    },
    /// The PNG encoder or decoder failed.
    #[error("PNG error: {0}")]
    Png(String),
    /// Writing or reading a file failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// There is nothing to draw.
    #[error("nothing to draw: {0}")]
    Empty(String),
    /// The picture would be too large.
    #[error("{what} would be {width}x{height} pixels; refusing to draw more than {max} pixels")]
    TooLarge {
        /// The picture.
        what: &'static str,
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// The pixel limit.
        max: u64,
    },
}

/// Largest picture drawn, in pixels (about 48 MB of RGB).
pub const MAX_PIXELS: u64 = 16_000_000;

/// Maps a plotters error to [`PlotError::Draw`] for `what`.
pub(crate) fn draw_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> PlotError {
    move |e| PlotError::Draw {
        what,
        message: e.to_string(),
    }
}

/// Writes `bytes` to `dir/name` atomically and returns the path.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, PlotError> {
    let path = dir.join(name);
    crate::report::write_atomic(&path, bytes)?;
    Ok(path)
}

/// Ten distinguishable line colours (matplotlib's `tab10`).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of correct predictions in captions.
pub const RIGHT: RGBColor = RGBColor(0, 128, 0);
/// Colour of mistakes: caption and frame.
pub const WRONG: RGBColor = RGBColor(214, 39, 40);
