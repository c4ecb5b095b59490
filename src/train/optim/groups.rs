//! `[[train.param_groups]]` applied to a built model: each parameter's scales for the
//! optimizer, and which parameters are frozen in which epoch.

use candle_core::Var;

use super::GroupScale;
use crate::experiment::{Freeze, TrainSpec};
use crate::graph::Graph;
use crate::model::{weights, Model};

/// The group of every parameter of a model, in [`Model::named_parameters`] order.
pub struct ParamGroups {
    /// Per parameter: the variable, its scales and when it freezes.
    params: Vec<(Var, GroupScale, Freeze)>,
}

impl ParamGroups {
    /// The groups `train` declares over `model` (built from `graph`). A parameter no group
    /// takes keeps the optimizer's settings and is never frozen.
    pub fn new(train: &TrainSpec, graph: &Graph, model: &Model) -> ParamGroups {
        let assigned = weights::parameter_groups(graph, &train.param_groups);
        let params = model
            .named_parameters()
            .iter()
            .map(|(name, var)| {
                let group = assigned
                    .iter()
                    .find(|(p, _)| p.slot.name == *name)
                    .and_then(|(_, g)| *g)
                    .map(|i| &train.param_groups[i]);
                let (scale, freeze) = group.map_or((GroupScale::ONE, Freeze::Never), |g| {
                    let scale = GroupScale {
                        lr: g.lr_scale,
                        weight_decay: g.weight_decay_scale,
                    };
                    (scale, g.freeze)
                });
                (var.clone(), scale, freeze)
            })
            .collect();
        ParamGroups { params }
    }

    /// The variables with their scales, for [`super::build_grouped`].
    pub fn vars(&self) -> Vec<(Var, GroupScale)> {
        self.params
            .iter()
            .map(|(v, s, _)| (v.clone(), *s))
            .collect()
    }

    /// Per parameter, whether it is frozen during epoch `epoch` (1-based), for
    /// [`Model::freeze`]. Depends on the epoch alone, so a resumed run freezes as the
    /// uninterrupted one.
    pub fn frozen_in(&self, epoch: usize) -> Vec<bool> {
        self.params
            .iter()
            .map(|(_, _, f)| f.frozen_in(epoch))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    const EXPERIMENT: &str = r#"
[data]
dataset = "synthetic"
synthetic = { shape = [1, 4, 4], classes = 2, train_size = 8, test_size = 8 }

[model]
layers = [
  { op = "conv2d", out = 2, kernel = 3, padding = 1 },
  { op = "batch_norm2d" },
  { op = "flatten" },
  { op = "linear", out = 2 },
]

[[train.param_groups]]
match = { op = "batch_norm2d" }
lr_scale = 4.0
weight_decay_scale = 0.5

[[train.param_groups]]
match = { role = "weight" }
frozen = true

[[train.param_groups]]
match = { name = "*" }
freeze_after_epochs = 2
"#;

    #[test]
    fn groups_give_scales_and_frozen_parameters_get_no_gradient() {
        let checked = crate::check::check_str("groups.toml", EXPERIMENT, "groups");
        let rendered = checked.render();
        let (exp, graph) = checked.result.unwrap_or_else(|| panic!("{rendered}"));
        let model = Model::new(&graph, 0, &Device::Cpu).expect("model");
        let groups = ParamGroups::new(exp.train(), &graph, &model);
        let names: Vec<&str> = model
            .named_parameters()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "conv1.weight",
                "conv1.bias",
                "bn1.weight",
                "bn1.bias",
                "fc1.weight",
                "fc1.bias"
            ]
        );
        // First match wins: BatchNorm's weight is in the BatchNorm group, not the frozen one.
        let scales: Vec<f64> = groups.vars().iter().map(|(_, s)| s.lr).collect();
        assert_eq!(scales, [1.0, 1.0, 4.0, 4.0, 1.0, 1.0]);
        let decays: Vec<f64> = groups.vars().iter().map(|(_, s)| s.weight_decay).collect();
        assert_eq!(decays, [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]);
        // (epoch, frozen per parameter)
        let frozen = [
            (1, [true, false, false, false, true, false]),
            (2, [true, false, false, false, true, false]),
            (3, [true, true, false, false, true, true]),
        ];
        let x = Tensor::ones((2, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).expect("x");
        for (epoch, want) in frozen {
            assert_eq!(groups.frozen_in(epoch), want, "epoch {epoch}");
            model.freeze(&groups.frozen_in(epoch));
            let loss = model.forward(&x, true).and_then(|y| y.sqr()?.sum_all());
            let grads = loss.and_then(|l| l.backward()).expect("backward");
            for ((name, var), frozen) in model.named_parameters().iter().zip(want) {
                let has = grads.get(var).is_some();
                assert_eq!(has, !frozen, "epoch {epoch}: {name} has a gradient");
            }
        }
    }
}
