//! Checked experiment -> TOML text in the experiment format, fully resolved: every default
//! written out, shorthands and blocks expanded, every layer named. The text is written through
//! the format's own declarations ([`super::format`]), so the printer cannot name a key the
//! reader does not know. Reading it back gives the same [`Experiment`] (tested), which is what
//! makes a run's `config.toml` reproduce it.

use super::decl::Section;
use super::format::{
    Epochs, LossName, NormType, OptimizerName, RawCheckpoint, RawClipGrad, RawCsv, RawData,
    RawEarlyStopping, RawEma, RawExperiment, RawImageFolder, RawInitFrom, RawLayer, RawLoss,
    RawMixup, RawModel, RawOp, RawOptimizer, RawSchedule, RawSynthetic, RawTrain, RawTransform,
    RawTransformOp, ScheduleName,
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
        Transform::PixelPermutation { seed } => RawTransformOp::PixelPermutation {
            seed: some(Seed(*seed)),
        },
        Transform::CenterCrop { size } => RawTransformOp::CenterCrop { size: n(*size) },
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
    RawData {
        dataset: Sp::bare(d.dataset.id()),
        labels,
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
        failed: Vec::new(),
    }
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
        } => RawOp::Conv2d {
            in_channels: in_channels.map(n),
            out: n(*out_channels),
            kernel: n(*kernel),
            stride: Some(n(*stride)),
            padding: Some(n(*padding)),
            bias: some(*bias),
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
        } => RawOp::Linear {
            in_features: in_features.map(n),
            out: n(*out_features),
            bias: some(*bias),
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
    });
    RawTrain {
        epochs: match t.length {
            TrainLength::Epochs(e) => Some(Sp::bare(Epochs(e))),
            TrainLength::Steps(_) => None,
        },
        steps: match t.length {
            TrainLength::Epochs(_) => None,
            TrainLength::Steps(s) => Some(n(s)),
        },
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
        }
    }

    #[test]
    fn mixup_and_tta_print_and_read_back() {
        let text = "[data]\ndataset = \"synthetic\"\ntta = \"flip\"\ntrain_transforms = [{ op = \"random_erasing\", p = 0.25, scale = [0.1, 0.2], value = -0.5 }]\n[model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 4 }]\n[train]\nmixup = { cutmix_alpha = 1.0, prob = 0.5, correct_lam = false }\n";
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
}
