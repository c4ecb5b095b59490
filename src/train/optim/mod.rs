//! Optimizers with PyTorch's update rules, driven by candle's gradients.
//!
//! Each optimizer owns the trainable [`Var`]s and their state. State and arithmetic use `f32`
//! (`f64` for `f64` parameters) on the parameter's device; parameters keep their dtype.

mod adam;
mod fused;
mod groups;
mod sgd;

pub use adam::{Adam, AdamConfig, WeightDecay};
pub use groups::ParamGroups;
pub use sgd::{Sgd, SgdConfig};

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

use crate::experiment::OptimizerSpec;

/// Updates parameters from their gradients, one call per training batch.
pub trait Optimizer: Send {
    /// Applies one update to every parameter that has a gradient in `grads`; parameters without
    /// one are left alone and their state does not advance (PyTorch skips `grad is None`).
    fn step(&mut self, grads: &GradStore) -> Result<()>;

    /// The learning rate the next [`Optimizer::step`] uses.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate, like writing `param_groups[0]['lr']` in PyTorch.
    fn set_learning_rate(&mut self, lr: f64);

    /// The names of the buffers a parameter's state holds (`momentum_buffer`; `exp_avg` and
    /// `exp_avg_sq`), in [`ParamState::buffers`] order.
    fn slots(&self) -> &'static [&'static str];

    /// Every parameter's state (`None` before its first step), in the order of the variables
    /// the optimizer was built with: copies a checkpoint can hold while training goes on.
    fn state(&self) -> Result<Vec<Option<ParamState>>>;

    /// Replaces every parameter's state with `state` (as [`Optimizer::state`] returned it), so
    /// the next [`Optimizer::step`] is the one that would have followed.
    fn restore(&mut self, state: Vec<Option<ParamState>>) -> Result<()>;
}

/// One parameter's optimizer state, like PyTorch's `state[p]`.
#[derive(Debug, Clone)]
pub struct ParamState {
    /// Steps the parameter has taken (Adam's bias correction reads it; for SGD only "at least
    /// one" matters).
    pub steps: u32,
    /// The buffers named by [`Optimizer::slots`], in that order, shaped like the parameter.
    pub buffers: Vec<Tensor>,
}

/// Checks that a restored state fits the optimizer's parameters: one entry per parameter, each
/// with `slots` buffers of the parameter's shape.
fn check_state(vars: &[&Var], state: &[Option<ParamState>], slots: usize) -> Result<()> {
    if state.len() != vars.len() {
        candle_core::bail!(
            "the optimizer state holds {} parameters, the model has {}",
            state.len(),
            vars.len()
        );
    }
    for (i, (var, s)) in vars.iter().zip(state).enumerate() {
        let Some(s) = s else { continue };
        if s.buffers.len() != slots {
            candle_core::bail!(
                "parameter {i}: the optimizer state holds {} buffers, expected {slots}",
                s.buffers.len()
            );
        }
        if let Some(b) = s.buffers.iter().find(|b| b.dims() != var.dims()) {
            candle_core::bail!(
                "parameter {i}: an optimizer buffer has shape {:?}, the parameter {:?}",
                b.dims(),
                var.dims()
            );
        }
    }
    Ok(())
}

/// A host buffer of the in-place update as a tensor shaped like `var`.
fn host_tensor(var: &Var, values: &[f32]) -> Result<Tensor> {
    Tensor::from_slice(values, var.shape(), &candle_core::Device::Cpu)
}

/// A tensor as the host buffer of the in-place update.
fn host_values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// A parameter group's multiples of the optimizer's `lr` and `weight_decay`
/// (`[[train.param_groups]]`): PyTorch's per-group `lr` and `weight_decay`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupScale {
    /// Multiplies the learning rate (after the schedule).
    pub lr: f64,
    /// Multiplies the weight decay.
    pub weight_decay: f64,
}

impl GroupScale {
    /// The optimizer's own settings.
    pub const ONE: GroupScale = GroupScale {
        lr: 1.0,
        weight_decay: 1.0,
    };
}

/// Builds the optimizer `spec` describes over `vars`. Variables that are not floating point
/// are ignored.
pub fn build(spec: &OptimizerSpec, vars: Vec<Var>) -> Result<Box<dyn Optimizer>> {
    build_grouped(
        spec,
        vars.into_iter().map(|v| (v, GroupScale::ONE)).collect(),
    )
}

