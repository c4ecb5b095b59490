//! The layer graph: from a checked model ([`crate::experiment::ModelSpec`]) to a petgraph DAG
//! in a stable topological order ([`order`]) with every shape, parameter and MAC count
//! inferred ([`infer`]). The graph reads no TOML: its problems are located through the
//! [`ModelSpans`] that validation hands over.
pub mod fuse;
pub mod infer;
pub mod layer;
pub mod order;
pub mod summary;

pub use fuse::Fusion;
pub use layer::{GeluApprox, Init, Layer, NodeRef, Op};

use std::ops::Range;

use crate::diagnostic::Diagnostic;
use crate::experiment::{DatasetKind, Experiment, LayerSpans, ModelSpans, ModelSpec};

/// The checked graph, ready for the model builder and the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Layers in topological order; the last one is the output.
    pub layers: Vec<Layer>,
    /// Per-sample input shape.
    pub input: [usize; 3],
}

impl Graph {
    /// Total trainable parameters.
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Total multiply-accumulates per sample.
    pub fn macs(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.macs)
            .fold(0u64, u64::saturating_add)
    }

    /// Output shape of the last layer.
    pub fn output_shape(&self) -> Vec<usize> {
        self.layers
            .last()
            .map_or_else(|| self.input.to_vec(), |l| l.shape.clone())
    }
}

/// Where to point a diagnostic about layer `i`: its spans, or nowhere when the model was not
/// read from a file.
pub(crate) fn spans_of(spans: Option<&ModelSpans>, i: usize) -> LayerSpans {
    spans
        .and_then(|s| s.layers.get(i))
        .cloned()
        .unwrap_or_default()
}

/// The span of a declared input size of layer `i`.
pub(crate) fn declared_span(spans: Option<&ModelSpans>, i: usize) -> Range<usize> {
    spans
        .and_then(|s| s.declared.get(i).cloned().flatten())
        .unwrap_or(0..0)
}

/// Orders `model` and infers its shapes. Errors and warnings (unused layers) go to `diags`;
/// `None` when there was an error.
pub fn build(
    model: &ModelSpec,
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Graph> {
    let order = order::order(model, spans, diags)?;
    infer::infer(model, &order, spans, diags)
}

/// The graph of an experiment and the checks that need its shapes: the output must give one
/// value per class.
pub fn of_experiment(
    e: &Experiment,
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Graph> {
    for_dataset(e.model(), &e.data().dataset, spans, diags)
}

/// Whether the graph's output is one score per class; if not, reports it at the last layer.
/// `what` names the data set (`cifar10`, or the folder found).
pub fn output_fits(
    model: &ModelSpec,
    g: &Graph,
    classes: usize,
    what: &str,
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let out = g.output_shape();
    if out == [classes] {
        return true;
    }
    let last = model.layers.len().saturating_sub(1);
    diags.push(
        Diagnostic::error(spans_of(spans, last).op, format!("the model outputs {out:?} per image, but {what} has {classes} classes"))
            .label("last layer")
            .help(format!("end the model with a layer that produces [{classes}], e.g. `{{ op = \"linear\", out = {classes} }}`")),
    );
    false
}

/// The graph of `model` for the images and classes of `dataset`.
pub fn for_dataset(
    model: &ModelSpec,
    dataset: &DatasetKind,
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Graph> {
    let g = build(model, spans, diags)?;
    // An image folder without a declared `classes` is checked once it is listed
    // (`runner check` with the data, [`crate::check`]).
    let Some(classes) = dataset.known_classes() else {
        return Some(g);
    };
    if !output_fits(model, &g, classes, dataset.name(), spans, diags) {
        return None;
    }
    Some(g)
}
