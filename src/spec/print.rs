//! Checked experiment -> TOML text in the experiment format, fully resolved: every default
//! written out, shorthands and blocks expanded, every layer named. Reading the text back gives
//! the same [`Experiment`] (tested), which is what makes a run's `config.toml` reproduce it.

use std::fmt::Write as _;

use super::*;
use crate::graph::{NodeRef, Op};

fn list<T: std::fmt::Debug>(xs: &[T]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn quote(s: &str) -> String {
    // TOML basic strings accept JSON string escapes.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn transform(t: &Transform) -> String {
    match t {
        Transform::Normalize { mean, std } => format!(
            "{{ op = \"normalize\", mean = {}, std = {} }}",
            list(mean),
            list(std)
        ),
        Transform::RandomCrop { size, padding } => {
            format!("{{ op = \"random_crop\", size = {size}, padding = {padding} }}")
        }
        Transform::RandomHorizontalFlip { p } => {
            format!("{{ op = \"random_horizontal_flip\", p = {p:?} }}")
        }
        Transform::PixelPermutation { seed } => {
            format!("{{ op = \"pixel_permutation\", seed = {seed} }}")
        }
        Transform::CenterCrop { size } => format!("{{ op = \"center_crop\", size = {size} }}"),
        Transform::Grayscale => "{ op = \"grayscale\" }".into(),
    }
}

fn transforms(ts: &[Transform]) -> String {
    if ts.is_empty() {
        return "[]".into();
    }
    format!(
        "[\n{}]",
        ts.iter()
            .map(|t| format!("  {},\n", transform(t)))
            .collect::<String>()
    )
}

fn op_fields(op: &Op) -> String {
    match op {
        Op::Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
        } => {
            format!(", in = {in_channels}, out = {out_channels}, kernel = {kernel}, stride = {stride}, padding = {padding}, bias = {bias}")
        }
        Op::BatchNorm2d {
            features,
            eps,
            momentum,
        } => format!(", features = {features}, eps = {eps:?}, momentum = {momentum:?}"),
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        }
        | Op::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            format!(", kernel = {kernel}, stride = {stride}, padding = {padding}")
        }
        Op::Linear {
            in_features,
            out_features,
            bias,
        } => format!(", in = {in_features}, out = {out_features}, bias = {bias}"),
        Op::Dropout { p } => format!(", p = {p:?}"),
        _ => String::new(),
    }
}

