//! Properties of `runner check` on generated inputs.
//!
//! The oracle is an independent implementation of PyTorch's shape and parameter formulas for
//! sequential models (`nn.Conv2d`, `nn.MaxPool2d`, `nn.Linear`, ...). The laws:
//! - the checker never panics, on any bytes, any string, or any edit of a valid file;
//! - a model the oracle accepts is accepted, with the oracle's shapes and parameter counts;
//! - a model the oracle rejects is rejected, with an error located in the layer the oracle blames;
//! - changing one declared `in` gives either the same valid model (the value happened to match)
//!   or an error inside the changed layer.

use std::ops::Range;

use proptest::prelude::*;
use runner::check::{check_bytes, check_str, Checked};
use runner::graph::Op;

/// A layer of a generated sequential model. `decl` is the declared `in`/`features`, if any.
#[derive(Debug, Clone)]
enum L {
    Conv {
        out: usize,
        k: usize,
        s: usize,
        p: usize,
        bias: bool,
        decl: Option<usize>,
    },
    Bn {
        decl: Option<usize>,
    },
    Relu,
    Pool {
        max: bool,
        k: usize,
        s: Option<usize>,
        p: usize,
    },
    Dropout {
        tenths: u8,
    },
    Flatten,
    GlobalAvgPool,
    Linear {
        out: usize,
        bias: bool,
        decl: Option<usize>,
    },
}

/// A generated experiment: synthetic images `[c, h, w]`, `classes`, and its layers.
#[derive(Debug, Clone)]
struct Model {
    input: [usize; 3],
    classes: usize,
    layers: Vec<L>,
}

/// Whether a layer should declare its input width; the value is filled in by [`declare`].
const DECLARE: Option<usize> = Some(0);

fn spatial_layer() -> impl Strategy<Value = L> {
    let decl = prop::bool::ANY.prop_map(|d| if d { DECLARE } else { None });
    prop_oneof![
        (
            1..16usize,
            1..6usize,
            1..3usize,
            0..3usize,
            any::<bool>(),
            decl.clone()
        )
            .prop_map(|(out, k, s, p, bias, decl)| L::Conv {
                out,
                k,
                s,
                p,
                bias,
                decl
            }),
        decl.prop_map(|decl| L::Bn { decl }),
        Just(L::Relu),
        (
            any::<bool>(),
            1..4usize,
            prop::option::of(1..3usize),
            0..2usize
        )
            .prop_map(|(max, k, s, p)| L::Pool { max, k, s, p }),
        (0..10u8).prop_map(|tenths| L::Dropout { tenths }),
    ]
}

fn dense_layer() -> impl Strategy<Value = L> {
    let decl = prop::bool::ANY.prop_map(|d| if d { DECLARE } else { None });
    prop_oneof![
        (1..32usize, any::<bool>(), decl).prop_map(|(out, bias, decl)| L::Linear {
            out,
            bias,
            decl
        }),
        Just(L::Relu),
        (0..10u8).prop_map(|tenths| L::Dropout { tenths }),
    ]
}

/// Sequential models: spatial layers, `flatten` or `global_avg_pool`, dense layers, and a final
/// linear layer with one output per class. Declared widths are the true ones (see [`declare`]).
fn model() -> impl Strategy<Value = Model> {
    (
        (1..4usize, 4..33usize, 4..33usize),
        2..10usize,
        prop::collection::vec(spatial_layer(), 0..7),
        any::<bool>(),
        prop::collection::vec(dense_layer(), 0..4),
        any::<bool>(),
    )
        .prop_map(|((c, h, w), classes, spatial, flatten, dense, decl_last)| {
            let mut layers = spatial;
            layers.push(if flatten {
                L::Flatten
            } else {
                L::GlobalAvgPool
            });
            layers.extend(dense);
            layers.push(L::Linear {
                out: classes,
                bias: true,
                decl: if decl_last { DECLARE } else { None },
            });
            let mut m = Model {
                input: [c, h, w],
                classes,
                layers,
            };
            declare(&mut m);
            m
        })
}

/// What the oracle says about one layer: output shape and parameters, or rejection.
type Step = Result<(Vec<usize>, usize), ()>;

/// PyTorch's output size for a window: `floor((size + 2p - k) / s) + 1`, if the window fits.
fn window(size: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    (size + 2 * p >= k).then(|| (size + 2 * p - k) / s + 1)
}

