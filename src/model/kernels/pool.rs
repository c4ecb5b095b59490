//! `nn.MaxPool2d(kernel, stride, padding)` (floor mode; padding never wins) with a backward
//! pass that routes each output gradient to the first maximum of its window, like PyTorch.
//!
//! The forward pass finds every window's argmax and, when the input tracks gradients, keeps
//! those indices (one `u32` per output) for the backward pass, which then only scatters.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, tensor, with_values, PAR_MIN};

#[derive(Debug, Clone, Copy)]
struct Window {
    kernel: usize,
    stride: usize,
    pad: usize,
}

/// The op: its window, and the forward pass's argmax indices when they are kept.
#[derive(Debug)]
struct MaxPool {
    window: Window,
    /// Keep the indices (the input tracks gradients).
    keep: bool,
    argmax: Mutex<Option<Vec<u32>>>,
}

impl Window {
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

    /// For every output of one plane: the index of the first maximum of its window, into `out`.
    fn argmax_plane(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
        out: &mut [u32],
    ) {
        let mut idx = out.iter_mut();
        let mut push = |v: usize| {
            if let Some(slot) = idx.next() {
                *slot = v as u32;
            }
        };
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
                    push(best);
                }
            }
            return;
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
                push(at as usize);
            }
        }
    }

    /// The argmax indices of every plane of `x` (`[planes, h, w]`), `[planes, ho, wo]`.
    fn argmax(&self, x: &[f32], (h, w): (usize, usize), (ho, wo): (usize, usize)) -> Vec<u32> {
        let mut idx = vec![0u32; x.len() / (h * w).max(1) * ho * wo];
        if ho * wo == 0 {
            return idx;
        }
        let plane = |(ip, xp): (&mut [u32], &[f32])| self.argmax_plane(xp, (h, w), (ho, wo), ip);
        if idx.len() >= PAR_MIN {
            idx.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .for_each(plane);
        } else {
            idx.chunks_mut(ho * wo).zip(x.chunks(h * w)).for_each(plane);
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
        let win = self.window;
        let (ho, wo) = (win.out_size(h)?, win.out_size(w)?);
        let x = slice(s, l)?;
        let idx = win.argmax(x, (h, w), (ho, wo));
        // Indices are within their plane: offset each by its plane's start.
        let mut y = vec![0f32; b * c * ho * wo];
        let gather = |((yp, ip), xp): ((&mut [f32], &[u32]), &[f32])| {
            for (o, &i) in yp.iter_mut().zip(ip) {
                *o = xp[i as usize];
            }
        };
        if ho * wo > 0 {
            if y.len() >= PAR_MIN {
                y.par_chunks_mut(ho * wo)
                    .zip(idx.par_chunks(ho * wo))
                    .zip(x.par_chunks(h * w))
                    .for_each(gather);
            } else {
                y.chunks_mut(ho * wo)
                    .zip(idx.chunks(ho * wo))
                    .zip(x.chunks(h * w))
                    .for_each(gather);
            }
        }
        if self.keep {
            // A poisoned lock only means another thread panicked mid-write; the indices are
            // then recomputed in the backward pass.
            if let Ok(mut kept) = self.argmax.lock() {
                *kept = Some(idx);
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((b, c, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        let win = self.window;
        let (ho, wo) = (win.out_size(h)?, win.out_size(w)?);
        let kept = self.argmax.lock().ok().and_then(|mut k| k.take());
        let dx = with_values(arg, |x| {
            let idx = match kept {
                Some(idx) if idx.len() == x.len() / (h * w).max(1) * ho * wo => idx,
                _ => win.argmax(x, (h, w), (ho, wo)),
            };
            with_values(dy, |g| {
                let mut dx = vec![0f32; x.len()];
                if ho * wo == 0 {
                    return Ok(dx);
                }
                let plane = |((dxp, ip), gp): ((&mut [f32], &[u32]), &[f32])| {
                    for (&i, gv) in ip.iter().zip(gp) {
                        dxp[i as usize] += gv;
                    }
                };
                if dx.len() >= PAR_MIN {
                    dx.par_chunks_mut(h * w)
                        .zip(idx.par_chunks(ho * wo))
                        .zip(g.par_chunks(ho * wo))
                        .for_each(plane);
                } else {
                    dx.chunks_mut(h * w)
                        .zip(idx.chunks(ho * wo))
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
    let keep = x.track_op();
    x.contiguous()?.apply_op1(MaxPool {
        window: Window {
            kernel,
            stride,
            pad,
        },
        keep,
        argmax: Mutex::new(None),
    })
}
