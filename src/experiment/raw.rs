//! Raw experiment types: a mirror of the TOML file with spans, read without stopping at the
//! first mistake. [`super::validate`] turns them into the checked [`super::Experiment`].
//!
//! The doc comments here become the descriptions in `schemas/experiment.schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use super::read::{read, read_choice, Cx, FromToml, Seed, Sp, TableReader, Value};
use crate::diagnostic::Diagnostic;

/// An experiment file.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields, title = "runner experiment")]
pub struct RawExperiment<'a> {
    /// Experiment name, used for the results folder. Default: the file name without `.toml`.
    pub name: Option<Sp<String>>,
    /// Seed for weight initialisation, shuffling and augmentation. Default: 0.
    pub seed: Option<Sp<Seed>>,
    /// `cpu` (default), `cuda`, `cuda:N` or `auto` (CUDA when available).
    pub device: Option<Sp<String>>,
    /// Data set, batching and transforms. Required.
    pub data: Option<RawData>,
    /// The network. Required.
    pub model: Option<RawModel<'a>>,
    /// Loss, optimizer, schedule and epochs. Default: 1 epoch of SGD (lr 0.01) on cross-entropy.
    pub train: Option<RawTrain>,
    /// Variants to run: key paths mapped to lists of values, crossed; `[[sweep.zip]]` groups
    /// vary their keys together (with an optional `label` list naming the values). Read and
    /// removed by [`super::variants`] before the rest of the file is read, so always `None` here.
    pub sweep: Option<SweepSchema>,
}

/// The JSON Schema of `[sweep]` (the table itself is read by [`super::variants`]).
#[derive(Debug, Default)]
pub struct SweepSchema;

impl JsonSchema for SweepSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sweep".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Key paths (`\"train.optimizer.lr\"`) mapped to the values to try.",
            "properties": {
                "zip": {
                    "type": "array",
                    "description": "Groups of key paths varied together; lists of equal length.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "label": {
                                "type": "array",
                                "items": { "type": "string", "minLength": 1 },
                                "minItems": 1
                            }
                        },
                        "additionalProperties": { "type": "array", "minItems": 1 }
                    }
                }
            },
            "additionalProperties": { "type": "array", "minItems": 1 }
        })
    }
}

/// `[data]`: the data set and how batches are made.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawData {
    /// `mnist`, `fashion-mnist`, `cifar10` or `synthetic`. Required.
    pub dataset: Option<Sp<String>>,
    /// Shape and size of the `synthetic` data set (only for `dataset = "synthetic"`).
    pub synthetic: Option<RawSynthetic>,
    /// Training batch size. Default: 64.
    pub batch_size: Option<Sp<u64>>,
    /// Evaluation batch size. Default: 1000.
    pub test_batch_size: Option<Sp<u64>>,
    /// Reshuffle the training set every epoch. Default: true.
    pub shuffle: Option<Sp<bool>>,
    /// Train on the first N training images only (quick runs). Default: all.
    pub train_limit: Option<Sp<u64>>,
    /// Transforms applied to training images, in order (after scaling pixels to [0, 1]). Default: none.
    pub train_transforms: Option<Sp<Vec<Sp<RawTransform>>>>,
    /// Transforms applied to test images, in order. Default: none.
    pub test_transforms: Option<Sp<Vec<Sp<RawTransform>>>>,
}

/// `[data.synthetic]`: a generated, learnable data set for tests and demos.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSynthetic {
    /// Image shape `[channels, height, width]`. Default: `[1, 8, 8]`.
    pub shape: Option<Sp<Vec<Sp<u64>>>>,
    /// Number of classes. Default: 4.
    pub classes: Option<Sp<u64>>,
    /// Training images. Default: 512.
    pub train_size: Option<Sp<u64>>,
    /// Test images. Default: 256.
    pub test_size: Option<Sp<u64>>,
}

