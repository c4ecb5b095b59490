//! Direct convolution for stride-1 layers with few input channels (LeNet's and the MNIST CNN's
//! 5x5 layers), in the forward pass and both gradients, with no column matrix.
//!
//! im2col copies every input value `k * k` times (25 for a 5x5 kernel) into a matrix that gemm
//! then packs again; with 1-6 input channels that copying costs more than the arithmetic. Here
//! each sample's input is copied once into a zero-padded buffer `xp` (`C` planes of
//! `Hp x Wp`), and the output is computed on "wide" rows of `Wp` values: output position
//! `t = oy * Wp + ox` of tap `(c, i, j)` reads `xp[c * Hp * Wp + i * Wp + j + t]`, so every tap is
//! one contiguous run of the buffer. The `Wp - Wo` extra columns of each row are computed and
//! dropped. A strip of [`LANES`] outputs of [`BLOCK`] output channels stays in registers
//! over all taps (one input load per tap for the whole block).
//!
//! - Weight gradient: `dW[o, tap] = sum_t dyw[o, t] * xp[tap + t]`, with `dyw` the output
//!   gradient on the same wide rows (zero in the extra columns), summed per sample in a fixed
//!   order, then over samples in [`GROUPS`] groups added in group order.
//! - Input gradient: the forward kernel itself, on `dy` padded by `k - 1 - pad`, with the
//!   weights flipped and their channel axes swapped.
//!
//! Products are fused multiply-adds (`f32::mul_add`, one rounding, the same bits on every ISA;
//! the vector clones compile them to FMA instructions). Nothing depends on the thread count.

use multiversion::multiversion;
use rayon::prelude::*;

use super::conv::{epilogue, put_scratch, sum_partials, take_scratch, GROUPS};

/// Output positions per register strip (one AVX-512 register, two AVX2 ones).
const LANES: usize = 16;

/// Output channels per register block: `BLOCK * LANES` accumulators (6 AVX-512 registers, 12
/// AVX2 ones, so that AVX2's 16 registers still hold the input strip and a weight).
const BLOCK: usize = 6;

/// Output channels per block of the weight gradient, which keeps two taps' sums in registers:
/// `2 * DOT_BLOCK * LANES` accumulators (6 AVX-512 registers, 12 AVX2 ones).
const DOT_BLOCK: usize = 3;

/// At most this many input channels go the direct way (above it im2col + gemm's packing pays
/// for itself, and the per-tap loads would dominate).
pub(super) const MAX_CHANNELS: usize = 8;

/// `$f::<N>(args)` with the block's channel count `$n` (1 to [`BLOCK`]) as the constant `N`.
macro_rules! with_block {
    ($n:expr, $f:ident($($a:expr),*)) => {
        match $n {
            6 => $f::<6>($($a),*),
            5 => $f::<5>($($a),*),
            4 => $f::<4>($($a),*),
            3 => $f::<3>($($a),*),
            2 => $f::<2>($($a),*),
            _ => $f::<1>($($a),*),
        }
    };
}

/// The layout of one stride-1 convolution on padded, wide rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    pad: usize,
    ho: usize,
    wo: usize,
    /// Padded width: the row stride of `xp` and of the wide output rows.
    wp: usize,
    /// Padded plane: `Hp * Wp`.
    plane: usize,
    /// Wide output positions, `Ho * Wp` rounded up to whole strips.
    len: usize,
}

impl Plan {
    /// `[C, H, W]` -> `[O, Ho, Wo]` with a `k x k` kernel, stride 1 and zero padding `pad`
    /// (the caller has checked that the kernel fits the padded input).
    pub(super) fn new(c: usize, (h, w): (usize, usize), o: usize, k: usize, pad: usize) -> Plan {
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        let (ho, wo) = (hp + 1 - k, wp + 1 - k);
        Plan {
            c,
            h,
            w,
            o,
            k,
            pad,
            ho,
            wo,
            wp,
            plane: hp * wp,
            len: (ho * wp).div_ceil(LANES) * LANES,
        }
    }

    fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Values of `xp`: the last tap's run of `len` values must fit.
    fn xp_len(&self) -> usize {
        (self.c - 1) * self.plane + (self.k - 1) * (self.wp + 1) + self.len
    }

