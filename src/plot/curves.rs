//! Loss and accuracy per epoch: `curves.png` / `curves.svg` of a run, and the overlaid curves of
//! [`super::compare`].

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font::text;
use super::points::{check_metrics, segments};
use super::{draw_err, Picture, PlotError, PALETTE};
use crate::report::text::{for_picture, for_picture_line};
use crate::report::EpochMetrics;

/// Size of a curves picture in pixels.
pub const CURVES_SIZE: (u32, u32) = (1100, 460);

/// One line of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// `(epoch, value)` points; a non-finite value breaks the line there ([`segments`]).
    pub points: Vec<(f64, f64)>,
}

/// Where a panel's legend goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Corner {
    /// Top right: free in loss panels, whose curves fall.
    UpperRight,
    /// Bottom right: free in accuracy panels, whose curves rise.
    LowerRight,
}

/// A y range for losses: from 0 to a little above the largest finite value (NaN and ±inf are
/// not drawn, so they do not count).
pub(crate) fn loss_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    let top = max * 1.08;
    0.0..match top {
        t if !t.is_finite() => max,
        t if t > 0.0 => t,
        _ => 1.0,
    }
}

/// A y range for accuracies in percent: from a multiple of 5 a little below the lowest value to
/// 100.
pub(crate) fn accuracy_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let min = values.filter(|v| v.is_finite()).fold(100.0, f64::min);
    let lo = ((min - 2.0) / 5.0).floor() * 5.0;
    lo.clamp(0.0, 95.0)..100.0
}

/// The x range of `epochs` epochs, padded so the first and last points stay off the frame, and
/// its ticks: every epoch up to 12, else a round step (2, 5, 10, 20, 50, ...).
pub(crate) fn epoch_axis(epochs: usize) -> (Range<f64>, Vec<f64>) {
    let n = epochs.max(1);
    let pad = (0.04 * (n - 1) as f64).max(0.3);
    let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]
        .into_iter()
        .find(|s| n / s <= 12)
        .unwrap_or(n.div_ceil(10).max(1));
    let mut ticks: Vec<f64> = std::iter::once(1)
        .chain((step..=n).step_by(step).filter(|&e| e > 1))
        .map(|e| e as f64)
        .collect();
    ticks.dedup();
    (1.0 - pad..n as f64 + pad, ticks)
}

/// Decimals of axis labels for a y span: fewer for wide spans.
pub(crate) fn decimals_for(span: f64) -> usize {
    match span {
        s if s >= 10.0 => 0,
        s if s >= 1.0 => 1,
        s if s >= 0.1 => 2,
        _ => 3,
    }
}