/// One transform, selected by `op`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawTransform {
    /// `(x - mean) / std` per channel; one value per channel (or one for all).
    Normalize {
        /// Per-channel means.
        mean: Sp<Vec<Sp<f64>>>,
        /// Per-channel standard deviations, all > 0.
        std: Sp<Vec<Sp<f64>>>,
    },
    /// Pad with zeros, then crop a random `size` x `size` window (torchvision `RandomCrop`).
    RandomCrop {
        /// Output size.
        size: Sp<u64>,
        /// Zero padding on every side first. Default: 0.
        padding: Option<Sp<u64>>,
    },
    /// Mirror left-right with probability `p` (default 0.5).
    RandomHorizontalFlip {
        /// Probability. Default: 0.5.
        p: Option<Sp<f64>>,
    },
    /// A fixed random permutation of the pixel positions, drawn from its own `seed`. Put the same
    /// transform in `train_transforms` and `test_transforms`.
    PixelPermutation {
        /// Seed of the permutation. Default: 0.
        seed: Option<Sp<Seed>>,
    },
    /// RGB to one luminance channel (torchvision `Grayscale`); needs 3-channel images.
    Grayscale,
    /// Crop the central `size` x `size` window.
    CenterCrop {
        /// Output size.
        size: Sp<u64>,
    },
}

/// `[model]`: the network as an ordered list of layers.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawModel<'a> {
    /// Per-sample input shape `[C, H, W]`. Default: the data set's image shape after the training transforms.
    pub input: Option<Sp<Vec<Sp<u64>>>>,
    /// Layers, in order. Each takes the previous layer's output unless it names `inputs`.
    #[schemars(with = "Vec<RawLayerSchema>")]
    pub layers: Option<Sp<Vec<RawLayer<'a>>>>,
    /// Reusable blocks, instantiated with `{ op = "block", block = "<name>", args = { ... } }`.
    #[schemars(with = "BTreeMap<String, RawBlockSchema>")]
    pub blocks: Vec<RawBlock<'a>>,
}

/// A block definition; its layers may use `"$param"` wherever a value is expected.
#[derive(Debug)]
pub struct RawBlock<'a> {
    /// Block name.
    pub name: Sp<String>,
    /// Parameter names, each given by every instance in `args`.
    pub params: Vec<Sp<String>>,
    /// The unread layer list (read per instance, with its arguments substituted).
    pub layers: &'a Value<'a>,
}

/// `[model.blocks.<name>]`: a block defined once and instantiated many times.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RawBlockSchema {
    /// Parameter names; the body refers to them as `"$name"`.
    params: Option<Vec<String>>,
    /// The block's layers. Inside, `inputs = ["input"]` names the block's input and layer names are local.
    layers: Vec<RawLayerSchema>,
}

/// Schema of one layer: `op` selects the kind, `name` and `inputs` are common to all.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct RawLayerSchema {
    /// Unique name (letters, digits, `_`). Default: op-based, e.g. `conv1`, `fc2`.
    name: Option<String>,
    /// Names of the layers this one reads (`"input"` is the model or block input). Default: the previous layer.
    inputs: Option<Vec<String>>,
    #[serde(flatten)]
    op: RawOp<'static>,
}

/// One entry of `layers`.
#[derive(Debug)]
pub struct RawLayer<'a> {
    /// Explicit name.
    pub name: Option<Sp<String>>,
    /// Explicit inputs.
    pub inputs: Option<Sp<Vec<Sp<String>>>>,
    /// The operation.
    pub op: Sp<RawOp<'a>>,
    /// The whole layer table.
    pub span: std::ops::Range<usize>,
}

/// One `cfg` entry of the VGG shorthand: a width, or `"M"` for max-pooling.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum VggItem {
    /// A 3x3 conv (+ BatchNorm) + ReLU with this many output channels.
    Conv(u64),
    /// `"M"`: 2x2 max-pooling with stride 2.
    #[schemars(with = "String")]
    Pool,
}