    /// Start of each tap's run in `xp`, in weight order `(c, i, j)`.
    fn offsets(&self) -> Vec<usize> {
        let mut offs = Vec::with_capacity(self.taps());
        for c in 0..self.c {
            for i in 0..self.k {
                for j in 0..self.k {
                    offs.push(c * self.plane + i * self.wp + j);
                }
            }
        }
        offs
    }

    /// Sample `xs` (`[C, H, W]`) into `xp`, zero-padded.
    fn pad_input(&self, xs: &[f32], xp: &mut [f32]) {
        xp.fill(0.0);
        for c in 0..self.c {
            for y in 0..self.h {
                let dst = c * self.plane + (y + self.pad) * self.wp + self.pad;
                xp[dst..dst + self.w].copy_from_slice(&xs[(c * self.h + y) * self.w..][..self.w]);
            }
        }
    }

    /// The weights `[O, taps]` regrouped per block of [`BLOCK`] output channels, tap-major
    /// inside a block (`[tap][channel]`), so that one tap's weights for the block are adjacent.
    fn blocked_weights(&self, w: &[f32]) -> Vec<f32> {
        let taps = self.taps();
        let mut out = Vec::with_capacity(self.o * taps);
        for o0 in (0..self.o).step_by(BLOCK) {
            let n = BLOCK.min(self.o - o0);
            for t in 0..taps {
                out.extend((o0..o0 + n).map(|o| w[o * taps + t]));
            }
        }
        out
    }
}

/// `y = conv(x, w) + bias` (then ReLU with `relu`) for a batch `x` of `[C, H, W]` samples, into
/// `[O, Ho, Wo]` samples.
pub(super) fn forward(
    p: &Plan,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let (in_len, out_len) = (p.c * p.h * p.w, p.o * p.ho * p.wo);
    let samples = x.len() / in_len.max(1);
    let mut y = vec![0f32; samples * out_len];
    if out_len == 0 {
        return y;
    }
    let offs = p.offsets();
    let wb = p.blocked_weights(w);
    y.par_chunks_mut(out_len).enumerate().for_each(|(b, ys)| {
        let mut xp = take_scratch(0, p.xp_len());
        let mut yw = take_scratch(1, p.o * p.len);
        p.pad_input(&x[b * in_len..(b + 1) * in_len], &mut xp[..p.xp_len()]);
        conv_sample(p, &offs, &wb, &xp, &mut yw);
        // The wide rows' first `Wo` values, plus bias, through the ReLU.
        for o in 0..p.o {
            for oy in 0..p.ho {
                let src = &yw[o * p.len + oy * p.wp..][..p.wo];
                ys[(o * p.ho + oy) * p.wo..][..p.wo].copy_from_slice(src);
            }
        }
        epilogue(ys, p.ho * p.wo, bias, relu);
        put_scratch(0, xp);
        put_scratch(1, yw);
    });
    y
}

/// The wide output rows `yw` (`[O, len]`) of one padded sample `xp`.
#[multiversion(targets = "simd")]
fn conv_sample(p: &Plan, offs: &[usize], wb: &[f32], xp: &[f32], yw: &mut [f32]) {
    let taps = offs.len();
    for o0 in (0..p.o).step_by(BLOCK) {
        let n = BLOCK.min(p.o - o0);
        let wblk = &wb[o0 * taps..(o0 + n) * taps];
        let out = &mut yw[o0 * p.len..(o0 + n) * p.len];
        with_block!(n, strips(xp, offs, wblk, p.len, out));
    }
}

