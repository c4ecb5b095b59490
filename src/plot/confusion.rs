//! The confusion matrix of a run's final evaluation: `confusion.png`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::{text, text_size};
use super::grid::fit;
use super::{draw_err, Picture, PlotError};
use crate::report::text::{for_picture, for_picture_line};

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// Class names, by index.
    pub classes: Vec<String>,
    /// `counts[t * classes.len() + p]`: test images of class `t` predicted as `p`.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// Counts `truth[i]` against `predicted[i]`; pairs with a class outside `classes` are left
    /// out (so are the extra entries when the lengths differ).
    pub fn from_predictions(classes: &[String], truth: &[u32], predicted: &[u32]) -> Self {
        let k = classes.len();
        let mut counts = vec![0; k * k];
        for (&t, &p) in truth.iter().zip(predicted) {
            let (t, p) = (t as usize, p as usize);
            if t < k && p < k {
                counts[t * k + p] += 1;
            }
        }
        ConfusionMatrix {
            classes: classes.to_vec(),
            counts,
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no classes.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Images of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.len() + predicted]
    }

    /// Images of class `truth`.
    pub fn row_total(&self, truth: usize) -> u64 {
        let k = self.len();
        self.counts[truth * k..(truth + 1) * k].iter().sum()
    }

    /// Images counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Share of the images counted that are on the diagonal, in percent.
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.len()).map(|c| self.count(c, c)).sum();
        100.0 * right as f64 / self.total().max(1) as f64
    }
}

/// The line under the title.
const SUBTITLE: &str =
    "rows: true class, columns: predicted class; shading: share of the row; right: row accuracy";

/// White to dark blue (matplotlib's `Blues` end points) for a share `f` in `[0, 1]`.
pub fn shade(f: f64) -> RGBColor {
    let f = f.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// Draws `cm`: rows are true classes, columns predicted ones; each cell holds its count and is
/// shaded by its share of the row; the row's accuracy (recall) is written at its right. Class
/// names are cut with [`for_picture`] and the title with [`for_picture_line`], so the time to
/// draw does not grow with their length.
pub fn confusion_png(title: &str, cm: &ConfusionMatrix) -> Result<Picture, PlotError> {
    let k = cm.len() as u32;
    if k == 0 {
        return Err(PlotError::Empty(
            "a confusion matrix without classes".into(),
        ));
    }
    let title = for_picture_line(title);
    let names: Vec<_> = cm.classes.iter().map(|c| for_picture(c)).collect();
    let cell = (600 / k).clamp(6, 64);
    let label_size = if cell >= 16 { 13.0 } else { 0.0 };
    let max_label = 150;
    let label_w = if label_size > 0.0 {
        names
            .iter()
            .map(|c| text_size(c, label_size).0)
            .max()
            .unwrap_or(0)
            .min(max_label)
    } else {
        0
    };
    let left = 30 + label_w + 10;
    let top = 64;
    let right_col = 70;
    let width = (left + k * cell + right_col)
        .max(text_size(&title, 16.0).0 + 20)
        .max(text_size(SUBTITLE, 12.0).0 + 20);
    let height = top + k * cell + 10 + label_w + 34;
    let mut pic = Picture::new("confusion matrix", width, height, WHITE)?;
    pic.draw("confusion matrix", |area| {
        let err = draw_err("confusion matrix");
        let title_style = text(16.0, &BLACK);
        let title = fit(area, &title, &title_style, width - 20)?;
        area.draw_text(&title, &title_style, (10, 10))
            .map_err(&err)?;
        let sub = text(12.0, &RGBColor(90, 90, 90));
        area.draw_text(SUBTITLE, &sub, (10, 34)).map_err(&err)?;
        let count_size = f64::from(cell.min(40)) * 0.32 + 2.0;
        for t in 0..k as usize {
            let row = cm.row_total(t).max(1) as f64;
            for p in 0..k as usize {
                let n = cm.count(t, p);
                let f = n as f64 / row;
                let (x, y) = (
                    (left + p as u32 * cell) as i32,
                    (top + t as u32 * cell) as i32,
                );
                area.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    shade(f).filled(),
                ))
                .map_err(&err)?;
                if n > 0 && cell >= 20 {
                    let color = if f > 0.5 { WHITE } else { BLACK };
                    let style = text(count_size, &color).pos(Pos::new(HPos::Center, VPos::Center));
                    let s = n.to_string();
                    let (tw, _) = area.estimate_text_size(&s, &style).map_err(&err)?;
                    if tw + 2 <= cell {
                        let c = (x + cell as i32 / 2, y + cell as i32 / 2);
                        area.draw_text(&s, &style, c).map_err(&err)?;
                    }
                }
            }
            if cell >= 12 {
                let acc = match cm.row_total(t) {
                    0 => "-".to_owned(),
                    _ => format!("{:.1}%", 100.0 * cm.count(t, t) as f64 / row),
                };
                let style = text(12.0, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
                let y = (top + t as u32 * cell + cell / 2) as i32;
                let x = (left + k * cell + 6) as i32;
                area.draw_text(&acc, &style, (x, y)).map_err(&err)?;
            }
        }
        let grid = RGBColor(200, 200, 200);
        area.draw(&Rectangle::new(
            [
                (left as i32, top as i32),
                ((left + k * cell) as i32, (top + k * cell) as i32),
            ],
            grid.stroke_width(1),
        ))
        .map_err(&err)?;
        if label_size > 0.0 {
            for (i, name) in names.iter().enumerate() {
                let mid = (i as u32 * cell + cell / 2) as i32;
                let style = text(label_size, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
                let name = fit(area, name, &style, max_label)?;
                area.draw_text(&name, &style, ((left - 8) as i32, top as i32 + mid))
                    .map_err(&err)?;
                let rotated = style.transform(FontTransform::Rotate270);
                let y = (top + k * cell + 8) as i32;
                area.draw_text(&name, &rotated, (left as i32 + mid, y))
                    .map_err(&err)?;
            }
        }
        let axis = text(14.0, &BLACK).pos(Pos::new(HPos::Center, VPos::Center));
        area.draw_text(
            "predicted class",
            &axis,
            ((left + k * cell / 2) as i32, (height - 16) as i32),
        )
        .map_err(&err)?;
        area.draw_text(
            "true class",
            &axis.transform(FontTransform::Rotate270),
            (14, (top + k * cell / 2) as i32),
        )
        .map_err(&err)?;
        Ok(())
    })?;
    Ok(pic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_a_known_prediction_set() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let truth = [0, 0, 0, 1, 1, 2, 2, 2, 2, 7];
        let pred = [0, 0, 1, 1, 2, 2, 2, 0, 2, 0];
        let cm = ConfusionMatrix::from_predictions(&classes, &truth, &pred);
        #[rustfmt::skip]
        let want = [
            2, 1, 0,
            0, 1, 1,
            1, 0, 3,
        ];
        assert_eq!(cm.counts, want);
        assert_eq!(cm.count(2, 0), 1);
        assert_eq!(cm.row_total(2), 4);
        assert_eq!(cm.total(), 9, "the out-of-range label 7 is left out");
        assert!((cm.accuracy() - 600.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn shading_runs_from_white_to_blue() {
        assert_eq!(shade(0.0), RGBColor(247, 251, 255));
        assert_eq!(shade(1.0), RGBColor(8, 48, 107));
        assert_eq!(shade(2.0), shade(1.0));
    }
}