/// Layer operations as written; sizes that can be inferred are optional.
#[derive(Debug, JsonSchema)]
#[schemars(tag = "op", rename_all = "snake_case")]
pub enum RawOp<'a> {
    /// `nn.Conv2d`.
    Conv2d {
        /// Input channels. Default: inferred; if given, must match.
        #[schemars(rename = "in")]
        in_channels: Option<Sp<u64>>,
        /// Output channels.
        out: Sp<u64>,
        /// Kernel size.
        kernel: Sp<u64>,
        /// Stride. Default: 1.
        stride: Option<Sp<u64>>,
        /// Zero padding. Default: 0.
        padding: Option<Sp<u64>>,
        /// Add a bias. Default: true.
        bias: Option<Sp<bool>>,
    },
    /// `nn.BatchNorm2d`.
    BatchNorm2d {
        /// Channels. Default: inferred; if given, must match.
        features: Option<Sp<u64>>,
        /// Default: 1e-5.
        eps: Option<Sp<f64>>,
        /// Running-statistics momentum. Default: 0.1.
        momentum: Option<Sp<f64>>,
    },
    /// ReLU.
    Relu,
    /// Hyperbolic tangent (LeNet-5's activation).
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// `nn.MaxPool2d`.
    MaxPool2d {
        /// Window size.
        kernel: Sp<u64>,
        /// Stride. Default: `kernel`.
        stride: Option<Sp<u64>>,
        /// Padding. Default: 0.
        padding: Option<Sp<u64>>,
    },
    /// `nn.AvgPool2d`.
    AvgPool2d {
        /// Window size.
        kernel: Sp<u64>,
        /// Stride. Default: `kernel`.
        stride: Option<Sp<u64>>,
        /// Padding. Default: 0.
        padding: Option<Sp<u64>>,
    },
    /// Mean over height and width: `[C, H, W] -> [C]`.
    GlobalAvgPool,
    /// Flatten to `[features]`.
    Flatten,
    /// `nn.Linear`.
    Linear {
        /// Input features. Default: inferred; if given, must match.
        #[schemars(rename = "in")]
        in_features: Option<Sp<u64>>,
        /// Output features.
        out: Sp<u64>,
        /// Add a bias. Default: true.
        bias: Option<Sp<bool>>,
    },
    /// Dropout (training only).
    Dropout {
        /// Drop probability. Default: 0.5.
        p: Option<Sp<f64>>,
    },
    /// `log_softmax` over features (pair with `loss = "nll"`).
    LogSoftmax,
    /// Sum of two or more same-shaped `inputs`.
    Add,
    /// Concatenation of `inputs` along channels (or features).
    Concat,
    /// No-op.
    Identity,
    /// VGG shorthand: `cfg = [64, "M", 128, "M", ...]`.
    Vgg {
        /// Widths and `"M"` pools.
        cfg: Sp<Vec<Sp<VggItem>>>,
        /// Insert BatchNorm after every conv. Default: false.
        batch_norm: Option<Sp<bool>>,
    },
    /// An instance of a block from `[model.blocks]`.
    Block {
        /// Block name.
        block: Sp<String>,
        /// Values for the block's `params`.
        #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
        args: Vec<(Sp<String>, &'a Value<'a>)>,
    },
}

/// Every `op` name, in documentation order.
pub const OPS: &[&str] = &[
    "conv2d",
    "batch_norm2d",
    "relu",
    "tanh",
    "sigmoid",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
    "flatten",
    "linear",
    "dropout",
    "log_softmax",
    "add",
    "concat",
    "identity",
    "vgg",
    "block",
];

/// `[train]`.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawTrain {
    /// Number of epochs. Default: 1.
    pub epochs: Option<Sp<u64>>,
    /// `"cross_entropy"` (default), `"nll"`, or a table `{ kind = "cross_entropy", label_smoothing = 0.1 }`.
    #[schemars(with = "serde_json::Value")]
    pub loss: Option<Sp<RawLoss>>,
    /// The optimizer. Default: `{ kind = "sgd", lr = 0.01 }`.
    pub optimizer: Option<RawOptimizer>,
    /// Learning-rate schedule. Default: constant.
    pub schedule: Option<RawSchedule>,
}

