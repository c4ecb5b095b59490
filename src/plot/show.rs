//! Images as an experiment's transforms deliver them: `runner show-data` and `predictions.png`.

use plotters::prelude::*;
use rand::Rng;

use super::grid::{default_columns, grid_picture, GridLayout, Panel, Tile};
use super::{Picture, PlotError, RIGHT, WRONG};
use crate::data::{derived_rng, Dataset, Pipeline, Stream};
use crate::experiment::{Experiment, Transform};
use crate::report::text::for_picture;

pub use crate::data::Split;

/// A data grid and where its cells are.
#[derive(Debug, Clone)]
pub struct DataFigure {
    /// The picture.
    pub picture: Picture,
    /// One layout per panel: one panel, or the originals then the permuted images when the
    /// transforms hold a pixel permutation.
    pub layouts: Vec<GridLayout>,
}

/// One transformed image made viewable: `pipe` applied to `raw` (CHW bytes) with `rng`, every
/// normalisation undone ([`Pipeline::denormalize`]), clamped to `[0, 1]` and rounded to bytes.
/// Three channels are RGB; any other channel count shows channel 0 in grey.
pub fn display_image(pipe: &Pipeline, raw: &[u8], rng: &mut impl Rng) -> Picture {
    let mut out = vec![0f32; pipe.output_len()];
    pipe.apply(raw, rng, &mut out);
    pipe.denormalize(&mut out);
    let [c, h, w] = pipe.output_shape();
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let hw = h * w;
    let pixels = (0..hw)
        .flat_map(|i| {
            if c == 3 {
                [byte(out[i]), byte(out[hw + i]), byte(out[2 * hw + i])]
            } else {
                let g = byte(out[i]);
                [g, g, g]
            }
        })
        .collect();
    Picture {
        width: w as u32,
        height: h as u32,
        pixels,
    }
}

/// Whether `transforms` hold a pixel permutation.
fn permutes(transforms: &[Transform]) -> bool {
    transforms
        .iter()
        .any(|t| matches!(t, Transform::PixelPermutation { .. }))
}

/// `transforms` without their pixel permutations: what a person can recognise.
fn without_permutation(transforms: &[Transform]) -> Vec<Transform> {
    transforms
        .iter()
        .filter(|t| !matches!(t, Transform::PixelPermutation { .. }))
        .cloned()
        .collect()
}

/// The name of class `label` of `data`, as drawn ([`for_picture`]).
fn class_name(data: &Dataset, label: u8) -> String {
    data.classes
        .get(usize::from(label))
        .map_or_else(|| label.to_string(), |c| for_picture(c).into_owned())
}

/// The first `count` images of `data` through `transforms`, each captioned by `caption`. The
/// random transforms draw from the generator of the first batch of epoch 1, so every panel built
/// from the same experiment sees the same crops and flips.
fn tiles(
    exp: &Experiment,
    data: &Dataset,
    transforms: &[Transform],
    count: usize,
    caption: impl Fn(usize) -> (Vec<(String, RGBColor)>, Option<RGBColor>),
) -> Vec<Tile> {
    let pipe = Pipeline::new(transforms, data.shape);
    let mut rng = derived_rng(exp.seed(), Stream::Augment, 1, 0);
    (0..count.min(data.len()))
        .map(|i| {
            let (caption, frame) = caption(i);
            Tile {
                image: display_image(&pipe, data.image(i), &mut rng),
                caption,
                frame,
            }
        })
        .collect()
}

/// The first `count` images of `data` (the `split` part of `exp`'s data set) as its transforms
/// deliver them, denormalised, with class names under them. With a pixel permutation in the
/// transforms, the originals (the same transforms without it) and the permuted images are shown
/// side by side, in the same order.
pub fn data_figure(
    exp: &Experiment,
    data: &Dataset,
    split: Split,
    count: usize,
) -> Result<DataFigure, PlotError> {
    let transforms = match split {
        Split::Train => &exp.data().train_transforms,
        Split::Val | Split::Test => &exp.data().test_transforms,
    };
    let n = count.min(data.len());
    if n == 0 {
        return Err(PlotError::Empty(format!(
            "the {} split holds no image",
            split.name()
        )));
    }
    let caption = |i: usize| (vec![(class_name(data, data.labels[i]), BLACK)], None);
    let panels = if permutes(transforms) {
        vec![
            Panel {
                title: "original".into(),
                tiles: tiles(exp, data, &without_permutation(transforms), n, caption),
            },
            Panel {
                title: "pixel-permuted (what the network sees)".into(),
                tiles: tiles(exp, data, transforms, n, caption),
            },
        ]
    } else {
        vec![Panel {
            title: String::new(),
            tiles: tiles(exp, data, transforms, n, caption),
        }]
    };
    let title = format!(
        "{}: {} images 1-{n} of {} through the {} transforms",
        for_picture(exp.name()),
        split.name(),
        data.len(),
        split.name()
    );
    let (picture, layouts) = grid_picture(&title, &panels, default_columns(n))?;
    Ok(DataFigure { picture, layouts })
}

/// The first `count` test images with their true and predicted class; mistakes are framed and
/// captioned in red. `predictions[i]` is the class predicted for test image `i`. Images are shown
/// through the test transforms without any pixel permutation, so a person can read them.
pub fn predictions_figure(
    exp: &Experiment,
    test: &Dataset,
    predictions: &[u32],
    count: usize,
) -> Result<Picture, PlotError> {
    let n = count.min(test.len()).min(predictions.len());
    if n == 0 {
        return Err(PlotError::Empty("no test predictions".into()));
    }
    let name = |c: u32| u8::try_from(c).map_or_else(|_| c.to_string(), |c| class_name(test, c));
    let wrong = (0..n)
        .filter(|&i| predictions[i] != u32::from(test.labels[i]))
        .count();
    let caption = |i: usize| {
        let (truth, pred) = (u32::from(test.labels[i]), predictions[i]);
        let ok = truth == pred;
        (
            vec![
                (format!("true: {}", name(truth)), BLACK),
                (
                    format!("pred: {}", name(pred)),
                    if ok { RIGHT } else { WRONG },
                ),
            ],
            (!ok).then_some(WRONG),
        )
    };
    let panel = Panel {
        title: String::new(),
        tiles: tiles(
            exp,
            test,
            &without_permutation(&exp.data().test_transforms),
            n,
            caption,
        ),
    };
    let title = format!(
        "{}: test images 1-{n}, true and predicted class ({wrong} of {n} wrong, framed in red)",
        for_picture(exp.name())
    );
    let cols = if n >= 24 { 6 } else { default_columns(n) };
    Ok(grid_picture(&title, &[panel], cols)?.0)
}
