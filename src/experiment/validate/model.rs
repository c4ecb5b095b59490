//! `[model]`: the input shape, block parameters, expansion, and every layer's settings.

use std::ops::Range;

use super::super::expand::{self, LayerSpans};
use super::super::format::{ConvPadding, GeluApprox, InitName, RawInit, RawModel, RawOp};
use super::super::read::{checked, int_in, Cx, Sp};
use super::super::{Init, LayerOp, LayerSpec, ModelSpec};
use crate::diagnostic::Diagnostic;

/// Largest channel/feature width accepted.
pub const MAX_WIDTH: u64 = 1 << 20;
/// Largest kernel, stride or padding accepted.
const MAX_WINDOW: u64 = 1 << 12;

/// Where the checked model came from in the file: what the graph's diagnostics point at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSpans {
    /// Per layer of [`ModelSpec::layers`].
    pub layers: Vec<LayerSpans>,
    /// Per layer: the declared `in` (conv, linear) or `features` (BatchNorm), if any.
    pub declared: Vec<Option<Range<usize>>>,
    /// Per layer: the `init` value of a conv or linear layer, if written.
    pub init: Vec<Option<Range<usize>>>,
    /// Per layer: its settings were wrong (reported). The model then holds a placeholder in
    /// its place, from which the graph infers nothing, so that the shapes of the layers before
    /// it are still checked and no layer after it is blamed.
    pub failed: Vec<bool>,
    /// The `train.init_from` value, where the check of the weights file against the model
    /// ([`crate::check`]) points.
    pub init_from: Option<Range<usize>>,
    /// The `match` of each `[[train.param_groups]]`, where the check of the groups against
    /// the model's parameters ([`crate::check`]) points.
    pub param_groups: Vec<Range<usize>>,
    /// The declared `classes` of an image folder or CSV data set, else the `dataset` key: where
    /// `runner check` points when the images found disagree with the file.
    pub dataset: Option<Range<usize>>,
}

impl ModelSpans {
    /// Whether every layer's settings were valid.
    pub fn all_valid(&self) -> bool {
        !self.failed.contains(&true)
    }
}

/// Checks `[model]` for images that arrive as `natural` (the data set's shape after the
/// training transforms). A layer with wrong settings is reported and marked in
/// [`ModelSpans::failed`]; `None` when the model could not be expanded at all.
pub fn validate<'a>(
    cx: &mut Cx<'a>,
    m: RawModel<'a>,
    natural: [usize; 3],
) -> Option<(ModelSpec, ModelSpans)> {
    let input = match &m.input {
        None => Some(natural),
        Some(i) => match i.value.as_slice() {
            [c, h, w] if [c.value, h.value, w.value] == natural.map(|x| x as u64) => Some(natural),
            [c, h, w] => {
                cx.push(
                    Diagnostic::error(
                        i.span.clone(),
                        format!(
                            "model input [{}, {}, {}] does not match the data, which arrives as {:?}",
                            c.value, h.value, w.value, natural
                        ),
                    )
                    .label(format!("expected {natural:?}"))
                    .help("remove `input` to take the shape from the data set and transforms"),
                );
                None
            }
            _ => {
                cx.push(
                    Diagnostic::error(i.span.clone(), "`input` must be [channels, height, width]")
                        .label("expected three numbers"),
                );
                None
            }
        },
    };
    let blocks = m.blocks.map(|b| b.value.0).unwrap_or_default();
    let expanded = expand::expand(cx, m.layers, &blocks)?;
    let mut layers = Vec::with_capacity(expanded.len());
    let mut spans = ModelSpans::default();
    for e in expanded {
        let init = match &e.op {
            RawOp::Conv2d { init, .. } | RawOp::Linear { init, .. } => {
                init.as_ref().map(|i| i.span.clone())
            }
            _ => None,
        };
        let (op, declared, failed) = match layer_op(cx, &e.op) {
            Some((op, declared)) => (op, declared, false),
            None => (LayerOp::Identity, None, true),
        };
        layers.push(LayerSpec {
            name: e.name,
            op,
            inputs: e.inputs,
        });
        spans.layers.push(e.spans);
        spans.declared.push(declared);
        spans.init.push(init);
        spans.failed.push(failed);
    }
    Some((
        ModelSpec {
            input: input?,
            layers,
        },
        spans,
    ))
}

fn window(
    cx: &mut Cx<'_>,
    v: Option<&Sp<u64>>,
    default: u64,
    min: u64,
    what: &str,
) -> Option<usize> {
    int_in(cx, v, default, min, MAX_WINDOW, what)
}

