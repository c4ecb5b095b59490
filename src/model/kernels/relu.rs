//! ReLU in one pass forward and one pass backward (candle's backward takes three ops).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{slice, tensor, with_values, zip_map};

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "runner-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let mut y = vec![0f32; x.len()];
        // NaN passes through, so a diverging run still shows a non-finite loss.
        zip_map(x, x, &mut y, |v, _| if v < 0.0 { 0.0 } else { v });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_values(res, |y| {
            with_values(dy, |g| {
                let mut dx = vec![0f32; y.len()];
                zip_map(y, g, &mut dx, |y, g| if y > 0.0 { g } else { 0.0 });
                Ok(dx)
            })
        })?;
        Ok(Some(tensor(dx, res.dims())?))
    }
}

/// `F.relu(x)` on a `f32` CPU tensor; the gradient is `dy` where the output is positive.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu)
}
