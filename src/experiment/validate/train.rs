//! `[train]`: epochs, loss, optimizer and schedule.

use std::ops::Range;

use super::super::format::{
    LossName, OptimizerName, RawClipGrad, RawEma, RawInitFrom, RawMixup, RawOptimizer,
    RawParamGroup, RawSchedule, RawTrain, ScheduleName, StopMetric,
};
use super::super::read::{int_in, Cx, Sp};
use super::super::{
    CheckpointSpec, ClipGrad, EarlyStopping, EmaSpec, EmaWarmup, Freeze, InitFrom, LossSpec,
    MixupSpec, OptimizerSpec, ParamGroup, ParamSelector, ScheduleKind, ScheduleSpec, TrainLength,
    TrainSpec,
};
use super::model::MAX_WIDTH;
use super::{count, real, MAX_COUNT, MAX_EPOCHS};
use crate::diagnostic::Diagnostic;

/// Returns the checked training spec and where its cross-table checks point.
pub fn validate(cx: &mut Cx<'_>, t: Option<RawTrain>) -> Option<(TrainSpec, TrainSpans)> {
    let t = t.unwrap_or(RawTrain {
        epochs: None,
        steps: None,
        loss: None,
        optimizer: None,
        schedule: None,
        accumulate: None,
        clip_grad: None,
        ema: None,
        mixup: None,
        checkpoint: None,
        init_from: None,
        early_stopping: None,
        param_groups: None,
        failed: Vec::new(),
    });
    let length = length(cx, &t);
    let loss_span = t.loss.as_ref().map_or(0..0, |l| l.span.clone());
    let loss = match &t.loss {
        None => Some(LossSpec::CrossEntropy {
            label_smoothing: 0.0,
        }),
        Some(l) if l.value.kind.value == LossName::Nll => {
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
    // A table that could not be read was reported; checking defaults in its place would only
    // add misleading errors.
    let optimizer = if t.failed.contains(&"optimizer") {
        None
    } else {
        validate_optimizer(cx, t.optimizer.map(|o| o.value))
    };
    let schedule = match (&optimizer, &length) {
        (Some(o), Some(l)) if !t.failed.contains(&"schedule") => {
            validate_schedule(cx, t.schedule.map(|s| s.value), o.lr(), l.known_epochs())
        }
        _ => None,
    };
    let checkpoint = match &t.checkpoint {
        None => Some(CheckpointSpec::default()),
        Some(c) => count(cx, &c.value.every, 1, 0, "every").map(|every| CheckpointSpec {
            every,
            best: c.value.best.as_ref().is_none_or(|b| b.value),
        }),
    };
    let init_span = t.init_from.as_ref().map(|i| i.span.clone());
    let init_from = match &t.init_from {
        None => Some(None),
        Some(i) => validate_init(cx, &i.value).map(Some),
    };
    let early_stopping = match &t.early_stopping {
        None => Some(None),
        Some(e) => {
            let e = &e.value;
            let patience = count(cx, &e.patience, 5, 1, "patience");
            let min_delta = real(
                cx,
                &e.min_delta,
                0.0,
                |x| (0.0..=1e6).contains(&x),
                "min_delta",
                "0 <= min_delta <= 1e6",
            );
            match (patience, min_delta) {
                (Some(patience), Some(min_delta)) => Some(Some(EarlyStopping {
                    metric: e.metric.as_ref().map_or(StopMetric::ValLoss, |m| m.value),
                    patience,
                    min_delta,
                })),
                _ => None,
            }
        }
    };
    let stop_span = t.early_stopping.as_ref().map(|e| {
        e.value
            .metric
            .as_ref()
            .map_or(e.span.clone(), |m| m.span.clone())
    });
    let accumulate = int_in(
        cx,
        t.accumulate.as_ref(),
        1,
        1,
        MAX_ACCUMULATE,
        "accumulate",
    );
    // `None` inside: no clipping (or no average); `None` outside: reported.
    let clip_grad = match t.clip_grad {
        None => Some(None),
        Some(c) => validate_clip(cx, c).map(Some),
    };
    let ema = match t.ema {
        None => Some(None),
        Some(e) => validate_ema(cx, e.value).map(Some),
    };
    let mixup = match t.mixup {
        None => Some(None),
        Some(m) => validate_mixup(cx, m).map(Some),
    };
    let raw_groups = t.param_groups.map_or_else(Vec::new, |g| g.value);
    let group_spans = raw_groups
        .iter()
        .map(|g| g.value.selector.span.clone())
        .collect();
    let param_groups: Option<Vec<ParamGroup>> = raw_groups
        .into_iter()
        .map(|g| validate_group(cx, g))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    Some((
        TrainSpec {
            mixup: mixup?,
            accumulate: accumulate?,
            clip_grad: clip_grad?,
            ema: ema?,
            checkpoint: checkpoint?,
            early_stopping: early_stopping?,
            length: length?,
            loss: loss?,
            optimizer: optimizer?,
            schedule: schedule?,
            init_from: init_from?,
            param_groups: param_groups?,
        },
        TrainSpans {
            loss: loss_span,
            early_stopping: stop_span,
            init_from: init_span,
            param_groups: group_spans,
        },
    ))
}

/// The path resolved to an absolute one (the file itself is read by the check of the weights,
/// [`crate::check`]) and the SHA-256, if given, in lowercase.
fn validate_init(cx: &mut Cx<'_>, i: &RawInitFrom) -> Option<InitFrom> {
    let sha256 = match &i.sha256 {
        None => Some(None),
        Some(Sp { value, span }) => {
            if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some(Some(value.to_ascii_lowercase()))
            } else {
                cx.push(
                    Diagnostic::error(span.clone(), "`sha256` must be 64 hexadecimal digits")
                        .label(format!("{} characters", value.chars().count()))
                        .help("`sha256sum FILE` prints it"),
                );
                None
            }
        }
    };
    let Sp { value: path, span } = &i.path;
    let path = if path.is_empty() {
        cx.push(
            Diagnostic::error(span.clone(), "`init_from` is an empty path")
                .label("expected a safetensors file"),
        );
        None
    } else {
        match cx.resolve_path(path, span) {
            Ok(p) => Some(p),
            Err(e) => {
                cx.push(
                    Diagnostic::error(span.clone(), format!("`init_from` cannot be resolved: {e}"))
                        .label("this path"),
                );
                None
            }
        }
    };
    Some(InitFrom {
        path: path?,
        sha256: sha256?,
    })
}

/// The most batches one optimizer step may accumulate.
const MAX_ACCUMULATE: u64 = 1 << 16;

fn validate_clip(cx: &mut Cx<'_>, c: Sp<RawClipGrad>) -> Option<ClipGrad> {
    let RawClipGrad {
        max_norm,
        norm_type,
        value,
        failed,
    } = c.value;
    if !failed.is_empty() {
        return None; // reported; which kind of clipping was meant is unclear
    }
    let positive = |x: f64| x > 0.0;
    match (max_norm, value) {
        (Some(max_norm), None) => {
            let norm_type = norm_type.map(|p| Sp::new(p.value.0, p.span));
            let p = real(
                cx,
                &norm_type,
                2.0,
                |p| p >= 1.0,
                "norm_type",
                "a number >= 1, or \"inf\"",
            );
            let max_norm = real(cx, &Some(max_norm), 0.0, positive, "max_norm", "> 0");
            Some(ClipGrad::Norm {
                max_norm: max_norm?,
                norm_type: p?,
            })
        }
        (None, Some(value)) => {
            let stray = norm_type.is_some();
            if let Some(p) = norm_type {
                cx.push(
                    Diagnostic::error(p.span, "`norm_type` applies to `max_norm`, not to `value`")
                        .label("remove this")
                        .help("`value` clamps each gradient element; `max_norm` clips the norm"),
                );
            }
            let value = real(cx, &Some(value), 0.0, positive, "value", "> 0");
            if stray {
                return None;
            }
            Some(ClipGrad::Value { value: value? })
        }
        (Some(_), Some(value)) => {
            cx.push(
                Diagnostic::error(value.span, "`value` and `max_norm` exclude each other")
                    .label("second kind of clipping")
                    .help("clip by norm (`max_norm`) or by value (`value`), not both"),
            );
            None
        }
        (None, None) => {
            cx.push(
                Diagnostic::error(c.span, "`clip_grad` needs `max_norm` or `value`")
                    .label("no bound given")
                    .help("e.g. `clip_grad = { max_norm = 1.0 }` or `clip_grad = { value = 0.5 }`"),
            );
            None
        }
    }
}

fn validate_mixup(cx: &mut Cx<'_>, m: Sp<RawMixup>) -> Option<MixupSpec> {
    let alpha = |cx: &mut Cx<'_>, v: &Option<Sp<f64>>, key| {
        real(
            cx,
            v,
            0.0,
            |a| (0.0..=1e6).contains(&a),
            key,
            "0 <= alpha <= 1e6",
        )
    };
    let mixup_alpha = alpha(cx, &m.value.mixup_alpha, "mixup_alpha");
    let cutmix_alpha = alpha(cx, &m.value.cutmix_alpha, "cutmix_alpha");
    let unit = |a: f64| (0.0..=1.0).contains(&a);
    let prob = real(cx, &m.value.prob, 1.0, unit, "prob", "0 <= prob <= 1");
    let switch_prob = real(
        cx,
        &m.value.switch_prob,
        0.5,
        unit,
        "switch_prob",
        "0 <= p <= 1",
    );
    let (mixup_alpha, cutmix_alpha) = (mixup_alpha?, cutmix_alpha?);
    if mixup_alpha == 0.0 && cutmix_alpha == 0.0 {
        cx.push(
            Diagnostic::error(m.span.clone(), "`[train.mixup]` mixes nothing")
                .label("both `mixup_alpha` and `cutmix_alpha` are 0")
                .help("set `mixup_alpha = 0.8` and/or `cutmix_alpha = 1.0` (timm's defaults)"),
        );
        return None;
    }
    Some(MixupSpec {
        mixup_alpha,
        cutmix_alpha,
        prob: prob?,
        switch_prob: switch_prob?,
        correct_lam: m.value.correct_lam.as_ref().is_none_or(|c| c.value),
    })
}

