//! The evaluation of a model on one split of the data: loss, accuracy, per-class accuracy and
//! every prediction. Shared by the training loop and `runner eval`.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::average::WeightAverage;
use super::run::TrainError;
use super::step::{loss, predictions};
use crate::data::{epoch_batches, Dataset, Pipeline};
use crate::experiment::Experiment;
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
        exp.train().epochs,
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
            let out = model.infer(&x)?;
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