/// Loss as written.
#[derive(Debug, Clone)]
pub struct RawLoss {
    /// `nll` or `cross_entropy`.
    pub kind: Sp<&'static str>,
    /// Cross-entropy label smoothing.
    pub label_smoothing: Option<Sp<f64>>,
}

/// `[train.optimizer]`.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawOptimizer {
    /// `sgd`, `adam` or `adamw`. Required.
    #[schemars(with = "String")]
    pub kind: Option<Sp<&'static str>>,
    /// Learning rate. Default: 0.01 for SGD, 0.001 for Adam/AdamW.
    pub lr: Option<Sp<f64>>,
    /// SGD momentum. Default: 0.
    pub momentum: Option<Sp<f64>>,
    /// SGD dampening. Default: 0.
    pub dampening: Option<Sp<f64>>,
    /// SGD Nesterov momentum. Default: false.
    pub nesterov: Option<Sp<bool>>,
    /// Weight decay (L2 for SGD/Adam, decoupled for AdamW). Default: 0 (0.01 for AdamW).
    pub weight_decay: Option<Sp<f64>>,
    /// Adam `[beta1, beta2]`. Default: `[0.9, 0.999]`.
    pub betas: Option<Sp<Vec<Sp<f64>>>>,
    /// Adam epsilon. Default: 1e-8.
    pub eps: Option<Sp<f64>>,
}

/// `[train.schedule]`.
#[derive(Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSchedule {
    /// `constant` (default), `step`, `multistep`, `cosine` or `one_cycle`.
    #[schemars(with = "String")]
    pub kind: Option<Sp<&'static str>>,
    /// `step`: epochs between decays.
    pub step_size: Option<Sp<u64>>,
    /// `step`/`multistep`: decay factor. Default: 0.1.
    pub gamma: Option<Sp<f64>>,
    /// `multistep`: epochs at which to decay.
    pub milestones: Option<Sp<Vec<Sp<u64>>>>,
    /// `cosine`: period in epochs. Default: the number of epochs.
    pub t_max: Option<Sp<u64>>,
    /// `cosine`: minimum rate. Default: 0.
    pub eta_min: Option<Sp<f64>>,
    /// `one_cycle`: peak rate. Default: the optimizer's `lr`.
    pub max_lr: Option<Sp<f64>>,
    /// `one_cycle`: fraction of steps rising. Default: 0.3.
    pub pct_start: Option<Sp<f64>>,
    /// `one_cycle`: initial rate = max_lr / div_factor. Default: 25.
    pub div_factor: Option<Sp<f64>>,
    /// `one_cycle`: final rate = initial / final_div_factor. Default: 1e4.
    pub final_div_factor: Option<Sp<f64>>,
    /// Optimizer steps of linear warm-up in front of the schedule. Default: 0.
    pub warmup_steps: Option<Sp<u64>>,
    /// Warm-up factor at step 0. Default: 0.1.
    pub warmup_start_factor: Option<Sp<f64>>,
}

// ---------------------------------------------------------------------------------------------
// Reading.

const TOP: &[&str] = &["name", "seed", "device", "data", "model", "train", "sweep"];
const DATA: &[&str] = &[
    "dataset",
    "synthetic",
    "batch_size",
    "test_batch_size",
    "shuffle",
    "train_limit",
    "train_transforms",
    "test_transforms",
];
const SYNTHETIC: &[&str] = &["shape", "classes", "train_size", "test_size"];
const MODEL: &[&str] = &["input", "layers", "blocks"];
const BLOCK: &[&str] = &["params", "layers"];
const TRAIN: &[&str] = &["epochs", "loss", "optimizer", "schedule"];
const LOSS: &[&str] = &["kind", "label_smoothing"];
const OPTIMIZER: &[&str] = &[
    "kind",
    "lr",
    "momentum",
    "dampening",
    "nesterov",
    "weight_decay",
    "betas",
    "eps",
];
const SCHEDULE: &[&str] = &[
    "kind",
    "step_size",
    "gamma",
    "milestones",
    "t_max",
    "eta_min",
    "max_lr",
    "pct_start",
    "div_factor",
    "final_div_factor",
    "warmup_steps",
    "warmup_start_factor",
];
/// Keys every layer may have besides its op's own.
const LAYER_COMMON: [&str; 3] = ["op", "name", "inputs"];