fn validate_ema(cx: &mut Cx<'_>, e: RawEma) -> Option<EmaSpec> {
    let decay = real(
        cx,
        &Some(e.decay),
        0.0,
        |d| d > 0.0 && d < 1.0,
        "decay",
        "0 < decay < 1",
    );
    let every = int_in(cx, e.every.as_ref(), 1, 1, MAX_COUNT, "every");
    let positive = |x: f64| x > 0.0 && x <= 1e9;
    let power = real(
        cx,
        &e.warmup_power,
        2.0 / 3.0,
        positive,
        "warmup_power",
        "0 < power <= 1e9",
    );
    let gamma = real(
        cx,
        &e.warmup_gamma,
        1.0,
        positive,
        "warmup_gamma",
        "0 < gamma <= 1e9",
    );
    let warmup = e.warmup.as_ref().is_some_and(|w| w.value);
    if !warmup {
        for (key, v) in [
            ("warmup_power", &e.warmup_power),
            ("warmup_gamma", &e.warmup_gamma),
        ] {
            if let Some(v) = v {
                cx.push(
                    Diagnostic::error(v.span.clone(), format!("`{key}` needs `warmup = true`"))
                        .label("has no effect without the warm-up")
                        .help("add `warmup = true`, or remove this"),
                );
            }
        }
        if e.warmup_power.is_some() || e.warmup_gamma.is_some() {
            return None;
        }
    }
    let warmup = if warmup {
        Some(EmaWarmup {
            power: power?,
            gamma: gamma?,
        })
    } else {
        None
    };
    Some(EmaSpec {
        decay: decay?,
        every: every?,
        warmup,
    })
}

