//! `nn.MaxPool2d(kernel, stride, padding)` (floor mode; padding never wins) with a backward
//! pass that routes each output gradient to the first maximum of its window, like PyTorch.
//!
//! The forward pass keeps nothing: the backward pass finds the argmax again from the input and
//! the output (the first position in the window holding the output value).

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, tensor, with_values, PAR_MIN};

#[derive(Debug, Clone, Copy)]
struct MaxPool {
    kernel: usize,
    stride: usize,
    pad: usize,
}

impl MaxPool {
    fn out_size(&self, size: usize) -> Result<usize> {
        if size + 2 * self.pad < self.kernel || self.stride == 0 {
            bail!(
                "pooling kernel {} is larger than the (padded) input {size} (padding {})",
                self.kernel,
                self.pad
            )
        }
        Ok((size + 2 * self.pad - self.kernel) / self.stride + 1)
    }

    /// Window rows or columns `[lo, hi)` of output position `o` inside an input of `size`.
    fn window(&self, o: usize, size: usize) -> (usize, usize) {
        let start = (o * self.stride) as isize - self.pad as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + self.kernel as isize).max(0) as usize).min(size);
        (lo, hi.max(lo))
    }

    /// For every output of one plane: the index of the first maximum of its window.
    fn argmax_plane(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
    ) -> Vec<u32> {
        let mut idx = Vec::with_capacity(ho * wo);
        if self.kernel == 2 && self.stride == 2 && self.pad == 0 {
            // The common 2x2 pool: four candidates in scan order, no bounds to check.
            for oy in 0..ho {
                let top = 2 * oy * w;
                let bottom = top + w;
                for ox in 0..wo {
                    let at = [
                        top + 2 * ox,
                        top + 2 * ox + 1,
                        bottom + 2 * ox,
                        bottom + 2 * ox + 1,
                    ];
                    let mut best = at[0];
                    for &a in &at[1..] {
                        if x[best].is_nan() {
                            break;
                        }
                        if x[a] > x[best] || x[a].is_nan() {
                            best = a;
                        }
                    }
                    idx.push(best as u32);
                }
            }
            return idx;
        }
        for oy in 0..ho {
            let (y0, y1) = self.window(oy, h);
            for ox in 0..wo {
                let (x0, x1) = self.window(ox, w);
                let mut best = f32::NEG_INFINITY;
                let mut at = (y0 * w + x0) as u32;
                let mut first = true;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let v = x[iy * w + ix];
                        // NaN propagates, like PyTorch.
                        if first || v > best || v.is_nan() {
                            best = v;
                            at = (iy * w + ix) as u32;
                            first = false;
                            if v.is_nan() {
                                break;
                            }
                        }
                    }
                }
                idx.push(at);
            }
        }
        idx
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "runner-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[b, c, h, w] = l.dims() else {
            bail!("max_pool2d: expected a 4-d input, got {:?}", l.dims())
        };
        let (ho, wo) = (self.out_size(h)?, self.out_size(w)?);
        let x = slice(s, l)?;
        let mut y = vec![0f32; b * c * ho * wo];
        let plane = |(yp, xp): (&mut [f32], &[f32])| {
            for (o, i) in yp.iter_mut().zip(self.argmax_plane(xp, (h, w), (ho, wo))) {
                *o = xp[i as usize];
            }
        };
        if y.len() >= PAR_MIN {
            y.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .for_each(plane);
        } else {
            y.chunks_mut(ho * wo).zip(x.chunks(h * w)).for_each(plane);
        }
        Ok((CpuStorage::F32(y), Shape::from((b, c, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        let (ho, wo) = (self.out_size(h)?, self.out_size(w)?);
        let dx = with_values(arg, |x| {
            with_values(dy, |g| {
                let mut dx = vec![0f32; x.len()];
                let plane = |((dxp, xp), gp): ((&mut [f32], &[f32]), &[f32])| {
                    for (i, gv) in self.argmax_plane(xp, (h, w), (ho, wo)).into_iter().zip(gp) {
                        dxp[i as usize] += gv;
                    }
                };
                if dx.len() >= PAR_MIN {
                    dx.par_chunks_mut(h * w)
                        .zip(x.par_chunks(h * w))
                        .zip(g.par_chunks(ho * wo))
                        .for_each(plane);
                } else {
                    dx.chunks_mut(h * w)
                        .zip(x.chunks(h * w))
                        .zip(g.chunks(ho * wo))
                        .for_each(plane);
                }
                Ok(dx)
            })
        })?;
        Ok(Some(tensor(dx, arg.dims())?))
    }
}

/// `nn.MaxPool2d(kernel, stride, padding)` on a `f32` CPU tensor `[B, C, H, W]`.
pub(crate) fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool {
        kernel,
        stride,
        pad,
    })
}