/// Builds the optimizer `spec` describes over `vars`, each with its group's scales: its rate is
/// `lr * scale.lr` and its decay `weight_decay * scale.weight_decay`, as a PyTorch parameter
/// group with those `lr` and `weight_decay` (a schedule's rate is scaled the same way, as
/// `LambdaLR` scales every group's). Variables that are not floating point are ignored.
pub fn build_grouped(
    spec: &OptimizerSpec,
    vars: Vec<(Var, GroupScale)>,
) -> Result<Box<dyn Optimizer>> {
    Ok(match *spec {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => Box::new(Sgd::grouped(
            vars,
            SgdConfig {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            },
        )),
        OptimizerSpec::Adam {
            lr,
            betas: (beta1, beta2),
            eps,
            weight_decay,
        }
        | OptimizerSpec::AdamW {
            lr,
            betas: (beta1, beta2),
            eps,
            weight_decay,
        } => {
            // Adam adds L2 decay to the gradient; AdamW decays the weights directly.
            let weight_decay = if matches!(spec, OptimizerSpec::Adam { .. }) {
                WeightDecay::L2(weight_decay)
            } else {
                WeightDecay::Decoupled(weight_decay)
            };
            Box::new(Adam::grouped(
                vars,
                AdamConfig {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                },
            ))
        }
    })
}

/// The variables an optimizer can train.
fn trainable(vars: Vec<(Var, GroupScale)>) -> impl Iterator<Item = (Var, GroupScale)> {
    vars.into_iter().filter(|(var, _)| var.dtype().is_float())
}

/// The dtype updates and optimizer state are computed in: half-precision parameters are updated
/// in `f32` so that small steps are not rounded away.
fn compute_dtype(param: DType) -> DType {
    match param {
        DType::F64 => DType::F64,
        _ => DType::F32,
    }
}

/// The parameter's value and its gradient in the compute dtype, detached so the update
/// arithmetic records no autograd graph (state kept across steps would otherwise hold every
/// earlier step's graph alive).
fn operands(var: &Var, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let dtype = compute_dtype(var.dtype());
    let param = var.as_tensor().detach().to_dtype(dtype)?;
    let grad = grad.detach().to_dtype(dtype)?;
    Ok((param, grad))
}

/// Writes `value` into the parameter's storage, in the parameter's dtype.
fn write(var: &Var, value: &Tensor) -> Result<()> {
    var.set(&value.to_dtype(var.dtype())?)
}

#[cfg(test)]
pub(crate) mod testing {
    //! The shared golden-test problem.
    //!
    //! Golden numbers come from PyTorch 1.13 (Debian `python3-torch`, run with `/usr/bin/python3`)
    //! through this harness; each test quotes the line that calls `run`:
    //!
    //! ```python
    //! import torch
    //! def run(make, lrs=None, steps=5):
    //!     p = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    //!     a = torch.tensor([1.0, 0.5, 2.0, 0.1]); b = torch.tensor([0.3, -0.2, 0.0, 1.0])
    //!     opt = make([p])
    //!     out = []
    //!     for k in range(steps):
    //!         if lrs: opt.param_groups[0]['lr'] = lrs[k]
    //!         opt.zero_grad()
    //!         (0.5 * a * p * p + b * p).sum().backward()
    //!         opt.step()
    //!         out.append([float(x) for x in p.detach()])
    //!     for row in out: print("[" + ", ".join("%.9e" % x for x in row) + "],")
    //! O = torch.optim
    //! ```

    use super::*;
    use candle_core::Device;

