//! `torch.optim.SGD`: weight decay, momentum with dampening, Nesterov.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::fused::{self, SgdStep};
use super::{
    check_state, host_tensor, host_values, operands, trainable, write, GroupScale, Optimizer,
    ParamState,
};

/// Hyper-parameters of [`Sgd`], named as in `torch.optim.SGD`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    pub momentum: f64,
    /// Dampening for momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

/// Stochastic gradient descent with PyTorch's update rule:
///
/// ```text
/// g = grad + weight_decay * p
/// b = g                                  on a parameter's first step
/// b = momentum * b + (1 - dampening) * g after that
/// g = g + momentum * b if nesterov, else g = b        (when momentum != 0)
/// p = p - lr * g
/// ```
#[derive(Debug)]
pub struct Sgd {
    params: Vec<Param>,
    /// Whether `f32` CPU parameters take the one-pass in-place update (off only in tests that
    /// compare it with the tensor formulation).
    pub(super) fuse: bool,
    config: SgdConfig,
}

/// A parameter and its momentum buffer (absent until its first step, or without momentum).
#[derive(Debug)]
struct Param {
    var: Var,
    /// Its group's multiples of the rate and the decay.
    scale: GroupScale,
    momentum_buffer: Option<Tensor>,
    /// The momentum buffer of an `f32` CPU parameter, updated in place by [`fused::sgd`]
    /// (empty without momentum); such a parameter never has a tensor `momentum_buffer`.
    host: Option<Vec<f32>>,
}

impl Sgd {
    /// An optimizer over the floating-point variables in `vars`.
    pub fn new(vars: Vec<Var>, config: SgdConfig) -> Self {
        Self::grouped(
            vars.into_iter().map(|v| (v, GroupScale::ONE)).collect(),
            config,
        )
    }

