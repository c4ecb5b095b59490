//! The evaluation of a model on one split of the data: loss, accuracy, per-class accuracy and
//! every prediction. Shared by the training loop and `runner eval`.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::average::WeightAverage;
use super::run::TrainError;
use super::step::{loss, predictions};
use crate::data::{epoch_batches, Dataset, Pipeline};
use crate::experiment::{Experiment, Tta};
use crate::interrupt::Signal;
use crate::model::Model;
use crate::plot::ConfusionMatrix;
use crate::report::ClassAccuracy;

/// The model's results on one split of the data.
pub(crate) struct Eval {
    /// Mean loss per image.
    pub(crate) loss: f64,
    /// Images classified correctly, in percent.
    pub(crate) acc: f64,
    /// Images evaluated per second of wall-clock time.
    pub(crate) images_per_sec: f64,
    /// Accuracy of every class (`per_class.csv`).
    pub(crate) per_class: Vec<ClassAccuracy>,
    /// The predicted class of every image, in data set order.
    pub(crate) predictions: Vec<u32>,
    /// The network's output for every image, `[images, classes]` row-major in data set order,
    /// as `f32`: only from [`evaluate_keeping_outputs`] (empty otherwise).
    pub(crate) outputs: Vec<f32>,
}

impl Eval {
    /// The confusion matrix of these predictions against the labels of `data`, the set they
    /// were made on; classes as in [`Eval::per_class`].
    pub(crate) fn confusion(&self, exp: &Experiment, data: &Dataset) -> ConfusionMatrix {
        let truth: Vec<u32> = data.labels.iter().map(|&l| u32::from(l)).collect();
        ConfusionMatrix::from_predictions(&class_names(exp, data), &truth, &self.predictions)
    }
}

/// The class names of `data` by index, as many as the experiment's data set has (a class
/// without a name is called by its index): the rows of `per_class.csv` and the confusion matrix.
pub(crate) fn class_names(exp: &Experiment, data: &Dataset) -> Vec<String> {
    (0..data.classes.len().max(exp.data().dataset.classes()))
        .map(|c| {
            data.classes
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.to_string())
        })
        .collect()
}

/// Runs `model` over every image of `data` (a split of the experiment's data set, through the
/// test transforms `pipe`) in batches of `test_batch_size`, in data set order: the one
/// evaluation both a training run (after every epoch) and `runner eval` use. `stop` is asked
/// before every batch.
pub(crate) fn evaluate(
    model: &Model,
    exp: &Experiment,
    data: &Arc<Dataset>,
    pipe: &Arc<Pipeline>,
    device: &Device,
    epoch: usize,
    stop: &dyn Fn() -> Option<Signal>,
) -> Result<Eval, Stop> {
    evaluate_with(model, exp, data, pipe, device, epoch, stop, false)
}

/// [`evaluate`], also keeping the network's output for every image ([`Eval::outputs`]): what
/// `runner eval --logits` writes, for comparisons with another implementation of the model.
pub(crate) fn evaluate_keeping_outputs(
    model: &Model,
    exp: &Experiment,
    data: &Arc<Dataset>,
    pipe: &Arc<Pipeline>,
    device: &Device,
    stop: &dyn Fn() -> Option<Signal>,
) -> Result<Eval, Stop> {
    evaluate_with(
        model,
        exp,
        data,
        pipe,
        device,
        // The test pipeline's draws are those of the run's last epoch (with `steps`, where
        // the count needs the data, of epoch 1).
        exp.train().length.known_epochs().unwrap_or(1),
        stop,
        true,
    )
}

