//! Raw experiment -> checked [`Experiment`]: defaults, ranges, and the model graph.

use std::ops::Range;

use super::raw::{
    RawData, RawExperiment, RawOptimizer, RawSchedule, RawSynthetic, RawTrain, RawTransform,
};
use super::read::{checked, int_in, Cx, Sp};
use super::*;
use crate::diagnostic::Diagnostic;
use crate::graph::build::{build, Graph, MAX_WIDTH};

/// Largest batch size, epoch count and synthetic data size accepted.
const MAX_COUNT: u64 = 1 << 24;

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

/// Validates everything; `None` when any error was reported.
pub fn validate<'a>(
    cx: &mut Cx<'a>,
    raw: RawExperiment<'a>,
    default_name: &str,
) -> Option<(Experiment, Graph)> {
    let name = match &raw.name {
        Some(n)
            if n.value.is_empty() || n.value.contains(['/', '\\']) || n.value.starts_with('.') =>
        {
            cx.push(
                Diagnostic::error(
                    n.span.clone(),
                    format!("invalid experiment name `{}`", n.value),
                )
                .label("used as a folder name: no slashes, not empty, not starting with `.`"),
            );
            None
        }
        Some(n) => Some(n.value.clone()),
        None => Some(default_name.to_string()),
    };
    let seed = raw.seed.as_ref().map_or(0, |s| s.value.0);
    let device = match &raw.device {
        None => Some(DeviceSpec::Cpu),
        Some(d) => parse_device(&d.value).or_else(|| {
            let mut diag =
                Diagnostic::error(d.span.clone(), format!("unknown device `{}`", d.value))
                    .label("expected `cpu`, `cuda`, `cuda:N` or `auto`");
            if let Some(m) = crate::diagnostic::did_you_mean(&d.value, ["cpu", "cuda", "auto"]) {
                diag = diag.help(format!("did you mean `{m}`?"));
            }
            cx.push(diag);
            None
        }),
    };
    let (data, images) = raw.data.map_or((None, None), |d| validate_data(cx, d));
    let train = validate_train(cx, raw.train.unwrap_or_default());
    let mut graph = None;
    // The model is checked whenever the images' shape is known, even if other `[data]` settings
    // (batch sizes, test transforms) are wrong, so that one pass reports every mistake.
    if let (Some(data), Some(model)) = (&images, raw.model) {
        let natural = data
            .train_transforms
            .iter()
            .fold(data.dataset.image_shape(), |s, t| t.output_shape(s));
        let input = match &model.input {
            None => Some(natural),
            Some(i) => match i.value.as_slice() {
                [c, h, w] if [c.value, h.value, w.value] == natural.map(|x| x as u64) => {
                    Some(natural)
                }
                [c, h, w] => {
                    cx.push(
                        Diagnostic::error(i.span.clone(), format!("model input [{}, {}, {}] does not match the data, which arrives as {:?}", c.value, h.value, w.value, natural))
                            .label(format!("expected {natural:?}"))
                            .help("remove `input` to take the shape from the data set and transforms"),
                    );
                    None
                }
                _ => {
                    cx.push(
                        Diagnostic::error(
                            i.span.clone(),
                            "`input` must be [channels, height, width]",
                        )
                        .label("expected three numbers"),
                    );
                    None
                }
            },
        };
        if let (Some(input), Some(layers)) = (input, model.layers) {
            if let Some((g, last_span)) = build(cx, layers, &model.blocks, input) {
                let out = g.output_shape();
                let classes = data.dataset.classes();
                if out != [classes] {
                    cx.push(
                        Diagnostic::error(last_span, format!("the model outputs {out:?} per image, but {} has {classes} classes", data.dataset.name()))
                            .label("last layer")
                            .help(format!("end the model with a layer that produces [{classes}], e.g. `{{ op = \"linear\", out = {classes} }}`")),
                    );
                } else {
                    graph = Some(g);
                }
            }
        }
    }
    if let (Some(train), Some(g)) = (&train, &graph) {
        let ends_log_softmax = g
            .layers
            .last()
            .is_some_and(|l| l.op == crate::graph::Op::LogSoftmax);
        if train.0.loss == LossSpec::Nll && !ends_log_softmax {
            cx.push(
                Diagnostic::warning(train.1.clone(), "`nll` loss expects log-probabilities, but the model does not end with `log_softmax`")
                    .label("loss = \"nll\"")
                    .help("add `{ op = \"log_softmax\" }` as the last layer, or use `loss = \"cross_entropy\"`"),
            );
        }
    }
    if cx.diags.iter().any(Diagnostic::is_error) {
        return None;
    }
    let (data, train, graph) = (data?, train?.0, graph?);
    let model = ModelSpec {
        input: graph.input,
        layers: graph.layers.clone(),
    };
    Some((
        Experiment {
            name: name?,
            seed,
            device: device?,
            data,
            model,
            train,
        },
        graph,
    ))
}