    /// An optimizer over the floating-point variables in `vars`, each with its group's scales.
    pub fn grouped(vars: Vec<(Var, GroupScale)>, config: SgdConfig) -> Self {
        let params = trainable(vars)
            .map(|(var, scale)| Param {
                var,
                scale,
                momentum_buffer: None,
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

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let SgdConfig {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } = self.config;
        for param in &mut self.params {
            let Some(grad) = grads.get(&param.var) else {
                continue;
            };
            // The group's settings; the optimizer's own ones are multiplied by 1, exactly.
            let lr = lr * param.scale.lr;
            let weight_decay = weight_decay * param.scale.weight_decay;
            if self.fuse && param.momentum_buffer.is_none() && fused::applies(&param.var, grad) {
                let first = param.host.is_none();
                let n = if momentum != 0.0 {
                    param.var.elem_count()
                } else {
                    0
                };
                let buffer = param.host.get_or_insert_with(|| vec![0.0; n]);
                let step = SgdStep {
                    lr,
                    momentum,
                    dampening,
                    nesterov,
                    weight_decay,
                    first,
                };
                fused::sgd(&param.var, grad, buffer, step)?;
                continue;
            }
            let (p, mut g) = operands(&param.var, grad)?;
            if weight_decay != 0.0 {
                g = g.add(&p.affine(weight_decay, 0.0)?)?;
            }
            if momentum != 0.0 {
                let buffer = match param.momentum_buffer.take() {
                    // Tensors are immutable, so sharing `g`'s storage is PyTorch's `clone`.
                    None => g.clone(),
                    Some(b) if dampening == 0.0 => b.affine(momentum, 0.0)?.add(&g)?,
                    Some(b) => b
                        .affine(momentum, 0.0)?
                        .add(&g.affine(1.0 - dampening, 0.0)?)?,
                };
                g = if nesterov {
                    g.add(&buffer.affine(momentum, 0.0)?)?
                } else {
                    buffer.clone()
                };
                param.momentum_buffer = Some(buffer);
            }
            write(&param.var, &p.sub(&g.affine(lr, 0.0)?)?)?;
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
        if self.config.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn state(&self) -> Result<Vec<Option<ParamState>>> {
        let with_buffer = !self.slots().is_empty();
        self.params
            .iter()
            .map(|p| {
                let buffers = match (&p.host, &p.momentum_buffer) {
                    (Some(host), _) if with_buffer => vec![host_tensor(&p.var, host)?],
                    (Some(_), _) => Vec::new(),
                    (None, Some(b)) => vec![b.copy()?],
                    (None, None) => return Ok(None),
                };
                Ok(Some(ParamState { steps: 1, buffers }))
            })
            .collect()
    }

    fn restore(&mut self, state: Vec<Option<ParamState>>) -> Result<()> {
        let vars: Vec<&Var> = self.params.iter().map(|p| &p.var).collect();
        check_state(&vars, &state, self.slots().len())?;
        for (p, s) in self.params.iter_mut().zip(state) {
            p.host = None;
            p.momentum_buffer = None;
            let Some(s) = s else { continue };
            let buffer = s.buffers.into_iter().next();
            if self.fuse && fused::applies_to(&p.var) {
                p.host = Some(buffer.as_ref().map_or(Ok(Vec::new()), host_values)?);
            } else {
                p.momentum_buffer = buffer;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::experiment::OptimizerSpec;
    use crate::train::optim::testing::{assert_matches, run};

    fn sgd(lr: f64, momentum: f64, dampening: f64, nesterov: bool, wd: f64) -> OptimizerSpec {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay: wd,
        }
    }

    #[test]
    fn plain_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.SGD(ps, lr=0.1))
        #[rustfmt::skip]
        let want = [
            [8.700000048e-01, -1.879999995e+00, 4.000000060e-01, 2.869999886e+00],
            [7.530000210e-01, -1.766000032e+00, 3.199999928e-01, 2.741299868e+00],
            [6.477000117e-01, -1.657700062e+00, 2.559999824e-01, 2.613886833e+00],
            [5.529299974e-01, -1.554815054e+00, 2.047999799e-01, 2.487747908e+00],
            [4.676370025e-01, -1.457074285e+00, 1.638399810e-01, 2.362870455e+00],
        ];
        let got = run(&sgd(0.1, 0.0, 0.0, false, 0.0), None, 5);
        assert_matches(&got, &want, "SGD lr=0.1");
    }

    #[test]
    fn momentum_with_dampening_and_changing_rate_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1),
        //     lrs=[0.05/(k+1) for k in range(5)])
        #[rustfmt::skip]
        let want = [
            [9.350000024e-01, -1.939999938e+00, 4.499999881e-01, 2.934999943e+00],
            [8.779625297e-01, -1.886674881e+00, 4.072499871e-01, 2.876646280e+00],
            [8.260706067e-01, -1.837529778e+00, 3.693825006e-01, 2.822319031e+00],
            [7.783752680e-01, -1.791770816e+00, 3.355108202e-01, 2.771223068e+00],
            [7.343292236e-01, -1.748961329e+00, 3.050840199e-01, 2.722939968e+00],
        ];
        let lrs: Vec<f64> = (0..5).map(|k| 0.05 / (k + 1) as f64).collect();
        let got = run(&sgd(0.05, 0.9, 0.1, false, 0.0), Some(&lrs), 5);
        assert_matches(&got, &want, "SGD momentum=0.9 dampening=0.1");
    }

    #[test]
    fn nesterov_with_weight_decay_matches_pytorch() {
        // PyTorch 1.13, harness in `optim::testing`:
        // run(lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))
        #[rustfmt::skip]
        let want = [
            [8.755500317e-01, -1.884099960e+00, 4.045250118e-01, 2.873650074e+00],
            [7.099860311e-01, -1.724405289e+00, 2.865784764e-01, 2.694755554e+00],
            [5.176489949e-01, -1.530372739e+00, 1.622937173e-01, 2.469814777e+00],
            [3.121461272e-01, -1.311172009e+00, 4.536847770e-02, 2.204897642e+00],
            [1.057702899e-01, -1.075487137e+00, -5.384788290e-02, 1.905656576e+00],
        ];
        let got = run(&sgd(0.05, 0.9, 0.0, true, 0.01), None, 5);
        assert_matches(&got, &want, "SGD nesterov weight_decay=0.01");
    }
}
