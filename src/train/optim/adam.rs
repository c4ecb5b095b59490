//! `torch.optim.Adam` and `torch.optim.AdamW`: one update rule, two kinds of weight decay.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::fused::{self, AdamStep};
use super::{
    check_state, host_tensor, host_values, operands, trainable, write, GroupScale, Optimizer,
    ParamState,
};

/// How weight decay enters the update: the only difference between Adam and AdamW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightDecay {
    /// `torch.optim.Adam`: `g += wd * p` before the moments are updated.
    L2(f64),
    /// `torch.optim.AdamW`: `p *= 1 - lr * wd` before the Adam step.
    Decoupled(f64),
}

/// Hyper-parameters of [`Adam`], named as in `torch.optim.Adam`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator after the square root.
    pub eps: f64,
    /// Weight decay and how it is applied.
    pub weight_decay: WeightDecay,
}

/// Adam or AdamW with PyTorch's update rule (no amsgrad), for step `t` of a parameter:
///
/// ```text
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g^2
/// denom = sqrt(v) / sqrt(1 - beta2^t) + eps
/// p = p - lr / (1 - beta1^t) * m / denom
/// ```
#[derive(Debug)]
pub struct Adam {
    params: Vec<Param>,
    /// Whether `f32` CPU parameters take the one-pass in-place update (off only in tests that
    /// compare it with the tensor formulation).
    pub(super) fuse: bool,
    config: AdamConfig,
}

/// A parameter and its moments (absent until its first step).
#[derive(Debug)]
struct Param {
    var: Var,
    /// Its group's multiples of the rate and the decay.
    scale: GroupScale,
    moments: Option<Moments>,
    /// The moments of an `f32` CPU parameter, updated in place by [`fused::adam`] (with the
    /// step count); such a parameter never has tensor `moments`.
    host: Option<(Vec<f32>, Vec<f32>, u32)>,
}

/// Per-parameter state, like PyTorch's `state[p]`.
#[derive(Debug)]
struct Moments {
    /// `exp_avg`.
    first: Tensor,
    /// `exp_avg_sq`.
    second: Tensor,
    /// Steps taken by this parameter.
    steps: u32,
}

impl Adam {
    /// An optimizer over the floating-point variables in `vars`.
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Self {
        Self::grouped(
            vars.into_iter().map(|v| (v, GroupScale::ONE)).collect(),
            config,
        )
    }