/// `N` output channels' wide rows: `out[o][t] = sum_tap wblk[tap][o] * xp[offs[tap] + t]`,
/// one strip of [`LANES`] positions at a time, taps in order.
#[inline(always)]
fn strips<const N: usize>(xp: &[f32], offs: &[usize], wblk: &[f32], len: usize, out: &mut [f32]) {
    for s in (0..len).step_by(LANES) {
        let mut acc = [[0f32; LANES]; N];
        for (&off, wt) in offs.iter().zip(wblk.chunks_exact(N)) {
            let xv = lanes(&xp[off + s..]);
            for (a, &wv) in acc.iter_mut().zip(wt) {
                for (a, &x) in a.iter_mut().zip(xv) {
                    *a = wv.mul_add(x, *a);
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            out[o * len + s..o * len + s + LANES].copy_from_slice(a);
        }
    }
}

/// The first [`LANES`] values of `v` (the plan sizes every buffer so that they exist).
#[inline(always)]
fn lanes(v: &[f32]) -> &[f32; LANES] {
    v.first_chunk::<LANES>()
        .expect("direct conv: buffers are sized for whole strips")
}

/// The weight and bias gradients from the output gradient `dy` (`[O, Ho, Wo]` samples).
pub(super) fn weight_grad(p: &Plan, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (in_len, out_len) = (p.c * p.h * p.w, p.o * p.ho * p.wo);
    let samples = dy.len() / out_len.max(1);
    let groups = GROUPS.min(samples).max(1);
    let offs = p.offsets();
    let taps = p.taps();
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..groups)
        .into_par_iter()
        .map(|gi| {
            let mut dw = vec![0f32; p.o * taps];
            let mut db = vec![0f32; p.o];
            let mut xp = take_scratch(0, p.xp_len());
            let mut dyw = take_scratch(1, p.o * p.len);
            for b in gi * samples / groups..(gi + 1) * samples / groups {
                p.pad_input(&x[b * in_len..(b + 1) * in_len], &mut xp[..p.xp_len()]);
                let dys = &dy[b * out_len..(b + 1) * out_len];
                // dy on the wide rows, zero in the extra columns and the tail.
                dyw[..p.o * p.len].fill(0.0);
                for o in 0..p.o {
                    for oy in 0..p.ho {
                        let src = &dys[(o * p.ho + oy) * p.wo..][..p.wo];
                        dyw[o * p.len + oy * p.wp..][..p.wo].copy_from_slice(src);
                    }
                    db[o] += dys[o * p.ho * p.wo..(o + 1) * p.ho * p.wo]
                        .iter()
                        .sum::<f32>();
                }
                weight_grad_sample(p, &offs, &xp, &dyw, &mut dw);
            }
            put_scratch(0, xp);
            put_scratch(1, dyw);
            (dw, db)
        })
        .collect();
    sum_partials(partials)
}

/// Adds one sample's `dW[o, tap] = sum_t dyw[o][t] * xp[offs[tap] + t]` to `dw`.
#[multiversion(targets = "simd")]
fn weight_grad_sample(p: &Plan, offs: &[usize], xp: &[f32], dyw: &[f32], dw: &mut [f32]) {
    let taps = offs.len();
    for o0 in (0..p.o).step_by(DOT_BLOCK) {
        let n = DOT_BLOCK.min(p.o - o0);
        let g = &dyw[o0 * p.len..(o0 + n) * p.len];
        let d = &mut dw[o0 * taps..(o0 + n) * taps];
        with_block!(n, dots(xp, offs, g, p.len, d));
    }
}

/// For `N` output channels and every tap: the dot product of the channel's wide gradient rows
/// with the tap's run of `xp`, in [`LANES`] partial sums added up in lane order at the end.
/// Two taps at a time, so that each gradient vector loaded serves two products (an odd last
/// tap is computed twice and kept once).
#[inline(always)]
fn dots<const N: usize>(xp: &[f32], offs: &[usize], g: &[f32], len: usize, dw: &mut [f32]) {
    let taps = offs.len();
    for t in (0..taps).step_by(2) {
        let (off0, off1) = (offs[t], offs[(t + 1).min(taps - 1)]);
        let mut acc = [[[0f32; LANES]; N]; 2];
        for s in (0..len).step_by(LANES) {
            let (x0, x1) = (lanes(&xp[off0 + s..]), lanes(&xp[off1 + s..]));
            // All loads first, then one block of products (so that they vectorise as one).
            let gv: [[f32; LANES]; N] = std::array::from_fn(|o| *lanes(&g[o * len + s..]));
            let [a0, a1] = &mut acc;
            for ((a0, a1), gv) in a0.iter_mut().zip(a1.iter_mut()).zip(&gv) {
                for l in 0..LANES {
                    a0[l] = gv[l].mul_add(x0[l], a0[l]);
                    a1[l] = gv[l].mul_add(x1[l], a1[l]);
                }
            }
        }
        for (o, (a0, a1)) in acc[0].iter().zip(&acc[1]).enumerate() {
            dw[o * taps + t] += a0.iter().sum::<f32>();
            if t + 1 < taps {
                dw[o * taps + t + 1] += a1.iter().sum::<f32>();
            }
        }
    }
}

/// The input gradient `[C, H, W]` per sample: `dy` convolved (padding `k - 1 - pad`) with the
/// flipped weights, channel axes swapped. Needs `pad < k`.
pub(super) fn input_grad(p: &Plan, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (c, o, k) = (p.c, p.o, p.k);
    let mut wt = vec![0f32; w.len()];
    for oc in 0..o {
        for ic in 0..c {
            for i in 0..k {
                for j in 0..k {
                    wt[((ic * o + oc) * k + (k - 1 - i)) * k + (k - 1 - j)] =
                        w[((oc * c + ic) * k + i) * k + j];
                }
            }
        }
    }
    let back = Plan::new(o, (p.ho, p.wo), c, k, k - 1 - p.pad);
    forward(&back, dy, &wt, None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain loops, in f64: the convolution and its gradients by their definitions.
    fn reference(
        p: &Plan,
        b: usize,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (c, h, wd, o, k, pad, ho, wo) = (p.c, p.h, p.w, p.o, p.k, p.pad, p.ho, p.wo);
        let mut y = vec![0f64; b * o * ho * wo];
        let mut dw = vec![0f64; w.len()];
        let mut dx = vec![0f64; x.len()];
        for n in 0..b {
            for oc in 0..o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let yi = ((n * o + oc) * ho + oy) * wo + ox;
                        for ic in 0..c {
                            for i in 0..k {
                                for j in 0..k {
                                    let (iy, ix) = (oy + i, ox + j);
                                    if iy < pad || ix < pad || iy - pad >= h || ix - pad >= wd {
                                        continue;
                                    }
                                    let xi = ((n * c + ic) * h + iy - pad) * wd + ix - pad;
                                    let wi = ((oc * c + ic) * k + i) * k + j;
                                    y[yi] += w[wi] as f64 * x[xi] as f64;
                                    dw[wi] += dy[yi] as f64 * x[xi] as f64;
                                    dx[xi] += dy[yi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dw, dx)
    }

    fn close(ours: &[f32], theirs: &[f64], what: &str) {
        assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
        for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
            let tol = 1e-4 * 1f64.max(b.abs());
            assert!(
                (a as f64 - b).abs() <= tol,
                "{what}: element {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn matches_the_definition_forward_and_both_gradients() {
        // (batch, in, h, w, out, kernel, padding): LeNet's and the MNIST CNN's layers, ragged
        // strips, padding 0-2, more than one and a partial block of output channels, 1x1 maps.
        for (b, c, h, w, o, k, pad) in [
            (3, 3, 32, 32, 6, 5, 0),
            (2, 6, 14, 14, 16, 5, 0),
            (5, 1, 28, 28, 6, 5, 2),
            (2, 2, 7, 9, 13, 3, 1),
            (1, 4, 3, 3, 2, 3, 2),
            (6, 3, 5, 6, 7, 5, 0),
        ] {
            let p = Plan::new(c, (h, w), o, k, pad);
            let value = |i: usize| ((i * 7919) % 101) as f32 / 50.0 - 1.0;
            let x: Vec<f32> = (0..b * c * h * w).map(value).collect();
            let wt: Vec<f32> = (0..o * c * k * k).map(|i| value(i + 3)).collect();
            let dy: Vec<f32> = (0..b * o * p.ho * p.wo).map(|i| value(i + 11)).collect();
            let bias: Vec<f32> = (0..o).map(|i| value(i + 5)).collect();
            let (y, dw, dx) = reference(&p, b, &x, &wt, &dy);
            let what = format!("b{b} c{c} {h}x{w} o{o} k{k} p{pad}");
            close(
                &forward(&p, &x, &wt, None, false),
                &y,
                &format!("{what}: y"),
            );
            let with_bias: Vec<f64> = y
                .iter()
                .enumerate()
                .map(|(i, v)| (v + bias[i / (p.ho * p.wo) % o] as f64).max(0.0))
                .collect();
            let ours = forward(&p, &x, &wt, Some(&bias), true);
            close(&ours, &with_bias, &format!("{what}: relu(y + b)"));
            let (ours_dw, ours_db) = weight_grad(&p, &x, &dy);
            close(&ours_dw, &dw, &format!("{what}: dW"));
            let db: Vec<f64> = (0..o)
                .map(|oc| {
                    (0..b)
                        .flat_map(|n| {
                            let at = (n * o + oc) * p.ho * p.wo;
                            dy[at..at + p.ho * p.wo].iter().map(|&v| v as f64)
                        })
                        .sum()
                })
                .collect();
            close(&ours_db, &db, &format!("{what}: db"));
            close(&input_grad(&p, &dy, &wt), &dx, &format!("{what}: dx"));
        }
    }
}