/// Parses `cpu`, `cuda`, `cuda:N`, `auto`.
pub fn parse_device(s: &str) -> Option<DeviceSpec> {
    match s {
        "cpu" => Some(DeviceSpec::Cpu),
        "cuda" => Some(DeviceSpec::Cuda(0)),
        "auto" => Some(DeviceSpec::Auto),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < 1024)
            .map(DeviceSpec::Cuda),
    }
}

/// What the model check needs from `[data]`: the data set and the training transforms.
struct Images {
    dataset: DatasetKind,
    train_transforms: Vec<Transform>,
}

/// The checked `[data]`, and, separately, the images' description, which is known as soon as the
/// data set and training transforms are valid.
fn validate_data(cx: &mut Cx<'_>, d: RawData) -> (Option<DataSpec>, Option<Images>) {
    let Some(ds) = d.dataset.as_ref() else {
        return (None, None);
    };
    let Some(dataset) = dataset_kind(cx, ds, d.synthetic.as_ref()) else {
        return (None, None);
    };
    if d.synthetic.is_some() && !matches!(dataset, DatasetKind::Synthetic(_)) {
        cx.push(
            Diagnostic::warning(
                ds.span.clone(),
                "`[data.synthetic]` is ignored unless `dataset = \"synthetic\"`",
            )
            .label("not synthetic"),
        );
    }
    let batch_size = count(cx, &d.batch_size, 64, 1, "batch_size");
    let test_batch_size = count(cx, &d.test_batch_size, 1000, 1, "test_batch_size");
    let train_limit = match &d.train_limit {
        None => Some(None),
        Some(_) => count(cx, &d.train_limit, 1, 1, "train_limit").map(Some),
    };
    let input = dataset.image_shape();
    let train = transforms(cx, d.train_transforms.as_ref(), input);
    let test = transforms(cx, d.test_transforms.as_ref(), input);
    if let (Some((train, tr_shape)), Some((test, te_shape))) = (&train, &test) {
        // Train/test disagreements point at the test list (else the train list, else the dataset).
        let span = d
            .test_transforms
            .as_ref()
            .or(d.train_transforms.as_ref())
            .map_or(ds.span.clone(), |t| t.span.clone());
        if tr_shape != te_shape {
            cx.push(
                Diagnostic::error(
                    span.clone(),
                    format!(
                        "training images come out as {tr_shape:?} but test images as {te_shape:?}"
                    ),
                )
                .label("transforms disagree on the image size")
                .help("add a `center_crop` to `test_transforms` with the training crop size"),
            );
        }
        let perm = |ts: &[Transform]| {
            ts.iter().find_map(|t| {
                if let Transform::PixelPermutation { seed } = t {
                    Some(*seed)
                } else {
                    None
                }
            })
        };
        if perm(train) != perm(test) {
            cx.push(
                Diagnostic::warning(
                    span,
                    "the pixel permutation differs between training and test transforms",
                )
                .label("train and test see differently arranged pixels")
                .help("put the same `{ op = \"pixel_permutation\", seed = ... }` in both lists"),
            );
        }
    }
    let images = train.as_ref().map(|(t, _)| Images {
        dataset: dataset.clone(),
        train_transforms: t.clone(),
    });
    let spec = match (batch_size, test_batch_size, train_limit, train, test) {
        (
            Some(batch_size),
            Some(test_batch_size),
            Some(train_limit),
            Some((train, _)),
            Some((test, _)),
        ) => Some(DataSpec {
            dataset,
            batch_size,
            test_batch_size,
            shuffle: d.shuffle.as_ref().is_none_or(|s| s.value),
            train_limit,
            train_transforms: train,
            test_transforms: test,
        }),
        _ => None,
    };
    (spec, images)
}