/// The oracle: each layer's output shape and parameter count, as PyTorch computes them, up to
/// and including the first layer PyTorch would reject.
fn oracle(m: &Model) -> Vec<Step> {
    let mut shape = m.input.to_vec();
    let mut steps = Vec::new();
    for l in &m.layers {
        let step = match (l, shape.as_slice()) {
            (
                L::Conv {
                    out,
                    k,
                    s,
                    p,
                    bias,
                    decl,
                },
                &[c, h, w],
            ) => {
                match (
                    decl.is_none_or(|d| d == c),
                    window(h, *k, *s, *p),
                    window(w, *k, *s, *p),
                ) {
                    (true, Some(oh), Some(ow)) => Ok((
                        vec![*out, oh, ow],
                        out * c * k * k + if *bias { *out } else { 0 },
                    )),
                    _ => Err(()),
                }
            }
            (L::Bn { decl }, &[c, _, _]) if decl.is_none_or(|d| d == c) => {
                Ok((shape.clone(), 2 * c))
            }
            (L::Pool { k, s, p, .. }, &[c, h, w]) if 2 * p <= *k => {
                let s = s.unwrap_or(*k);
                match (window(h, *k, s, *p), window(w, *k, s, *p)) {
                    (Some(oh), Some(ow)) => Ok((vec![c, oh, ow], 0)),
                    _ => Err(()),
                }
            }
            (L::Relu | L::Dropout { .. }, _) => Ok((shape.clone(), 0)),
            (L::Flatten, _) => Ok((vec![shape.iter().product()], 0)),
            (L::GlobalAvgPool, &[c, _, _]) => Ok((vec![c], 0)),
            (L::Linear { out, bias, decl }, &[f]) if decl.is_none_or(|d| d == f) => {
                Ok((vec![*out], f * out + if *bias { *out } else { 0 }))
            }
            _ => Err(()),
        };
        let failed = step.is_err();
        if let Ok((s, _)) = &step {
            shape = s.clone();
        }
        steps.push(step);
        if failed {
            break;
        }
    }
    steps
}

/// Fills every requested declaration with the true incoming width (where the oracle knows it).
fn declare(m: &mut Model) {
    let mut shape = m.input.to_vec();
    for i in 0..m.layers.len() {
        let incoming = shape.first().copied().unwrap_or(1);
        match &mut m.layers[i] {
            L::Conv { decl: Some(d), .. }
            | L::Bn { decl: Some(d) }
            | L::Linear { decl: Some(d), .. } => *d = incoming,
            _ => {}
        }
        let prefix = Model {
            layers: m.layers[..=i].to_vec(),
            ..m.clone()
        };
        match oracle(&prefix).pop() {
            Some(Ok((s, _))) => shape = s,
            _ => break,
        }
    }
}

/// The experiment file, and the byte range of each layer's text in it.
fn render(m: &Model) -> (String, Vec<Range<usize>>) {
    let [c, h, w] = m.input;
    let mut text = format!(
        "name = \"generated\"\n\n[data]\ndataset = \"synthetic\"\nbatch_size = 8\n\
         synthetic = {{ shape = [{c}, {h}, {w}], classes = {} }}\n\n[model]\nlayers = [\n",
        m.classes
    );
    let mut spans = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        let decl =
            |key: &str, d: &Option<usize>| d.map_or(String::new(), |d| format!(", {key} = {d}"));
        let body = match l {
            L::Conv { out, k, s, p, bias, decl: d } => format!(
                "op = \"conv2d\"{}, out = {out}, kernel = {k}, stride = {s}, padding = {p}, bias = {bias}",
                decl("in", d)
            ),
            L::Bn { decl: d } => format!("op = \"batch_norm2d\"{}", decl("features", d)),
            L::Relu => "op = \"relu\"".into(),
            L::Pool { max, k, s, p } => format!(
                "op = \"{}\", kernel = {k}{}, padding = {p}",
                if *max { "max_pool2d" } else { "avg_pool2d" },
                s.map_or(String::new(), |s| format!(", stride = {s}"))
            ),
            L::Dropout { tenths } => format!("op = \"dropout\", p = 0.{tenths}"),
            L::Flatten => "op = \"flatten\"".into(),
            L::GlobalAvgPool => "op = \"global_avg_pool\"".into(),
            L::Linear { out, bias, decl: d } => format!(
                "op = \"linear\"{}, out = {out}, bias = {bias}",
                decl("in", d)
            ),
        };
        text += "  ";
        let start = text.len();
        text += &format!("{{ name = \"l{i}\", {body} }}");
        spans.push(start..text.len());
        text += ",\n";
    }
    text += "]\n\n[train]\nepochs = 1\noptimizer = { kind = \"adam\", lr = 0.001 }\n";
    (text, spans)
}

fn check(text: &str) -> Checked {
    check_str("generated.toml", text, "generated")
}