    /// An optimizer over the floating-point variables in `vars`, each with its group's scales.
    pub fn grouped(vars: Vec<(Var, GroupScale)>, config: AdamConfig) -> Self {
        let params = trainable(vars)
            .map(|(var, scale)| Param {
                var,
                scale,
                moments: None,
                host: None,
            })
            .collect();
        Self {
            params,
            config,
            fuse: true,
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        for param in &mut self.params {
            let Some(grad) = grads.get(&param.var) else {
                continue;
            };
            // The group's settings; the optimizer's own ones are multiplied by 1, exactly.
            let lr = lr * param.scale.lr;
            let weight_decay = match weight_decay {
                WeightDecay::L2(wd) => WeightDecay::L2(wd * param.scale.weight_decay),
                WeightDecay::Decoupled(wd) => WeightDecay::Decoupled(wd * param.scale.weight_decay),
            };
            if self.fuse && param.moments.is_none() && fused::applies(&param.var, grad) {
                let n = param.var.elem_count();
                let (m, v, steps) = param
                    .host
                    .get_or_insert_with(|| (vec![0.0; n], vec![0.0; n], 0));
                *steps = steps.saturating_add(1);
                let (l2, decoupled) = match weight_decay {
                    WeightDecay::L2(wd) => (wd, 0.0),
                    WeightDecay::Decoupled(wd) => (0.0, wd),
                };
                let step = AdamStep {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    l2,
                    decoupled,
                    t: *steps,
                };
                fused::adam(&param.var, grad, m, v, step)?;
                continue;
            }
            let (mut p, mut g) = operands(&param.var, grad)?;
            match weight_decay {
                WeightDecay::L2(wd) if wd != 0.0 => g = g.add(&p.affine(wd, 0.0)?)?,
                WeightDecay::Decoupled(wd) if wd != 0.0 => p = p.affine(1.0 - lr * wd, 0.0)?,
                _ => {}
            }
            let g2 = g.sqr()?;
            // PyTorch starts from zero moments; `0 * beta + x` is exactly `x`, so the first step
            // can skip the zeros.
            let moments = match param.moments.take() {
                None => Moments {
                    first: g.affine(1.0 - beta1, 0.0)?,
                    second: g2.affine(1.0 - beta2, 0.0)?,
                    steps: 1,
                },
                Some(Moments {
                    first,
                    second,
                    steps,
                }) => Moments {
                    first: first
                        .affine(beta1, 0.0)?
                        .add(&g.affine(1.0 - beta1, 0.0)?)?,
                    second: second
                        .affine(beta2, 0.0)?
                        .add(&g2.affine(1.0 - beta2, 0.0)?)?,
                    steps: steps.saturating_add(1),
                },
            };
            let t = f64::from(moments.steps);
            let bias_correction1 = 1.0 - beta1.powf(t);
            let bias_correction2 = 1.0 - beta2.powf(t);
            let denom = moments
                .second
                .sqrt()?
                .affine(1.0 / bias_correction2.sqrt(), eps)?;
            let update = moments
                .first
                .div(&denom)?
                .affine(lr / bias_correction1, 0.0)?;
            write(&param.var, &p.sub(&update)?)?;
            param.moments = Some(moments);
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn slots(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn state(&self) -> Result<Vec<Option<ParamState>>> {
        self.params
            .iter()
            .map(|p| {
                Ok(match (&p.host, &p.moments) {
                    (Some((m, v, steps)), _) => Some(ParamState {
                        steps: *steps,
                        buffers: vec![host_tensor(&p.var, m)?, host_tensor(&p.var, v)?],
                    }),
                    (None, Some(m)) => Some(ParamState {
                        steps: m.steps,
                        buffers: vec![m.first.copy()?, m.second.copy()?],
                    }),
                    (None, None) => None,
                })
            })
            .collect()
    }

    fn restore(&mut self, state: Vec<Option<ParamState>>) -> Result<()> {
        let vars: Vec<&Var> = self.params.iter().map(|p| &p.var).collect();
        check_state(&vars, &state, 2)?;
        for (p, s) in self.params.iter_mut().zip(state) {
            p.host = None;
            p.moments = None;
            let Some(ParamState { steps, buffers }) = s else {
                continue;
            };
            let [first, second]: [Tensor; 2] = buffers
                .try_into()
                .map_err(|_| candle_core::Error::Msg("Adam state needs two buffers".into()))?;
            if self.fuse && fused::applies_to(&p.var) {
                p.host = Some((host_values(&first)?, host_values(&second)?, steps));
            } else {
                p.moments = Some(Moments {
                    first,
                    second,
                    steps,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::experiment::OptimizerSpec;
    use crate::train::optim::testing::{assert_matches, run};

    #[test]
    fn adam_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.Adam(ps, lr=0.1))
        #[rustfmt::skip]
        let want = [
            [8.999999762e-01, -1.899999976e+00, 4.000000060e-01, 2.900000095e+00],
            [8.002882600e-01, -1.800133467e+00, 3.011874259e-01, 2.800020933e+00],
            [7.010947466e-01, -1.700497866e+00, 2.048712522e-01, 2.700076818e+00],
            [6.026816964e-01, -1.601197004e+00, 1.129154041e-01, 2.600181818e+00],
            [5.053463578e-01, -1.502341151e+00, 2.781445533e-02, 2.500349998e+00],
        ];
        let spec = OptimizerSpec::Adam {
            lr: 0.1,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        };
        assert_matches(&run(&spec, None, 5), &want, "Adam lr=0.1");
    }

    #[test]
    fn adam_with_weight_decay_and_large_eps_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1))
        #[rustfmt::skip]
        let want = [
            [9.500356913e-01, -1.950035691e+00, 4.500475824e-01, 2.950031281e+00],
            [9.001882076e-01, -1.900132060e+00, 4.004448354e-01, 2.900079489e+00],
            [8.505401611e-01, -1.850330353e+00, 3.514752984e-01, 2.850155830e+00],
            [8.011771441e-01, -1.800672174e+00, 3.034639359e-01, 2.800271273e+00],
            [7.521868944e-01, -1.751198888e+00, 2.567773461e-01, 2.750436544e+00],
        ];
        let spec = OptimizerSpec::Adam {
            lr: 0.05,
            betas: (0.8, 0.99),
            eps: 1e-3,
            weight_decay: 0.1,
        };
        assert_matches(
            &run(&spec, None, 5),
            &want,
            "Adam weight_decay=0.1 eps=1e-3",
        );
    }

    #[test]
    fn adamw_with_changing_rate_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.AdamW(ps, lr=0.1, weight_decay=0.1), lrs=[0.1/(k+1) for k in range(5)])
        #[rustfmt::skip]
        let want = [
            [8.899999857e-01, -1.879999995e+00, 3.950000107e-01, 2.870000124e+00],
            [8.357137442e-01, -1.820683241e+00, 3.436693549e-01, 2.805663824e+00],
            [7.998040318e-01, -1.781388164e+00, 3.100270629e-01, 2.762996197e+00],
            [7.730333209e-01, -1.752052426e+00, 2.851781249e-01, 2.731108665e+00],
            [7.517260909e-01, -1.728671551e+00, 2.655853331e-01, 2.705667496e+00],
        ];
        let spec = OptimizerSpec::AdamW {
            lr: 0.1,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let lrs: Vec<f64> = (0..5).map(|k| 0.1 / (k + 1) as f64).collect();
        assert_matches(&run(&spec, Some(&lrs), 5), &want, "AdamW weight_decay=0.1");
    }
}
