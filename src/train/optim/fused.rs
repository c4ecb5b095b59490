//! One-pass, in-place optimizer updates for `f32` parameters on the CPU.
//!
//! The tensor formulation of an Adam step is about a dozen elementwise ops per parameter, each
//! allocating and writing a full-size tensor; for VGG's 15M parameters that is ~2 GB of memory
//! traffic per step. Here each element's parameter, gradient and state are read once and
//! written back in place, as an in-place candle op on the parameter's storage (so every other
//! holder of the [`Var`] sees the new values, as with [`Var::set`]).
//!
//! The arithmetic mirrors the tensor path op for op, in `f32` (constants rounded to `f32` as
//! candle's `affine` does), so both paths give the same bits.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, DType, Device, InplaceOp2, Layout, Result, Tensor, Var};
use multiversion::multiversion;
use rayon::prelude::*;

/// Elements per parallel chunk; below two chunks the update stays on one thread.
const CHUNK: usize = 1 << 15;

/// Whether `var` and `grad` can take the fused path: `f32` on the CPU, same number of values.
pub(super) fn applies(var: &Var, grad: &Tensor) -> bool {
    applies_to(var)
        && grad.dtype() == DType::F32
        && matches!(var.device(), Device::Cpu)
        && matches!(grad.device(), Device::Cpu)
        && var.elem_count() == grad.elem_count()
        && var.is_contiguous()
}

/// Whether `var` itself qualifies for the in-place update (the gradient of an `f32` CPU
/// parameter always does): where a restored state goes.
pub(super) fn applies_to(var: &Var) -> bool {
    var.dtype() == DType::F32 && matches!(var.device(), Device::Cpu) && var.is_contiguous()
}

/// Adam's per-step constants, rounded to `f32` exactly where the tensor path rounds them.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 decay added to the gradient (`torch.optim.Adam`), or 0.
    pub l2: f64,
    /// Decoupled decay (`torch.optim.AdamW`), or 0.
    pub decoupled: f64,
    /// The step number, from 1.
    pub t: u32,
}

/// `p`, `m` and `v` updated in place from `g` (see [`super::Adam`] for the rule).
#[multiversion(targets = "simd")]
fn adam_chunk(s: &AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let t = f64::from(s.t);
    let bias_correction1 = 1.0 - s.beta1.powf(t);
    let bias_correction2 = 1.0 - s.beta2.powf(t);
    let (beta1, one_minus_beta1) = (s.beta1 as f32, (1.0 - s.beta1) as f32);
    let (beta2, one_minus_beta2) = (s.beta2 as f32, (1.0 - s.beta2) as f32);
    let inv_sqrt_bc2 = (1.0 / bias_correction2.sqrt()) as f32;
    let eps = s.eps as f32;
    let step_size = (s.lr / bias_correction1) as f32;
    let l2 = s.l2 as f32;
    let keep = (1.0 - s.lr * s.decoupled) as f32;
    for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
        let mut g = g;
        if s.l2 != 0.0 {
            g += *p * l2;
        }
        if s.decoupled != 0.0 {
            *p *= keep;
        }
        *m = *m * beta1 + g * one_minus_beta1;
        *v = *v * beta2 + (g * g) * one_minus_beta2;
        let denom = v.sqrt() * inv_sqrt_bc2 + eps;
        *p -= (*m / denom) * step_size;
    }
}

/// SGD's constants (see [`super::Sgd`] for the rule).
#[derive(Debug, Clone, Copy)]
pub(super) struct SgdStep {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// The parameter's first step: the momentum buffer starts as the gradient.
    pub first: bool,
}

/// `p` and the momentum buffer `b` (unused without momentum) updated in place from `g`.
#[multiversion(targets = "simd")]
fn sgd_chunk(s: &SgdStep, p: &mut [f32], b: &mut [f32], g: &[f32]) {
    let lr = s.lr as f32;
    let wd = s.weight_decay as f32;
    let momentum = s.momentum as f32;
    let one_minus_dampening = (1.0 - s.dampening) as f32;
    if s.momentum == 0.0 {
        for (p, &g) in p.iter_mut().zip(g) {
            let g = if s.weight_decay != 0.0 {
                g + *p * wd
            } else {
                g
            };
            *p -= g * lr;
        }
        return;
    }
    for ((p, b), &g) in p.iter_mut().zip(b).zip(g) {
        let g = if s.weight_decay != 0.0 {
            g + *p * wd
        } else {
            g
        };
        *b = if s.first {
            g
        } else if s.dampening == 0.0 {
            *b * momentum + g
        } else {
            *b * momentum + g * one_minus_dampening
        };
        let g = if s.nesterov { g + *b * momentum } else { *b };
        *p -= g * lr;
    }
}

/// Two mutable chunks zipped together.
type Pair<'a> = (&'a mut [f32], &'a mut [f32]);

/// The in-place op: the parameter is the destination, the gradient the one source, and the
/// optimizer state (one or two buffers as long as the parameter) rides along.
struct Update<'a> {
    rule: Rule,
    state: RefCell<[&'a mut [f32]; 2]>,
}