/// Reads the whole document.
pub fn read_experiment<'a>(doc: &'a Value<'a>, cx: &mut Cx<'a>) -> RawExperiment<'a> {
    let Some(t) = TableReader::new(doc, cx, "the experiment", TOP) else {
        return RawExperiment::default();
    };
    RawExperiment {
        name: t.opt(cx, "name"),
        seed: t.opt(cx, "seed"),
        device: t.opt(cx, "device"),
        data: section(&t, cx, "data", read_data),
        model: section(&t, cx, "model", read_model),
        train: t.value("train").and_then(|v| read_train(v, cx)),
        sweep: None,
    }
}

fn section<'a, T>(
    t: &TableReader<'a>,
    cx: &mut Cx<'a>,
    key: &str,
    f: impl FnOnce(&'a Value<'a>, &mut Cx<'a>) -> Option<T>,
) -> Option<T> {
    match t.value(key) {
        Some(v) => f(v, cx),
        None => {
            cx.push(
                Diagnostic::error(0..0, format!("missing `[{key}]` section"))
                    .label("the experiment starts here")
                    .help(format!(
                        "add a `[{key}]` table; see experiments/ for examples"
                    )),
            );
            None
        }
    }
}

fn read_data<'a>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<RawData> {
    let t = TableReader::new(v, cx, "`[data]`", DATA)?;
    Some(RawData {
        dataset: t.req(cx, "dataset"),
        synthetic: t.value("synthetic").and_then(|v| {
            let s = TableReader::new(v, cx, "`[data.synthetic]`", SYNTHETIC)?;
            Some(RawSynthetic {
                shape: s.opt(cx, "shape"),
                classes: s.opt(cx, "classes"),
                train_size: s.opt(cx, "train_size"),
                test_size: s.opt(cx, "test_size"),
            })
        }),
        batch_size: t.opt(cx, "batch_size"),
        test_batch_size: t.opt(cx, "test_batch_size"),
        shuffle: t.opt(cx, "shuffle"),
        train_limit: t.opt(cx, "train_limit"),
        train_transforms: t.opt(cx, "train_transforms"),
        test_transforms: t.opt(cx, "test_transforms"),
    })
}

const TRANSFORMS: &[&str] = &[
    "normalize",
    "random_crop",
    "random_horizontal_flip",
    "pixel_permutation",
    "center_crop",
    "grayscale",
];

impl<'a> FromToml<'a> for RawTransform {
    fn expected() -> &'static str {
        "a transform table like { op = \"normalize\", mean = [0.5], std = [0.5] }"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let op = op_of(v, cx, "transform", TRANSFORMS)?;
        let fields: &'static [&'static str] = match op {
            "normalize" => &["op", "mean", "std"],
            "random_crop" => &["op", "size", "padding"],
            "random_horizontal_flip" => &["op", "p"],
            "pixel_permutation" => &["op", "seed"],
            "grayscale" => &["op"],
            _ => &["op", "size"],
        };
        let t = TableReader::new(v, cx, format!("transform `{op}`"), fields)?;
        Some(match op {
            "normalize" => RawTransform::Normalize {
                mean: t.req(cx, "mean")?,
                std: t.req(cx, "std")?,
            },
            "random_crop" => RawTransform::RandomCrop {
                size: t.req(cx, "size")?,
                padding: t.opt(cx, "padding"),
            },
            "random_horizontal_flip" => RawTransform::RandomHorizontalFlip { p: t.opt(cx, "p") },
            "pixel_permutation" => RawTransform::PixelPermutation {
                seed: t.opt(cx, "seed"),
            },
            "grayscale" => RawTransform::Grayscale,
            _ => RawTransform::CenterCrop {
                size: t.req(cx, "size")?,
            },
        })
    }
}

