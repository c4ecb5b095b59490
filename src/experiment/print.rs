//! Checked experiment -> TOML text in the experiment format, fully resolved: every default
//! written out, shorthands and blocks expanded, every layer named. The text is written through
//! the format's own declarations ([`super::format`]), so the printer cannot name a key the
//! reader does not know. Reading it back gives the same [`Experiment`] (tested), which is what
//! makes a run's `config.toml` reproduce it.

use super::decl::Section;
use super::format::{
    ConvPadding, Epochs, InitName, JitterRange, LossName, NormType, Numbers, OptimizerName,
    RawCheckpoint, RawClipGrad, RawCsv, RawData, RawEarlyStopping, RawEma, RawExperiment,
    RawImageFolder, RawInit, RawInitFrom, RawLayer, RawLookahead, RawLoss, RawMixup, RawModel,
    RawOp, RawOptimizer, RawParamGroup, RawParamMatch, RawSchedule, RawSynthetic, RawTrain,
    RawTransform, RawTransformOp, ScheduleName,
};
use super::read::{Seed, Sp};
use super::*;

fn some<T>(v: T) -> Option<Sp<T>> {
    Some(Sp::bare(v))
}

fn n(x: usize) -> Sp<u64> {
    Sp::bare(x as u64)
}

fn reals(xs: &[f32]) -> Sp<Vec<Sp<f64>>> {
    // Through the shortest text of the f32, so that 0.4914 prints as 0.4914 and reads back as
    // the same f32.
    Sp::bare(
        xs.iter()
            .map(|x| Sp::bare(format!("{x:?}").parse::<f64>().unwrap_or(f64::from(*x))))
            .collect(),
    )
}

fn numbers(xs: &[f32]) -> Numbers {
    Numbers(reals(xs).value.into_iter().map(|x| x.value).collect())
}

fn transform(t: &Transform) -> Sp<RawTransform> {
    let op = match t {
        Transform::Normalize { mean, std } => RawTransformOp::Normalize {
            mean: reals(mean),
            std: reals(std),
        },
        Transform::RandomCrop {
            size,
            padding,
            padding_mode,
            fill,
            pad_if_needed,
        } => RawTransformOp::RandomCrop {
            size: n(*size),
            padding: Some(n(*padding)),
            padding_mode: some(*padding_mode),
            // `fill` is only accepted with constant padding.
            fill: (*padding_mode == PaddingMode::Constant)
                .then(|| reals(&[*fill]).value.pop())
                .flatten(),
            pad_if_needed: some(*pad_if_needed),
        },
        Transform::RandomHorizontalFlip { p, alternate } => RawTransformOp::RandomHorizontalFlip {
            p: reals(&[*p]).value.pop(),
            alternate: some(*alternate),
        },
        Transform::RandomErasing {
            p,
            scale,
            ratio,
            value,
        } => RawTransformOp::RandomErasing {
            p: reals(&[*p]).value.pop(),
            scale: Some(reals(scale)),
            ratio: Some(reals(ratio)),
            value: reals(&[*value]).value.pop(),
        },
        Transform::RandomRotation {
            degrees,
            interpolation,
            fill,
        } => RawTransformOp::RandomRotation {
            degrees: Sp::bare(JitterRange::Range(reals(degrees).value)),
            interpolation: some(*interpolation),
            fill: reals(&[*fill]).value.pop(),
        },
        Transform::RandomAffine {
            degrees,
            translate,
            scale,
            shear,
            interpolation,
            fill,
        } => RawTransformOp::RandomAffine {
            degrees: Sp::bare(JitterRange::Range(reals(degrees).value)),
            translate: Some(reals(translate)),
            scale: Some(reals(scale)),
            shear: some(numbers(shear)),
            interpolation: some(*interpolation),
            fill: reals(&[*fill]).value.pop(),
        },
        Transform::ColorJitter {
            brightness,
            contrast,
            saturation,
            hue,
        } => {
            let range =
                |r: &Option<[f32; 2]>| r.map(|r| Sp::bare(JitterRange::Range(reals(&r).value)));
            RawTransformOp::ColorJitter {
                brightness: range(brightness),
                contrast: range(contrast),
                saturation: range(saturation),
                hue: range(hue),
            }
        }
        Transform::TrivialAugmentWide {
            num_magnitude_bins,
            interpolation,
            fill,
        } => RawTransformOp::TrivialAugmentWide {
            num_magnitude_bins: Some(n(*num_magnitude_bins)),
            interpolation: some(*interpolation),
            fill: reals(&[*fill]).value.pop(),
        },
        Transform::RandAugment {
            num_ops,
            magnitude,
            num_magnitude_bins,
            interpolation,
            fill,
        } => RawTransformOp::RandAugment {
            num_ops: Some(n(*num_ops)),
            magnitude: Some(n(*magnitude)),
            num_magnitude_bins: Some(n(*num_magnitude_bins)),
            interpolation: some(*interpolation),
            fill: reals(&[*fill]).value.pop(),
        },
        Transform::PixelPermutation { seed } => RawTransformOp::PixelPermutation {
            seed: some(Seed(*seed)),
        },
        Transform::CenterCrop { size } => RawTransformOp::CenterCrop { size: n(*size) },
        Transform::Resize {
            size,
            interpolation,
        } => RawTransformOp::Resize {
            size: Sp::bare(Numbers(match size {
                ResizeSize::Shorter(s) => vec![*s as f64],
                ResizeSize::Exact(hw) => hw.iter().map(|&x| x as f64).collect(),
            })),
            interpolation: some(*interpolation),
        },
        Transform::RandomResizedCrop {
            size,
            scale,
            ratio,
            interpolation,
        } => RawTransformOp::RandomResizedCrop {
            size: Sp::bare(Numbers(size.iter().map(|&x| x as f64).collect())),
            scale: Some(reals(scale)),
            ratio: Some(reals(ratio)),
            interpolation: some(*interpolation),
        },
        Transform::Grayscale => RawTransformOp::Grayscale {},
    };
    Sp::bare(RawTransform {
        op,
        failed: Vec::new(),
    })
}