fn inside(span: &Range<usize>, layer: &Range<usize>) -> bool {
    layer.start <= span.start && span.end <= layer.end
}

/// The checker agrees with the oracle: same verdict; same shapes and parameters when valid; an
/// error inside the blamed layer when not.
fn agrees_with_oracle(m: &Model) -> Result<(), TestCaseError> {
    let (text, spans) = render(m);
    let c = check(&text);
    let steps = oracle(m);
    let rejected_at = steps.iter().position(Result::is_err);
    match rejected_at {
        None => {
            prop_assert!(
                c.ok(),
                "oracle accepts, checker rejects:\n{text}\n{}",
                c.render()
            );
            prop_assert!(
                c.diagnostics.is_empty(),
                "unexpected warnings:\n{}",
                c.render()
            );
            let (_, g) = c.result.as_ref().expect("ok");
            prop_assert_eq!(g.layers.len(), m.layers.len());
            let mut prev: Vec<usize> = m.input.to_vec();
            for (i, (layer, step)) in g.layers.iter().zip(&steps).enumerate() {
                let (shape, params) = step.as_ref().expect("accepted");
                prop_assert_eq!(&layer.name, &format!("l{i}"));
                prop_assert_eq!(&layer.shape, shape, "layer l{} shape\n{}", i, text);
                prop_assert_eq!(layer.params, *params, "layer l{} params\n{}", i, text);
                if let Op::Linear { in_features, .. } = layer.op {
                    prop_assert_eq!(in_features, prev.iter().product::<usize>(), "l{} in", i);
                }
                if let Op::Conv2d { in_channels, .. }
                | Op::BatchNorm2d {
                    features: in_channels,
                    ..
                } = layer.op
                {
                    prop_assert_eq!(in_channels, prev[0], "l{} channels", i);
                }
                prev = layer.shape.clone();
            }
            let total: usize = steps.iter().map(|s| s.as_ref().map_or(0, |s| s.1)).sum();
            prop_assert_eq!(g.params(), total);
            prop_assert_eq!(g.output_shape(), vec![m.classes]);
        }
        Some(i) => {
            prop_assert!(!c.ok(), "oracle rejects l{}, checker accepts:\n{}", i, text);
            let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
            prop_assert!(
                errors.iter().any(|d| inside(&d.span, &spans[i])),
                "no error inside l{}:\n{}\n{}",
                i,
                text,
                c.render()
            );
            // Later layers depend on the rejected one; nothing before it is blamed.
            for d in &errors {
                prop_assert!(
                    d.span.start >= spans[i].start,
                    "error before l{}:\n{}",
                    i,
                    c.render()
                );
            }
        }
    }
    Ok(())
}

/// Models the oracle accepts (so that every case of the tests below tests something).
fn valid_model() -> impl Strategy<Value = Model> {
    model().prop_filter("a valid model", |m| oracle(m).iter().all(Result::is_ok))
}

/// A valid model's resolved config reads back as the same experiment and the same graph.
fn round_trips(m: &Model) -> Result<(), TestCaseError> {
    let (text, _) = render(m);
    let c = check(&text);
    let (e, g) = c.result.as_ref().ok_or_else(|| {
        TestCaseError::fail(format!("valid model rejected:\n{text}\n{}", c.render()))
    })?;
    let printed = runner::experiment::print::to_toml(e);
    let again = check_str("config.toml", &printed, "x");
    let (e2, g2) = again.result.as_ref().ok_or_else(|| {
        TestCaseError::fail(format!("reprint invalid:\n{printed}\n{}", again.render()))
    })?;
    prop_assert_eq!(e, e2, "experiment changed:\n{}", printed);
    prop_assert_eq!(g, g2, "graph changed:\n{}", printed);
    prop_assert_eq!(runner::experiment::print::to_toml(e2), printed);
    Ok(())
}