/// Reads the `op` key of a layer or transform table.
fn op_of<'a>(
    v: &'a Value<'a>,
    cx: &mut Cx<'a>,
    what: &str,
    ops: &[&'static str],
) -> Option<&'static str> {
    let Some(table) = v.get_ref().as_table() else {
        cx.push(
            Diagnostic::error(
                v.span(),
                format!("expected a {what} table, found {}", v.get_ref().type_str()),
            )
            .label("expected { op = \"...\", ... }"),
        );
        return None;
    };
    match table.get("op") {
        Some(op) => read_choice(op, cx, what, ops).map(|s| s.value),
        None => {
            cx.push(
                Diagnostic::error(v.span(), format!("this {what} has no `op`"))
                    .label("missing `op`")
                    .note(format!("expected one of: {}", ops.join(", "))),
            );
            None
        }
    }
}

fn read_model<'a>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<RawModel<'a>> {
    let t = TableReader::new(v, cx, "`[model]`", MODEL)?;
    let mut blocks = Vec::new();
    if let Some(bv) = t.value("blocks") {
        if let Some(table) = bv.get_ref().as_table() {
            for (name, body) in table.iter() {
                let what = format!("block `{}`", name.get_ref());
                let Some(b) = TableReader::new(body, cx, what, BLOCK) else {
                    continue;
                };
                let layers = match b.value("layers") {
                    Some(l) => l,
                    None => {
                        b.req::<bool>(cx, "layers");
                        continue;
                    }
                };
                blocks.push(RawBlock {
                    name: Sp::new(name.get_ref().to_string(), name.span()),
                    params: b
                        .opt::<Vec<Sp<String>>>(cx, "params")
                        .map(|p| p.value)
                        .unwrap_or_default(),
                    layers,
                });
            }
        } else {
            read::<bool>(bv, cx).map(|_| ()).unwrap_or(()); // reports "expected a table"-like error
        }
    }
    let layers = match t.value("layers") {
        Some(lv) => read_layers(lv, cx),
        None => {
            t.req::<Vec<Sp<u64>>>(cx, "layers");
            None
        }
    };
    Some(RawModel {
        input: t.opt(cx, "input"),
        layers,
        blocks,
    })
}

/// Reads a layer list (the model's, or a block body with `cx.args` set).
pub fn read_layers<'a>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Sp<Vec<RawLayer<'a>>>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.push(
            Diagnostic::error(
                v.span(),
                format!(
                    "expected an array of layers, found {}",
                    v.get_ref().type_str()
                ),
            )
            .label("expected `layers = [ { op = \"...\" }, ... ]`"),
        );
        return None;
    };
    let layers = items
        .iter()
        .filter_map(|item| read_layer(item, cx))
        .collect();
    Some(Sp::new(layers, v.span()))
}

use toml::de::DeValue;

fn op_fields(op: &str) -> &'static [&'static str] {
    match op {
        "conv2d" => &["in", "out", "kernel", "stride", "padding", "bias"],
        "batch_norm2d" => &["features", "eps", "momentum"],
        "max_pool2d" | "avg_pool2d" => &["kernel", "stride", "padding"],
        "linear" => &["in", "out", "bias"],
        "dropout" => &["p"],
        "vgg" => &["cfg", "batch_norm"],
        "block" => &["block", "args"],
        _ => &[],
    }
}