fn data(d: &DataSpec) -> RawData {
    let synthetic = match &d.dataset {
        DatasetKind::Synthetic(s) => some(RawSynthetic {
            shape: some(s.shape.iter().map(|x| n(*x)).collect()),
            classes: Some(n(s.classes)),
            train_size: Some(n(s.train_size)),
            test_size: Some(n(s.test_size)),
            failed: Vec::new(),
        }),
        _ => None,
    };
    let split = |f: &FolderSpec| match &f.test {
        TestSource::Path(p) => (some(p.clone()), None, None),
        TestSource::Split { fraction, seed } => {
            (None, some(*fraction), seed.map(|s| Sp::bare(Seed(s))))
        }
    };
    // `[data.image_folder]` and `[data.csv]` take the same keys.
    macro_rules! folder_table {
        ($raw:ident, $f:expr) => {{
            let f = $f;
            let (test_path, test_split, split_seed) = split(f);
            some($raw {
                path: Sp::bare(f.path.clone()),
                test_path,
                test_split,
                split_seed,
                image_size: Sp::bare(vec![n(f.shape[1]), n(f.shape[2])]),
                channels: Some(n(f.shape[0])),
                classes: f.classes.map(n),
                on_corrupt: some(f.on_corrupt),
                failed: Vec::new(),
            })
        }};
    }
    let image_folder = match &d.dataset {
        DatasetKind::ImageFolder(f) => folder_table!(RawImageFolder, f),
        _ => None,
    };
    let csv = match &d.dataset {
        DatasetKind::Csv(f) => folder_table!(RawCsv, f),
        _ => None,
    };
    let labels = match &d.dataset {
        DatasetKind::Cifar100(l) => some(*l),
        _ => None,
    };
    let extra = match &d.dataset {
        DatasetKind::Svhn { extra: true } => some(true),
        _ => None,
    };
    RawData {
        dataset: Sp::bare(d.dataset.id()),
        labels,
        extra,
        synthetic,
        image_folder,
        csv,
        batch_size: Some(n(d.batch_size)),
        test_batch_size: Some(n(d.test_batch_size)),
        shuffle: some(d.shuffle),
        drop_last: some(d.drop_last),
        train_limit: d.train_limit.map(n),
        validation: d.validation.map(Sp::bare),
        train_transforms: some(d.train_transforms.iter().map(transform).collect()),
        test_transforms: some(d.test_transforms.iter().map(transform).collect()),
        tta: some(d.tta),
        tta_when: some(d.tta_when),
        failed: Vec::new(),
    }
}

/// `init`, left out when it is the default.
fn init(i: &Init) -> Option<Sp<RawInit>> {
    let (kind, images, eps) = match *i {
        Init::Default => return None,
        Init::Dirac => (InitName::Dirac, None, None),
        Init::Whitening { images, eps } => (
            InitName::Whitening,
            Some(Sp::bare(images as u64)),
            Some(Sp::bare(eps)),
        ),
    };
    Some(Sp::bare(RawInit {
        kind: Sp::bare(kind),
        images,
        eps,
    }))
}