fn dataset_kind(
    cx: &mut Cx<'_>,
    ds: &Sp<String>,
    synthetic: Option<&RawSynthetic>,
) -> Option<DatasetKind> {
    Some(match ds.value.as_str() {
        "mnist" => DatasetKind::Mnist,
        "fashion-mnist" => DatasetKind::FashionMnist,
        "cifar10" => DatasetKind::Cifar10,
        "synthetic" => {
            let s = synthetic;
            let none = None;
            let (shape_v, classes_v, train_v, test_v) = match s {
                Some(s) => (&s.shape, &s.classes, &s.train_size, &s.test_size),
                None => (&none, &None, &None, &None),
            };
            let shape = match shape_v {
                None => Some([1, 8, 8]),
                Some(v) => match v.value.as_slice() {
                    [c, h, w] if [c, h, w].iter().all(|x| (1..=4096).contains(&x.value)) => {
                        Some([c.value as usize, h.value as usize, w.value as usize])
                    }
                    _ => {
                        cx.push(Diagnostic::error(v.span.clone(), "synthetic `shape` must be [channels, height, width], each 1 to 4096").label("invalid shape"));
                        None
                    }
                },
            };
            let classes = count(cx, classes_v, 4, 2, "classes");
            let train = count(cx, train_v, 512, 1, "train_size");
            let test = count(cx, test_v, 256, 1, "test_size");
            DatasetKind::Synthetic(SyntheticSpec {
                shape: shape?,
                classes: classes?,
                train_size: train?,
                test_size: test?,
            })
        }
        other => {
            let choices = ["mnist", "fashion-mnist", "cifar10", "synthetic"];
            let mut diag = Diagnostic::error(ds.span.clone(), format!("unknown dataset `{other}`"))
                .label("not a known dataset");
            diag = match crate::diagnostic::did_you_mean(other, choices) {
                Some(m) => diag.help(format!("did you mean `{m}`?")),
                None => diag.note(format!("expected one of: {}", choices.join(", "))),
            };
            cx.push(diag);
            return None;
        }
    })
}

fn transforms(
    cx: &mut Cx<'_>,
    list: Option<&Sp<Vec<Sp<RawTransform>>>>,
    input: [usize; 3],
) -> Option<(Vec<Transform>, [usize; 3])> {
    let mut shape = input;
    let mut out = Vec::new();
    let mut ok = true;
    for t in list.map_or(&[][..], |l| &l.value[..]) {
        let checked = transform(cx, &t.value, &t.span, shape);
        match checked {
            Some(c) => {
                shape = c.output_shape(shape);
                out.push(c);
            }
            None => ok = false,
        }
    }
    ok.then_some((out, shape))
}