#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "evaluate", skip_all, fields(epoch))]
fn evaluate_with(
    model: &Model,
    exp: &Experiment,
    data: &Arc<Dataset>,
    pipe: &Arc<Pipeline>,
    device: &Device,
    epoch: usize,
    stop: &dyn Fn() -> Option<Signal>,
    keep_outputs: bool,
) -> Result<Eval, Stop> {
    let started = Instant::now();
    let names = class_names(exp, data);
    let classes = names.len();
    let (mut correct, mut total) = (vec![0usize; classes], vec![0usize; classes]);
    let mut loss_sum = 0f64;
    let mut n = 0usize;
    let mut all_predictions = Vec::with_capacity(data.len());
    let mut outputs = Vec::new();
    for batch in epoch_batches(
        data.clone(),
        pipe.clone(),
        exp.data().test_batch_size,
        false,
        exp.seed(),
        epoch,
        None,
    ) {
        if let Some(signal) = stop() {
            return Err(Stop::Signal(signal));
        }
        let b = batch.labels.len();
        let x = Tensor::from_vec(batch.images, batch.shape.to_vec(), device)?;
        let y = Tensor::from_vec(batch.labels.clone(), b, device)?;
        let loss_spec = exp.train().loss;
        let (batch_loss, preds) = crate::runtime::in_pool(|| -> candle_core::Result<_> {
            let out = tta_logits(model, &x, exp.data().tta)?;
            let l = loss(loss_spec, &out, &y)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            if keep_outputs {
                outputs.extend(out.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok((l, predictions(&out)?))
        })?;
        loss_sum += batch_loss * b as f64;
        for (&p, t) in preds.iter().zip(&batch.labels) {
            let t = *t as usize;
            if t < classes {
                total[t] += 1;
                correct[t] += usize::from(p as usize == t);
            }
        }
        all_predictions.extend(preds);
        n += b;
    }
    let seconds = started.elapsed().as_secs_f64();
    let all_correct: usize = correct.iter().sum();
    let per_class = names
        .into_iter()
        .enumerate()
        .map(|(c, class)| ClassAccuracy {
            class,
            correct: correct[c],
            total: total[c],
            accuracy: if total[c] == 0 {
                0.0
            } else {
                100.0 * correct[c] as f64 / total[c] as f64
            },
        })
        .collect();
    Ok(Eval {
        loss: loss_sum / n.max(1) as f64,
        acc: 100.0 * all_correct as f64 / n.max(1) as f64,
        images_per_sec: n as f64 / seconds.max(1e-9),
        per_class,
        predictions: all_predictions,
        outputs,
    })
}

/// The network's logits for the batch `x` (`[batch, channels, height, width]`, after the test
/// transforms) under test-time augmentation `tta`, computed as airbench's `infer`
/// (`tta_level` 0, 1 and 2): the mean of the logits of `x` and its mirror for `flip`; for
/// `flip_translate`, half of that plus half the mean of the same for `x` reflect-padded by one
/// pixel and cropped at the top left and at the bottom right.
pub(crate) fn tta_logits(model: &Model, x: &Tensor, tta: Tta) -> candle_core::Result<Tensor> {
    match tta {
        Tta::None => model.infer(x),
        Tta::Flip => mirror_logits(model, x),
        Tta::FlipTranslate => {
            let (_, _, h, w) = x.dims4()?;
            let shifted = |down_right: bool| -> candle_core::Result<Tensor> {
                let rows = translate_index(h, down_right, x.device())?;
                let cols = translate_index(w, down_right, x.device())?;
                x.index_select(&rows, 2)?.index_select(&cols, 3)
            };
            let plain = mirror_logits(model, x)?;
            let up_left = mirror_logits(model, &shifted(false)?)?;
            let down_right = mirror_logits(model, &shifted(true)?)?;
            let translated = ((up_left + down_right)? * 0.5)?;
            (plain * 0.5)? + (translated * 0.5)?
        }
    }
}

/// `0.5 * net(x) + 0.5 * net(x.flip(-1))`.
fn mirror_logits(model: &Model, x: &Tensor) -> candle_core::Result<Tensor> {
    let w = x.dim(3)?;
    let reversed: Vec<u32> = (0..w as u32).rev().collect();
    let flipped = x.index_select(&Tensor::new(reversed, x.device())?, 3)?;
    (model.infer(x)? * 0.5)? + (model.infer(&flipped)? * 0.5)?
}

/// The source index of each position of one axis of length `n` (>= 2) after reflect-padding it
/// by one and cropping `n` positions at the start (`[1, 0, 1, ..., n-2]`) or at the end
/// (`[1, 2, ..., n-1, n-2]`).
fn translate_index(n: usize, at_end: bool, device: &Device) -> candle_core::Result<Tensor> {
    let reflect = |p: i64| -> u32 {
        let q = p - 1;
        let q = if q < 0 {
            -q
        } else if q >= n as i64 {
            2 * (n as i64 - 1) - q
        } else {
            q
        };
        q as u32
    };
    let start = if at_end { 2 } else { 0 };
    let idx: Vec<u32> = (start..start + n as i64).map(reflect).collect();
    Tensor::new(idx, device)
}

/// [`evaluate`] of `model` and then, when the run keeps one, of the weight `average`: the
/// `test_` and `ema_test_` numbers of an epoch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate_with_average(
    model: &Model,
    average: Option<&dyn WeightAverage>,
    exp: &Experiment,
    data: &Arc<Dataset>,
    pipe: &Arc<Pipeline>,
    device: &Device,
    epoch: usize,
    stop: &dyn Fn() -> Option<Signal>,
) -> Result<(Eval, Option<Eval>), Stop> {
    let eval = evaluate(model, exp, data, pipe, device, epoch, stop)?;
    let averaged = average
        .map(|a| evaluate(a.model(), exp, data, pipe, device, epoch, stop))
        .transpose()?;
    Ok((eval, averaged))
}

/// Why the training loop stopped before the end of an epoch.
pub(crate) enum Stop {
    /// A signal asked.
    Signal(Signal),
    /// An error.
    Error(TrainError),
}

impl From<TrainError> for Stop {
    fn from(e: TrainError) -> Self {
        Stop::Error(e)
    }
}

impl From<candle_core::Error> for Stop {
    fn from(e: candle_core::Error) -> Self {
        Stop::Error(e.into())
    }
}

#[cfg(test)]
mod tta_tests {
    use super::*;
    use crate::graph::Graph;

    fn graph(layers: &str) -> Graph {
        let text = format!(
            "[data]\ndataset = \"synthetic\"\nsynthetic = {{ shape = [2, 3, 4], classes = 3 }}\n\
             [model]\nlayers = [{layers}]\n"
        );
        let checked = crate::check::check_str("tta.toml", &text, "tta");
        let rendered = checked.render();
        checked.result.unwrap_or_else(|| panic!("{rendered}")).1
    }

    /// Two `[2, 2, 3, 4]` images with distinct values everywhere.
    fn batch() -> Tensor {
        let v: Vec<f32> = (0..48)
            .map(|i| ((i * 37) % 48) as f32 / 47.0 - 0.3)
            .collect();
        Tensor::from_vec(v, (2, 2, 3, 4), &Device::Cpu).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Element `[n, c, y, x]` of a `[n, c, h, w]` array held as a flat vector.
    fn at(v: &[f32], [_, c_n, h, w]: [usize; 4], [n, c, y, x]: [usize; 4]) -> f32 {
        v[((n * c_n + c) * h + y) * w + x]
    }

    #[test]
    fn translate_indices_reflect_by_one_pixel() {
        let idx = |n, end| {
            translate_index(n, end, &Device::Cpu)
                .unwrap()
                .to_vec1::<u32>()
                .unwrap()
        };
        assert_eq!(idx(5, false), vec![1, 0, 1, 2, 3]);
        assert_eq!(idx(5, true), vec![1, 2, 3, 4, 3]);
        assert_eq!(idx(2, false), vec![1, 0]);
        assert_eq!(idx(2, true), vec![1, 0]);
    }

    #[test]
    fn no_tta_is_the_plain_forward_pass() {
        let model = Model::new(
            &graph("{ op = \"flatten\" }, { op = \"linear\", out = 3 }"),
            1,
            &Device::Cpu,
        )
        .unwrap();
        let x = batch();
        let plain = model.infer(&x).unwrap();
        assert_eq!(
            close(&tta_logits(&model, &x, Tta::None).unwrap(), &plain),
            0.0
        );
    }

    #[test]
    fn flip_tta_of_a_mirror_invariant_net_is_its_plain_output() {
        // A 1x1 convolution, then the mean over the whole image: invariant to mirroring.
        let model = Model::new(
            &graph("{ op = \"conv2d\", out = 4, kernel = 1 }, { op = \"relu\" }, { op = \"global_avg_pool\" }, { op = \"flatten\" }, { op = \"linear\", out = 3 }"),
            3,
            &Device::Cpu,
        )
        .unwrap();
        let x = batch();
        let plain = model.infer(&x).unwrap();
        let flip = tta_logits(&model, &x, Tta::Flip).unwrap();
        assert!(close(&flip, &plain) < 1e-6, "{}", close(&flip, &plain));
    }

    #[test]
    fn tta_of_a_linear_net_is_the_net_of_the_hand_averaged_views() {
        // For an affine net, the mean of the views' logits is the logits of the mean view, which
        // is computed here pixel by pixel from airbench's definition of the views.
        let model = Model::new(
            &graph("{ op = \"flatten\" }, { op = \"linear\", out = 3 }"),
            5,
            &Device::Cpu,
        )
        .unwrap();
        let x = batch();
        let shape = [2, 2, 3, 4];
        let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let reflect = |p: i64, n: usize| -> usize {
            let n = n as i64;
            (if p < 0 {
                -p
            } else if p >= n {
                2 * (n - 1) - p
            } else {
                p
            }) as usize
        };
        // pixel of the view: translated by (dy, dx) with reflection, then maybe mirrored
        let view = |i: [usize; 4], d: i64, mirror: bool| -> f32 {
            let [n, c, y, xx] = i;
            let xx = if mirror { shape[3] - 1 - xx } else { xx };
            let sy = reflect(y as i64 + d, shape[2]);
            let sx = reflect(xx as i64 + d, shape[3]);
            at(&v, shape, [n, c, sy, sx])
        };
        let mut flip_mean = Vec::new();
        let mut multi_mean = Vec::new();
        for n in 0..2 {
            for c in 0..2 {
                for y in 0..3 {
                    for xx in 0..4 {
                        let i = [n, c, y, xx];
                        let m = |d| 0.5 * (view(i, d, false) + view(i, d, true));
                        flip_mean.push(m(0));
                        multi_mean.push(0.5 * m(0) + 0.5 * (0.5 * (m(-1) + m(1))));
                    }
                }
            }
        }
        for (tta, mean) in [(Tta::Flip, flip_mean), (Tta::FlipTranslate, multi_mean)] {
            let want = model
                .infer(&Tensor::from_vec(mean, (2, 2, 3, 4), &Device::Cpu).unwrap())
                .unwrap();
            let got = tta_logits(&model, &x, tta).unwrap();
            assert!(close(&got, &want) < 1e-5, "{tta:?}: {}", close(&got, &want));
            assert!(
                close(&got, &model.infer(&x).unwrap()) > 1e-3,
                "{tta:?} changed nothing"
            );
        }
    }
}