fn op(op: &LayerOp) -> RawOp<'static> {
    match op {
        LayerOp::Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
            init: init_spec,
        } => RawOp::Conv2d {
            in_channels: in_channels.map(n),
            out: n(*out_channels),
            kernel: n(*kernel),
            stride: Some(n(*stride)),
            padding: Some(Sp::bare(ConvPadding::Size(*padding as u64))),
            bias: some(*bias),
            init: init(init_spec),
        },
        LayerOp::BatchNorm2d {
            features,
            eps,
            momentum,
        } => RawOp::BatchNorm2d {
            features: features.map(n),
            eps: some(*eps),
            momentum: some(*momentum),
        },
        LayerOp::Relu => RawOp::Relu {},
        LayerOp::Tanh => RawOp::Tanh {},
        LayerOp::Sigmoid => RawOp::Sigmoid {},
        LayerOp::Gelu { approximate } => RawOp::Gelu {
            approximate: some(*approximate),
        },
        LayerOp::MaxPool2d {
            kernel,
            stride,
            padding,
        } => RawOp::MaxPool2d {
            kernel: n(*kernel),
            stride: Some(n(*stride)),
            padding: Some(n(*padding)),
        },
        LayerOp::AvgPool2d {
            kernel,
            stride,
            padding,
        } => RawOp::AvgPool2d {
            kernel: n(*kernel),
            stride: Some(n(*stride)),
            padding: Some(n(*padding)),
        },
        LayerOp::GlobalAvgPool => RawOp::GlobalAvgPool {},
        LayerOp::Flatten => RawOp::Flatten {},
        LayerOp::Linear {
            in_features,
            out_features,
            bias,
            init: init_spec,
        } => RawOp::Linear {
            in_features: in_features.map(n),
            out: n(*out_features),
            bias: some(*bias),
            init: init(init_spec),
        },
        LayerOp::Scale { factor } => RawOp::Scale {
            factor: Sp::bare(*factor),
        },
        LayerOp::Dropout { p } => RawOp::Dropout { p: some(*p) },
        LayerOp::LogSoftmax => RawOp::LogSoftmax {},
        LayerOp::Add => RawOp::Add {},
        LayerOp::Concat => RawOp::Concat {},
        LayerOp::Identity => RawOp::Identity {},
    }
}

fn model(m: &ModelSpec) -> RawModel<'static> {
    let layers = m
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let previous = if i == 0 {
                NodeRef::Input
            } else {
                NodeRef::Layer(i - 1)
            };
            let inputs = (l.inputs != [previous]).then(|| {
                Sp::bare(
                    l.inputs
                        .iter()
                        .map(|r| {
                            Sp::bare(match r {
                                NodeRef::Input => "input".to_string(),
                                NodeRef::Layer(j) => m.layers[*j].name.clone(),
                            })
                        })
                        .collect(),
                )
            });
            Sp::bare(RawLayer {
                name: some(l.name.clone()),
                inputs,
                op: op(&l.op),
                failed: Vec::new(),
            })
        })
        .collect();
    RawModel {
        input: some(m.input.iter().map(|x| n(*x)).collect()),
        layers: Sp::bare(layers),
        blocks: None,
        failed: Vec::new(),
    }
}