fn transform(
    cx: &mut Cx<'_>,
    t: &RawTransform,
    span: &Range<usize>,
    [c, h, w]: [usize; 3],
) -> Option<Transform> {
    let crop = |cx: &mut Cx<'_>, size: &Sp<u64>, pad: u64| {
        let limit = (h.min(w) as u64) + 2 * pad;
        if size.value == 0 || size.value > limit {
            cx.push(
                Diagnostic::error(
                    size.span.clone(),
                    format!(
                        "crop size {} does not fit images of {h}x{w}{}",
                        size.value,
                        if pad > 0 {
                            format!(" padded by {pad}")
                        } else {
                            String::new()
                        }
                    ),
                )
                .label(format!("expected 1 to {limit}")),
            );
            return None;
        }
        Some(size.value as usize)
    };
    match t {
        RawTransform::Normalize { mean, std } => {
            let mut ok = true;
            for (what, list) in [("mean", mean), ("std", std)] {
                if list.value.len() != 1 && list.value.len() != c {
                    cx.push(
                        Diagnostic::error(
                            list.span.clone(),
                            format!(
                                "`{what}` has {} values but images have {c} channel{}",
                                list.value.len(),
                                if c == 1 { "" } else { "s" }
                            ),
                        )
                        .label(format!("expected {c} (or 1 for all channels)")),
                    );
                    ok = false;
                }
            }
            for s in &std.value {
                if s.value <= 0.0 {
                    cx.push(
                        Diagnostic::error(s.span.clone(), "a standard deviation must be > 0")
                            .label("division by this"),
                    );
                    ok = false;
                }
            }
            let expand = |l: &Sp<Vec<Sp<f64>>>| -> Vec<f32> {
                (0..c)
                    .map(|i| l.value[if l.value.len() == 1 { 0 } else { i }].value as f32)
                    .collect()
            };
            ok.then(|| Transform::Normalize {
                mean: expand(mean),
                std: expand(std),
            })
        }
        RawTransform::RandomCrop { size, padding } => {
            let pad = padding.as_ref().map_or(0, |p| p.value);
            if pad > 1024 {
                let p = padding.as_ref()?;
                cx.push(
                    Diagnostic::error(p.span.clone(), format!("padding {pad} is out of range"))
                        .label("expected 0 to 1024"),
                );
                return None;
            }
            Some(Transform::RandomCrop {
                size: crop(cx, size, pad)?,
                padding: pad as usize,
            })
        }
        RawTransform::RandomHorizontalFlip { p } => {
            let p = real(cx, p, 0.5, |x| (0.0..=1.0).contains(&x), "p", "0 to 1")?;
            Some(Transform::RandomHorizontalFlip { p: p as f32 })
        }
        RawTransform::PixelPermutation { seed } => Some(Transform::PixelPermutation {
            seed: seed.as_ref().map_or(0, |s| s.value.0),
        }),
        RawTransform::Grayscale => {
            if c != 3 {
                cx.push(
                    Diagnostic::error(
                        span.clone(),
                        format!(
                            "`grayscale` turns 3 RGB channels into 1, but images have {c} channel{} here",
                            if c == 1 { "" } else { "s" }
                        ),
                    )
                    .label("needs RGB images"),
                );
                return None;
            }
            Some(Transform::Grayscale)
        }
        RawTransform::CenterCrop { size } => {
            let _ = span;
            Some(Transform::CenterCrop {
                size: crop(cx, size, 0)?,
            })
        }
    }
}

/// Returns the checked training spec and the span of the loss (for the nll warning).
fn validate_train(cx: &mut Cx<'_>, t: RawTrain) -> Option<(TrainSpec, Range<usize>)> {
    let epochs = count(cx, &t.epochs, 1, 1, "epochs");
    let loss_span = t.loss.as_ref().map_or(0..0, |l| l.span.clone());
    let loss = match &t.loss {
        None => Some(LossSpec::CrossEntropy {
            label_smoothing: 0.0,
        }),
        Some(l) if l.value.kind.value == "nll" => {
            if let Some(ls) = &l.value.label_smoothing {
                cx.push(
                    Diagnostic::error(
                        ls.span.clone(),
                        "`label_smoothing` only applies to `cross_entropy`",
                    )
                    .label("not supported with nll"),
                );
            }
            Some(LossSpec::Nll)
        }
        Some(l) => real(
            cx,
            &l.value.label_smoothing,
            0.0,
            |x| (0.0..1.0).contains(&x),
            "label_smoothing",
            "0 <= value < 1",
        )
        .map(|ls| LossSpec::CrossEntropy {
            label_smoothing: ls,
        }),
    };
    let optimizer = validate_optimizer(cx, t.optimizer.unwrap_or_default());
    let schedule = match (&optimizer, &epochs) {
        (Some(o), Some(e)) => validate_schedule(cx, t.schedule.unwrap_or_default(), o.lr(), *e),
        _ => None,
    };
    Some((
        TrainSpec {
            epochs: epochs?,
            loss: loss?,
            optimizer: optimizer?,
            schedule: schedule?,
        },
        loss_span,
    ))
}

