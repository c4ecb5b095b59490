//! GELU in one pass forward and one pass backward. candle's `gelu_erf` backward takes nine
//! elementwise ops (and its tanh form more), each a full pass over the activations.
//!
//! Both forms follow PyTorch's CPU kernels (`aten/src/ATen/native/cpu/Activation.cpp`) in
//! `f32`: exact `y = x * 0.5 * (1 + erf(x / sqrt(2)))`, `dy/dx = cdf + x * exp(-x^2 / 2) /
//! sqrt(2 pi)`; tanh `y = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))` with its
//! derivative.

use candle_core::cpu::erf::erf_f32;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{slice, tensor, with_values, zip_map};
use crate::graph::GeluApprox;

struct Gelu(GeluApprox);

const SQRT_2_OVER_PI: f32 = 0.797_884_6; // sqrt(2 / pi)
const INV_SQRT_2PI: f32 = 0.398_942_3; // 1 / sqrt(2 pi)
const KAPPA: f32 = 0.044_715;

fn forward(x: f32, a: GeluApprox) -> f32 {
    match a {
        GeluApprox::None => x * 0.5 * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2)),
        GeluApprox::Tanh => {
            let inner = SQRT_2_OVER_PI * (x + KAPPA * x * x * x);
            0.5 * x * (1.0 + inner.tanh())
        }
    }
}

fn derivative(x: f32, a: GeluApprox) -> f32 {
    match a {
        GeluApprox::None => {
            let cdf = 0.5 * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
            cdf + x * pdf
        }
        GeluApprox::Tanh => {
            let x2 = x * x;
            let inner = SQRT_2_OVER_PI * (x + KAPPA * x2 * x);
            let t = inner.tanh();
            let left = 0.5 * x;
            let right = 1.0 + t;
            let left_d = 0.5 * right;
            let inner_d = SQRT_2_OVER_PI * (1.0 + 3.0 * KAPPA * x2);
            let right_d = left * (1.0 - t * t) * inner_d;
            left_d + right_d
        }
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "runner-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let mut y = vec![0f32; x.len()];
        let a = self.0;
        zip_map(x, x, &mut y, |v, _| forward(v, a));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let a = self.0;
        let dx = with_values(arg, |x| {
            with_values(dy, |g| {
                let mut dx = vec![0f32; x.len()];
                zip_map(x, g, &mut dx, |x, g| g * derivative(x, a));
                Ok(dx)
            })
        })?;
        Ok(Some(tensor(dx, arg.dims())?))
    }
}

/// `F.gelu(x, approximate)` on a `f32` CPU tensor, with a one-pass backward.
pub(crate) fn gelu(x: &Tensor, approximate: GeluApprox) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu(approximate))
}
