//! Shape inference in topological order: every layer's output shape, its resolved sizes (input
//! channels and features), its parameters and its MACs, with a located error wherever shapes
//! do not fit.

use std::ops::Range;

use super::{declared_span, spans_of, Graph, Init, Layer, NodeRef, Op};
use crate::diagnostic::shape_str;
use crate::diagnostic::Diagnostic;
use crate::experiment::{LayerOp, ModelSpans, ModelSpec};

/// Largest number of parameters accepted (10 billion), per layer and in total.
const MAX_PARAMS: u128 = 10_000_000_000;
/// Most values one layer may output per image. Keeps every shape product far from overflow even
/// when padding grows the image layer after layer.
const MAX_ELEMENTS: u128 = 1 << 40;

/// The product of sizes without overflow (saturating far above every limit).
fn product(xs: &[usize]) -> u128 {
    xs.iter().fold(1u128, |a, &x| a.saturating_mul(x as u128))
}

/// MACs as stored: saturating at `u64::MAX` (only reachable by models rejected elsewhere).
fn macs_of(xs: &[usize]) -> u64 {
    u64::try_from(product(xs)).unwrap_or(u64::MAX)
}

/// What inference needs to know about the layer at hand, for its messages.
struct At<'s> {
    name: &'s str,
    op: Range<usize>,
    inputs: Option<Range<usize>>,
    declared: Range<usize>,
    init: Option<Range<usize>>,
    /// Whether the layer's one input is the network input.
    reads_input: bool,
}

/// Infers the graph of `model` in `order` (see [`super::order`]).
pub fn infer(
    model: &ModelSpec,
    order: &[usize],
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Graph> {
    let errors_before = diags.iter().filter(|d| d.is_error()).count();
    let n = model.layers.len();
    let mut position = vec![usize::MAX; n];
    let mut shapes: Vec<Option<Vec<usize>>> = vec![None; n];
    let mut checked: Vec<Layer> = Vec::with_capacity(n);
    let mut total_params: u128 = 0;
    for &i in order {
        let l = &model.layers[i];
        let mut in_shapes = Vec::new();
        let mut refs = Vec::new();
        let mut sources = Vec::new();
        let mut known = true;
        for x in &l.inputs {
            match x {
                NodeRef::Input => {
                    in_shapes.push(model.input.to_vec());
                    refs.push(NodeRef::Input);
                    sources.push("the input".to_string());
                }
                NodeRef::Layer(j) => match &shapes[*j] {
                    Some(s) => {
                        in_shapes.push(s.clone());
                        refs.push(NodeRef::Layer(position[*j]));
                        sources.push(format!("`{}`", model.layers[*j].name));
                    }
                    None => known = false,
                },
            }
        }
        let failed = spans
            .and_then(|s| s.failed.get(i))
            .copied()
            .unwrap_or(false);
        if !known || failed {
            continue; // an error here or upstream was already reported
        }
        let s = spans_of(spans, i);
        let at = At {
            name: &l.name,
            op: s.op,
            inputs: s.inputs,
            declared: declared_span(spans, i),
            init: spans.and_then(|s| s.init.get(i).cloned().flatten()),
            reads_input: l.inputs == [NodeRef::Input],
        };
        let Some((op, shape, params, macs)) = layer(diags, &at, &l.op, &in_shapes, &sources) else {
            continue;
        };
        let elements = product(&shape);
        if elements > MAX_ELEMENTS {
            diags.push(
                Diagnostic::error(
                    at.op.clone(),
                    format!(
                        "`{}` outputs {} = {elements} values per image",
                        l.name,
                        shape_str(&shape)
                    ),
                )
                .label(format!("more than {MAX_ELEMENTS}"))
                .help("the activations would not fit in memory: use fewer channels, less padding or more pooling"),
            );
            continue;
        }
        total_params += params as u128;
        shapes[i] = Some(shape.clone());
        position[i] = checked.len();
        checked.push(Layer {
            name: l.name.clone(),
            op,
            inputs: refs,
            shape,
            params,
            macs,
        });
    }
    if total_params > MAX_PARAMS {
        diags.push(
            Diagnostic::error(
                spans_of(spans, 0).op,
                format!("the model has {total_params} parameters"),
            )
            .label(format!("more than {MAX_PARAMS}")),
        );
    }
    let errors_after = diags.iter().filter(|d| d.is_error()).count();
    if errors_after > errors_before || checked.len() != n {
        return None;
    }
    Some(Graph {
        layers: checked,
        input: model.input,
    })
}

/// Needs a `[C, H, W]` input.
fn spatial(
    diags: &mut Vec<Diagnostic>,
    at: &At<'_>,
    s: &[usize],
    source: &str,
) -> Option<(usize, usize, usize)> {
    match s {
        [c, h, w] => Some((*c, *h, *w)),
        _ => {
            diags.push(
                Diagnostic::error(
                    at.op.clone(),
                    format!(
                        "`{}` needs a [C, H, W] input, but {source} produces {}",
                        at.name,
                        shape_str(s)
                    ),
                )
                .label("expects an image-shaped input")
                .help("spatial layers must come before `flatten` / `global_avg_pool`"),
            );
            None
        }
    }
}

fn out_size(
    diags: &mut Vec<Diagnostic>,
    at: &At<'_>,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    in_shape: &[usize],
) -> Option<usize> {
    let padded = size + 2 * padding;
    if padded < kernel {
        diags.push(
            Diagnostic::error(at.op.clone(), format!("`{}`: kernel {kernel} is larger than its padded input ({size} + 2*{padding} = {padded})", at.name))
                .label(format!("input is {}", shape_str(in_shape)))
                .help("the spatial size has shrunk to nothing here: remove a pooling layer, add padding, or use a smaller kernel"),
        );
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

type Inferred = (Op, Vec<usize>, usize, u64);

/// Weights plus bias of one layer, rejected above [`MAX_PARAMS`] before anything can overflow.
fn layer_params(
    diags: &mut Vec<Diagnostic>,
    at: &At<'_>,
    weights: u128,
    bias: Option<usize>,
) -> Option<usize> {
    let n = weights + bias.map_or(0, |b| b as u128);
    if n > MAX_PARAMS {
        diags.push(
            Diagnostic::error(at.op.clone(), format!("`{}` has {n} parameters", at.name))
                .label(format!("more than {MAX_PARAMS}"))
                .help("use fewer channels or a smaller kernel"),
        );
        return None;
    }
    usize::try_from(n).ok()
}

/// The checks of a conv's or linear layer's `init` that need the inferred input size `c`
/// (channels or features): Dirac needs `out >= in`; whitening needs the network input and
/// `out == 2 * in * k * k`.
fn check_init(
    diags: &mut Vec<Diagnostic>,
    at: &At<'_>,
    init: &Init,
    c: usize,
    out: usize,
    k: usize,
    src: &str,
) -> Option<()> {
    let span = at.init.clone().unwrap_or(at.op.clone());
    match init {
        Init::Default => {}
        Init::Dirac if out < c => {
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "the dirac init of `{}` needs at least as many outputs as inputs, but it maps {c} to {out}",
                        at.name
                    ),
                )
                .label("no identity fits")
                .help(format!("use `out >= {c}`, or `init = \"default\"`")),
            );
            return None;
        }
        Init::Dirac => {}
        Init::Whitening { .. } => {
            if !at.reads_input {
                diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "the whitening init of `{}` needs the network input, but the conv reads {src}",
                            at.name
                        ),
                    )
                    .label("the patches are of the training images")
                    .help("put the whitening conv first, reading `\"input\"`"),
                );
                return None;
            }
            let want = 2 * c * k * k;
            if out != want {
                diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "the whitening init of `{}` makes 2 * {c} * {k} * {k} = {want} filters, but the conv has out = {out}",
                            at.name
                        ),
                    )
                    .label("one filter per eigenvector and its negative")
                    .help(format!("set `out = {want}`")),
                );
                return None;
            }
        }
    }
    Some(())
}

