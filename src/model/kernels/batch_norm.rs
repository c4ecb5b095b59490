//! Training-mode `nn.BatchNorm2d`: batch statistics, normalisation and affine transform in one
//! forward op, and the closed-form backward pass (two passes over the data instead of the
//! dozen elementwise ops and broadcasts of the composed version).

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use super::{relu, slice, tensor, with_values};

/// Per-channel batch statistics of one forward pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    /// Batch mean.
    pub mean: Vec<f32>,
    /// Biased batch variance.
    pub var: Vec<f32>,
    /// `1 / sqrt(var + eps)`.
    invstd: Vec<f32>,
}

struct BatchNormTrain {
    eps: f64,
    /// A ReLU fused after the affine transform ([`crate::graph::Fusion`]).
    relu: bool,
    /// Filled by the forward pass; read by the backward pass and by the caller (running stats).
    stats: Arc<Mutex<Stats>>,
}

/// `(B, C, H*W)` of a 4-d shape.
fn dims(d: &[usize]) -> Result<(usize, usize, usize)> {
    match *d {
        [b, c, h, w] => Ok((b, c, h * w)),
        _ => bail!("batch_norm2d: expected a 4-d input, got {d:?}"),
    }
}

/// For every channel, `f(channel, planes)` where `planes` yields that channel's `B` planes.
fn per_channel<R: Send>(
    x: &[f32],
    (b, c, hw): (usize, usize, usize),
    f: impl Fn(usize, &mut dyn Iterator<Item = &[f32]>) -> R + Sync,
) -> Vec<R> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut planes = (0..b).map(|i| &x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
            f(ch, &mut planes)
        })
        .collect()
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "runner-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, hw) = dims(lx.dims())?;
        let (x, w, bias) = (slice(sx, lx)?, slice(sw, lw)?, slice(sb, lb)?);
        let n = (b * hw) as f64;
        let stats: Vec<(f32, f32)> = per_channel(x, (b, c, hw), |_, planes| {
            let planes: Vec<&[f32]> = planes.collect();
            let sum: f64 = planes
                .iter()
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / n;
            let sq: f64 = planes
                .iter()
                .map(|p| p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>())
                .sum();
            (mean as f32, (sq / n) as f32)
        });
        let mean: Vec<f32> = stats.iter().map(|s| s.0).collect();
        let var: Vec<f32> = stats.iter().map(|s| s.1).collect();
        let invstd: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v as f64 + self.eps).sqrt()) as f32)
            .collect();
        let scale: Vec<f32> = (0..c).map(|ch| w[ch] * invstd[ch]).collect();
        let shift: Vec<f32> = (0..c).map(|ch| bias[ch] - mean[ch] * scale[ch]).collect();
        let y = affine_planes(x, c, hw, (&scale, &shift), self.relu);
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats { mean, var, invstd };
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, hw) = dims(x.dims())?;
        let dy = &relu::through(self.relu, res, dy)?;
        let st = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if st.mean.len() != c {
            bail!("batch_norm2d: backward pass without a forward pass")
        }
        let need_dx = x.track_op();
        let n = (b * hw) as f64;
        let (dx, dw, db) = with_values(x, |xv| {
            with_values(w, |wv| {
                with_values(dy, |g| {
                    // Per channel: sum(dy) and sum(dy * xhat), planes in batch order.
                    let sums: Vec<(f64, f64)> = (0..c)
                        .into_par_iter()
                        .map(|ch| {
                            let (m, is) = (st.mean[ch], st.invstd[ch]);
                            let (mut sdy, mut sdx) = (0f64, 0f64);
                            for i in 0..b {
                                let r = (i * c + ch) * hw..(i * c + ch + 1) * hw;
                                let (xp, gp) = (&xv[r.clone()], &g[r]);
                                let (mut a, mut d) = (0f32, 0f32);
                                for (&xv, &gv) in xp.iter().zip(gp) {
                                    a += gv;
                                    d += gv * (xv - m) * is;
                                }
                                sdy += a as f64;
                                sdx += d as f64;
                            }
                            (sdy, sdx)
                        })
                        .collect();
                    let db: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
                    let dw: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
                    let dx = need_dx.then(|| {
                        let mut dx = vec![0f32; xv.len()];
                        dx.par_chunks_mut(hw)
                            .zip(xv.par_chunks(hw).zip(g.par_chunks(hw)))
                            .enumerate()
                            .for_each(|(i, (dp, (xp, gp)))| {
                                let ch = i % c;
                                let (m, is) = (st.mean[ch], st.invstd[ch]);
                                let k = wv[ch] * is;
                                let mdy = (sums[ch].0 / n) as f32;
                                let mdx = (sums[ch].1 / n) as f32;
                                for ((d, &xv), &gv) in dp.iter_mut().zip(xp).zip(gp) {
                                    *d = k * (gv - mdy - (xv - m) * is * mdx);
                                }
                            });
                        dx
                    });
                    Ok((dx, dw, db))
                })
            })
        })?;
        let dx = match dx {
            Some(dx) => Some(tensor(dx, x.dims())?),
            None => None,
        };
        Ok((dx, Some(tensor(dw, &[c])?), Some(tensor(db, &[c])?)))
    }
}

