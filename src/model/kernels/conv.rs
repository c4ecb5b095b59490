//! `conv2d` (zero padding, square kernel and stride, no dilation or groups) as im2col + gemm,
//! or through [`direct`] (stride 1, few input channels) or [`winograd`] (3x3) where those apply.
//!
//! Samples are processed in chunks: the chunk's column matrix `[C*k*k, S*Ho*Wo]` is multiplied
//! by the weight `[O, C*k*k]`, so that small late layers (2x2 maps) still make wide matrices.
//! The backward pass recomputes the columns instead of keeping them, computes the weight (and
//! bias) gradient as per-group partial sums added in group order, and the input gradient
//! (col2im of `W^T dY`) only when the input tracks gradients: the data batch gets none.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use super::direct;
use super::winograd::{self, Shape3x3};
use super::{relu, slice, tensor, with_values};

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(x: &[usize], wt: &[usize], stride: usize, pad: usize) -> Result<Geom> {
        let (&[b, c, h, w], &[o, ci, k, k2]) = (x, wt) else {
            bail!("conv2d: expected 4-d input and weight, got {x:?} and {wt:?}")
        };
        if ci != c || k != k2 || stride == 0 {
            bail!("conv2d: input {x:?} does not fit weight {wt:?} (stride {stride})")
        }
        if h + 2 * pad < k || w + 2 * pad < k {
            bail!("conv2d: kernel {k} larger than the padded input {h}x{w} (padding {pad})")
        }
        let ho = (h + 2 * pad - k) / stride + 1;
        let wo = (w + 2 * pad - k) / stride + 1;
        Ok(Geom {
            b,
            c,
            h,
            w,
            o,
            k,
            stride,
            pad,
            ho,
            wo,
        })
    }

    /// The same convolution as a 3x3 stride-1 one (for [`winograd`]).
    fn shape3x3(&self) -> Shape3x3 {
        Shape3x3 {
            b: self.b,
            c: self.c,
            h: self.h,
            w: self.w,
            o: self.o,
            pad: self.pad,
        }
    }

    /// The same convolution on padded wide rows (for [`direct`]; stride 1 only).
    fn plan(&self) -> direct::Plan {
        direct::Plan::new(self.c, (self.h, self.w), self.o, self.k, self.pad)
    }

    /// Rows of the column matrix: `C * k * k`.
    fn kk(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output positions per sample.
    fn n(&self) -> usize {
        self.ho * self.wo
    }

    /// Samples per chunk: enough for about 1024 columns, at most a quarter of the batch (so
    /// that there are chunks for every thread). Depends on shapes only, never on threads.
    fn chunk(&self) -> usize {
        1024usize.div_ceil(self.n()).min((self.b / 4).max(1)).max(1)
    }

    /// Valid output columns `[lo, hi)` for kernel column `j`: those reading inside the image.
    fn valid(&self, j: usize, size: usize, out: usize) -> (usize, usize) {
        // ix = ox * stride + j - pad must lie in [0, size).
        let lo = self.pad.saturating_sub(j).div_ceil(self.stride).min(out);
        let hi = (size + self.pad)
            .saturating_sub(j)
            .div_ceil(self.stride)
            .min(out);
        (lo, hi.max(lo))
    }
}