/// Where `[train]`'s cross-table checks point.
pub struct TrainSpans {
    /// The loss (for the nll warning); empty when the default was used.
    pub loss: Range<usize>,
    /// The early-stopping metric, or the table when it names none.
    pub early_stopping: Option<Range<usize>>,
    /// The `init_from` value (for the check of the weights file against the model).
    pub init_from: Option<Range<usize>>,
    /// Each `[[train.param_groups]]`'s `match` (for the check against the model's parameters).
    pub param_groups: Vec<Range<usize>>,
}

/// The largest `lr_scale` or `weight_decay_scale`.
const MAX_SCALE: f64 = 1e6;

fn validate_group(cx: &mut Cx<'_>, g: Sp<RawParamGroup>) -> Option<ParamGroup> {
    let RawParamGroup {
        selector,
        lr_scale,
        weight_decay_scale,
        frozen,
        freeze_after_epochs,
        failed,
    } = g.value;
    let scale = |cx: &mut Cx<'_>, v: &Option<Sp<f64>>, key| {
        real(
            cx,
            v,
            1.0,
            |x| (0.0..=MAX_SCALE).contains(&x),
            key,
            "0 <= scale <= 1e6",
        )
    };
    let lr_scale = scale(cx, &lr_scale, "lr_scale");
    let weight_decay_scale = scale(cx, &weight_decay_scale, "weight_decay_scale");
    let m = &selector.value;
    let mut selector_ok = selector.value.failed.is_empty();
    if selector_ok && m.op.is_none() && m.role.is_none() && m.name.is_none() {
        cx.push(
            Diagnostic::error(selector.span.clone(), "`match` selects nothing")
                .label("no `op`, `role` or `name`")
                .help("e.g. `match = { op = \"batch_norm2d\", role = \"bias\" }` or `match = { name = \"*.bias\" }`"),
        );
        selector_ok = false;
    }
    if let Some(name) = &m.name {
        let problem = if name.value.is_empty() {
            Some("it is empty".to_string())
        } else {
            glob::Pattern::new(&name.value)
                .err()
                .map(|e| format!("{} (at character {})", e.msg, e.pos + 1))
        };
        if let Some(problem) = problem {
            cx.push(
                Diagnostic::error(name.span.clone(), "`name` is not a valid pattern")
                    .label(problem)
                    .help("`*` stands for any characters, `?` for one, `[ab]` for one of a set"),
            );
            selector_ok = false;
        }
    }
    let freeze = match (&frozen, &freeze_after_epochs) {
        (Some(f), Some(a)) if f.value => {
            cx.push(
                Diagnostic::error(a.span.clone(), "`freeze_after_epochs` with `frozen = true`")
                    .label("these parameters are never trained")
                    .help("remove one of the two"),
            );
            None
        }
        (Some(f), None) if f.value => Some(Freeze::Always),
        (_, Some(_)) => {
            count(cx, &freeze_after_epochs, 1, 1, "freeze_after_epochs").map(Freeze::AfterEpochs)
        }
        _ => Some(Freeze::Never),
    };
    if !failed.is_empty() || !selector_ok {
        return None;
    }
    Some(ParamGroup {
        selector: ParamSelector {
            op: m.op.as_ref().map(|o| o.value),
            role: m.role.as_ref().map(|r| r.value),
            name: m.name.as_ref().map(|n| n.value.clone()),
        },
        lr_scale: lr_scale?,
        weight_decay_scale: weight_decay_scale?,
        freeze: freeze?,
    })
}