/// Training-mode batch norm of `x` `[B, C, H, W]` with `weight` and `bias` `[C]`, followed by a
/// ReLU when `relu`; returns the output and the batch mean and biased variance (for the
/// running statistics).
pub(crate) fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    (eps, relu): (f64, bool),
) -> Result<(Tensor, Stats)> {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let y = x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        BatchNormTrain {
            eps,
            relu,
            stats: stats.clone(),
        },
    )?;
    let st = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((y, st))
}

/// `y = x * scale[c] + shift[c]` over `[B, C, H, W]`, then ReLU with `relu`: evaluation-mode
/// batch norm in one pass.
struct ChannelAffine {
    relu: bool,
}

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "runner-channel-affine"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        ss: &CpuStorage,
        ls: &Layout,
        st: &CpuStorage,
        lt: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, hw) = dims(lx.dims())?;
        let (x, scale, shift) = (slice(sx, lx)?, slice(ss, ls)?, slice(st, lt)?);
        let y = affine_planes(x, c, hw, (scale, shift), self.relu);
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _shift: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, hw) = dims(x.dims())?;
        let dy = &relu::through(self.relu, res, dy)?;
        let (dx, ds, dt) = with_values(x, |xv| {
            with_values(scale, |sv| {
                with_values(dy, |g| {
                    let sums: Vec<(f64, f64)> = per_channel(g, (b, c, hw), |ch, planes| {
                        let (mut st, mut ss) = (0f64, 0f64);
                        for (i, gp) in planes.enumerate() {
                            let xp = &xv[(i * c + ch) * hw..(i * c + ch + 1) * hw];
                            st += gp.iter().map(|&v| v as f64).sum::<f64>();
                            ss += gp
                                .iter()
                                .zip(xp)
                                .map(|(&g, &x)| (g * x) as f64)
                                .sum::<f64>();
                        }
                        (ss, st)
                    });
                    let mut dx = vec![0f32; g.len()];
                    dx.par_chunks_mut(hw)
                        .zip(g.par_chunks(hw))
                        .enumerate()
                        .for_each(|(i, (dp, gp))| {
                            let s = sv[i % c];
                            dp.iter_mut().zip(gp).for_each(|(d, &g)| *d = g * s);
                        });
                    let ds = sums.iter().map(|s| s.0 as f32).collect::<Vec<_>>();
                    let dt = sums.iter().map(|s| s.1 as f32).collect::<Vec<_>>();
                    Ok((dx, ds, dt))
                })
            })
        })?;
        Ok((
            Some(tensor(dx, x.dims())?),
            Some(tensor(ds, &[c])?),
            Some(tensor(dt, &[c])?),
        ))
    }
}

/// `x * scale + shift` with per-channel `scale` and `shift` `[C]` (evaluation-mode batch norm),
/// followed by a ReLU when `relu`.
pub(crate) fn channel_affine(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    relu: bool,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &scale.contiguous()?,
        &shift.contiguous()?,
        ChannelAffine { relu },
    )
}

/// `x * scale[ch] + shift[ch]` over `[B, C, H*W]` values (then ReLU with `relu`), one plane
/// per task.
fn affine_planes(
    x: &[f32],
    c: usize,
    hw: usize,
    (scale, shift): (&[f32], &[f32]),
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .for_each(|(i, (yp, xp))| affine_plane(yp, xp, (scale[i % c], shift[i % c]), relu));
    y
}

/// `y = x * s + t` over one plane, then ReLU with `relu`.
#[multiversion(targets = "simd")]
fn affine_plane(yp: &mut [f32], xp: &[f32], (s, t): (f32, f32), relu: bool) {
    if relu {
        yp.iter_mut()
            .zip(xp)
            .for_each(|(y, &x)| *y = relu::value(x * s + t));
    } else {
        yp.iter_mut().zip(xp).for_each(|(y, &x)| *y = x * s + t);
    }
}