fn validate_optimizer(cx: &mut Cx<'_>, o: RawOptimizer) -> Option<OptimizerSpec> {
    let kind = o.kind.as_ref().map_or("sgd", |k| k.value);
    let positive = |x: f64| x > 0.0 && x <= 1e3;
    let nonneg = |x: f64| (0.0..=1e3).contains(&x);
    let lr = real(
        cx,
        &o.lr,
        if kind == "sgd" { 0.01 } else { 0.001 },
        positive,
        "lr",
        "0 < lr <= 1000",
    );
    let unused = |cx: &mut Cx<'_>, key: &str, v: Option<Range<usize>>| {
        if let Some(span) = v {
            cx.push(
                Diagnostic::error(span, format!("`{key}` does not apply to `{kind}`"))
                    .label("remove this")
                    .help(if kind == "sgd" {
                        "it is an Adam/AdamW setting"
                    } else {
                        "it is an SGD setting"
                    }),
            );
        }
    };
    if kind == "sgd" {
        unused(cx, "betas", o.betas.as_ref().map(|b| b.span.clone()));
        unused(cx, "eps", o.eps.as_ref().map(|b| b.span.clone()));
        let momentum = real(
            cx,
            &o.momentum,
            0.0,
            |x| (0.0..1.0).contains(&x) || x == 1.0,
            "momentum",
            "0 to 1",
        );
        let dampening = real(
            cx,
            &o.dampening,
            0.0,
            |x| (0.0..=1.0).contains(&x),
            "dampening",
            "0 to 1",
        );
        let wd = real(cx, &o.weight_decay, 0.0, nonneg, "weight_decay", ">= 0");
        let nesterov = o.nesterov.as_ref().is_some_and(|n| n.value);
        if let (true, Some(m), Some(d)) = (nesterov, momentum, dampening) {
            if m <= 0.0 || d != 0.0 {
                cx.push(
                    Diagnostic::error(
                        o.nesterov.as_ref()?.span.clone(),
                        "nesterov momentum needs momentum > 0 and dampening = 0",
                    )
                    .label("as in torch.optim.SGD")
                    .help("set `momentum` (e.g. 0.9) and leave `dampening` at 0"),
                );
                return None;
            }
        }
        return Some(OptimizerSpec::Sgd {
            lr: lr?,
            momentum: momentum?,
            dampening: dampening?,
            nesterov,
            weight_decay: wd?,
        });
    }
    unused(cx, "momentum", o.momentum.as_ref().map(|b| b.span.clone()));
    unused(
        cx,
        "dampening",
        o.dampening.as_ref().map(|b| b.span.clone()),
    );
    unused(cx, "nesterov", o.nesterov.as_ref().map(|b| b.span.clone()));
    let betas = match &o.betas {
        None => Some((0.9, 0.999)),
        Some(b) => match b.value.as_slice() {
            [b1, b2] if (0.0..1.0).contains(&b1.value) && (0.0..1.0).contains(&b2.value) => {
                Some((b1.value, b2.value))
            }
            _ => {
                cx.push(
                    Diagnostic::error(b.span.clone(), "`betas` must be two numbers in [0, 1)")
                        .label("e.g. [0.9, 0.999]"),
                );
                None
            }
        },
    };
    let eps = real(
        cx,
        &o.eps,
        1e-8,
        |x| x > 0.0 && x < 1.0,
        "eps",
        "0 < eps < 1",
    );
    let wd = real(
        cx,
        &o.weight_decay,
        if kind == "adamw" { 0.01 } else { 0.0 },
        nonneg,
        "weight_decay",
        ">= 0",
    );
    let (lr, betas, eps, weight_decay) = (lr?, betas?, eps?, wd?);
    Some(if kind == "adam" {
        OptimizerSpec::Adam {
            lr,
            betas,
            eps,
            weight_decay,
        }
    } else {
        OptimizerSpec::AdamW {
            lr,
            betas,
            eps,
            weight_decay,
        }
    })
}