fn train(t: &TrainSpec) -> RawTrain {
    let loss = match t.loss {
        LossSpec::Nll => RawLoss {
            kind: Sp::bare(LossName::Nll),
            label_smoothing: None,
        },
        LossSpec::CrossEntropy { label_smoothing } => RawLoss {
            kind: Sp::bare(LossName::CrossEntropy),
            label_smoothing: some(label_smoothing),
        },
    };
    let none = RawOptimizer {
        kind: Sp::bare(OptimizerName::Sgd),
        lr: None,
        momentum: None,
        dampening: None,
        nesterov: None,
        weight_decay: None,
        betas: None,
        eps: None,
        failed: Vec::new(),
    };
    let optimizer = match t.optimizer {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => RawOptimizer {
            lr: some(lr),
            momentum: some(momentum),
            dampening: some(dampening),
            nesterov: some(nesterov),
            weight_decay: some(weight_decay),
            ..none
        },
        OptimizerSpec::Adam {
            lr,
            betas,
            eps,
            weight_decay,
        }
        | OptimizerSpec::AdamW {
            lr,
            betas,
            eps,
            weight_decay,
        } => RawOptimizer {
            kind: Sp::bare(if matches!(t.optimizer, OptimizerSpec::Adam { .. }) {
                OptimizerName::Adam
            } else {
                OptimizerName::AdamW
            }),
            lr: some(lr),
            betas: some(vec![Sp::bare(betas.0), Sp::bare(betas.1)]),
            eps: some(eps),
            weight_decay: some(weight_decay),
            ..none
        },
    };
    let sc = &t.schedule;
    let mut schedule = RawSchedule {
        kind: None,
        step_size: None,
        gamma: None,
        milestones: None,
        t_max: None,
        eta_min: None,
        max_lr: None,
        pct_start: None,
        div_factor: None,
        final_div_factor: None,
        points: None,
        warmup_steps: Some(n(sc.warmup_steps)),
        warmup_start_factor: some(sc.warmup_start_factor),
        failed: Vec::new(),
    };
    schedule.kind = some(match &sc.kind {
        ScheduleKind::Constant => ScheduleName::Constant,
        ScheduleKind::Step { step_size, gamma } => {
            schedule.step_size = Some(n(*step_size));
            schedule.gamma = some(*gamma);
            ScheduleName::Step
        }
        ScheduleKind::MultiStep { milestones, gamma } => {
            schedule.milestones = some(milestones.iter().map(|m| n(*m)).collect());
            schedule.gamma = some(*gamma);
            ScheduleName::MultiStep
        }
        ScheduleKind::Cosine { t_max, eta_min } => {
            schedule.t_max = t_max.map(n);
            schedule.eta_min = some(*eta_min);
            ScheduleName::Cosine
        }
        ScheduleKind::OneCycle {
            max_lr,
            pct_start,
            div_factor,
            final_div_factor,
        } => {
            schedule.max_lr = some(*max_lr);
            schedule.pct_start = some(*pct_start);
            schedule.div_factor = some(*div_factor);
            schedule.final_div_factor = some(*final_div_factor);
            ScheduleName::OneCycle
        }
        ScheduleKind::PiecewiseLinear { points } => {
            let pair = |&(f, v): &(f64, f64)| Sp::bare(vec![Sp::bare(f), Sp::bare(v)]);
            schedule.points = some(points.iter().map(pair).collect());
            ScheduleName::PiecewiseLinear
        }
    });
    let param_groups = t.param_groups.iter().map(|g| {
        let (frozen, after) = match g.freeze {
            Freeze::Never => (None, None),
            Freeze::Always => (some(true), None),
            Freeze::AfterEpochs(e) => (None, Some(n(e))),
        };
        Sp::bare(RawParamGroup {
            selector: Sp::bare(RawParamMatch {
                op: g.selector.op.map(Sp::bare),
                role: g.selector.role.map(Sp::bare),
                name: g.selector.name.clone().map(Sp::bare),
                failed: Vec::new(),
            }),
            lr_scale: some(g.lr_scale),
            weight_decay_scale: some(g.weight_decay_scale),
            frozen,
            freeze_after_epochs: after,
            failed: Vec::new(),
        })
    });
    let param_groups: Vec<_> = param_groups.collect();
    RawTrain {
        epochs: match t.length {
            TrainLength::Epochs(e) => Some(Sp::bare(Epochs(e))),
            TrainLength::Steps(_) => None,
        },
        steps: match t.length {
            TrainLength::Epochs(_) => None,
            TrainLength::Steps(s) => Some(n(s)),
        },
        param_groups: (!param_groups.is_empty()).then(|| Sp::bare(param_groups)),
        lookahead: t.lookahead.map(|l| {
            Sp::bare(RawLookahead {
                every: Some(n(l.every)),
                alpha: some(l.alpha),
                power: some(l.power),
                failed: Vec::new(),
            })
        }),
        loss: some(loss),
        optimizer: some(optimizer),
        schedule: some(schedule),
        accumulate: Some(n(t.accumulate)),
        clip_grad: t.clip_grad.map(|c| {
            Sp::bare(match c {
                ClipGrad::Norm {
                    max_norm,
                    norm_type,
                } => RawClipGrad {
                    max_norm: some(max_norm),
                    norm_type: some(NormType(norm_type)),
                    value: None,
                    failed: Vec::new(),
                },
                ClipGrad::Value { value } => RawClipGrad {
                    max_norm: None,
                    norm_type: None,
                    value: some(value),
                    failed: Vec::new(),
                },
            })
        }),
        ema: t.ema.map(|e| {
            Sp::bare(RawEma {
                decay: Sp::bare(e.decay),
                every: Some(n(e.every)),
                warmup: some(e.warmup.is_some()),
                warmup_power: e.warmup.map(|w| Sp::bare(w.power)),
                warmup_gamma: e.warmup.map(|w| Sp::bare(w.gamma)),
                failed: Vec::new(),
            })
        }),
        mixup: t.mixup.map(|m| {
            Sp::bare(RawMixup {
                mixup_alpha: some(m.mixup_alpha),
                cutmix_alpha: some(m.cutmix_alpha),
                prob: some(m.prob),
                switch_prob: some(m.switch_prob),
                correct_lam: some(m.correct_lam),
                failed: Vec::new(),
            })
        }),
        checkpoint: some(RawCheckpoint {
            every: Some(n(t.checkpoint.every)),
            best: some(t.checkpoint.best),
            failed: Vec::new(),
        }),
        init_from: t.init_from.as_ref().map(|i| {
            Sp::bare(RawInitFrom {
                path: Sp::bare(i.path.to_string_lossy().into_owned()),
                sha256: i.sha256.clone().map(Sp::bare),
            })
        }),
        early_stopping: t.early_stopping.map(|e| {
            Sp::bare(RawEarlyStopping {
                metric: some(e.metric),
                patience: Some(n(e.patience)),
                min_delta: some(e.min_delta),
                failed: Vec::new(),
            })
        }),
        failed: Vec::new(),
    }
}

/// The experiment as its raw tables, every default filled in.
pub fn to_raw(e: &Experiment) -> RawExperiment<'static> {
    RawExperiment {
        name: some(e.name().to_string()),
        seed: some(Seed(e.seed())),
        device: some(e.device()),
        data: Section(some(data(e.data()))),
        model: Section(some(model(e.model()))),
        train: some(train(e.train())),
        sweep: None,
        failed: Vec::new(),
    }
}

/// The experiment as a TOML document.
pub fn to_toml(e: &Experiment) -> String {
    let doc = to_raw(e).to_table();
    format!(
        "# Resolved by runner {}: every default written out; `runner` reads this file as it is.\n{}",
        env!("CARGO_PKG_VERSION"),
        super::emit::document(&doc)
    )
}

#[cfg(test)]
mod tests {
    use super::super::{load_file_with, load_str_with};
    use super::*;