/// The shapes `runner check` infers are the shapes a real forward pass produces, layer by
/// layer, on a batch of 2 (each prefix of the sequential model is built and run).
fn forward_pass_agrees(m: &Model) -> Result<(), TestCaseError> {
    use candle_core::{Device, Tensor};
    let (text, _) = render(m);
    let c = check(&text);
    let (_, g) = c.result.as_ref().ok_or_else(|| {
        TestCaseError::fail(format!("valid model rejected:\n{text}\n{}", c.render()))
    })?;
    let [ch, h, w] = g.input;
    let x = Tensor::zeros((2, ch, h, w), candle_core::DType::F32, &Device::Cpu)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for k in 1..=g.layers.len() {
        let prefix = runner::graph::Graph {
            layers: g.layers[..k].to_vec(),
            input: g.input,
        };
        let model = runner::model::Model::new(&prefix, 0, &Device::Cpu)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let y = model
            .forward(&x, false)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut want = vec![2];
        want.extend(&g.layers[k - 1].shape);
        prop_assert_eq!(
            y.dims(),
            &want[..],
            "after `{}`:\n{}",
            g.layers[k - 1].name,
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn resolved_configs_read_back_as_the_same_experiment(m in valid_model()) {
        round_trips(&m)?;
    }

    #[test]
    fn inferred_shapes_equal_a_forward_pass(m in valid_model()) {
        forward_pass_agrees(&m)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequential_models_match_pytorch_shapes(m in model()) {
        agrees_with_oracle(&m)?;
    }

    #[test]
    fn changing_a_declared_in_is_consistent_or_located(
        m in model(),
        pick in any::<prop::sample::Index>(),
        new in 1..600usize,
    ) {
        let declarable: Vec<usize> = m
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, L::Conv { .. } | L::Bn { .. } | L::Linear { .. }))
            .map(|(i, _)| i)
            .collect();
        let i = declarable[pick.index(declarable.len())];
        let mut changed = m.clone();
        let before = match &mut changed.layers[i] {
            L::Conv { decl, .. } | L::Bn { decl } | L::Linear { decl, .. } => decl.replace(new),
            _ => unreachable!("declarable"),
        };
        let original = check(&render(&m).0);
        let (text, spans) = render(&changed);
        let c = check(&text);
        if c.ok() {
            // Only possible if the new value is the true width; then nothing else changed.
            prop_assert!(original.ok(), "{}", original.render());
            let (a, b) = (&c.result.as_ref().expect("ok").1, &original.result.as_ref().expect("ok").1);
            prop_assert_eq!(&a.layers, &b.layers);
            if let Some(b) = before {
                prop_assert_eq!(b, new, "a declaration that was true and still checks is unchanged");
            }
        } else if original.ok() {
            prop_assert!(
                c.diagnostics.iter().any(|d| d.is_error() && inside(&d.span, &spans[i])),
                "changing l{}'s declared width to {} gave no error inside it:\n{}\n{}",
                i, new, text, c.render()
            );
        }
        agrees_with_oracle(&changed)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let c = check_bytes("fuzz.toml", &bytes, "fuzz");
        let _ = c.render();
    }

    #[test]
    fn arbitrary_strings_never_panic(text in ".{0,256}") {
        let c = check_str("fuzz.toml", &text, "fuzz");
        let _ = c.render();
    }

    #[test]
    fn toml_shaped_noise_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..120)) {
        let text: String = tokens.concat();
        let c = check_str("fuzz.toml", &text, "fuzz");
        let _ = c.render();
    }

    #[test]
    fn edits_of_a_valid_file_never_panic(
        m in model(),
        at in any::<prop::sample::Index>(),
        len in 0..12usize,
        insert in prop::sample::select(TOKENS),
    ) {
        let (text, _) = render(&m);
        let mut start = at.index(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let end = (start + len).min(text.len());
        let edited = format!("{}{}{}", &text[..start], insert, &text[end..]);
        let c = check_str("edited.toml", &edited, "edited");
        let rendered = c.render();
        for d in &c.diagnostics {
            prop_assert!(d.span.end <= edited.len(), "span past the end:\n{}", rendered);
        }
    }
}

/// Pieces of experiment files, for noise that gets past the TOML parser.
const TOKENS: &[&str] = &[
    "\n",
    " ",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "#",
    "[model]\n",
    "[data]\n",
    "[train]\n",
    "[[model.layers]]\n",
    "[model.blocks.b]\n",
    "layers",
    "op",
    "in",
    "out",
    "kernel",
    "stride",
    "padding",
    "inputs",
    "name",
    "block",
    "args",
    "params",
    "cfg",
    "\"M\"",
    "dataset",
    "\"cifar10\"",
    "\"synthetic\"",
    "synthetic",
    "shape",
    "\"conv2d\"",
    "\"linear\"",
    "\"add\"",
    "\"concat\"",
    "\"block\"",
    "\"vgg\"",
    "\"flatten\"",
    "\"input\"",
    "\"$w\"",
    "w",
    "0",
    "1",
    "3",
    "-1",
    "1e9",
    "nan",
    "1048577",
    "99999999999999999999",
    "0x",
    "true",
    "1.5",
    "\"a\"",
    "\"\u{e9}\"",
    "op = \"conv2d\", out = 8, kernel = 3",
    "op = \"linear\", out = 10",
    "op = \"block\", block = \"b\"",
    "inputs = [\"input\", \"l0\"]",
    "train_transforms",
    "{ op = \"random_crop\", size = 40 }",
];