/// `LAYER_COMMON` followed by the op's own keys, leaked once per op name (a fixed, small set).
fn layer_fields(op: &'static str) -> &'static [&'static str] {
    use std::sync::OnceLock;
    static CACHE: OnceLock<BTreeMap<&'static str, &'static [&'static str]>> = OnceLock::new();
    CACHE.get_or_init(|| {
        OPS.iter()
            .map(|op| {
                let all: Vec<&'static str> = LAYER_COMMON
                    .iter()
                    .copied()
                    .chain(op_fields(op).iter().copied())
                    .collect();
                (*op, &*Box::leak(all.into_boxed_slice()))
            })
            .collect()
    })[op]
}

fn read_layer<'a>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<RawLayer<'a>> {
    let op = op_of(v, cx, "layer op", OPS)?;
    let t = TableReader::new(v, cx, format!("layer `{op}`"), layer_fields(op))?;
    let name = t.opt::<String>(cx, "name");
    let inputs = t.opt::<Vec<Sp<String>>>(cx, "inputs");
    let raw = match op {
        "conv2d" => RawOp::Conv2d {
            in_channels: t.opt(cx, "in"),
            out: t.req(cx, "out")?,
            kernel: t.req(cx, "kernel")?,
            stride: t.opt(cx, "stride"),
            padding: t.opt(cx, "padding"),
            bias: t.opt(cx, "bias"),
        },
        "batch_norm2d" => RawOp::BatchNorm2d {
            features: t.opt(cx, "features"),
            eps: t.opt(cx, "eps"),
            momentum: t.opt(cx, "momentum"),
        },
        "relu" => RawOp::Relu,
        "tanh" => RawOp::Tanh,
        "sigmoid" => RawOp::Sigmoid,
        "max_pool2d" | "avg_pool2d" => {
            let (kernel, stride, padding) = (
                t.req(cx, "kernel")?,
                t.opt(cx, "stride"),
                t.opt(cx, "padding"),
            );
            if op == "max_pool2d" {
                RawOp::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                }
            } else {
                RawOp::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                }
            }
        }
        "global_avg_pool" => RawOp::GlobalAvgPool,
        "flatten" => RawOp::Flatten,
        "linear" => RawOp::Linear {
            in_features: t.opt(cx, "in"),
            out: t.req(cx, "out")?,
            bias: t.opt(cx, "bias"),
        },
        "dropout" => RawOp::Dropout { p: t.opt(cx, "p") },
        "log_softmax" => RawOp::LogSoftmax,
        "add" => RawOp::Add,
        "concat" => RawOp::Concat,
        "identity" => RawOp::Identity,
        "vgg" => RawOp::Vgg {
            cfg: t.req(cx, "cfg")?,
            batch_norm: t.opt(cx, "batch_norm"),
        },
        _ => {
            let block = t.req::<String>(cx, "block")?;
            let mut args = Vec::new();
            if let Some(av) = t.value("args") {
                match av.get_ref().as_table() {
                    Some(table) => {
                        for (k, val) in table.iter() {
                            args.push((Sp::new(k.get_ref().to_string(), k.span()), val));
                        }
                    }
                    None => {
                        cx.push(
                            Diagnostic::error(av.span(), "`args` must be a table")
                                .label("expected `args = { name = value, ... }`"),
                        );
                        return None;
                    }
                }
            }
            RawOp::Block { block, args }
        }
    };
    Some(RawLayer {
        name,
        inputs,
        op: Sp::new(raw, v.span()),
        span: v.span(),
    })
}

impl<'a> FromToml<'a> for VggItem {
    fn expected() -> &'static str {
        "a width or \"M\""
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::String(s) if s == "M" => Some(VggItem::Pool),
            DeValue::Integer(_) => {
                let n = read::<u64>(v, cx)?;
                Some(VggItem::Conv(n.value))
            }
            _ => {
                cx.push(
                    Diagnostic::error(v.span(), "a VGG `cfg` entry must be a width or \"M\"")
                        .label("expected an integer or \"M\""),
                );
                None
            }
        }
    }
}