fn validate_schedule(
    cx: &mut Cx<'_>,
    s: RawSchedule,
    lr: f64,
    epochs: usize,
) -> Option<ScheduleSpec> {
    let kind = s.kind.as_ref().map_or("constant", |k| k.value);
    let gamma = real(
        cx,
        &s.gamma,
        0.1,
        |x| x > 0.0 && x <= 1.0,
        "gamma",
        "0 < gamma <= 1",
    );
    let allowed: &[&str] = match kind {
        "step" => &["step_size", "gamma"],
        "multistep" => &["milestones", "gamma"],
        "cosine" => &["t_max", "eta_min"],
        "one_cycle" => &["max_lr", "pct_start", "div_factor", "final_div_factor"],
        _ => &[],
    };
    let given: [(&str, Option<Range<usize>>); 9] = [
        ("step_size", s.step_size.as_ref().map(|v| v.span.clone())),
        ("gamma", s.gamma.as_ref().map(|v| v.span.clone())),
        ("milestones", s.milestones.as_ref().map(|v| v.span.clone())),
        ("t_max", s.t_max.as_ref().map(|v| v.span.clone())),
        ("eta_min", s.eta_min.as_ref().map(|v| v.span.clone())),
        ("max_lr", s.max_lr.as_ref().map(|v| v.span.clone())),
        ("pct_start", s.pct_start.as_ref().map(|v| v.span.clone())),
        ("div_factor", s.div_factor.as_ref().map(|v| v.span.clone())),
        (
            "final_div_factor",
            s.final_div_factor.as_ref().map(|v| v.span.clone()),
        ),
    ];
    for (key, span) in given {
        if let Some(span) = span {
            if !allowed.contains(&key) {
                cx.push(
                    Diagnostic::error(
                        span,
                        format!("`{key}` does not apply to the `{kind}` schedule"),
                    )
                    .label("remove this")
                    .note(format!(
                        "`{kind}` takes: {}",
                        if allowed.is_empty() {
                            "nothing".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    )),
                );
            }
        }
    }
    let kind = match kind {
        "step" => {
            let step_size = match &s.step_size {
                Some(_) => count(cx, &s.step_size, 1, 1, "step_size"),
                None => {
                    cx.push(
                        Diagnostic::error(
                            s.kind.as_ref()?.span.clone(),
                            "the `step` schedule needs `step_size`",
                        )
                        .label("missing step_size")
                        .help("add `step_size = 5` (epochs between decays)"),
                    );
                    None
                }
            };
            ScheduleKind::Step {
                step_size: step_size?,
                gamma: gamma?,
            }
        }
        "multistep" => {
            let Some(m) = &s.milestones else {
                cx.push(
                    Diagnostic::error(
                        s.kind.as_ref()?.span.clone(),
                        "the `multistep` schedule needs `milestones`",
                    )
                    .label("missing milestones")
                    .help("add `milestones = [5, 8]`"),
                );
                return None;
            };
            if m.value.windows(2).any(|w| w[0].value >= w[1].value) {
                cx.push(
                    Diagnostic::error(m.span.clone(), "`milestones` must increase")
                        .label("not increasing"),
                );
                return None;
            }
            ScheduleKind::MultiStep {
                milestones: m.value.iter().map(|x| x.value as usize).collect(),
                gamma: gamma?,
            }
        }
        "cosine" => ScheduleKind::Cosine {
            t_max: count(cx, &s.t_max, epochs as u64, 1, "t_max")?,
            eta_min: real(
                cx,
                &s.eta_min,
                0.0,
                |x| (0.0..=lr).contains(&x),
                "eta_min",
                "0 <= eta_min <= lr",
            )?,
        },
        "one_cycle" => ScheduleKind::OneCycle {
            max_lr: real(
                cx,
                &s.max_lr,
                lr,
                |x| x > 0.0 && x <= 1e3,
                "max_lr",
                "0 < max_lr <= 1000",
            )?,
            pct_start: real(
                cx,
                &s.pct_start,
                0.3,
                |x| x > 0.0 && x < 1.0,
                "pct_start",
                "0 < pct_start < 1",
            )?,
            div_factor: real(cx, &s.div_factor, 25.0, |x| x >= 1.0, "div_factor", ">= 1")?,
            final_div_factor: real(
                cx,
                &s.final_div_factor,
                1e4,
                |x| x >= 1.0,
                "final_div_factor",
                ">= 1",
            )?,
        },
        _ => ScheduleKind::Constant,
    };
    let warmup_steps = match &s.warmup_steps {
        Some(w) if w.value > MAX_WIDTH * 16 => {
            cx.push(
                Diagnostic::error(w.span.clone(), "warmup_steps is too large")
                    .label("out of range"),
            );
            return None;
        }
        w => w.as_ref().map_or(0, |w| w.value as usize),
    };
    let start = real(
        cx,
        &s.warmup_start_factor,
        0.1,
        |x| x > 0.0 && x <= 1.0,
        "warmup_start_factor",
        "0 < factor <= 1",
    )?;
    Some(ScheduleSpec {
        kind,
        warmup_steps,
        warmup_start_factor: start,
    })
}