fn width(cx: &mut Cx<'_>, v: &Sp<u64>, what: &str) -> Option<usize> {
    int_in(cx, Some(v), 0, 1, MAX_WIDTH, what)
}

fn declared(v: &Option<Sp<u64>>) -> (Option<usize>, Option<Range<usize>>) {
    match v {
        Some(s) => (Some(s.value as usize), Some(s.span.clone())),
        None => (None, None),
    }
}

/// `padding = "same"` of a conv with kernel `k` and stride `st` (both already checked): PyTorch
/// allows it only with stride 1, and pads an even kernel's extra row and column at the end,
/// which a symmetric padding cannot express, so even kernels are refused.
fn same_padding(
    cx: &mut Cx<'_>,
    span: &Range<usize>,
    k: Option<usize>,
    st: Option<usize>,
) -> Option<usize> {
    let (k, st) = (k?, st?);
    if st != 1 {
        cx.push(
            Diagnostic::error(
                span.clone(),
                format!("`padding = \"same\"` needs stride 1, this conv has stride {st}"),
            )
            .label("PyTorch rejects this")
            .help("give the padding as a number"),
        );
        return None;
    }
    if k.is_multiple_of(2) {
        cx.push(
            Diagnostic::error(
                span.clone(),
                format!("`padding = \"same\"` needs an odd kernel, this one is {k}"),
            )
            .label("an even kernel would need one more row and column at the end")
            .help("use an odd kernel, or give the padding as a number"),
        );
        return None;
    }
    Some((k - 1) / 2)
}

/// Largest `init.images` accepted.
const MAX_INIT_IMAGES: u64 = 1 << 24;

/// A conv's (`conv = true`) or linear layer's `init`, checked against the kernel `k`. What
/// depends on the inferred sizes (`out >= in`, the whitening width and input) is checked by
/// the graph.
fn init_spec(
    cx: &mut Cx<'_>,
    init: Option<&Sp<RawInit>>,
    k: Option<usize>,
    conv: bool,
) -> Option<Init> {
    let Some(Sp { value: i, span }) = init else {
        return Some(Init::Default);
    };
    let mut ok = true;
    if i.kind.value != InitName::Whitening {
        for (key, sp) in [
            ("images", i.images.as_ref().map(|x| x.span.clone())),
            ("eps", i.eps.as_ref().map(|x| x.span.clone())),
        ] {
            if let Some(sp) = sp {
                cx.push(
                    Diagnostic::error(
                        sp,
                        format!("`{key}` is a setting of the whitening init only"),
                    )
                    .label(format!("`{}` has no `{key}`", i.kind.value.name()))
                    .help(format!("remove `{key}`")),
                );
                ok = false;
            }
        }
    }
    let init = match i.kind.value {
        InitName::Default => Init::Default,
        InitName::Dirac => {
            if k.is_some_and(|k| k.is_multiple_of(2)) {
                cx.push(
                    Diagnostic::error(
                        span.clone(),
                        format!("the dirac init needs an odd kernel, this one is {}", k?),
                    )
                    .label("an even kernel has no centre")
                    .help("use an odd kernel, or `init = \"default\"`"),
                );
                return None;
            }
            Init::Dirac
        }
        InitName::Whitening => {
            if !conv {
                cx.push(
                    Diagnostic::error(span.clone(), "the whitening init is for `conv2d` only")
                        .label("this is a linear layer")
                        .help("use `init = \"default\"` or `\"dirac\"`"),
                );
                return None;
            }
            let images = int_in(cx, i.images.as_ref(), 5000, 1, MAX_INIT_IMAGES, "images");
            let eps = checked(
                cx,
                i.eps.as_ref(),
                5e-4,
                |x| x > 0.0 && x.is_finite(),
                "eps",
                "a finite number > 0",
            );
            Init::Whitening {
                images: images?,
                eps: eps?,
            }
        }
    };
    ok.then_some(init)
}