/// One layer's output shape and resolved op.
fn layer(
    diags: &mut Vec<Diagnostic>,
    at: &At<'_>,
    op: &LayerOp,
    ins: &[Vec<usize>],
    sources: &[String],
) -> Option<Inferred> {
    let inputs_span = at.inputs.clone().unwrap_or(at.op.clone());
    if op.is_multi_input() && ins.len() < 2 {
        diags.push(
            Diagnostic::error(
                inputs_span,
                format!(
                    "`{}` needs at least two inputs, found {}",
                    at.name,
                    ins.len()
                ),
            )
            .label("too few inputs")
            .help("list them: `inputs = [\"a\", \"b\"]`"),
        );
        return None;
    }
    if !op.is_multi_input() && ins.len() != 1 {
        diags.push(
            Diagnostic::error(
                inputs_span,
                format!("`{}` takes one input, found {}", at.name, ins.len()),
            )
            .label("use `add` or `concat` to combine layers"),
        );
        return None;
    }
    let s = &ins[0];
    let src = &sources[0];
    let feat: usize = s.iter().product();
    Some(match op {
        LayerOp::Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
            init,
        } => {
            let (c, h, w) = spatial(diags, at, s, src)?;
            if let Some(decl) = in_channels {
                if *decl != c {
                    diags.push(
                        Diagnostic::error(
                            at.declared.clone(),
                            format!(
                                "`{}` declares {decl} input channels, but {src} produces {c}",
                                at.name
                            ),
                        )
                        .label(format!("expected {c}"))
                        .note(format!("{src} outputs shape {}", shape_str(s)))
                        .help(format!("set `in = {c}`, or leave `in` out to infer it")),
                    );
                    return None;
                }
            }
            let (out_c, k, st, p) = (*out_channels, *kernel, *stride, *padding);
            let (oh, ow) = (
                out_size(diags, at, h, k, st, p, s)?,
                out_size(diags, at, w, k, st, p, s)?,
            );
            check_init(diags, at, init, c, out_c, k, src)?;
            let params =
                layer_params(diags, at, product(&[out_c, c, k, k]), bias.then_some(out_c))?;
            (
                Op::Conv2d {
                    in_channels: c,
                    out_channels: out_c,
                    kernel: k,
                    stride: st,
                    padding: p,
                    bias: *bias,
                    init: *init,
                },
                vec![out_c, oh, ow],
                params,
                macs_of(&[out_c, oh, ow, c, k, k]),
            )
        }
        LayerOp::BatchNorm2d {
            features,
            eps,
            momentum,
        } => {
            let (c, h, w) = spatial(diags, at, s, src)?;
            if let Some(decl) = features {
                if *decl != c {
                    diags.push(
                        Diagnostic::error(
                            at.declared.clone(),
                            format!(
                                "`{}` declares {decl} features, but {src} produces {c} channels",
                                at.name
                            ),
                        )
                        .label(format!("expected {c}"))
                        .help(format!("set `features = {c}`, or leave it out to infer it")),
                    );
                    return None;
                }
            }
            (
                Op::BatchNorm2d {
                    features: c,
                    eps: *eps,
                    momentum: *momentum,
                },
                s.clone(),
                2 * c,
                macs_of(&[c, h, w]),
            )
        }
        LayerOp::MaxPool2d {
            kernel,
            stride,
            padding,
        }
        | LayerOp::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            let (c, h, w) = spatial(diags, at, s, src)?;
            let (k, st, p) = (*kernel, *stride, *padding);
            let (oh, ow) = (
                out_size(diags, at, h, k, st, p, s)?,
                out_size(diags, at, w, k, st, p, s)?,
            );
            let op = if matches!(op, LayerOp::MaxPool2d { .. }) {
                Op::MaxPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            } else {
                Op::AvgPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            };
            (op, vec![c, oh, ow], 0, 0)
        }
        LayerOp::GlobalAvgPool => {
            let (c, _, _) = spatial(diags, at, s, src)?;
            (Op::GlobalAvgPool, vec![c], 0, 0)
        }
        LayerOp::Flatten => (Op::Flatten, vec![feat], 0, 0),
        LayerOp::Linear {
            in_features,
            out_features,
            bias,
            init,
        } => {
            if s.len() != 1 {
                diags.push(
                    Diagnostic::error(
                        at.op.clone(),
                        format!(
                            "`{}` needs a flat [features] input, but {src} produces {}",
                            at.name,
                            shape_str(s)
                        ),
                    )
                    .label("input is not flat")
                    .help(format!(
                        "insert `{{ op = \"flatten\" }}` before this layer (it would give [{feat}])"
                    )),
                );
                return None;
            }
            if let Some(decl) = in_features {
                if *decl != feat {
                    diags.push(
                        Diagnostic::error(
                            at.declared.clone(),
                            format!(
                                "`{}` expects {decl} input features, but {src} produces {feat}",
                                at.name
                            ),
                        )
                        .label(format!("declared {decl}, incoming {feat}"))
                        .note(format!("{src} outputs shape {}", shape_str(s)))
                        .help(format!("set `in = {feat}`, or leave `in` out to infer it")),
                    );
                    return None;
                }
            }
            let out_f = *out_features;
            check_init(diags, at, init, feat, out_f, 1, src)?;
            (
                Op::Linear {
                    in_features: feat,
                    out_features: out_f,
                    bias: *bias,
                    init: *init,
                },
                vec![out_f],
                layer_params(diags, at, product(&[feat, out_f]), bias.then_some(out_f))?,
                macs_of(&[feat, out_f]),
            )
        }
        LayerOp::Dropout { p } => (Op::Dropout { p: *p }, s.clone(), 0, 0),
        LayerOp::LogSoftmax => {
            if s.len() != 1 {
                diags.push(
                    Diagnostic::error(
                        at.op.clone(),
                        format!(
                            "`log_softmax` needs a flat [features] input, but {src} produces {}",
                            shape_str(s)
                        ),
                    )
                    .label("input is not flat")
                    .help("flatten first"),
                );
                return None;
            }
            (Op::LogSoftmax, s.clone(), 0, 0)
        }
        LayerOp::Relu => (Op::Relu, s.clone(), 0, 0),
        LayerOp::Tanh => (Op::Tanh, s.clone(), 0, 0),
        LayerOp::Sigmoid => (Op::Sigmoid, s.clone(), 0, 0),
        LayerOp::Scale { factor } => (Op::Scale { factor: *factor }, s.clone(), 0, 0),
        LayerOp::Gelu { approximate } => (
            Op::Gelu {
                approximate: *approximate,
            },
            s.clone(),
            0,
            0,
        ),
        LayerOp::Identity => (Op::Identity, s.clone(), 0, 0),
        LayerOp::Add => {
            for (other, osrc) in ins.iter().zip(sources).skip(1) {
                if other != s {
                    diags.push(
                        Diagnostic::error(inputs_span, format!("`{}` adds {src} with shape {} to {osrc} with shape {}", at.name, shape_str(s), shape_str(other)))
                            .label("shapes differ")
                            .help("add a 1x1 `conv2d` projection (with the right `stride`) on the shortcut so both shapes agree"),
                    );
                    return None;
                }
            }
            (Op::Add, s.clone(), 0, 0)
        }
        LayerOp::Concat => {
            let mut shape = s.clone();
            for (other, osrc) in ins.iter().zip(sources).skip(1) {
                if other.len() != s.len() || other[1..] != s[1..] {
                    diags.push(
                        Diagnostic::error(
                            inputs_span,
                            format!(
                                "`{}` concatenates {src} with shape {} and {osrc} with shape {}",
                                at.name,
                                shape_str(s),
                                shape_str(other)
                            ),
                        )
                        .label("all but the first dimension must agree"),
                    );
                    return None;
                }
                shape[0] += other[0];
            }
            (Op::Concat, shape, 0, 0)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::LayerSpec;

    fn graph(input: [usize; 3], ops: Vec<LayerOp>) -> (Option<Graph>, Vec<Diagnostic>) {
        let layers: Vec<LayerSpec> = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| LayerSpec {
                name: format!("l{i}"),
                op,
                inputs: vec![if i == 0 {
                    NodeRef::Input
                } else {
                    NodeRef::Layer(i - 1)
                }],
            })
            .collect();
        let order: Vec<usize> = (0..layers.len()).collect();
        let mut diags = Vec::new();
        let g = infer(&ModelSpec { input, layers }, &order, None, &mut diags);
        (g, diags)
    }

    fn conv(out: usize, k: usize, s: usize, p: usize) -> LayerOp {
        LayerOp::Conv2d {
            in_channels: None,
            out_channels: out,
            kernel: k,
            stride: s,
            padding: p,
            bias: true,
            init: Init::Default,
        }
    }

    /// Shapes and parameter counts as PyTorch gives them (`floor((n + 2p - k) / s) + 1`;
    /// `nn.Conv2d(3, 8, 5).weight.numel() + 8 = 608`).
    #[test]
    fn shapes_and_parameters_follow_pytorch() {
        type Case = ([usize; 3], Vec<LayerOp>, Vec<usize>, usize);
        let cases: [Case; 4] = [
            ([3, 32, 32], vec![conv(8, 5, 1, 0)], vec![8, 28, 28], 608),
            ([1, 7, 7], vec![conv(2, 3, 2, 1)], vec![2, 4, 4], 20),
            (
                [4, 6, 6],
                vec![
                    LayerOp::MaxPool2d {
                        kernel: 2,
                        stride: 2,
                        padding: 0,
                    },
                    LayerOp::Flatten,
                ],
                vec![36],
                0,
            ),
            (
                [2, 3, 3],
                vec![
                    LayerOp::GlobalAvgPool,
                    LayerOp::Linear {
                        in_features: None,
                        out_features: 5,
                        bias: false,
                        init: Init::Default,
                    },
                ],
                vec![5],
                10,
            ),
        ];
        for (input, ops, shape, params) in cases {
            let (g, diags) = graph(input, ops.clone());
            let g = g.unwrap_or_else(|| panic!("{ops:?}: {diags:?}"));
            assert_eq!(g.output_shape(), shape, "{ops:?}");
            assert_eq!(g.params(), params, "{ops:?}");
        }
    }

    #[test]
    fn a_declared_width_that_does_not_match_is_an_error() {
        let (g, diags) = graph(
            [3, 4, 4],
            vec![LayerOp::Conv2d {
                in_channels: Some(1),
                out_channels: 2,
                kernel: 1,
                stride: 1,
                padding: 0,
                bias: true,
                init: Init::Default,
            }],
        );
        assert!(g.is_none());
        assert_eq!(
            diags[0].message,
            "`l0` declares 1 input channels, but the input produces 3"
        );
    }

    #[test]
    fn a_kernel_larger_than_its_input_is_an_error() {
        let (g, diags) = graph([1, 2, 2], vec![conv(1, 3, 1, 0)]);
        assert!(g.is_none());
        assert!(
            diags[0]
                .message
                .contains("kernel 3 is larger than its padded input"),
            "{diags:?}"
        );
    }
}