fn read_train<'a>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<RawTrain> {
    let t = TableReader::new(v, cx, "`[train]`", TRAIN)?;
    let loss = t.value("loss").and_then(|lv| {
        let lv = cx.resolve(lv)?;
        if lv.get_ref().is_str() {
            let kind = read_choice(lv, cx, "loss", &["cross_entropy", "nll"])?;
            return Some(Sp::new(
                RawLoss {
                    kind,
                    label_smoothing: None,
                },
                lv.span(),
            ));
        }
        let lt = TableReader::new(lv, cx, "`[train.loss]`", LOSS)?;
        let kind = read_choice(
            lt.value("kind").or_else(|| {
                lt.req::<String>(cx, "kind");
                None
            })?,
            cx,
            "loss",
            &["cross_entropy", "nll"],
        )?;
        Some(Sp::new(
            RawLoss {
                kind,
                label_smoothing: lt.opt(cx, "label_smoothing"),
            },
            lv.span(),
        ))
    });
    let optimizer = t.value("optimizer").and_then(|ov| {
        let o = TableReader::new(ov, cx, "`[train.optimizer]`", OPTIMIZER)?;
        let kind = match o.value("kind") {
            Some(k) => read_choice(k, cx, "optimizer", &["sgd", "adam", "adamw"]),
            None => {
                o.req::<String>(cx, "kind");
                None
            }
        };
        Some(RawOptimizer {
            kind,
            lr: o.opt(cx, "lr"),
            momentum: o.opt(cx, "momentum"),
            dampening: o.opt(cx, "dampening"),
            nesterov: o.opt(cx, "nesterov"),
            weight_decay: o.opt(cx, "weight_decay"),
            betas: o.opt(cx, "betas"),
            eps: o.opt(cx, "eps"),
        })
    });
    let schedule = t.value("schedule").and_then(|sv| {
        let s = TableReader::new(sv, cx, "`[train.schedule]`", SCHEDULE)?;
        Some(RawSchedule {
            kind: s.value("kind").and_then(|k| {
                read_choice(
                    k,
                    cx,
                    "schedule",
                    &["constant", "step", "multistep", "cosine", "one_cycle"],
                )
            }),
            step_size: s.opt(cx, "step_size"),
            gamma: s.opt(cx, "gamma"),
            milestones: s.opt(cx, "milestones"),
            t_max: s.opt(cx, "t_max"),
            eta_min: s.opt(cx, "eta_min"),
            max_lr: s.opt(cx, "max_lr"),
            pct_start: s.opt(cx, "pct_start"),
            div_factor: s.opt(cx, "div_factor"),
            final_div_factor: s.opt(cx, "final_div_factor"),
            warmup_steps: s.opt(cx, "warmup_steps"),
            warmup_start_factor: s.opt(cx, "warmup_start_factor"),
        })
    });
    Some(RawTrain {
        epochs: t.opt(cx, "epochs"),
        loss,
        optimizer,
        schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader's key lists and the generated schema come from different code; they must agree.
    #[test]
    fn key_lists_match_the_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(&crate::cli::schema::schema_json()).expect("schema is JSON");
        let props = |v: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = v["properties"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        let sorted = |l: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let defs = &schema["$defs"];
        let cases: [(&str, &serde_json::Value, &[&str]); 7] = [
            ("top level", &schema, TOP),
            ("RawData", &defs["RawData"], DATA),
            ("RawSynthetic", &defs["RawSynthetic"], SYNTHETIC),
            ("RawModel", &defs["RawModel"], MODEL),
            ("RawBlockSchema", &defs["RawBlockSchema"], BLOCK),
            ("RawTrain", &defs["RawTrain"], TRAIN),
            ("RawOptimizer", &defs["RawOptimizer"], OPTIMIZER),
        ];
        for (what, def, keys) in cases {
            assert_eq!(
                props(def),
                sorted(keys),
                "{what}: schema vs reader key list"
            );
        }
        assert_eq!(
            props(&defs["RawSchedule"]),
            sorted(SCHEDULE),
            "RawSchedule: schema vs reader key list"
        );
        let layer = &defs["RawLayerSchema"];
        assert_eq!(
            props(layer),
            sorted(&LAYER_COMMON[1..]),
            "layer common keys"
        );
        let variants = layer["oneOf"].as_array().expect("layer ops are a oneOf");
        let mut ops = Vec::new();
        for v in variants {
            let op = v["properties"]["op"]["const"].as_str().expect("op const");
            let mut keys = props(v);
            keys.retain(|k| k != "op");
            assert_eq!(
                keys,
                sorted(op_fields(op)),
                "layer `{op}`: schema vs reader"
            );
            ops.push(op.to_string());
        }
        assert_eq!(ops, OPS, "every op is in the schema, in order");
    }
}
