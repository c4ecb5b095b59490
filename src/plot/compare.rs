//! Several runs side by side: `compare_curves.png` / `.svg` (test accuracy and loss per epoch,
//! one line per run) and `compare_accuracy.png` (final test accuracy per run).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::curves::{accuracy_range, line_panel, loss_range, svg, Corner, Line};
use super::font::{text, text_size};
use super::grid::fit;
use super::points::check_metrics;
use super::{
    draw_err, write_file, Picture, PlotError, COMPARE_ACCURACY_PNG, COMPARE_CURVES_PNG,
    COMPARE_CURVES_SVG, PALETTE,
};
use crate::report::text::for_picture;
use crate::report::{
    read_metrics, read_summary, EpochMetrics, Summary, METRICS_FILE, SUMMARY_FILE,
};

/// One run to compare: its label (legend and bar text), its `metrics.csv` rows and its summary.
pub type ComparedRun = (String, Vec<EpochMetrics>, Summary);

/// Size of the overlaid curves in pixels.
pub const COMPARE_CURVES_SIZE: (u32, u32) = (1200, 520);

/// Reads a run directory's `metrics.csv` and `summary.csv`.
pub fn load_run(dir: &Path) -> Result<(Vec<EpochMetrics>, Summary), PlotError> {
    let metrics = read_metrics(&dir.join(METRICS_FILE))?;
    let summary = read_summary(&dir.join(SUMMARY_FILE))?;
    Ok((metrics, summary))
}

/// Draws the comparison pictures of `runs` into `out_dir` (which must exist):
/// [`COMPARE_CURVES_PNG`], [`COMPARE_CURVES_SVG`] and [`COMPARE_ACCURACY_PNG`]. Colours follow
/// the order of `runs` and match between the pictures. Returns the paths written.
pub fn plot_comparison(runs: &[ComparedRun], out_dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    if runs.is_empty() {
        return Err(PlotError::Empty("no run to compare".into()));
    }
    let (w, h) = COMPARE_CURVES_SIZE;
    let mut curves = Picture::new("comparison curves", w, h, WHITE)?;
    curves.draw("comparison curves", |area| draw_compare_curves(area, runs))?;
    let svg_text = svg(COMPARE_CURVES_SIZE, |area| draw_compare_curves(area, runs))?;
    let bars = accuracy_bars(runs)?;
    Ok(vec![
        write_file(out_dir, COMPARE_CURVES_PNG, &curves.png()?)?,
        write_file(out_dir, COMPARE_CURVES_SVG, svg_text.as_bytes())?,
        write_file(out_dir, COMPARE_ACCURACY_PNG, &bars.png()?)?,
    ])
}

/// Test accuracy (left) and test loss (right) per epoch, one line per run.
pub fn draw_compare_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[ComparedRun],
) -> Result<(), PlotError> {
    area.fill(&WHITE).map_err(draw_err("comparison curves"))?;
    let title = format!("{} runs: test accuracy and loss per epoch", runs.len());
    let area = area
        .titled(&title, text(18.0, &BLACK))
        .map_err(draw_err("comparison curves"))?;
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w / 2);
    let epochs = runs
        .iter()
        .flat_map(|r| r.1.iter().map(|m| m.epoch))
        .max()
        .unwrap_or(1);
    // The rows drawn, once per run for both panels.
    let drawn: Vec<Vec<EpochMetrics>> = runs.iter().map(|r| check_metrics(&r.1).rows).collect();
    let lines = |f: fn(&EpochMetrics) -> f64| -> Vec<Line> {
        runs.iter()
            .zip(&drawn)
            .enumerate()
            .map(|(i, ((label, _, _), rows))| Line {
                label: label.clone(),
                color: PALETTE[i % PALETTE.len()],
                points: rows.iter().map(|m| (m.epoch as f64, f(m))).collect(),
            })
            .collect()
    };
    let accs = lines(|m| m.test_acc);
    let losses = lines(|m| m.test_loss);
    let y_acc = accuracy_range(accs.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let y_loss = loss_range(losses.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    line_panel(
        &left,
        "test accuracy",
        "accuracy (%)",
        &accs,
        epochs,
        y_acc,
        Corner::LowerRight,
    )?;
    line_panel(
        &right,
        "test loss",
        "loss",
        &losses,
        epochs,
        y_loss,
        Corner::UpperRight,
    )
}

/// Horizontal bars of the final test accuracy of every run, labelled, on a 0-100% axis.
pub fn accuracy_bars(runs: &[ComparedRun]) -> Result<Picture, PlotError> {
    let label_style = text(13.0, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
    let max_label = 360;
    let labels: Vec<_> = runs.iter().map(|r| for_picture(&r.0)).collect();
    let label_w = labels
        .iter()
        .map(|l| text_size(l, 13.0).0)
        .max()
        .unwrap_or(0)
        .min(max_label);
    let (bar_h, gap) = (22u32, 8u32);
    let (left, top, plot_w) = (20 + label_w + 10, 50u32, 600u32);
    let width = left + plot_w + 80;
    let height = top + runs.len() as u32 * (bar_h + gap) + 40;
    let mut pic = Picture::new("accuracy bars", width, height, WHITE)?;
    pic.draw("accuracy bars", |area| {
        let err = draw_err("accuracy bars");
        area.draw_text("final test accuracy per run", &text(16.0, &BLACK), (10, 12))
            .map_err(&err)?;
        let bottom = top + runs.len() as u32 * (bar_h + gap);
        let x_of = |acc: f64| left as i32 + (acc.clamp(0.0, 100.0) / 100.0 * plot_w as f64) as i32;
        for tick in (0..=100).step_by(10) {
            let x = x_of(f64::from(tick));
            area.draw(&PathElement::new(
                vec![(x, top as i32 - 4), (x, bottom as i32)],
                RGBColor(225, 225, 225),
            ))
            .map_err(&err)?;
            let style = text(12.0, &BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            area.draw_text(&format!("{tick}%"), &style, (x, bottom as i32 + 4))
                .map_err(&err)?;
        }
        for (i, ((_, _, summary), label)) in runs.iter().zip(&labels).enumerate() {
            let y = (top + i as u32 * (bar_h + gap)) as i32;
            let color = PALETTE[i % PALETTE.len()];
            let acc = summary.test_acc;
            area.draw(&Rectangle::new(
                [(left as i32, y), (x_of(acc), y + bar_h as i32)],
                color.filled(),
            ))
            .map_err(&err)?;
            let mid = y + bar_h as i32 / 2;
            let label = fit(area, label, &label_style, max_label)?;
            area.draw_text(&label, &label_style, (left as i32 - 8, mid))
                .map_err(&err)?;
            let value = text(13.0, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw_text(&format!("{acc:.2}%"), &value, (x_of(acc) + 6, mid))
                .map_err(&err)?;
        }
        area.draw(&PathElement::new(
            vec![(left as i32, top as i32 - 4), (left as i32, bottom as i32)],
            BLACK,
        ))
        .map_err(&err)?;
        Ok(())
    })?;
    Ok(pic)
}