/// One layer's settings, checked, with the span of a declared input size. Every setting is
/// checked, so that one pass reports all of a layer's mistakes.
fn layer_op(cx: &mut Cx<'_>, op: &RawOp<'_>) -> Option<(LayerOp, Option<Range<usize>>)> {
    Some(match op {
        RawOp::Conv2d {
            in_channels,
            out,
            kernel,
            stride,
            padding,
            bias,
            init,
        } => {
            let out_c = width(cx, out, "out");
            let k = window(cx, Some(kernel), 1, 1, "kernel");
            let st = window(cx, stride.as_ref(), 1, 1, "stride");
            let p = match padding {
                Some(Sp {
                    value: ConvPadding::Same,
                    span,
                }) => same_padding(cx, span, k, st),
                Some(Sp {
                    value: ConvPadding::Size(n),
                    span,
                }) => window(cx, Some(&Sp::new(*n, span.clone())), 0, 0, "padding"),
                None => Some(0),
            };
            let init = init_spec(cx, init.as_ref(), k, true);
            let (decl, span) = declared(in_channels);
            (
                LayerOp::Conv2d {
                    in_channels: decl,
                    out_channels: out_c?,
                    kernel: k?,
                    stride: st?,
                    padding: p?,
                    bias: bias.as_ref().is_none_or(|b| b.value),
                    init: init?,
                },
                span,
            )
        }
        RawOp::BatchNorm2d {
            features,
            eps,
            momentum,
        } => {
            let eps = checked(cx, eps.as_ref(), 1e-5, |x| x > 0.0, "eps", "eps > 0");
            let momentum = checked(
                cx,
                momentum.as_ref(),
                0.1,
                |x| (0.0..=1.0).contains(&x),
                "momentum",
                "0 to 1",
            );
            let (decl, span) = declared(features);
            (
                LayerOp::BatchNorm2d {
                    features: decl,
                    eps: eps?,
                    momentum: momentum?,
                },
                span,
            )
        }
        RawOp::MaxPool2d {
            kernel,
            stride,
            padding,
        }
        | RawOp::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            let k = window(cx, Some(kernel), 1, 1, "kernel");
            let st = match k {
                Some(k) => window(cx, stride.as_ref(), k as u64, 1, "stride"),
                None => None,
            };
            let p = window(cx, padding.as_ref(), 0, 0, "padding");
            let (k, st, p) = (k?, st?, p?);
            if 2 * p > k {
                let sp = padding.as_ref()?;
                cx.push(
                    Diagnostic::error(
                        sp.span.clone(),
                        format!("padding {p} is more than half the kernel {k}"),
                    )
                    .label("PyTorch rejects this")
                    .help(format!("use padding <= {}", k / 2)),
                );
                return None;
            }
            let op = if matches!(op, RawOp::MaxPool2d { .. }) {
                LayerOp::MaxPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            } else {
                LayerOp::AvgPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            };
            (op, None)
        }
        RawOp::Linear {
            in_features,
            out,
            bias,
            init,
        } => {
            let (decl, span) = declared(in_features);
            let out = width(cx, out, "out");
            let init = init_spec(cx, init.as_ref(), Some(1), false);
            (
                LayerOp::Linear {
                    in_features: decl,
                    out_features: out?,
                    bias: bias.as_ref().is_none_or(|b| b.value),
                    init: init?,
                },
                span,
            )
        }
        RawOp::Scale { factor } => {
            if !factor.value.is_finite() {
                cx.push(
                    Diagnostic::error(
                        factor.span.clone(),
                        format!("factor = {} is not finite", factor.value),
                    )
                    .label("expected a finite number"),
                );
                return None;
            }
            (
                LayerOp::Scale {
                    factor: factor.value,
                },
                None,
            )
        }
        RawOp::Dropout { p } => {
            let p = checked(
                cx,
                p.as_ref(),
                0.5,
                |x| (0.0..1.0).contains(&x),
                "p",
                "0 <= value < 1",
            )?;
            (LayerOp::Dropout { p }, None)
        }
        RawOp::Relu {} => (LayerOp::Relu, None),
        RawOp::Tanh {} => (LayerOp::Tanh, None),
        RawOp::Sigmoid {} => (LayerOp::Sigmoid, None),
        RawOp::Gelu { approximate } => (
            LayerOp::Gelu {
                approximate: approximate.as_ref().map_or(GeluApprox::None, |a| a.value),
            },
            None,
        ),
        RawOp::GlobalAvgPool {} => (LayerOp::GlobalAvgPool, None),
        RawOp::Flatten {} => (LayerOp::Flatten, None),
        RawOp::LogSoftmax {} => (LayerOp::LogSoftmax, None),
        RawOp::Add {} => (LayerOp::Add, None),
        RawOp::Concat {} => (LayerOp::Concat, None),
        RawOp::Identity {} => (LayerOp::Identity, None),
        // Expanded away before this point.
        RawOp::Vgg { .. } | RawOp::Block { .. } => return None,
    })
}
