//! ReLU in one pass forward and one pass backward (candle's backward takes three ops), and the
//! two elementwise rules that the layers with a fused ReLU (conv, batch norm) share with it.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{slice, tensor, with_values, zip_map};

/// ReLU of one value. NaN passes through, so a diverging run still shows a non-finite loss;
/// -0 stays -0, like PyTorch's `clamp_min(0)`.
#[inline(always)]
pub(crate) fn value(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// The gradient through a ReLU whose output was `y`: `g` where the output is positive.
#[inline(always)]
pub(crate) fn grad(y: f32, g: f32) -> f32 {
    if y > 0.0 {
        g
    } else {
        0.0
    }
}

/// The gradient of a layer's own output, from `dy`, the gradient of its output `res`: through
/// the ReLU first when one is `fused` into the layer, `dy` itself otherwise.
pub(crate) fn through(fused: bool, res: &Tensor, dy: &Tensor) -> Result<Tensor> {
    if fused {
        masked(res, dy)
    } else {
        Ok(dy.clone())
    }
}

/// `dy` masked by a ReLU output `res`: the backward pass of a ReLU.
fn masked(res: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let dx = with_values(res, |y| {
        with_values(dy, |g| {
            let mut dx = vec![0f32; y.len()];
            zip_map(y, g, &mut dx, grad);
            Ok(dx)
        })
    })?;
    tensor(dx, res.dims())
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "runner-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let mut y = vec![0f32; x.len()];
        zip_map(x, x, &mut y, |v, _| value(v));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(masked(res, dy)?))
    }
}

/// `F.relu(x)` on a `f32` CPU tensor; the gradient is `dy` where the output is positive.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu)
}