/// Writes sample `xs` (`[C, H, W]`) into columns `off..off + n` of `cols` (row stride `rs`).
#[multiversion(targets = "simd")]
fn im2col(g: &Geom, xs: &[f32], cols: &mut [f32], rs: usize, off: usize) {
    let (k, s, p, wo, n) = (g.k, g.stride, g.pad, g.wo, g.n());
    for c in 0..g.c {
        let plane = &xs[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..k {
            for j in 0..k {
                let row = (c * k + i) * k + j;
                let dst = &mut cols[row * rs + off..row * rs + off + n];
                let (lo, hi) = g.valid(j, g.w, wo);
                for oy in 0..g.ho {
                    let d = &mut dst[oy * wo..(oy + 1) * wo];
                    let iy = (oy * s + i) as isize - p as isize;
                    if iy < 0 || iy >= g.h as isize {
                        d.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    d[..lo].fill(0.0);
                    d[hi..].fill(0.0);
                    if hi > lo {
                        let x0 = lo * s + j - p;
                        if s == 1 {
                            d[lo..hi].copy_from_slice(&src[x0..x0 + (hi - lo)]);
                        } else {
                            for (t, v) in d[lo..hi].iter_mut().enumerate() {
                                *v = src[x0 + t * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds columns `off..off + n` of `cols` back into sample `dx` (`[C, H, W]`).
#[multiversion(targets = "simd")]
fn col2im(g: &Geom, cols: &[f32], rs: usize, off: usize, dx: &mut [f32]) {
    let (k, s, p, wo, n) = (g.k, g.stride, g.pad, g.wo, g.n());
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..k {
            for j in 0..k {
                let row = (c * k + i) * k + j;
                let src = &cols[row * rs + off..row * rs + off + n];
                let (lo, hi) = g.valid(j, g.w, wo);
                if hi <= lo {
                    continue;
                }
                for oy in 0..g.ho {
                    let iy = (oy * s + i) as isize - p as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let d = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let gr = &src[oy * wo..(oy + 1) * wo];
                    let x0 = lo * s + j - p;
                    if s == 1 {
                        let d = &mut d[x0..x0 + (hi - lo)];
                        d.iter_mut().zip(&gr[lo..hi]).for_each(|(a, v)| *a += v);
                    } else {
                        for (t, v) in gr[lo..hi].iter().enumerate() {
                            d[x0 + t * s] += v;
                        }
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Per-thread scratch (columns, gathered gradient or gemm output, column gradient, and
    /// Winograd's transformed kernels), kept between calls: no allocation, zeroing or page
    /// faults per chunk.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 4]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new()]) };
}

/// Scratch buffer `i` of this thread with at least `n` values (contents unspecified: callers
/// overwrite what they read); give it back with [`put_scratch`].
pub(super) fn take_scratch(i: usize, n: usize) -> Vec<f32> {
    let mut v = SCRATCH.with(|c| std::mem::take(&mut c.borrow_mut()[i]));
    if v.len() < n {
        v.resize(n, 0.0);
    }
    v
}

pub(super) fn put_scratch(i: usize, v: Vec<f32>) {
    SCRATCH.with(|c| c.borrow_mut()[i] = v);
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]`, each given by its row and column strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, accumulate): (usize, bool),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n);
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every access of the three matrices inside their slices,
    // and `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Threads for a gemm when there are `tasks` parallel tasks around it.
pub(super) fn inner_par(tasks: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if tasks >= threads || threads < 2 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

/// Whether the forward pass of `g` goes through [`winograd`] (and so has no columns to keep).
fn uses_winograd(g: &Geom) -> bool {
    g.k == 3 && g.stride == 1 && g.c >= winograd::MIN_CHANNELS
}

/// Whether `g` goes through [`direct`] convolution (forward and both gradients, except an
/// input gradient that Winograd takes): stride 1 and at most [`direct::MAX_CHANNELS`] input
/// channels, where im2col's copies cost more than the products.
fn uses_direct(g: &Geom) -> bool {
    g.stride == 1 && g.c >= 1 && g.c <= direct::MAX_CHANNELS && g.pad < g.k && !uses_winograd(g)
}

/// Column matrices kept from the forward pass for the backward pass, at most this many values
/// per layer (256 MiB); larger layers recompute them.
const KEEP_MAX: usize = 64 << 20;

/// Values of the kept columns of `g`: one `[C*k*k, S*Ho*Wo]` block per chunk of `S` samples.
fn kept_len(g: &Geom) -> usize {
    g.b.div_ceil(g.chunk()) * g.kk() * g.chunk() * g.n()
}

/// Column buffers handed back by finished ops, reused by the next forward passes: the columns
/// are overwritten before they are read, so a step neither allocates nor zeroes them again.
static COLUMN_POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// A pooled buffer of at least `n` values (contents unspecified): the smallest that fits, so
/// that a small layer does not take the buffer a large one needs next.
fn take_columns(n: usize) -> Vec<f32> {
    let found = COLUMN_POOL.lock().ok().and_then(|mut pool| {
        let (i, _) = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.len() >= n)
            .min_by_key(|(_, v)| v.len())?;
        Some(pool.swap_remove(i))
    });
    let mut v = found.unwrap_or_default();
    if v.len() < n {
        v.resize(n, 0.0);
    }
    v
}

/// Gives a buffer back to the pool (which keeps at most a few).
fn put_columns(v: Vec<f32>) {
    if let Ok(mut pool) = COLUMN_POOL.lock() {
        if pool.len() < 8 {
            pool.push(v);
        }
    }
}

/// The columns one op's forward pass kept for its backward pass; back to the pool on drop.
#[derive(Debug, Default)]
struct Kept(std::sync::Mutex<Option<Vec<f32>>>);

impl Kept {
    fn store(&self, cols: Vec<f32>) {
        if let Ok(mut k) = self.0.lock() {
            *k = Some(cols);
        }
    }

    fn take(&self) -> Option<Vec<f32>> {
        self.0.lock().ok().and_then(|mut k| k.take())
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(v) = self.take() {
            put_columns(v);
        }
    }
}

/// The forward pass: `y = conv(x, w) + bias`, then ReLU with `relu`. With `keep`, the column
/// matrices are returned too (none for Winograd layers or above [`KEEP_MAX`]), for
/// [`backward`] to reuse.
fn forward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    (bias, relu): (Option<&[f32]>, bool),
    keep: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    if uses_winograd(g) {
        return (winograd::conv3x3(&g.shape3x3(), x, w, bias, relu), None);
    }
    if uses_direct(g) {
        return (direct::forward(&g.plan(), x, w, bias, relu), None);
    }
    let (kk, n, o) = (g.kk(), g.n(), g.o);
    let s = g.chunk();
    let mut y = vec![0f32; g.b * o * n];
    let in_len = g.c * g.h * g.w;
    let tasks = g.b.div_ceil(s);
    let par = inner_par(tasks);
    let keep_len = kept_len(g);
    let mut kept = (keep && keep_len <= KEEP_MAX).then(|| take_columns(keep_len));
    // Chunk t's columns: its block of the kept buffer, or this thread's scratch.
    let blocks: Vec<Option<&mut [f32]>> = match kept.as_mut() {
        Some(k) => k.chunks_mut(kk * s * n).take(tasks).map(Some).collect(),
        None => (0..tasks).map(|_| None).collect(),
    };
    y.par_chunks_mut(s * o * n)
        .zip(blocks)
        .enumerate()
        .for_each(|(t, (ys, block))| {
            let b0 = t * s;
            let sc = ys.len() / (o * n);
            let sn = sc * n;
            let mut scratch = match block {
                Some(_) => Vec::new(),
                None => take_scratch(0, kk * sn),
            };
            let cols: &mut [f32] = match block {
                Some(b) => b,
                None => &mut scratch,
            };
            for j in 0..sc {
                im2col(
                    g,
                    &x[(b0 + j) * in_len..(b0 + j + 1) * in_len],
                    cols,
                    sn,
                    j * n,
                );
            }
            if sc == 1 {
                matmul((o, n, kk), ys, (n, false), w, (kk, 1), cols, (sn, 1), par);
            } else {
                let mut tmp = take_scratch(1, o * sn);
                matmul(
                    (o, sn, kk),
                    &mut tmp,
                    (sn, false),
                    w,
                    (kk, 1),
                    cols,
                    (sn, 1),
                    par,
                );
                for j in 0..sc {
                    for oc in 0..o {
                        ys[(j * o + oc) * n..(j * o + oc + 1) * n]
                            .copy_from_slice(&tmp[oc * sn + j * n..oc * sn + (j + 1) * n]);
                    }
                }
                put_scratch(1, tmp);
            }
            if !scratch.is_empty() {
                put_scratch(0, scratch);
            }
            // Bias and ReLU while the chunk is still in cache.
            epilogue(ys, n, bias, relu);
        });
    (y, kept)
}

/// Adds the bias to each of the `[n]` planes of `ys` (channels in turn), then ReLU with `relu`.
#[multiversion(targets = "simd")]
pub(super) fn epilogue(ys: &mut [f32], n: usize, bias: Option<&[f32]>, relu: bool) {
    match (bias, relu) {
        (Some(bias), false) => {
            for (plane, &bv) in ys.chunks_exact_mut(n).zip(bias.iter().cycle()) {
                plane.iter_mut().for_each(|v| *v += bv);
            }
        }
        (Some(bias), true) => {
            for (plane, &bv) in ys.chunks_exact_mut(n).zip(bias.iter().cycle()) {
                plane.iter_mut().for_each(|v| *v = relu::value(*v + bv));
            }
        }
        (None, true) => ys.iter_mut().for_each(|v| *v = relu::value(*v)),
        (None, false) => {}
    }
}

/// Gradients of one convolution.
struct Grads {
    dx: Option<Vec<f32>>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

/// Number of partial sums of the weight gradient (fixed, so results do not depend on threads).
pub(super) const GROUPS: usize = 4;

/// The weight and bias gradients' partial sums (one pair per group), added in group order.
pub(super) fn sum_partials(partials: Vec<(Vec<f32>, Vec<f32>)>) -> (Vec<f32>, Vec<f32>) {
    let mut parts = partials.into_iter();
    let (mut dw, mut db) = parts.next().unwrap_or_default();
    for (pw, pb) in parts {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

/// The gradients by im2col + gemm. `kept`: the forward pass's columns ([`forward`] with
/// `keep`), used instead of recomputing them.
fn backward(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    need_dx: bool,
    kept: Option<&[f32]>,
) -> Grads {
    let (kk, n, o) = (g.kk(), g.n(), g.o);
    let s = g.chunk();
    let chunks = g.b.div_ceil(s);
    let groups = GROUPS.min(chunks).max(1);
    let in_len = g.c * g.h * g.w;
    let par = inner_par(groups);
    // Group `gi` owns chunks [gi * chunks / groups, (gi + 1) * chunks / groups).
    let bounds: Vec<(usize, usize)> = (0..groups)
        .map(|gi| {
            let (c0, c1) = (gi * chunks / groups, (gi + 1) * chunks / groups);
            ((c0 * s).min(g.b), (c1 * s).min(g.b))
        })
        .collect();
    let mut dx = need_dx.then(|| vec![0f32; g.b * in_len]);
    let mut dx_parts: Vec<Option<&mut [f32]>> = Vec::with_capacity(groups);
    match dx.as_mut() {
        Some(dx) => {
            let mut rest: &mut [f32] = dx;
            for &(b0, b1) in &bounds {
                let (head, tail) = rest.split_at_mut((b1 - b0) * in_len);
                dx_parts.push(Some(head));
                rest = tail;
            }
        }
        None => dx_parts.resize_with(groups, || None),
    }
    let partials: Vec<(Vec<f32>, Vec<f32>)> = bounds
        .par_iter()
        .zip(dx_parts.into_par_iter())
        .map(|(&(b0, b1), mut dx_part)| {
            let mut dw = vec![0f32; o * kk];
            let mut db = vec![0f32; o];
            let mut scratch = take_scratch(0, if kept.is_some() { 0 } else { kk * s * n });
            let mut gy = take_scratch(1, o * s * n);
            let mut dcols = take_scratch(2, if need_dx { kk * s * n } else { 0 });
            let mut c0 = b0;
            while c0 < b1 {
                let sc = s.min(b1 - c0);
                let sn = sc * n;
                // Chunks start at multiples of `s`, as in the forward pass: chunk c0 / s.
                let cols: &[f32] = match kept {
                    Some(k) => &k[c0 / s * kk * s * n..][..kk * sn],
                    None => {
                        for j in 0..sc {
                            let xs = &x[(c0 + j) * in_len..(c0 + j + 1) * in_len];
                            im2col(g, xs, &mut scratch, sn, j * n);
                        }
                        &scratch
                    }
                };
                for j in 0..sc {
                    for oc in 0..o {
                        let src = &dy[((c0 + j) * o + oc) * n..((c0 + j) * o + oc + 1) * n];
                        gy[oc * sn + j * n..oc * sn + (j + 1) * n].copy_from_slice(src);
                    }
                }
                for (oc, acc) in db.iter_mut().enumerate() {
                    *acc += gy[oc * sn..(oc + 1) * sn].iter().sum::<f32>();
                }
                // dW[o x kk] += gy[o x sn] * cols^T[sn x kk]
                matmul(
                    (o, kk, sn),
                    &mut dw,
                    (kk, true),
                    &gy,
                    (sn, 1),
                    cols,
                    (1, sn),
                    par,
                );
                if let Some(dxp) = dx_part.as_deref_mut() {
                    // dcols[kk x sn] = W^T[kk x o] * gy[o x sn]
                    matmul(
                        (kk, sn, o),
                        &mut dcols,
                        (sn, false),
                        w,
                        (1, kk),
                        &gy,
                        (sn, 1),
                        par,
                    );
                    for j in 0..sc {
                        let at = (c0 - b0 + j) * in_len;
                        col2im(g, &dcols, sn, j * n, &mut dxp[at..at + in_len]);
                    }
                }
                c0 += sc;
            }
            put_scratch(0, scratch);
            put_scratch(1, gy);
            put_scratch(2, dcols);
            (dw, db)
        })
        .collect();
    let (dw, db) = sum_partials(partials);
    Grads { dx, dw, db }
}

/// The settings of one convolution op and the columns its forward pass kept.
#[derive(Debug)]
struct Op {
    stride: usize,
    pad: usize,
    /// A ReLU fused after the bias ([`crate::graph::Fusion`]).
    relu: bool,
    /// Keep the forward pass's columns for the backward pass (the weight takes gradients).
    keep: bool,
    kept: Kept,
}

/// Convolution without bias: `CustomOp2(x, w)`.
struct Conv(Op);

/// Convolution with bias: `CustomOp3(x, w, b)`.
struct ConvBias(Op);

impl Op {
    fn fwd(
        &self,
        (sx, lx): (&CpuStorage, &Layout),
        (sw, lw): (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(lx.dims(), lw.dims(), self.stride, self.pad)?;
        let bias = match bias {
            Some((s, l)) => Some(slice(s, l)?),
            None => None,
        };
        let (y, cols) = forward(
            &g,
            slice(sx, lx)?,
            slice(sw, lw)?,
            (bias, self.relu),
            self.keep,
        );
        if let Some(cols) = cols {
            self.kept.store(cols);
        }
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.o, g.ho, g.wo))))
    }

    /// The gradients from `dy`, the gradient of the op's output `res`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Tensor, Tensor)> {
        let g = Geom::new(x.dims(), w.dims(), self.stride, self.pad)?;
        let dy = &relu::through(self.relu, res, dy)?;
        let need_dx = x.track_op();
        // A 3x3 stride-1 layer with enough channels both ways: every gradient by Winograd (its
        // input gradient is itself a 3x3 convolution, of `dy`, with padding `2 - pad`).
        // Otherwise im2col + gemm, with the input gradient still by Winograd where that
        // convolution fits.
        let wino = |channels: usize| {
            g.k == 3 && g.stride == 1 && g.pad <= 2 && channels >= winograd::MIN_CHANNELS
        };
        let winograd_all = wino(g.c) && wino(g.o);
        let winograd_dx = need_dx && wino(g.o);
        let direct = uses_direct(&g);
        let kept = self.kept.take();
        let grads = with_values(x, |xv| {
            with_values(w, |wv| {
                with_values(dy, |dyv| {
                    let shape = g.shape3x3();
                    let mut grads = if winograd_all {
                        let (dw, db) = winograd::conv3x3_weight_grad(&shape, xv, dyv);
                        Grads { dx: None, dw, db }
                    } else if direct {
                        let (dw, db) = direct::weight_grad(&g.plan(), xv, dyv);
                        let dx = (need_dx && !winograd_dx)
                            .then(|| direct::input_grad(&g.plan(), dyv, wv));
                        Grads { dx, dw, db }
                    } else {
                        let cols = kept.as_deref().filter(|k| k.len() >= kept_len(&g));
                        backward(&g, xv, wv, dyv, need_dx && !winograd_dx, cols)
                    };
                    if winograd_dx {
                        grads.dx = Some(winograd::conv3x3_input_grad(&shape, dyv, wv));
                    }
                    Ok(grads)
                })
            })
        })?;
        if let Some(cols) = kept {
            put_columns(cols);
        }
        let dx = match grads.dx {
            Some(dx) => Some(tensor(dx, x.dims())?),
            None => None,
        };
        Ok((dx, tensor(grads.dw, w.dims())?, tensor(grads.db, &[g.o])?))
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "runner-conv2d"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.fwd((sx, lx), (sw, lw), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.0.bwd(x, w, res, dy)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for ConvBias {
    fn name(&self) -> &'static str {
        "runner-conv2d-bias"
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
        self.0.fwd((sx, lx), (sw, lw), Some((sb, lb)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.0.bwd(x, w, res, dy)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// `F.conv2d(x, w, b, stride, padding)` for contiguous-able `f32` CPU tensors: x `[B, C, H, W]`,
/// w `[O, C, k, k]`, b `[O]`, followed by `F.relu` when `relu` (the same bits as the two ops
/// apart, without the intermediate tensor). The input gradient is computed only when `x`
/// tracks gradients.
/// When `w` tracks gradients, the forward pass keeps its column matrices (im2col layers up to
/// [`KEEP_MAX`] values) for the backward pass instead of recomputing them there.
pub(crate) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    (stride, pad): (usize, usize),
    relu: bool,
) -> Result<Tensor> {
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let op = Op {
        stride,
        pad,
        relu,
        keep: w.track_op(),
        kept: Kept::default(),
    };
    match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, ConvBias(op)),
        None => x.apply_op2(&w, Conv(op)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backward pass gives the same bits whether it reuses the forward pass's columns or
    /// recomputes them, for shapes with one and with several chunks (and a partial last one).
    #[test]
    fn kept_columns_give_the_recomputed_gradients() {
        for (b, c, hw, o, k, stride, pad) in [
            // (More input channels than direct convolution takes, or stride 2: im2col layers.)
            (5, 9, 9, 4, 5, 1, 2),
            (9, 2, 6, 3, 3, 2, 1),
            (1, 10, 7, 2, 3, 1, 0),
        ] {
            let g = Geom::new(&[b, c, hw, hw], &[o, c, k, k], stride, pad).unwrap();
            let value = |i: usize| ((i * 7919) % 101) as f32 / 50.0 - 1.0;
            let x: Vec<f32> = (0..b * c * hw * hw).map(value).collect();
            let w: Vec<f32> = (0..o * c * k * k).map(|i| value(i + 3)).collect();
            let dy: Vec<f32> = (0..b * o * g.n()).map(|i| value(i + 11)).collect();
            let (y_kept, cols) = forward(&g, &x, &w, (None, false), true);
            let (y, none) = forward(&g, &x, &w, (None, false), false);
            assert_eq!(y_kept, y);
            assert!(none.is_none());
            let cols = cols.expect("an im2col layer keeps its columns");
            let with = backward(&g, &x, &w, &dy, true, Some(&cols));
            let without = backward(&g, &x, &w, &dy, true, None);
            assert_eq!(with.dw, without.dw, "weight gradient, {g:?}");
            assert_eq!(with.db, without.db, "bias gradient, {g:?}");
            assert_eq!(with.dx, without.dx, "input gradient, {g:?}");
        }
    }
}