fn validate_optimizer(cx: &mut Cx<'_>, o: Option<RawOptimizer>) -> Option<OptimizerSpec> {
    let Some(o) = o else {
        return Some(OptimizerSpec::Sgd {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        });
    };
    let kind = o.kind.value;
    let sgd = kind == OptimizerName::Sgd;
    let kind_name = kind.name();
    let positive = |x: f64| x > 0.0 && x <= 1e3;
    let nonneg = |x: f64| (0.0..=1e3).contains(&x);
    let lr = real(
        cx,
        &o.lr,
        if sgd { 0.01 } else { 0.001 },
        positive,
        "lr",
        "0 < lr <= 1000",
    );
    let unused = |cx: &mut Cx<'_>, key: &str, v: Option<Range<usize>>| {
        if let Some(span) = v {
            cx.push(
                Diagnostic::error(span, format!("`{key}` does not apply to `{kind_name}`"))
                    .label("remove this")
                    .help(if sgd {
                        "it is an Adam/AdamW setting"
                    } else {
                        "it is an SGD setting"
                    }),
            );
        }
    };
    if sgd {
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
        if kind == OptimizerName::AdamW {
            0.01
        } else {
            0.0
        },
        nonneg,
        "weight_decay",
        ">= 0",
    );
    let (lr, betas, eps, weight_decay) = (lr?, betas?, eps?, wd?);
    Some(if kind == OptimizerName::Adam {
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

/// `epochs` or `steps`, not both; neither is one epoch.
fn length(cx: &mut Cx<'_>, t: &RawTrain) -> Option<TrainLength> {
    match (&t.epochs, &t.steps) {
        (Some(_), Some(s)) => {
            cx.push(
                Diagnostic::error(
                    s.span.clone(),
                    "`steps` and `epochs` both set the training length",
                )
                .label("given with `epochs`")
                .help("keep one of `epochs` and `steps`"),
            );
            None
        }
        (None, Some(_)) => count(cx, &t.steps, 1, 1, "steps").map(TrainLength::Steps),
        (None, None) => Some(TrainLength::Epochs(1.0)),
        (Some(e), None) => {
            let x = e.value.0;
            if x > 0.0 && x <= MAX_EPOCHS as f64 {
                Some(TrainLength::Epochs(x))
            } else {
                cx.push(
                    Diagnostic::error(e.span.clone(), format!("a training length of {x} epochs"))
                        .label(format!("expected 0 < epochs <= {MAX_EPOCHS}")),
                );
                None
            }
        }
    }
}

/// The largest factor a `piecewise_linear` knot may give.
const MAX_FACTOR: f64 = 1e6;

/// `piecewise_linear`'s knots: at least two `[fraction, factor]` pairs, fractions increasing
/// from exactly 0 to exactly 1, factors in `[0, MAX_FACTOR]`.
fn validate_points(cx: &mut Cx<'_>, s: &RawSchedule) -> Option<Vec<(f64, f64)>> {
    let Some(points) = &s.points else {
        cx.push(
            Diagnostic::error(
                s.kind.as_ref()?.span.clone(),
                "the `piecewise_linear` schedule needs `points`",
            )
            .label("missing points")
            .help("e.g. `points = [[0.0, 0.2], [0.23, 1.0], [1.0, 0.07]]`: [fraction of the steps, lr factor]"),
        );
        return None;
    };
    let mut out = Vec::with_capacity(points.value.len());
    let mut ok = true;
    for p in &points.value {
        let [f, v] = p.value.as_slice() else {
            cx.push(
                Diagnostic::error(p.span.clone(), "a knot is a pair `[fraction, factor]`")
                    .label(format!("{} numbers", p.value.len())),
            );
            ok = false;
            continue;
        };
        if !(0.0..=1.0).contains(&f.value) {
            cx.push(
                Diagnostic::error(f.span.clone(), "a knot's fraction must be in [0, 1]")
                    .label("a fraction of the total optimizer steps"),
            );
            ok = false;
        }
        if !(0.0..=MAX_FACTOR).contains(&v.value) {
            cx.push(
                Diagnostic::error(v.span.clone(), "a knot's factor must be in [0, 1e6]")
                    .label("multiplies the optimizer's `lr`"),
            );
            ok = false;
        }
        out.push((f.value, v.value));
    }
    if !ok {
        return None;
    }
    let problem = if out.len() < 2 {
        Some("`points` needs at least two knots")
    } else if out.windows(2).any(|w| w[0].0 >= w[1].0) {
        Some("the knots' fractions must increase")
    } else if out[0].0 != 0.0 || out[out.len() - 1].0 != 1.0 {
        Some("the first knot's fraction must be 0 and the last one's 1")
    } else {
        None
    };
    if let Some(problem) = problem {
        cx.push(
            Diagnostic::error(points.span.clone(), problem)
                .label("[fraction of the steps, lr factor] pairs")
                .help("e.g. `points = [[0.0, 0.2], [0.23, 1.0], [1.0, 0.07]]`"),
        );
        return None;
    }
    Some(out)
}

/// The schedule, its epoch counts defaulting to `epochs` (`None`: known only with the data).
fn validate_schedule(
    cx: &mut Cx<'_>,
    s: Option<RawSchedule>,
    lr: f64,
    epochs: Option<usize>,
) -> Option<ScheduleSpec> {
    let Some(s) = s else {
        return Some(ScheduleSpec {
            kind: ScheduleKind::Constant,
            warmup_steps: 0,
            warmup_start_factor: 0.1,
        });
    };
    if s.failed.contains(&"kind") {
        return None; // reported; the kind's own checks would be guesses
    }
    let name = s.kind.as_ref().map_or(ScheduleName::Constant, |k| k.value);
    let kind = name.name();
    let gamma = real(
        cx,
        &s.gamma,
        0.1,
        |x| x > 0.0 && x <= 1.0,
        "gamma",
        "0 < gamma <= 1",
    );
    let allowed: &[&str] = match name {
        ScheduleName::Step => &["step_size", "gamma"],
        ScheduleName::MultiStep => &["milestones", "gamma"],
        ScheduleName::Cosine => &["t_max", "eta_min"],
        ScheduleName::OneCycle => &["max_lr", "pct_start", "div_factor", "final_div_factor"],
        ScheduleName::PiecewiseLinear => &["points"],
        ScheduleName::Constant => &[],
    };
    let given: [(&str, Option<Range<usize>>); 10] = [
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
        ("points", s.points.as_ref().map(|v| v.span.clone())),
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
    let kind = match name {
        ScheduleName::Step => {
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
        ScheduleName::MultiStep => {
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
        ScheduleName::Cosine => ScheduleKind::Cosine {
            t_max: match (&s.t_max, epochs) {
                (None, None) => None,
                (t, e) => Some(count(cx, t, e.unwrap_or(1) as u64, 1, "t_max")?),
            },
            eta_min: real(
                cx,
                &s.eta_min,
                0.0,
                |x| (0.0..=lr).contains(&x),
                "eta_min",
                "0 <= eta_min <= lr",
            )?,
        },
        ScheduleName::OneCycle => ScheduleKind::OneCycle {
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
        ScheduleName::PiecewiseLinear => ScheduleKind::PiecewiseLinear {
            points: validate_points(cx, &s)?,
        },
        ScheduleName::Constant => ScheduleKind::Constant,
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