/// The experiment as a TOML document.
pub fn to_toml(e: &Experiment) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Resolved by runner {}: every default written out; `runner` reads this file as it is.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "name = {}", quote(&e.name));
    let _ = writeln!(s, "seed = {}", e.seed);
    let device = match e.device {
        DeviceSpec::Cpu => "cpu".to_string(),
        DeviceSpec::Cuda(n) => format!("cuda:{n}"),
        DeviceSpec::Auto => "auto".to_string(),
    };
    let _ = writeln!(s, "device = {}", quote(&device));

    let d = &e.data;
    let _ = writeln!(s, "\n[data]\ndataset = {}", quote(d.dataset.name()));
    if let DatasetKind::Synthetic(sy) = &d.dataset {
        let _ = writeln!(
            s,
            "synthetic = {{ shape = {}, classes = {}, train_size = {}, test_size = {} }}",
            list(&sy.shape),
            sy.classes,
            sy.train_size,
            sy.test_size
        );
    }
    let _ = writeln!(
        s,
        "batch_size = {}\ntest_batch_size = {}\nshuffle = {}",
        d.batch_size, d.test_batch_size, d.shuffle
    );
    if let Some(limit) = d.train_limit {
        let _ = writeln!(s, "train_limit = {limit}");
    }
    let _ = writeln!(s, "train_transforms = {}", transforms(&d.train_transforms));
    let _ = writeln!(s, "test_transforms = {}", transforms(&d.test_transforms));

    let m = &e.model;
    let _ = writeln!(s, "\n[model]\ninput = {}\nlayers = [", list(&m.input));
    for (i, l) in m.layers.iter().enumerate() {
        let sequential = l.inputs.len() == 1
            && l.inputs[0]
                == if i == 0 {
                    NodeRef::Input
                } else {
                    NodeRef::Layer(i - 1)
                };
        let inputs = if sequential {
            String::new()
        } else {
            let names: Vec<String> = l
                .inputs
                .iter()
                .map(|r| match r {
                    NodeRef::Input => quote("input"),
                    NodeRef::Layer(j) => quote(&m.layers[*j].name),
                })
                .collect();
            format!(", inputs = [{}]", names.join(", "))
        };
        let _ = writeln!(
            s,
            "  {{ name = {}, op = \"{}\"{}{} }},",
            quote(&l.name),
            l.op.kind(),
            op_fields(&l.op),
            inputs
        );
    }
    s.push_str("]\n");

    let t = &e.train;
    let _ = writeln!(s, "\n[train]\nepochs = {}", t.epochs);
    match t.loss {
        LossSpec::Nll => s.push_str("loss = \"nll\"\n"),
        LossSpec::CrossEntropy { label_smoothing } => {
            let _ = writeln!(
                s,
                "loss = {{ kind = \"cross_entropy\", label_smoothing = {label_smoothing:?} }}"
            );
        }
    }
    match t.optimizer {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => {
            let _ = writeln!(s, "optimizer = {{ kind = \"sgd\", lr = {lr:?}, momentum = {momentum:?}, dampening = {dampening:?}, nesterov = {nesterov}, weight_decay = {weight_decay:?} }}");
        }
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
        } => {
            let kind = if matches!(t.optimizer, OptimizerSpec::Adam { .. }) {
                "adam"
            } else {
                "adamw"
            };
            let _ = writeln!(s, "optimizer = {{ kind = \"{kind}\", lr = {lr:?}, betas = [{:?}, {:?}], eps = {eps:?}, weight_decay = {weight_decay:?} }}", betas.0, betas.1);
        }
    }
    let sc = &t.schedule;
    let kind = match &sc.kind {
        ScheduleKind::Constant => "kind = \"constant\"".to_string(),
        ScheduleKind::Step { step_size, gamma } => {
            format!("kind = \"step\", step_size = {step_size}, gamma = {gamma:?}")
        }
        ScheduleKind::MultiStep { milestones, gamma } => format!(
            "kind = \"multistep\", milestones = {}, gamma = {gamma:?}",
            list(milestones)
        ),
        ScheduleKind::Cosine { t_max, eta_min } => {
            format!("kind = \"cosine\", t_max = {t_max}, eta_min = {eta_min:?}")
        }
        ScheduleKind::OneCycle {
            max_lr,
            pct_start,
            div_factor,
            final_div_factor,
        } => {
            format!("kind = \"one_cycle\", max_lr = {max_lr:?}, pct_start = {pct_start:?}, div_factor = {div_factor:?}, final_div_factor = {final_div_factor:?}")
        }
    };
    let _ = writeln!(
        s,
        "schedule = {{ {kind}, warmup_steps = {}, warmup_start_factor = {:?} }}",
        sc.warmup_steps, sc.warmup_start_factor
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_then_reading_gives_the_same_experiment() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("experiments/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let first = check_file(&path);
            let (e, _) = first
                .result
                .as_ref()
                .unwrap_or_else(|| panic!("{} invalid:\n{}", path.display(), first.render()));
            let text = to_toml(e);
            let again = check_str("config.toml", &text, "x");
            let (e2, _) = again.result.as_ref().unwrap_or_else(|| {
                panic!(
                    "{} reprint invalid:\n{}\n{text}",
                    path.display(),
                    again.render()
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
                "{}: reprint has diagnostics:\n{}",
                path.display(),
                again.render()
            );
            seen += 1;
        }
        assert!(seen >= 6, "expected the seed experiments, saw {seen}");
    }
}