#[derive(Clone, Copy)]
enum Rule {
    Adam(AdamStep),
    Sgd(SgdStep),
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "runner-fused-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> Result<()> {
        let CpuStorage::F32(p) = dst else {
            bail!("fused optimizer step: parameter is not f32")
        };
        let Some((p0, p1)) = dst_l.contiguous_offsets() else {
            bail!("fused optimizer step: parameter is not contiguous")
        };
        let p = &mut p[p0..p1];
        let g = crate::model::kernels::slice(src, src_l)?;
        if g.len() != p.len() {
            bail!("fused optimizer step: parameter and gradient differ in length")
        }
        let mut state = self.state.borrow_mut();
        let [a, b] = &mut *state;
        let parallel = p.len() >= 2 * CHUNK;
        match self.rule {
            Rule::Adam(s) => {
                if a.len() != p.len() || b.len() != p.len() {
                    bail!("fused optimizer step: Adam state differs in length from the parameter")
                }
                let run =
                    |((p, m), (v, g)): (Pair<'_>, (&mut [f32], &[f32]))| adam_chunk(&s, p, m, v, g);
                if parallel {
                    p.par_chunks_mut(CHUNK)
                        .zip(a.par_chunks_mut(CHUNK))
                        .zip(b.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)))
                        .for_each(run);
                } else {
                    run(((p, a), (b, g)));
                }
            }
            Rule::Sgd(s) => {
                if s.momentum != 0.0 && a.len() != p.len() {
                    bail!("fused optimizer step: momentum buffer differs in length from the parameter")
                }
                if s.momentum == 0.0 {
                    // No buffer: `sgd_chunk` does not read it.
                    let run = |(p, g): (&mut [f32], &[f32])| sgd_chunk(&s, p, &mut [], g);
                    if parallel {
                        p.par_chunks_mut(CHUNK)
                            .zip(g.par_chunks(CHUNK))
                            .for_each(run);
                    } else {
                        run((p, g));
                    }
                } else {
                    let run =
                        |((p, b), g): ((&mut [f32], &mut [f32]), &[f32])| sgd_chunk(&s, p, b, g);
                    if parallel {
                        p.par_chunks_mut(CHUNK)
                            .zip(a.par_chunks_mut(CHUNK))
                            .zip(g.par_chunks(CHUNK))
                            .for_each(run);
                    } else {
                        run(((p, a), g));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One Adam step on `var` in place; `m` and `v` are its moments (zeros before the first step).
pub(super) fn adam(
    var: &Var,
    grad: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
    s: AdamStep,
) -> Result<()> {
    apply(var, grad, Rule::Adam(s), [m, v])
}

/// One SGD step on `var` in place; `buffer` is its momentum buffer (not read on the first step,
/// and not touched at all without momentum, when it may be empty).
pub(super) fn sgd(var: &Var, grad: &Tensor, buffer: &mut [f32], s: SgdStep) -> Result<()> {
    apply(var, grad, Rule::Sgd(s), [buffer, &mut []])
}

fn apply(var: &Var, grad: &Tensor, rule: Rule, state: [&mut [f32]; 2]) -> Result<()> {
    let grad = grad.detach().contiguous()?;
    let op = Update {
        rule,
        state: RefCell::new(state),
    };
    var.as_tensor().inplace_op2(&grad, &op)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use rand::{Rng, SeedableRng};

    use super::super::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig, WeightDecay};

    /// Parameter values after each of `steps` steps minimising `sum(a * p^2 + b * p)` over a
    /// parameter long enough to be updated in parallel chunks (and with a ragged last chunk).
    fn trajectory(mut opt: Box<dyn Optimizer>, p: &Var, steps: usize) -> Vec<Vec<u32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = p.elem_count();
        let a: Vec<f32> = (0..n).map(|_| rng.random_range(0.0..2.0)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let a = Tensor::from_vec(a, n, &Device::Cpu).expect("a");
        let b = Tensor::from_vec(b, n, &Device::Cpu).expect("b");
        let mut out = Vec::new();
        for k in 0..steps {
            if k == 2 {
                opt.set_learning_rate(opt.learning_rate() * 0.5);
            }
            let pt = p.as_tensor();
            let loss = (a.mul(&pt.sqr().expect("p^2")).expect("a p^2") + b.mul(pt).expect("b p"))
                .and_then(|t| t.sum_all())
                .expect("loss");
            opt.step(&loss.backward().expect("backward")).expect("step");
            let values = p.as_tensor().to_vec1::<f32>().expect("read");
            out.push(values.into_iter().map(f32::to_bits).collect());
        }
        out
    }

    fn param() -> Var {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 2 * super::CHUNK + 12_345;
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
        Var::from_vec(v, n, &Device::Cpu).expect("param")
    }

    #[test]
    fn fused_adam_gives_the_same_bits_as_the_tensor_formulation() {
        for weight_decay in [
            WeightDecay::L2(0.0),
            WeightDecay::L2(0.01),
            WeightDecay::Decoupled(0.05),
        ] {
            let config = AdamConfig {
                lr: 0.01,
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                weight_decay,
            };
            let [fused, tensors] = [true, false].map(|fuse| {
                let p = param();
                let mut opt = Adam::new(vec![p.clone()], config);
                opt.fuse = fuse;
                trajectory(Box::new(opt), &p, 4)
            });
            assert!(fused == tensors, "Adam {weight_decay:?}: paths differ");
        }
    }

    #[test]
    fn fused_sgd_gives_the_same_bits_as_the_tensor_formulation() {
        let configs = [
            (0.0, 0.0, false, 0.0),
            (0.5, 0.0, false, 0.0),
            (0.9, 0.1, false, 1e-3),
            (0.9, 0.0, true, 5e-4),
        ];
        for (momentum, dampening, nesterov, weight_decay) in configs {
            let config = SgdConfig {
                lr: 0.05,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            };
            let [fused, tensors] = [true, false].map(|fuse| {
                let p = param();
                let mut opt = Sgd::new(vec![p.clone()], config);
                opt.fuse = fuse;
                trajectory(Box::new(opt), &p, 4)
            });
            assert!(fused == tensors, "SGD {config:?}: paths differ");
        }
    }
}