    /// `random_crop`'s padding keys, in every mode, print and read back unchanged.
    #[test]
    fn random_crop_padding_keys_round_trip() {
        let text = r#"
[data]
dataset = "cifar10"
train_transforms = [
  { op = "random_crop", size = 32, padding = 4, padding_mode = "reflect" },
  { op = "random_crop", size = 32, padding = 2, fill = 127.5 },
  { op = "random_crop", size = 36, padding_mode = "symmetric", pad_if_needed = true },
  { op = "random_crop", size = 30, padding = 1, padding_mode = "edge" },
]
test_transforms = [{ op = "center_crop", size = 30 }]
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 10 }]
[train]
epochs = 1
optimizer = { kind = "sgd", lr = 0.1 }
"#;
        let first = load_str_with("config.toml", text, "x", &[]).swap_remove(0);
        let (e, _) = first.result.as_ref().unwrap_or_else(|| {
            panic!("invalid: {:?}", first.diagnostics);
        });
        let modes: Vec<_> = e
            .data()
            .train_transforms
            .iter()
            .map(|t| match t {
                Transform::RandomCrop {
                    padding_mode,
                    fill,
                    pad_if_needed,
                    ..
                } => (*padding_mode, *fill, *pad_if_needed),
                other => panic!("not a crop: {other:?}"),
            })
            .collect();
        assert_eq!(
            modes,
            [
                (PaddingMode::Reflect, 0.0, false),
                (PaddingMode::Constant, 127.5, false),
                (PaddingMode::Symmetric, 0.0, true),
                (PaddingMode::Edge, 0.0, false),
            ]
        );
        let printed = to_toml(e);
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        let (e2, _) = again.result.as_ref().unwrap_or_else(|| {
            panic!("reprint invalid: {:?}\n{printed}", again.diagnostics);
        });
        assert_eq!(e, e2, "round trip changed the experiment:\n{printed}");
    }

    /// The layer keys of airbench94's network (`gelu`, `scale`, `padding = "same"`, the init
    /// specs) print and read back unchanged; `"same"` prints as the padding it resolves to.
    #[test]
    fn layer_init_and_same_padding_round_trip() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/airbench94_net.toml");
        let first = load_file_with(&path, &[]).swap_remove(0);
        let (e, _) = first.result.as_ref().unwrap_or_else(|| {
            panic!("invalid: {:?}", first.diagnostics);
        });
        let printed = to_toml(e);
        for line in [
            "init = { kind = \"whitening\", images = 5000, eps = 0.0005 }",
            "init = \"dirac\"",
            "op = \"gelu\", approximate = \"none\"",
            "factor = 0.1111111111111111",
        ] {
            assert!(printed.contains(line), "no `{line}` in:\n{printed}");
        }
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        let (e2, _) = again.result.as_ref().unwrap_or_else(|| {
            panic!("reprint invalid: {:?}\n{printed}", again.diagnostics);
        });
        assert_eq!(e, e2, "round trip changed the experiment:\n{printed}");
    }

    /// Every shipped experiment: read, print, read again gives the same experiment, with no
    /// diagnostics.
    #[test]
    fn printing_then_reading_gives_the_same_experiment() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("experiments/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let first = load_file_with(&path, &[]).swap_remove(0);
            let (e, _) = first
                .result
                .as_ref()
                .unwrap_or_else(|| panic!("{} invalid: {:?}", path.display(), first.diagnostics));
            let text = to_toml(e);
            let again = load_str_with("config.toml", &text, "x", &[]).swap_remove(0);
            let (e2, _) = again.result.as_ref().unwrap_or_else(|| {
                panic!(
                    "{} reprint invalid: {:?}\n{text}",
                    path.display(),
                    again.diagnostics
                )
            });
            assert_eq!(
                e,
                e2,
                "{}: round trip changed the experiment",
                path.display()
            );
            assert!(
                again.diagnostics.is_empty(),
                "{}: reprint has diagnostics: {:?}",
                path.display(),
                again.diagnostics
            );
            assert_eq!(
                to_toml(e2),
                text,
                "{}: printing is not stable",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 6, "expected the seed experiments, saw {seen}");
    }

    #[test]
    fn image_folder_and_csv_settings_print_and_read_back() {
        // (the data tables, a line the resolved file must hold)
        let cases = [
            (
                "dataset = \"image_folder\"\n[data.image_folder]\npath = \"a\"\ntest_path = \"b\"\nimage_size = [8, 8]",
                "test_path = \"b\"",
            ),
            (
                "dataset = \"csv\"\n[data.csv]\npath = \"l.csv\"\ntest_split = 0.25\nsplit_seed = 3\nimage_size = [8, 6]\nchannels = 1\nclasses = 4\non_corrupt = \"skip\"",
                "on_corrupt = \"skip\"",
            ),
            (
                "dataset = \"image_folder\"\n[data.image_folder]\npath = \"a\"\ntest_split = 0.5\nimage_size = [8, 8]",
                "channels = 3",
            ),
        ];
        for (data, line) in cases {
            let text = format!(
                "[data]\n{data}\n[model]\nlayers = [{{ op = \"flatten\" }}, {{ op = \"linear\", out = 4 }}]\n"
            );
            let first = load_str_with("x.toml", &text, "x", &[]).swap_remove(0);
            let (e, _) = first
                .result
                .as_ref()
                .unwrap_or_else(|| panic!("{data}: {:?}", first.diagnostics));
            let printed = to_toml(e);
            assert!(printed.contains(line), "{data}: no `{line}` in\n{printed}");
            let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
            let (e2, _) = again.result.as_ref().expect("reprint valid");
            assert_eq!(e, e2, "{data}: round trip changed the experiment");
        }
    }

    #[test]
    fn new_data_sets_print_and_read_back() {
        // (data table, the dataset the printed file must name, its labels line if any)
        let cases = [
            (
                "dataset = \"cifar100\"\nlabels = \"coarse\"",
                "cifar100",
                Some("coarse"),
                20,
            ),
            ("dataset = \"cifar100\"", "cifar100", Some("fine"), 100),
            ("dataset = \"stl10\"", "stl10", None, 10),
            ("dataset = \"svhn\"", "svhn", None, 10),
            ("dataset = \"svhn\"\nextra = true", "svhn", None, 10),
        ];
        for (data, name, labels, classes) in cases {
            let text = format!(
                "[data]\n{data}\n[model]\nlayers = [{{ op = \"flatten\" }}, {{ op = \"linear\", out = {classes} }}]\n"
            );
            let first = load_str_with("x.toml", &text, "x", &[]).swap_remove(0);
            let (e, _) = first.result.as_ref().expect("valid");
            let printed = to_toml(e);
            assert!(
                printed.contains(&format!("dataset = \"{name}\"")),
                "{printed}"
            );
            match labels {
                Some(l) => assert!(printed.contains(&format!("labels = \"{l}\"")), "{printed}"),
                None => assert!(!printed.contains("labels ="), "{printed}"),
            }
            let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
            assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
            assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{data}");
            assert_eq!(e.data().dataset.classes(), classes, "{data}");
            assert_eq!(
                printed.contains("extra = true"),
                data.contains("extra = true"),
                "{printed}"
            );
        }
    }

    #[test]
    fn alternating_flip_prints_and_reads_back() {
        let text = "[data]\ndataset = \"synthetic\"\ntrain_transforms = [{ op = \"random_horizontal_flip\", alternate = true }]\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n";
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![Transform::RandomHorizontalFlip {
                p: 0.5,
                alternate: true
            }]
        );
        let printed = to_toml(e);
        assert!(printed.contains("alternate = true"), "{printed}");
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().expect("reprint valid").0, *e);
    }

    #[test]
    fn mixup_and_tta_print_and_read_back() {
        let text = "[data]\ndataset = \"synthetic\"\ntta = \"flip\"\ntta_when = \"end\"\ntrain_transforms = [{ op = \"random_erasing\", p = 0.25, scale = [0.1, 0.2], value = -0.5 }]\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n[train]\nmixup = { cutmix_alpha = 1.0, prob = 0.5, correct_lam = false }\n";
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.train().mixup,
            Some(MixupSpec {
                mixup_alpha: 0.0,
                cutmix_alpha: 1.0,
                prob: 0.5,
                switch_prob: 0.5,
                correct_lam: false,
            })
        );
        assert_eq!(e.data().tta, Tta::Flip);
        assert_eq!(
            e.data().train_transforms,
            vec![Transform::RandomErasing {
                p: 0.25,
                scale: [0.1, 0.2],
                ratio: [0.3, 3.3],
                value: -0.5,
            }]
        );
        let printed = to_toml(e);
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn rotations_and_affine_maps_print_and_read_back() {
        let text = r#"
[data]
dataset = "synthetic"
train_transforms = [
  { op = "random_rotation", degrees = 15 },
  { op = "random_rotation", degrees = [-5, 40.5], interpolation = "bilinear", fill = 128 },
  { op = "random_affine", degrees = 0, translate = [0.1, 0.2], scale = [0.9, 1.1], shear = 8 },
  { op = "random_affine", degrees = [-3, 3], shear = [1, 2, -4, 4], interpolation = "bilinear" },
]
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 4 }]
"#;
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![
                Transform::RandomRotation {
                    degrees: [-15.0, 15.0],
                    interpolation: Interpolation::Nearest,
                    fill: 0.0,
                },
                Transform::RandomRotation {
                    degrees: [-5.0, 40.5],
                    interpolation: Interpolation::Bilinear,
                    fill: 128.0,
                },
                Transform::RandomAffine {
                    degrees: [0.0, 0.0],
                    translate: [0.1, 0.2],
                    scale: [0.9, 1.1],
                    shear: [-8.0, 8.0, 0.0, 0.0],
                    interpolation: Interpolation::Nearest,
                    fill: 0.0,
                },
                Transform::RandomAffine {
                    degrees: [-3.0, 3.0],
                    translate: [0.0, 0.0],
                    scale: [1.0, 1.0],
                    shear: [1.0, 2.0, -4.0, 4.0],
                    interpolation: Interpolation::Bilinear,
                    fill: 0.0,
                },
            ]
        );
        let printed = to_toml(e);
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn resize_prints_and_reads_back_and_sets_the_model_input() {
        let text = r#"
[data]
dataset = "synthetic"
synthetic = { shape = [3, 7, 9] }
train_transforms = [{ op = "resize", size = 5 }, { op = "resize", size = [4, 6], interpolation = "nearest" }]
test_transforms = [{ op = "resize", size = [4, 6] }]
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 4 }]
"#;
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![
                Transform::Resize {
                    size: ResizeSize::Shorter(5),
                    interpolation: Interpolation::Bilinear,
                },
                Transform::Resize {
                    size: ResizeSize::Exact([4, 6]),
                    interpolation: Interpolation::Nearest,
                },
            ]
        );
        // Test images are 4x6 as the training ones; `check` refuses sizes that disagree.
        let printed = to_toml(e);
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn random_resized_crop_prints_and_reads_back_and_sets_the_model_input() {
        let text = r#"
[data]
dataset = "synthetic"
synthetic = { shape = [3, 7, 9] }
train_transforms = [{ op = "random_resized_crop", size = 5 }, { op = "random_resized_crop", size = [4, 6], scale = [0.5, 0.75], ratio = [0.25, 2.0], interpolation = "nearest" }]
test_transforms = [{ op = "resize", size = [4, 6] }]
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 4 }]
"#;
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![
                Transform::RandomResizedCrop {
                    size: [5, 5],
                    scale: [0.08, 1.0],
                    ratio: [0.75, 4.0 / 3.0],
                    interpolation: Interpolation::Bilinear,
                },
                Transform::RandomResizedCrop {
                    size: [4, 6],
                    scale: [0.5, 0.75],
                    ratio: [0.25, 2.0],
                    interpolation: Interpolation::Nearest,
                },
            ]
        );
        assert_eq!(
            e.model().input,
            [3, 4, 6],
            "the last crop's size is the model input"
        );
        let printed = to_toml(e);
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn color_jitter_prints_and_reads_back() {
        let text = "[data]\ndataset = \"synthetic\"\nsynthetic = { shape = [3, 8, 8] }\ntrain_transforms = [{ op = \"color_jitter\", brightness = 0.4, contrast = [0.5, 1.5], saturation = 0, hue = 0.1 }]\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n";
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![Transform::ColorJitter {
                brightness: Some([0.6, 1.4]),
                contrast: Some([0.5, 1.5]),
                saturation: None,
                hue: Some([-0.1, 0.1]),
            }],
            "spreads become ranges; saturation 0 is [1, 1], not applied"
        );
        let printed = to_toml(e);
        assert!(printed.contains("contrast = [0.5, 1.5]"), "{printed}");
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn augmentation_policies_print_and_read_back() {
        let text = "[data]\ndataset = \"synthetic\"\nsynthetic = { shape = [3, 8, 8] }\ntrain_transforms = [{ op = \"trivial_augment_wide\" }, { op = \"rand_augment\", num_ops = 3, magnitude = 4, num_magnitude_bins = 5, interpolation = \"bilinear\", fill = 127.5 }]\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n";
        let first = load_str_with("x.toml", text, "x", &[]).swap_remove(0);
        assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
        let (e, _) = first.result.as_ref().expect("valid");
        assert_eq!(
            e.data().train_transforms,
            vec![
                Transform::TrivialAugmentWide {
                    num_magnitude_bins: 31,
                    interpolation: Interpolation::Nearest,
                    fill: 0.0,
                },
                Transform::RandAugment {
                    num_ops: 3,
                    magnitude: 4,
                    num_magnitude_bins: 5,
                    interpolation: Interpolation::Bilinear,
                    fill: 127.5,
                },
            ],
            "torchvision's defaults, and every key given"
        );
        let printed = to_toml(e);
        assert!(printed.contains("num_magnitude_bins = 31"), "{printed}");
        let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
        assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        assert_eq!(again.result.as_ref().map(|r| &r.0), Some(e), "{printed}");
    }

    #[test]
    fn accumulation_clipping_and_the_average_print_and_read_back() {
        let base = r#"
[data]
dataset = "synthetic"

[model]
layers = [{ op = "flatten" }, { op = "linear", out = 4 }]

[train]
"#;
        // (the keys, a line the resolved file must hold, the checked settings)
        let cases = [
            ("", "accumulate = 1", 1, None, None),
            (
                "accumulate = 4\nclip_grad = { max_norm = 2 }",
                "clip_grad = { max_norm = 2.0, norm_type = 2.0 }",
                4,
                Some(ClipGrad::Norm {
                    max_norm: 2.0,
                    norm_type: 2.0,
                }),
                None,
            ),
            (
                "clip_grad = { max_norm = 1, norm_type = inf }\nema = { decay = 0.99 }",
                "clip_grad = { max_norm = 1.0, norm_type = \"inf\" }",
                1,
                Some(ClipGrad::Norm {
                    max_norm: 1.0,
                    norm_type: f64::INFINITY,
                }),
                Some(EmaSpec {
                    decay: 0.99,
                    every: 1,
                    warmup: None,
                }),
            ),
            (
                "clip_grad = { value = 0.5 }\nema = { decay = 0.9, every = 3, warmup = true }",
                "ema = { decay = 0.9, every = 3, warmup = true, warmup_power = 0.6666666666666666, warmup_gamma = 1.0 }",
                1,
                Some(ClipGrad::Value { value: 0.5 }),
                Some(EmaSpec {
                    decay: 0.9,
                    every: 3,
                    warmup: Some(EmaWarmup {
                        power: 2.0 / 3.0,
                        gamma: 1.0,
                    }),
                }),
            ),
        ];
        for (keys, line, accumulate, clip_grad, ema) in cases {
            let text = format!("{base}{keys}\n");
            let first = load_str_with("x.toml", &text, "x", &[]).swap_remove(0);
            let (e, _) = first.result.as_ref().expect(keys);
            let t = e.train();
            assert_eq!(
                (t.accumulate, t.clip_grad, t.ema),
                (accumulate, clip_grad, ema),
                "{keys}"
            );
            let printed = to_toml(e);
            assert!(printed.lines().any(|l| l == line), "{keys}:\n{printed}");
            let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
            let (e2, _) = again.result.as_ref().expect("reprint valid");
            assert_eq!(e, e2, "{keys}: round trip");
            assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        }
    }

    #[test]
    fn training_length_and_drop_last_print_and_read_back() {
        let base = "[data]\ndataset = \"synthetic\"\n{data}\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n\n[train]\n{train}\n";
        // (data keys, train keys, lines the resolved file must hold, the checked length)
        let cases = [
            ("", "", &["epochs = 1", "drop_last = false"][..], TrainLength::Epochs(1.0)),
            ("", "epochs = 10", &["epochs = 10"][..], TrainLength::Epochs(10.0)),
            ("drop_last = true", "epochs = 9.9", &["epochs = 9.9", "drop_last = true"][..], TrainLength::Epochs(9.9)),
            ("", "steps = 25", &["steps = 25"][..], TrainLength::Steps(25)),
            // With `steps`, cosine's period is known only with the data: left out.
            ("", "steps = 25\nschedule = { kind = \"cosine\" }", &["schedule = { kind = \"cosine\", eta_min = 0.0, warmup_steps = 0, warmup_start_factor = 0.1 }"][..], TrainLength::Steps(25)),
            ("", "epochs = 2.5\nschedule = { kind = \"cosine\" }", &["schedule = { kind = \"cosine\", t_max = 3, eta_min = 0.0, warmup_steps = 0, warmup_start_factor = 0.1 }"][..], TrainLength::Epochs(2.5)),
        ];
        for (data, train, lines, length) in cases {
            let text = base.replace("{data}", data).replace("{train}", train);
            let first = load_str_with("x.toml", &text, "x", &[]).swap_remove(0);
            let (e, _) = first.result.as_ref().expect(train);
            assert_eq!(e.train().length, length, "{train}");
            let printed = to_toml(e);
            for line in lines {
                assert!(
                    printed.lines().any(|l| l == *line),
                    "{train}: no `{line}` in\n{printed}"
                );
            }
            let keys = ["epochs = ", "steps = "].map(|k| printed.lines().any(|l| l.starts_with(k)));
            assert_ne!(keys[0], keys[1], "one of epochs and steps:\n{printed}");
            let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
            let (e2, _) = again.result.as_ref().expect("reprint valid");
            assert_eq!(e, e2, "{train}: round trip");
            assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
        }
    }

    /// The `[train]` keys of the airbench94 recipe's optimizer side: each is read, printed and
    /// read back to the same experiment, and the printed file holds the given line.
    #[test]
    fn airbench_optimizer_keys_print_and_read_back() {
        let base = r#"
[data]
dataset = "synthetic"

[model]
layers = [{ op = "flatten" }, { op = "linear", out = 4 }]

[train]
"#;
        let cases = [(
            "schedule = { kind = \"piecewise_linear\", points = [[0, 0.2], [0.23, 1], [1, 0.07]] }",
            "points = [[0.0, 0.2], [0.23, 1.0], [1.0, 0.07]]",
        ), (
            "[[train.param_groups]]\nmatch = { op = \"linear\", role = \"bias\" }\nlr_scale = 64\n\
             weight_decay_scale = 0.015625\n\
             [[train.param_groups]]\nmatch = { name = \"*.weight\" }\nfrozen = true\n\
             [[train.param_groups]]\nmatch = { name = \"fc?.*\" }\nfreeze_after_epochs = 3",
            "freeze_after_epochs = 3",
        ), (
            "lookahead = { every = 5 }",
            "lookahead = { every = 5, alpha = 0.7737809375, power = 3.0 }",
        )];
        for (keys, want) in cases {
            let text = format!("{base}{keys}\n");
            let first = load_str_with("x.toml", &text, "x", &[]).swap_remove(0);
            assert!(
                first.diagnostics.is_empty(),
                "{keys}: {:?}",
                first.diagnostics
            );
            let (e, _) = first.result.as_ref().expect(keys);
            let printed = to_toml(e);
            assert!(printed.contains(want), "{keys}:\n{printed}");
            let again = load_str_with("config.toml", &printed, "x", &[]).swap_remove(0);
            assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
            let (e2, _) = again.result.as_ref().expect("reprint valid");
            assert_eq!(e, e2, "{keys}: round trip");
        }
    }
}