/// Draws one titled line chart of `lines` over epochs `1..=epochs` into `area`.
pub(crate) fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_desc: &str,
    lines: &[Line],
    epochs: usize,
    y: Range<f64>,
    legend: Corner,
) -> Result<(), PlotError> {
    let err = draw_err("curves");
    // plotters formats custom ticks only on integer axes: x counts tenths of an epoch.
    let (x, ticks) = epoch_axis(epochs);
    let tenths = |e: f64| (e * 10.0).round() as i32;
    let x = tenths(x.start)..tenths(x.end);
    let ticks: Vec<i32> = ticks.into_iter().map(tenths).collect();
    let decimals = decimals_for(y.end - y.start);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(17.0, &BLACK))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x.with_key_points(ticks), y)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .y_labels(8)
        .x_label_formatter(&|e| (e / 10).to_string())
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .label_style(text(13.0, &BLACK))
        .axis_desc_style(text(14.0, &BLACK))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(&err)?;
    let markers = epochs <= 40;
    for line in lines {
        let color = line.color;
        let pieces = segments(&line.points);
        let mut pieces = pieces.into_iter();
        // The first piece (possibly none) carries the legend entry, so a line with no point to
        // draw is still named.
        let first: &[(f64, f64)] = pieces.next().unwrap_or(&[]);
        let series = |piece: &[(f64, f64)]| {
            LineSeries::new(
                piece
                    .iter()
                    .map(|&(e, v)| (tenths(e), v))
                    .collect::<Vec<_>>(),
                color.stroke_width(2),
            )
        };
        chart
            .draw_series(series(first))
            .map_err(&err)?
            .label(for_picture(&line.label))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        for piece in pieces {
            chart.draw_series(series(piece)).map_err(&err)?;
        }
        if markers {
            chart
                .draw_series(
                    line.points
                        .iter()
                        .filter(|(e, v)| e.is_finite() && v.is_finite())
                        .map(|&(e, v)| Circle::new((tenths(e), v), 3, color.filled())),
                )
                .map_err(&err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(match legend {
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
        })
        .label_font(text(13.0, &BLACK))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(&err)?;
    Ok(())
}

/// Draws a run's train/test loss (left) and accuracy (right) per epoch into `area`: the rows
/// [`check_metrics`] keeps, with a break in a line wherever its value is not finite.
pub fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    metrics: &[EpochMetrics],
) -> Result<(), PlotError> {
    let metrics = &check_metrics(metrics).rows;
    if metrics.is_empty() {
        return Err(PlotError::Empty("no epoch in metrics".into()));
    }
    area.fill(&WHITE).map_err(draw_err("curves"))?;
    let area = area
        .titled(&for_picture_line(title), text(18.0, &BLACK))
        .map_err(draw_err("curves"))?;
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w / 2);
    let epochs = metrics.iter().map(|m| m.epoch).max().unwrap_or(1);
    let series = |label: &str, color: usize, f: fn(&EpochMetrics) -> f64| Line {
        label: label.into(),
        color: PALETTE[color],
        points: metrics.iter().map(|m| (m.epoch as f64, f(m))).collect(),
    };
    let mut losses = vec![
        series("train", 0, |m| m.train_loss),
        series("test", 1, |m| m.test_loss),
    ];
    let mut accs = vec![
        series("train", 0, |m| m.train_acc),
        series("test", 1, |m| m.test_acc),
    ];
    // The validation split's lines, where the run has one (a missing value breaks the line).
    if metrics.iter().any(|m| m.val_acc.is_some()) {
        losses.push(series("val", 2, |m| m.val_loss.unwrap_or(f64::NAN)));
        accs.push(series("val", 2, |m| m.val_acc.unwrap_or(f64::NAN)));
    }
    let y_loss = loss_range(losses.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let y_acc = accuracy_range(accs.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    line_panel(
        &left,
        "loss",
        "loss",
        &losses,
        epochs,
        y_loss,
        Corner::UpperRight,
    )?;
    line_panel(
        &right,
        "accuracy",
        "accuracy (%)",
        &accs,
        epochs,
        y_acc,
        Corner::LowerRight,
    )
}

/// The title of a run's curves: experiment name and final test accuracy.
fn curves_title(experiment: &str, metrics: &[EpochMetrics]) -> String {
    let experiment = for_picture(experiment);
    match check_metrics(metrics).rows.last() {
        Some(m) => format!(
            "{experiment}: loss and accuracy per epoch (final test accuracy {:.2}%)",
            m.test_acc
        ),
        None => experiment.into_owned(),
    }
}

/// `curves.png`: [`draw_curves`] on a [`CURVES_SIZE`] picture.
pub fn curves_png(experiment: &str, metrics: &[EpochMetrics]) -> Result<Picture, PlotError> {
    let (w, h) = CURVES_SIZE;
    let mut pic = Picture::new("curves", w, h, WHITE)?;
    let title = curves_title(experiment, metrics);
    pic.draw("curves", |area| draw_curves(area, &title, metrics))?;
    Ok(pic)
}

/// `curves.svg`: the same drawing as [`curves_png`], as SVG text.
pub fn curves_svg(experiment: &str, metrics: &[EpochMetrics]) -> Result<String, PlotError> {
    let title = curves_title(experiment, metrics);
    svg(CURVES_SIZE, |area| draw_curves(area, &title, metrics))
}

/// Runs `draw` on an SVG drawing area of `size` and returns the SVG text.
pub(crate) fn svg<F>(size: (u32, u32), draw: F) -> Result<String, PlotError>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), PlotError>,
{
    super::font::ensure_registered();
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&area)?;
        area.present().map_err(draw_err("SVG"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_axes() {
        assert_eq!(epoch_axis(1), (0.7..1.3, vec![1.0]));
        assert_eq!(epoch_axis(3).1, vec![1.0, 2.0, 3.0]);
        assert_eq!(epoch_axis(12).1.len(), 12);
        assert_eq!(
            epoch_axis(30).1,
            vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        let (x, ticks) = epoch_axis(200);
        assert!(x.start < 1.0 && x.end > 200.0);
        assert_eq!(ticks.len(), 11, "{ticks:?}");
    }

    #[test]
    fn ranges() {
        assert_eq!(loss_range([0.5, 2.0, f64::NAN].into_iter()), 0.0..2.16);
        assert_eq!(loss_range(std::iter::empty()), 0.0..1.0);
        assert_eq!(
            loss_range([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1.0].into_iter()),
            0.0..1.08,
            "only finite values count"
        );
        assert_eq!(
            loss_range([f64::MAX].into_iter()),
            0.0..f64::MAX,
            "no overflow"
        );
        assert_eq!(
            accuracy_range([f64::NEG_INFINITY, f64::NAN, 97.0].into_iter()),
            95.0..100.0
        );
        assert_eq!(accuracy_range([97.3, 99.0].into_iter()), 95.0..100.0);
        assert_eq!(accuracy_range([12.0].into_iter()), 10.0..100.0);
        assert_eq!(accuracy_range([1.0].into_iter()), 0.0..100.0);
        assert_eq!(accuracy_range([100.0].into_iter()), 95.0..100.0);
    }
}
