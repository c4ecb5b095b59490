//! Raw experiment -> checked [`Experiment`]: defaults, ranges and references, one file per
//! section of the format.

pub mod data;
pub mod model;
pub mod train;

pub use model::{ModelSpans, MAX_WIDTH};

use super::format::RawExperiment;
use super::read::{checked, int_in, Cx, Sp};
use super::{DatasetKind, DeviceSpec, Experiment, LayerOp, LossSpec, ModelSpec};
use crate::diagnostic::Diagnostic;

/// Largest batch size, epoch count and synthetic data size accepted.
const MAX_COUNT: u64 = 1 << 24;

/// The largest `train.epochs`.
pub const MAX_EPOCHS: u64 = MAX_COUNT;

fn count(
    cx: &mut Cx<'_>,
    v: &Option<Sp<u64>>,
    default: u64,
    min: u64,
    what: &str,
) -> Option<usize> {
    int_in(cx, v.as_ref(), default, min, MAX_COUNT, what)
}

fn real(
    cx: &mut Cx<'_>,
    v: &Option<Sp<f64>>,
    default: f64,
    ok: impl Fn(f64) -> bool,
    what: &str,
    expected: &str,
) -> Option<f64> {
    checked(cx, v.as_ref(), default, ok, what, expected)
}

/// What validation made of a file.
#[derive(Debug)]
pub enum Validated {
    /// Everything is valid. The spans of the model's layers come along for the graph's
    /// diagnostics.
    Ok(Box<Experiment>, ModelSpans),
    /// Other sections have errors, but the model is valid for images of the data set's shape:
    /// the graph can still be checked, so that one pass reports every mistake.
    ModelOnly(ModelSpec, ModelSpans, DatasetKind),
    /// Nothing to check further.
    Failed,
}

/// The longest experiment name, in bytes: it is a folder name, and a file system allows 255.
pub const MAX_NAME_BYTES: usize = 100;

/// Validates everything.
pub fn validate<'a>(cx: &mut Cx<'a>, raw: RawExperiment<'a>, default_name: &str) -> Validated {
    let name = match &raw.name {
        Some(n)
            if n.value.is_empty()
                || n.value.contains(['/', '\\'])
                || n.value.starts_with('.')
                || n.value.len() > MAX_NAME_BYTES
                || n.value.chars().any(char::is_control) =>
        {
            cx.push(
                Diagnostic::error(
                    n.span.clone(),
                    format!(
                        "invalid experiment name `{}`",
                        crate::report::text::for_terminal(&n.value)
                    ),
                )
                .label(format!("used as a folder name: not empty, at most {MAX_NAME_BYTES} bytes, no slashes or control characters, not starting with `.`")),
            );
            None
        }
        Some(n) => Some(n.value.clone()),
        None => Some(default_name.to_string()),
    };
    let seed = raw.seed.as_ref().map_or(0, |s| s.value.0);
    let device = raw.device.as_ref().map_or(DeviceSpec::Cpu, |d| d.value);
    // Where `runner check` points when the images found disagree with the file: the declared
    // `classes`, else the `dataset` key.
    let data_span = raw.data.0.as_ref().map(|d| {
        let d = &d.value;
        let classes = match (&d.image_folder, &d.csv) {
            (Some(t), _) if d.dataset.value == super::format::DatasetName::ImageFolder => {
                t.value.classes.as_ref()
            }
            (_, Some(t)) if d.dataset.value == super::format::DatasetName::Csv => {
                t.value.classes.as_ref()
            }
            _ => None,
        };
        classes.map_or(d.dataset.span.clone(), |c| c.span.clone())
    });
    let (data, images) = raw
        .data
        .0
        .map_or((None, None), |d| data::validate(cx, d.value));
    let train = if raw.failed.contains(&"train") {
        None
    } else {
        train::validate(cx, raw.train.map(|t| t.value))
    };
    // The model is checked whenever the images' shape is known, even if other `[data]` settings
    // (batch sizes, test transforms) are wrong, so that one pass reports every mistake.
    let model = match (&images, raw.model.0) {
        (Some(images), Some(m)) => model::validate(cx, m.value, images.shape()),
        _ => None,
    };
    if let (Some((train, spans)), Some(data)) = (&train, &data) {
        if let (Some(stop), Some(span)) = (&train.early_stopping, &spans.early_stopping) {
            if stop.metric.needs_validation() && data.validation.is_none() {
                cx.push(
                    Diagnostic::error(
                        span.clone(),
                        format!(
                            "early stopping on `{}` needs a validation split",
                            stop.metric.name()
                        ),
                    )
                    .label("no `data.validation`")
                    .help("add `validation = 0.1` (or a number of images) to `[data]`"),
                );
            }
        }
    }
    if let (Some((train, spans)), Some((m, _))) = (&train, &model) {
        let ends_log_softmax = m.layers.last().is_some_and(|l| l.op == LayerOp::LogSoftmax);
        if train.loss == LossSpec::Nll && !ends_log_softmax {
            cx.push(
                Diagnostic::warning(spans.loss.clone(), "`nll` loss expects log-probabilities, but the model does not end with `log_softmax`")
                    .label("loss = \"nll\"")
                    .help("add `{ op = \"log_softmax\" }` as the last layer, or use `loss = \"cross_entropy\"`"),
            );
        }
    }
    match (name, data, model, train) {
        (Some(name), Some(data), Some((model, mut spans)), Some((train, train_spans)))
            if cx.error_count() == 0 && spans.all_valid() =>
        {
            spans.init_from = train_spans.init_from;
            spans.param_groups = train_spans.param_groups;
            spans.dataset = data_span;
            Validated::Ok(
                Box::new(Experiment::new(name, seed, device, data, model, train)),
                spans,
            )
        }
        (_, _, Some((model, spans)), _) => match images {
            Some(images) => Validated::ModelOnly(model, spans, images.dataset),
            None => Validated::Failed,
        },
        _ => Validated::Failed,
    }
}