    /// Mirrors the Python `run`: minimises `sum(0.5 * a * p * p + b * p)` from
    /// `p = [1, -2, 0.5, 3]` (f32, CPU), setting the rate to `lrs[k]` before step `k` when given,
    /// and returns the parameter after each step.
    pub(crate) fn run(spec: &OptimizerSpec, lrs: Option<&[f64]>, steps: usize) -> Vec<Vec<f32>> {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, -2.0, 0.5, 3.0], &dev).expect("param");
        let a = Tensor::new(&[1.0f32, 0.5, 2.0, 0.1], &dev).expect("a");
        let b = Tensor::new(&[0.3f32, -0.2, 0.0, 1.0], &dev).expect("b");
        let mut opt = build(spec, vec![p.clone()]).expect("build");
        let mut out = Vec::new();
        for k in 0..steps {
            if let Some(lrs) = lrs {
                opt.set_learning_rate(lrs[k]);
            }
            let half_a = a.affine(0.5, 0.0).expect("0.5 * a");
            let loss = half_a
                .mul(&p)
                .and_then(|t| t.mul(&p))
                .and_then(|t| t.add(&b.mul(&p)?))
                .and_then(|t| t.sum_all())
                .expect("loss");
            let grads = loss.backward().expect("backward");
            opt.step(&grads).expect("step");
            assert_eq!(p.dtype(), DType::F32, "parameter dtype after step {k}");
            out.push(p.as_tensor().to_vec1::<f32>().expect("read param"));
        }
        out
    }

    /// Asserts every value is within 1e-6 relative (1e-7 absolute near zero) of PyTorch's.
    pub(crate) fn assert_matches(got: &[Vec<f32>], want: &[[f64; 4]], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: number of steps");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
                let g = f64::from(g);
                let tol = 1e-6 * w.abs().max(0.1);
                assert!(
                    (g - w).abs() <= tol,
                    "{what}: step {k} element {i}: got {g:e}, PyTorch {w:e}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn all_specs() -> Vec<OptimizerSpec> {
        vec![
            OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 5e-4,
            },
            OptimizerSpec::Adam {
                lr: 0.1,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 1e-4,
            },
            OptimizerSpec::AdamW {
                lr: 0.1,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.01,
            },
        ]
    }

    #[test]
    fn builds_every_spec_with_its_learning_rate() {
        for spec in all_specs() {
            let mut opt = build(&spec, vec![]).expect("build");
            assert_eq!(opt.learning_rate(), spec.lr(), "{spec:?}");
            opt.set_learning_rate(0.5);
            assert_eq!(opt.learning_rate(), 0.5, "{spec:?}: set_learning_rate");
        }
    }

    /// Steps `opt` on `p` with the gradient of `sum(p^2 + k * p)` `steps` times.
    fn steps(opt: &mut dyn Optimizer, p: &Var, steps: usize) {
        for k in 0..steps {
            let lin = p.affine(0.3 * k as f64 - 0.5, 0.0).expect("k * p");
            let loss = p.sqr().and_then(|t| t.add(&lin)).and_then(|t| t.sum_all());
            let grads = loss.and_then(|l| l.backward()).expect("backward");
            opt.step(&grads).expect("step");
        }
    }

    fn bits(v: &Var) -> Vec<u64> {
        let t = v.to_dtype(DType::F64).and_then(|t| t.flatten_all());
        t.and_then(|t| t.to_vec1::<f64>())
            .expect("read")
            .into_iter()
            .map(f64::to_bits)
            .collect()
    }

    #[test]
    fn a_restored_state_continues_the_same_trajectory() {
        // Three steps, then the state is taken; two more steps from it, against two steps of a
        // fresh optimizer restored from that state on a copy of the parameter: the same bits,
        // on the in-place path (f32) and the tensor path (f64).
        let dev = Device::Cpu;
        for spec in all_specs() {
            for dtype in [DType::F32, DType::F64] {
                let what = format!("{spec:?} {dtype:?}");
                let init = Tensor::new(&[1.0f32, -2.0, 0.5, 3.0], &dev)
                    .and_then(|t| t.to_dtype(dtype))
                    .expect("init");
                let p = Var::from_tensor(&init).expect("param");
                let unused = Var::from_tensor(&init).expect("unused");
                let mut opt = build(&spec, vec![p.clone(), unused.clone()]).expect("build");
                steps(opt.as_mut(), &p, 3);
                let state = opt.state().expect("state");
                assert!(
                    state[1].is_none(),
                    "{what}: a parameter without steps has no state"
                );
                let copy = Var::from_tensor(&p.as_tensor().copy().expect("copy")).expect("copy");
                steps(opt.as_mut(), &p, 2);
                let mut fresh = build(&spec, vec![copy.clone(), unused]).expect("build");
                fresh.restore(state).expect("restore");
                steps(fresh.as_mut(), &copy, 2);
                assert_eq!(bits(&p), bits(&copy), "{what}");
            }
        }
    }

    #[test]
    fn a_group_steps_as_an_optimizer_with_its_scaled_settings() {
        // PyTorch's per-group `lr` and `weight_decay`: one optimizer over two groups equals,
        // bit for bit, one optimizer per group built with that group's settings, also after a
        // change of the rate (a schedule scales every group's rate).
        let dev = Device::Cpu;
        let scale = GroupScale {
            lr: 64.0,
            weight_decay: 0.015625,
        };
        let scaled = |spec: &OptimizerSpec| match *spec {
            OptimizerSpec::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => OptimizerSpec::Sgd {
                lr: lr * scale.lr,
                momentum,
                dampening,
                nesterov,
                weight_decay: weight_decay * scale.weight_decay,
            },
            OptimizerSpec::Adam {
                lr,
                betas,
                eps,
                weight_decay,
            } => OptimizerSpec::Adam {
                lr: lr * scale.lr,
                betas,
                eps,
                weight_decay: weight_decay * scale.weight_decay,
            },
            OptimizerSpec::AdamW {
                lr,
                betas,
                eps,
                weight_decay,
            } => OptimizerSpec::AdamW {
                lr: lr * scale.lr,
                betas,
                eps,
                weight_decay: weight_decay * scale.weight_decay,
            },
        };
        for spec in all_specs() {
            for dtype in [DType::F32, DType::F64] {
                let what = format!("{spec:?} {dtype:?}");
                let init = Tensor::new(&[1.0f32, -2.0, 0.5, 3.0], &dev)
                    .and_then(|t| t.to_dtype(dtype))
                    .expect("init");
                let var = || Var::from_tensor(&init.copy().expect("copy")).expect("var");
                let (a, b) = (var(), var());
                let mut grouped = build_grouped(
                    &spec,
                    vec![(a.clone(), GroupScale::ONE), (b.clone(), scale)],
                )
                .expect("build");
                let (a1, b1) = (var(), var());
                let mut plain = build(&spec, vec![a1.clone()]).expect("build");
                let mut group = build(&scaled(&spec), vec![b1.clone()]).expect("build");
                for k in 0..4 {
                    if k == 2 {
                        grouped.set_learning_rate(spec.lr() * 0.5);
                        plain.set_learning_rate(spec.lr() * 0.5);
                        group.set_learning_rate(spec.lr() * 0.5 * scale.lr);
                    }
                    let loss = |p: &Var| {
                        let lin = p.affine(0.3 * k as f64 - 0.5, 0.0).expect("k * p");
                        p.sqr().and_then(|t| t.add(&lin)).and_then(|t| t.sum_all())
                    };
                    let both = loss(&a).and_then(|l| l.add(&loss(&b)?)).expect("loss");
                    grouped
                        .step(&both.backward().expect("backward"))
                        .expect("step");
                    let grads = loss(&a1).and_then(|l| l.backward()).expect("backward");
                    plain.step(&grads).expect("step");
                    let grads = loss(&b1).and_then(|l| l.backward()).expect("backward");
                    group.step(&grads).expect("step");
                }
                assert_eq!(bits(&a), bits(&a1), "{what}: the optimizer's own settings");
                assert_eq!(bits(&b), bits(&b1), "{what}: the scaled group");
                assert_ne!(bits(&a), bits(&b), "{what}: the scales change the step");
            }
        }
    }

    #[test]
    fn a_state_that_does_not_fit_is_refused() {
        let dev = Device::Cpu;
        let spec = &all_specs()[2];
        let p = Var::ones(4, DType::F32, &dev).expect("param");
        let mut opt = build(spec, vec![p.clone()]).expect("build");
        steps(opt.as_mut(), &p, 1);
        let mut state = opt.state().expect("state");
        assert!(opt.restore(Vec::new()).is_err(), "wrong parameter count");
        state[0].as_mut().expect("stepped").buffers[0] =
            Tensor::zeros(3, DType::F32, &dev).unwrap();
        let err = opt.restore(state).expect_err("wrong shape").to_string();
        assert!(err.contains("shape"), "{err}");
    }

    #[test]
    fn keeps_parameter_dtype_and_skips_parameters_without_gradient() {
        let dev = Device::Cpu;
        for spec in all_specs() {
            for dtype in [DType::F32, DType::F64, DType::BF16] {
                let used = Var::ones((2, 3), dtype, &dev).expect("used");
                let unused = Var::ones(3, dtype, &dev).expect("unused");
                let ints = Var::ones(3, DType::U32, &dev).expect("ints");
                let mut opt =
                    build(&spec, vec![used.clone(), unused.clone(), ints.clone()]).expect("build");
                for _ in 0..2 {
                    let loss = used.sqr().and_then(|t| t.sum_all()).expect("loss");
                    opt.step(&loss.backward().expect("backward")).expect("step");
                }
                let what = format!("{spec:?} {dtype:?}");
                assert_eq!(used.dtype(), dtype, "{what}: trained parameter dtype");
                assert_eq!(unused.dtype(), dtype, "{what}: untouched parameter dtype");
                let used = used.to_dtype(DType::F32).and_then(|t| t.flatten_all());
                let used = used.and_then(|t| t.to_vec1::<f32>()).expect("read used");
                assert!(
                    used.iter().all(|&x| x < 1.0),
                    "{what}: trained parameter moved"
                );
                let unused = unused.to_dtype(DType::F32).and_then(|t| t.to_vec1::<f32>());
                assert_eq!(
                    unused.expect("read unused"),
                    [1.0; 3],
                    "{what}: no gradient"
                );
                assert_eq!(ints.to_vec1::<u32>().expect("ints"), [1; 3], "{what}: ints");
            }
        }
    }
}
