//! `nn.MaxPool2d(kernel, stride, padding)` (floor mode; padding never wins) with a backward
//! pass that routes each output gradient to the first maximum of its window, like PyTorch.
//!
//! The forward pass finds every window's maximum and, when the input tracks gradients, the
//! index of its first maximum (one `u32` per output), kept for the backward pass, which then
//! only scatters. Evaluation computes the values alone.

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

    /// For every output of one plane: the maximum of its window into `y` and, when `idx` is
    /// given, the index (within the plane) of the window's first maximum.
    fn pool_plane(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
        y: &mut [f32],
        mut idx: Option<&mut [u32]>,
    ) {
        if self.kernel == 2 && self.stride == 2 && self.pad == 0 {
            // The common 2x2 pool: four candidates in scan order, no bounds to check, and no
            // branch on the data, so the loop over a row vectorises.
            for oy in 0..ho {
                let top = &x[2 * oy * w..2 * oy * w + 2 * wo];
                let bottom = &x[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo];
                let yr = &mut y[oy * wo..(oy + 1) * wo];
                match idx.as_deref_mut() {
                    None => {
                        for ((o, t), b) in yr
                            .iter_mut()
                            .zip(top.chunks_exact(2))
                            .zip(bottom.chunks_exact(2))
                        {
                            *o = first_max([t[0], t[1], b[0], b[1]]).0;
                        }
                    }
                    Some(idx) => {
                        let ir = &mut idx[oy * wo..(oy + 1) * wo];
                        let t0 = 2 * oy * w;
                        for (ox, ((o, i), (t, b))) in yr
                            .iter_mut()
                            .zip(ir.iter_mut())
                            .zip(top.chunks_exact(2).zip(bottom.chunks_exact(2)))
                            .enumerate()
                        {
                            let (v, k) = first_max([t[0], t[1], b[0], b[1]]);
                            *o = v;
                            // Candidate k is column k % 2 of row k / 2: arithmetic, no lookup.
                            let at = t0 + (k >> 1) * w + (k & 1) + 2 * ox;
                            *i = at as u32;
                        }
                    }
                }
            }
            return;
        }
        for oy in 0..ho {
            let (y0, y1) = self.window(oy, h);
            for ox in 0..wo {
                let (x0, x1) = self.window(ox, w);
                if y0 == y1 || x0 == x1 {
                    // Only a padding wider than half the kernel (which `runner check` refuses)
                    // gives an empty window: its maximum is -inf and it takes no gradient.
                    y[oy * wo + ox] = f32::NEG_INFINITY;
                    if let Some(idx) = idx.as_deref_mut() {
                        idx[oy * wo + ox] = u32::MAX;
                    }
                    continue;
                }
                let mut best = x[y0 * w + x0];
                let mut at = y0 * w + x0;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let v = x[iy * w + ix];
                        if wins(best, v) {
                            best = v;
                            at = iy * w + ix;
                        }
                    }
                }
                y[oy * wo + ox] = best;
                if let Some(idx) = idx.as_deref_mut() {
                    idx[oy * wo + ox] = at as u32;
                }
            }
        }
    }

    /// The pooled values of every plane of `x` (`[planes, h, w]`), `[planes, ho, wo]`, and
    /// with `keep` the index of each window's first maximum within its plane.
    fn pool(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
        keep: bool,
    ) -> (Vec<f32>, Option<Vec<u32>>) {
        let n = x.len() / (h * w).max(1) * ho * wo;
        let mut y = vec![0f32; n];
        let mut idx = keep.then(|| vec![0u32; n]);
        if n == 0 {
            return (y, idx);
        }
        let par = n >= PAR_MIN;
        match idx.as_mut() {
            Some(idx) => {
                let plane = |((yp, ip), xp): ((&mut [f32], &mut [u32]), &[f32])| {
                    self.pool_plane(xp, (h, w), (ho, wo), yp, Some(ip))
                };
                if par {
                    y.par_chunks_mut(ho * wo)
                        .zip(idx.par_chunks_mut(ho * wo))
                        .zip(x.par_chunks(h * w))
                        .for_each(plane);
                } else {
                    y.chunks_mut(ho * wo)
                        .zip(idx.chunks_mut(ho * wo))
                        .zip(x.chunks(h * w))
                        .for_each(plane);
                }
            }
            None => {
                let plane = |(yp, xp): (&mut [f32], &[f32])| {
                    self.pool_plane(xp, (h, w), (ho, wo), yp, None)
                };
                if par {
                    y.par_chunks_mut(ho * wo)
                        .zip(x.par_chunks(h * w))
                        .for_each(plane);
                } else {
                    y.chunks_mut(ho * wo).zip(x.chunks(h * w)).for_each(plane);
                }
            }
        }
        (y, idx)
    }
}

/// Whether `v` takes over from `best` as a window's maximum when it comes later in scan order:
/// when it is larger, or NaN (which propagates, like PyTorch), unless `best` is already NaN.
/// Ties (and -0 against +0) keep the first. Written without branches so loops vectorise.
#[inline(always)]
fn wins(best: f32, v: f32) -> bool {
    !best.is_nan() & ((v > best) | v.is_nan())
}

/// The first maximum of four values in scan order, and its position.
#[inline(always)]
fn first_max(v: [f32; 4]) -> (f32, usize) {
    let (mut best, mut at) = (v[0], 0);
    for (k, &c) in v.iter().enumerate().skip(1) {
        let take = wins(best, c);
        best = if take { c } else { best };
        at = if take { k } else { at };
    }
    (best, at)
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
        let (y, idx) = win.pool(x, (h, w), (ho, wo), self.keep);
        if let Some(idx) = idx {
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
                _ => match win.pool(x, (h, w), (ho, wo), true).1 {
                    Some(idx) => idx,
                    None => bail!("max_pool2d: the backward pass found no indices"),
                },
            };
            with_values(dy, |g| {
                let mut dx = vec![0f32; x.len()];
                if ho * wo == 0 {
                    return Ok(dx);
                }
                let plane = |((dxp, ip), gp): ((&mut [f32], &[u32]), &[f32])| {
                    for (&i, gv) in ip.iter().zip(gp) {
                        if let Some(d) = dxp.get_mut(i as usize) {
                            *d += gv;
                        }
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
