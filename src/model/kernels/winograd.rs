//! 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2015), the algorithm oneDNN and cuDNN
//! use for such layers.
//!
//! Every 2x2 block of outputs ("tile") is computed from the 4x4 input patch under it: the
//! patch and the kernel are transformed (`V = Bᵀ d B`, `U = G g Gᵀ`), multiplied elementwise
//! and summed over input channels, which for all tiles at once is 16 independent matrix
//! products `M[ξ] = U[ξ] · V[ξ]` (`[O, C] · [C, tiles]`), and transformed back
//! (`Y = Aᵀ M A`). That is 16 multiply-adds per tile and channel pair where im2col + gemm
//! does 36, and there is no 9x column matrix. Maps of at least 8x8 outputs use F(4x4, 3x3)
//! instead (module `f4`: 6x6 patches, 36 products for 16 outputs); the weight gradient is
//! always F(3x3, 2x2), below.
//!
//! It computes the forward pass of the VGG layers and, with the kernel flipped and its
//! channels swapped, their input gradient (for stride 1 that is again a 3x3 convolution, of
//! the output gradient, with padding `2 - pad`). Like the im2col path, work is split into
//! chunks of whole samples whose size depends on the shapes only, so results do not depend on
//! the number of threads.

use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use super::conv::{inner_par, matmul, put_scratch, sum_partials, take_scratch, GROUPS};

/// Fewest input channels for which the transforms pay for themselves (the gemm's inner
/// dimension is the channel count).
pub(crate) const MIN_CHANNELS: usize = 16;

/// Shapes of one 3x3 stride-1 convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape3x3 {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub pad: usize,
}

impl Shape3x3 {
    fn out(&self) -> (usize, usize) {
        (self.h + 2 * self.pad - 2, self.w + 2 * self.pad - 2)
    }

    /// Tile rows and columns per sample.
    fn tiles(&self) -> (usize, usize) {
        let (ho, wo) = self.out();
        (ho.div_ceil(2), wo.div_ceil(2))
    }

    /// Samples per chunk: about 256 tiles, at most a quarter of the batch.
    fn chunk(&self) -> usize {
        let (th, tw) = self.tiles();
        256usize.div_ceil(th * tw).min((self.b / 4).max(1)).max(1)
    }
}

/// Kernels transformed together: one AVX-512 register of `f32` per value.
const KLANES: usize = 16;

/// One value of [`KLANES`] kernels.
type KLanes = [f32; KLANES];

/// Kernels per parallel task of [`transform_kernels`].
const KBLOCK: usize = 64 * KLANES;

/// Where [`tiled`] gets its kernels: `wt` (`[O, C, 3, 3]` for the shape it computes), or with
/// `flip` the input gradient's kernels, read from the forward layer's weights `wt`
/// (`[C, O, 3, 3]`): flipped, their channels swapped.
#[derive(Clone, Copy)]
struct Kernels<'a> {
    wt: &'a [f32],
    flip: bool,
}

/// `U = G g Gᵀ` of every kernel of `k` for the shape `s` into `u`, laid out as `XI` matrices
/// `[O, C]`: `block` transforms [`KLANES`] kernels (`g[tap][lane]`) into `[ξ][lane]`. Blocks
/// of [`KBLOCK`] kernels run in parallel; each value is computed by the same operations
/// whatever the split, so the result does not depend on the number of threads.
fn transform_kernels<const XI: usize>(
    s: &Shape3x3,
    k: Kernels,
    u: &mut [f32],
    block: impl Fn(&[KLanes; 9], &mut [KLanes; XI]) + Sync,
) {
    let (rows, cols) = (s.o, s.c);
    let n = rows * cols;
    // Task `i` writes kernels `i * KBLOCK..` of every one of the `XI` matrices.
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(KBLOCK))
        .map(|_| Vec::with_capacity(XI))
        .collect();
    for matrix in u[..XI * n].chunks_exact_mut(n) {
        for (task, part) in tasks.iter_mut().zip(matrix.chunks_mut(KBLOCK)) {
            task.push(part);
        }
    }
    tasks
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut parts)| {
            let first = i * KBLOCK;
            let len = parts[0].len();
            let mut g = [[0f32; KLANES]; 9];
            let mut out = [[0f32; KLANES]; XI];
            for j0 in (0..len).step_by(KLANES) {
                let lanes = KLANES.min(len - j0);
                for l in 0..lanes {
                    let at = first + j0 + l;
                    if k.flip {
                        let (row, col) = (at / cols, at % cols);
                        let src = &k.wt[(col * rows + row) * 9..][..9];
                        for (tap, gt) in g.iter_mut().enumerate() {
                            gt[l] = src[8 - tap];
                        }
                    } else {
                        let src = &k.wt[at * 9..][..9];
                        for (tap, gt) in g.iter_mut().enumerate() {
                            gt[l] = src[tap];
                        }
                    }
                }
                block(&g, &mut out);
                for (part, vals) in parts.iter_mut().zip(&out) {
                    part[j0..j0 + lanes].copy_from_slice(&vals[..lanes]);
                }
            }
        });
}

/// `G g` along one axis of [`KLANES`] kernels, F(2x2, 3x3):
/// `G = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]`.
#[inline(always)]
fn kernel_1d(g: [&KLanes; 3]) -> [KLanes; 4] {
    let mut a = [[0f32; KLANES]; 4];
    for l in 0..KLANES {
        let (g0, g1, g2) = (g[0][l], g[1][l], g[2][l]);
        a[0][l] = g0;
        a[1][l] = 0.5 * (g0 + g1 + g2);
        a[2][l] = 0.5 * (g0 - g1 + g2);
        a[3][l] = g2;
    }
    a
}

/// `U = G g Gᵀ` of [`KLANES`] kernels, F(2x2, 3x3): along the columns of `g`, then along the
/// rows of the result.
#[multiversion(targets = "simd")]
fn kernel_block(g: &[KLanes; 9], u: &mut [KLanes; 16]) {
    let cols: [[KLanes; 4]; 3] = std::array::from_fn(|j| kernel_1d([&g[j], &g[3 + j], &g[6 + j]]));
    for r in 0..4 {
        let row = kernel_1d([&cols[0][r], &cols[1][r], &cols[2][r]]);
        u[r * 4..r * 4 + 4].copy_from_slice(&row);
    }
}

/// Tiles transformed together (one AVX2 register of `f32`).
const LANES: usize = 8;

/// `V = Bᵀ d B` for [`LANES`] 4x4 patches at once: `d[row][col][lane]`, result `[ξ][lane]`.
#[inline(always)]
fn transform_patches(d: &[[[f32; LANES]; 4]; 4], v: &mut [[f32; LANES]; 16]) {
    let mut t = [[[0f32; LANES]; 4]; 4];
    for q in 0..4 {
        for l in 0..LANES {
            t[0][q][l] = d[0][q][l] - d[2][q][l];
            t[1][q][l] = d[1][q][l] + d[2][q][l];
            t[2][q][l] = d[2][q][l] - d[1][q][l];
            t[3][q][l] = d[1][q][l] - d[3][q][l];
        }
    }
    for r in 0..4 {
        for l in 0..LANES {
            v[r * 4][l] = t[r][0][l] - t[r][2][l];
            v[r * 4 + 1][l] = t[r][1][l] + t[r][2][l];
            v[r * 4 + 2][l] = t[r][2][l] - t[r][1][l];
            v[r * 4 + 3][l] = t[r][1][l] - t[r][3][l];
        }
    }
}

/// `Y = Aᵀ M A` for [`LANES`] tiles at once: `m[ξ][lane]`, result `[row][col][lane]`.
#[inline(always)]
fn transform_back_lanes(m: &[[f32; LANES]; 16], y: &mut [[[f32; LANES]; 2]; 2]) {
    let mut s = [[[0f32; LANES]; 4]; 2];
    for q in 0..4 {
        for l in 0..LANES {
            s[0][q][l] = m[q][l] + m[4 + q][l] + m[8 + q][l];
            s[1][q][l] = m[4 + q][l] - m[8 + q][l] - m[12 + q][l];
        }
    }
    for r in 0..2 {
        for l in 0..LANES {
            y[r][0][l] = s[r][0][l] + s[r][1][l] + s[r][2][l];
            y[r][1][l] = s[r][1][l] - s[r][2][l] - s[r][3][l];
        }
    }
}

/// Writes the 16 transformed values of [`LANES`] tiles from tile `t` on into a `[channel][ξ][tile]`
/// buffer with row length `stride`, as whole vectors.
#[inline(always)]
fn store_lanes(
    buf: &mut [f32],
    channel: usize,
    stride: usize,
    t: usize,
    vals: &[[f32; LANES]; 16],
) {
    for (xi, lane_vals) in vals.iter().enumerate() {
        let at = (channel * 16 + xi) * stride + t;
        buf[at..at + LANES].copy_from_slice(lane_vals);
    }
}

/// `V = Bᵀ d B` of every tile of the samples `xs` (`[samples, C, H, W]`), into `v` laid out
/// `[C][ξ][tile]` with row length `stride` (tiles numbered sample by sample, row by row).
#[multiversion(targets = "simd")]
fn input_transform(s: &Shape3x3, xs: &[f32], v: &mut [f32], stride: usize) {
    let (th, tw) = s.tiles();
    let mut vt = [[0f32; LANES]; 16];
    gather_patches::<4>(s, xs, (th, tw), |ci, t, d| {
        transform_patches(d, &mut vt);
        store_lanes(v, ci, stride, t, &vt);
    });
}

/// The 4x4 (F(2x2)) or 6x6 (F(4x4)) input patches under every tile of the samples `xs`
/// (`[samples, C, H, W]`), [`LANES`] tiles at a time: `emit(channel, first tile, d)` with
/// `d[row][col][lane]` (tiles numbered sample by sample, row by row; lanes past the last tile
/// of a sample hold stale values). Tiles step by `P - 2` over the zero-padded plane.
#[inline(always)]
fn gather_patches<const P: usize>(
    s: &Shape3x3,
    xs: &[f32],
    (th, tw): (usize, usize),
    mut emit: impl FnMut(usize, usize, &[[[f32; LANES]; P]; P]),
) {
    let tps = th * tw;
    let step = P - 2;
    let (c, h, w) = (s.c, s.h, s.w);
    // The zero-padded input plane: every tile's patch lies inside it.
    let (hp, wp) = (step * th + 2, step * tw + 2);
    let mut padded = take_scratch(2, hp * wp);
    padded[..hp * wp].fill(0.0);
    // Where each tile's patch starts in the padded plane.
    let starts: Vec<usize> = (0..tps)
        .map(|t| step * (t / tw) * wp + step * (t % tw))
        .collect();
    let mut d = [[[0f32; LANES]; P]; P];
    for (j, sample) in xs.chunks_exact(c * h * w).enumerate() {
        for ci in 0..c {
            let plane = &sample[ci * h * w..(ci + 1) * h * w];
            // Rows and columns of the input that the tiles read, at their padded place.
            for iy in 0..h.min(hp - s.pad) {
                let cols = w.min(wp - s.pad);
                let at = (iy + s.pad) * wp + s.pad;
                padded[at..at + cols].copy_from_slice(&plane[iy * w..iy * w + cols]);
            }
            for t0 in (0..tps).step_by(LANES) {
                let lanes = LANES.min(tps - t0);
                for l in 0..lanes {
                    let p = &padded[starts[t0 + l]..];
                    for (r, dr) in d.iter_mut().enumerate() {
                        for (q, dq) in dr.iter_mut().enumerate() {
                            dq[l] = p[r * wp + q];
                        }
                    }
                }
                emit(ci, j * tps + t0, &d);
            }
        }
    }
    put_scratch(2, padded);
}

/// `y[B, O, Ho, Wo] = conv2d(x[B, C, H, W], wt[O, C, 3, 3], stride 1, padding s.pad) + bias`,
/// then ReLU with `relu`.
///
/// Tiles of a sample are numbered row by row and handled [`LANES`] at a time (a group may run
/// into the next row). `V` and `M` rows are [`LANES`]-padded, so every group is read and
/// written as whole vectors; a sample's last group spills into the next sample's tiles, which
/// are written afterwards, or into the padding.
pub(crate) fn conv3x3(
    s: &Shape3x3,
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    conv3x3_with(s, x, Kernels { wt, flip: false }, (bias, relu))
}

/// [`conv3x3`] with the kernels `k`, by F(4x4, 3x3) for maps of at least 8x8 outputs and
/// F(2x2, 3x3) below.
fn conv3x3_with(s: &Shape3x3, x: &[f32], k: Kernels, act: (Option<&[f32]>, bool)) -> Vec<f32> {
    let (ho, wo) = s.out();
    if ho >= 8 && wo >= 8 {
        tiled(&F4, s, x, k, act)
    } else {
        tiled(&F2, s, x, k, act)
    }
}

/// One Winograd algorithm: its tiles, its `ξ` count and its three transforms.
trait Tiling: Sync {
    /// Transformed values per tile.
    const XI: usize;
    fn tiles(&self, s: &Shape3x3) -> (usize, usize);
    /// `U` of the kernels `k` into `u` (`XI` matrices `[O, C]`).
    fn kernels(&self, s: &Shape3x3, k: Kernels, u: &mut [f32]);
    fn input(&self, s: &Shape3x3, xs: &[f32], v: &mut [f32], stride: usize);
    fn output(
        &self,
        s: &Shape3x3,
        m: &[f32],
        stride: usize,
        ys: &mut [f32],
        act: (Option<&[f32]>, bool),
    );
}

/// F(2x2, 3x3).
struct F2;

impl Tiling for F2 {
    const XI: usize = 16;
    fn tiles(&self, s: &Shape3x3) -> (usize, usize) {
        s.tiles()
    }
    fn kernels(&self, s: &Shape3x3, k: Kernels, u: &mut [f32]) {
        transform_kernels::<16>(s, k, u, kernel_block)
    }
    fn input(&self, s: &Shape3x3, xs: &[f32], v: &mut [f32], stride: usize) {
        input_transform(s, xs, v, stride)
    }
    fn output(
        &self,
        s: &Shape3x3,
        m: &[f32],
        stride: usize,
        ys: &mut [f32],
        act: (Option<&[f32]>, bool),
    ) {
        output_transform(s, m, stride, ys, act)
    }
}

/// F(4x4, 3x3) (module [`f4`]).
struct F4;

impl Tiling for F4 {
    const XI: usize = f4::XI;
    fn tiles(&self, s: &Shape3x3) -> (usize, usize) {
        f4::tiles(s)
    }
    fn kernels(&self, s: &Shape3x3, k: Kernels, u: &mut [f32]) {
        transform_kernels::<{ f4::XI }>(s, k, u, f4::kernel_block)
    }
    fn input(&self, s: &Shape3x3, xs: &[f32], v: &mut [f32], stride: usize) {
        f4::input_transform(s, xs, v, stride)
    }
    fn output(
        &self,
        s: &Shape3x3,
        m: &[f32],
        stride: usize,
        ys: &mut [f32],
        act: (Option<&[f32]>, bool),
    ) {
        f4::output_transform(s, m, stride, ys, act)
    }
}

/// [`conv3x3`] by the algorithm `t`: chunks of whole samples (about 256 tiles each, at most a
/// quarter of the batch), each transformed, multiplied `ξ` by `ξ` and transformed back.
fn tiled<T: Tiling>(
    t: &T,
    s: &Shape3x3,
    x: &[f32],
    k: Kernels,
    act: (Option<&[f32]>, bool),
) -> Vec<f32> {
    let xi_n = T::XI;
    let (ho, wo) = s.out();
    let (th, tw) = t.tiles(s);
    let tps = th * tw;
    let (c, o, h, w) = (s.c, s.o, s.h, s.w);
    let per = 256usize.div_ceil(tps).min((s.b / 4).max(1)).max(1);
    let in_len = c * h * w;
    let out_len = o * ho * wo;
    let mut y = vec![0f32; s.b * out_len];
    if y.is_empty() {
        return y;
    }
    // The transformed kernels, in this thread's scratch (every value is overwritten).
    let mut u = take_scratch(3, xi_n * o * c);
    t.kernels(s, k, &mut u);
    let tasks = s.b.div_ceil(per);
    let par: Parallelism = inner_par(tasks);
    y.par_chunks_mut(per * out_len)
        .enumerate()
        .for_each(|(task, ys)| {
            let b0 = task * per;
            let sc = ys.len() / out_len;
            let t_all = sc * tps;
            let stride = t_all.div_ceil(LANES) * LANES + LANES;
            let mut v = take_scratch(0, xi_n * c * stride);
            let mut m = take_scratch(1, xi_n * o * stride);
            t.input(s, &x[b0 * in_len..(b0 + sc) * in_len], &mut v, stride);
            // M[ξ] = U[ξ] · V[ξ]
            // (`V` is laid out `[C][ξ][tiles]` and `M` `[O][ξ][tiles]`, so that the transforms
            // touch one contiguous block per channel.)
            for xi in 0..xi_n {
                matmul(
                    (o, t_all, c),
                    &mut m[xi * stride..],
                    (xi_n * stride, false),
                    &u[xi * o * c..(xi + 1) * o * c],
                    (c, 1),
                    &v[xi * stride..],
                    (xi_n * stride, 1),
                    par,
                );
            }
            t.output(s, &m, stride, ys, act);
            put_scratch(0, v);
            put_scratch(1, m);
        });
    put_scratch(3, u);
    y
}

/// `Y = Aᵀ M A` of every tile of the samples of `ys` (`[samples, O, Ho, Wo]`) from `m`, laid
/// out `[O][ξ][tile]` with row length `stride`; then the bias and, with `relu`, ReLU.
#[multiversion(targets = "simd")]
fn output_transform(
    s: &Shape3x3,
    m: &[f32],
    stride: usize,
    ys: &mut [f32],
    (bias, relu): (Option<&[f32]>, bool),
) {
    let act = |v: f32| if relu { super::relu::value(v) } else { v };
    let (ho, wo) = s.out();
    let (th, tw) = s.tiles();
    let tps = th * tw;
    let o = s.o;
    let sc = ys.len() / (o * ho * wo);
    let mut mt = [[0f32; LANES]; 16];
    let mut out = [[[0f32; LANES]; 2]; 2];
    for j in 0..sc {
        for oc in 0..o {
            let plane = &mut ys[(j * o + oc) * ho * wo..(j * o + oc + 1) * ho * wo];
            let bv = bias.map_or(0.0, |b| b[oc]);
            for t0 in (0..tps).step_by(LANES) {
                let lanes = LANES.min(tps - t0);
                let t = j * tps + t0;
                for (xi, lane_vals) in mt.iter_mut().enumerate() {
                    let at = (oc * 16 + xi) * stride + t;
                    lane_vals.copy_from_slice(&m[at..at + LANES]);
                }
                transform_back_lanes(&mt, &mut out);
                for l in 0..lanes {
                    let tile = t0 + l;
                    let (ty, tx) = (tile / tw, tile % tw);
                    for (r, out_r) in out.iter().enumerate() {
                        let oy = 2 * ty + r;
                        if oy >= ho {
                            continue;
                        }
                        for (q, out_q) in out_r.iter().enumerate() {
                            let ox = 2 * tx + q;
                            if ox < wo {
                                plane[oy * wo + ox] = act(out_q[l] + bv);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The input gradient of a 3x3 stride-1 convolution with input `[B, C, H, W]` and weight
/// `wt [O, C, 3, 3]`, from the output gradient `dy [B, O, Ho, Wo]`: the convolution of `dy`
/// with the flipped kernel, channels swapped, padding `2 - pad`.
pub(crate) fn conv3x3_input_grad(s: &Shape3x3, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    let (ho, wo) = s.out();
    let back = Shape3x3 {
        b: s.b,
        c: s.o,
        h: ho,
        w: wo,
        o: s.c,
        pad: 2 - s.pad,
    };
    conv3x3_with(&back, dy, Kernels { wt, flip: true }, (None, false))
}

/// The weight and bias gradients of a 3x3 stride-1 convolution with input `x [B, C, H, W]`,
/// from the output gradient `dy [B, O, Ho, Wo]`, by F(3x3, 2x2): the forward pass's algorithm
/// transposed. With `Z_t = A g_t Aᵀ` (the 2x2 output gradient of tile `t`) and
/// `V_t = Bᵀ d_t B` (its input patch, the forward transform),
/// `dW = Gᵀ (Σ_t Z_t ⊙ V_t) G`, the sum over tiles being 16 matrix products
/// `[O, tiles] · [tiles, C]`.
pub(crate) fn conv3x3_weight_grad(s: &Shape3x3, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (ho, wo) = s.out();
    let (th, tw) = s.tiles();
    let tps = th * tw;
    let (c, o, h, w) = (s.c, s.o, s.h, s.w);
    let per = s.chunk();
    let chunks = s.b.div_ceil(per);
    let groups = GROUPS.min(chunks).max(1);
    let par = inner_par(groups);
    let (in_len, out_len) = (c * h * w, o * ho * wo);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..groups)
        .into_par_iter()
        .map(|gi| {
            let mut du = vec![0f32; 16 * o * c];
            let mut db = vec![0f32; o];
            let (first, last) = (gi * chunks / groups, (gi + 1) * chunks / groups);
            for chunk in first..last {
                let b0 = chunk * per;
                let sc = per.min(s.b - b0);
                let t_all = sc * tps;
                let stride = t_all.div_ceil(LANES) * LANES + LANES;
                let mut v = take_scratch(0, 16 * c * stride);
                let mut z = take_scratch(1, 16 * o * stride);
                input_transform(s, &x[b0 * in_len..(b0 + sc) * in_len], &mut v, stride);
                // Z = A g Aᵀ for every tile and output channel, laid out [O][ξ][tile].
                let dys = &dy[b0 * out_len..(b0 + sc) * out_len];
                grad_transform(s, dys, &mut z, stride, &mut db);
                // dU[ξ] += Z[ξ] · V[ξ]ᵀ   ([O, tiles] · [tiles, C])
                for xi in 0..16 {
                    matmul(
                        (o, c, t_all),
                        &mut du[xi * o * c..(xi + 1) * o * c],
                        (c, true),
                        &z[xi * stride..],
                        (16 * stride, 1),
                        &v[xi * stride..],
                        (1, 16 * stride),
                        par,
                    );
                }
                put_scratch(0, v);
                put_scratch(1, z);
            }
            (du, db)
        })
        .collect();
    let (du, db) = sum_partials(partials);
    // dW = Gᵀ dU G for every (o, c).
    let mut dw = vec![0f32; o * c * 9];
    for (oc, k) in dw.chunks_exact_mut(9).enumerate() {
        let m = |r: usize, q: usize| du[(r * 4 + q) * o * c + oc];
        // Gᵀ = [[1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1]]
        let a: [[f32; 4]; 3] = std::array::from_fn(|i| {
            std::array::from_fn(|q| {
                let (m0, m1, m2, m3) = (m(0, q), m(1, q), m(2, q), m(3, q));
                match i {
                    0 => m0 + 0.5 * (m1 + m2),
                    1 => 0.5 * (m1 - m2),
                    _ => 0.5 * (m1 + m2) + m3,
                }
            })
        });
        for (i, row) in a.iter().enumerate() {
            let [a0, a1, a2, a3] = *row;
            k[i * 3] = a0 + 0.5 * (a1 + a2);
            k[i * 3 + 1] = 0.5 * (a1 - a2);
            k[i * 3 + 2] = 0.5 * (a1 + a2) + a3;
        }
    }
    (dw, db)
}

/// `Z = A g Aᵀ` of every tile of the output gradients `dys` (`[samples, O, Ho, Wo]`) into `z`,
/// laid out `[O][ξ][tile]` with row length `stride`; adds each plane's sum to `db`.
#[multiversion(targets = "simd")]
fn grad_transform(s: &Shape3x3, dys: &[f32], z: &mut [f32], stride: usize, db: &mut [f32]) {
    let (ho, wo) = s.out();
    let (th, tw) = s.tiles();
    let tps = th * tw;
    let o = s.o;
    let out_len = o * ho * wo;
    let mut zt = [[0f32; LANES]; 16];
    for (j, dys) in dys.chunks_exact(out_len).enumerate() {
        for oc in 0..o {
            let plane = &dys[oc * ho * wo..(oc + 1) * ho * wo];
            db[oc] += plane.iter().sum::<f32>();
            for t0 in (0..tps).step_by(LANES) {
                let lanes = LANES.min(tps - t0);
                let mut g = [[[0f32; LANES]; 2]; 2];
                for l in 0..lanes {
                    let (ty, tx) = ((t0 + l) / tw, (t0 + l) % tw);
                    for (r, gr) in g.iter_mut().enumerate() {
                        let oy = 2 * ty + r;
                        for (q, gq) in gr.iter_mut().enumerate() {
                            let ox = 2 * tx + q;
                            if oy < ho && ox < wo {
                                gq[l] = plane[oy * wo + ox];
                            }
                        }
                    }
                }
                transform_grad_lanes(&g, &mut zt);
                store_lanes(z, oc, stride, j * tps + t0, &zt);
            }
        }
    }
}

/// `Z = A g Aᵀ` for [`LANES`] 2x2 output gradients: `g[row][col][lane]`, result `[ξ][lane]`,
/// with `A = [[1, 0], [1, 1], [1, -1], [0, -1]]`.
#[inline(always)]
fn transform_grad_lanes(g: &[[[f32; LANES]; 2]; 2], z: &mut [[f32; LANES]; 16]) {
    // s = A g (4x2)
    let mut s = [[[0f32; LANES]; 2]; 4];
    for q in 0..2 {
        for l in 0..LANES {
            s[0][q][l] = g[0][q][l];
            s[1][q][l] = g[0][q][l] + g[1][q][l];
            s[2][q][l] = g[0][q][l] - g[1][q][l];
            s[3][q][l] = -g[1][q][l];
        }
    }
    for r in 0..4 {
        for l in 0..LANES {
            z[r * 4][l] = s[r][0][l];
            z[r * 4 + 1][l] = s[r][0][l] + s[r][1][l];
            z[r * 4 + 2][l] = s[r][0][l] - s[r][1][l];
            z[r * 4 + 3][l] = -s[r][1][l];
        }
    }
}

/// F(4x4, 3x3): every 4x4 block of outputs from the 6x6 input patch under it, 36 matrix
/// products `[O, C] · [C, tiles]` for 16 outputs (2.25 multiply-adds per output and channel
/// pair, against 4 for F(2x2, 3x3) and 9 for im2col), with the transforms of Lavin and Gray
/// (interpolation points 0, ±1, ±2, ∞). Used for the forward pass and the input gradient of
/// maps of at least 8x8 outputs; smaller maps use F(2x2, 3x3). On VGG's 4x4 maps (one tile per
/// sample, so narrow gemms) F(4x4, 3x3) made evaluation 10% slower; on the 8x8 maps it made no
/// difference, on the 16x16 map it is what makes VGG faster (`runner bench --baseline-exe`,
/// AVX2, 2026-12-04). It rounds more: up to 6e-5 relative against direct summation in the
/// kernel tests, against under 1e-5 for F(2x2, 3x3).
mod f4 {
    use super::*;

    /// Transformed values per tile (a 6x6 patch).
    pub(super) const XI: usize = 36;

    /// Tile rows and columns per sample.
    pub(super) fn tiles(s: &Shape3x3) -> (usize, usize) {
        let (ho, wo) = s.out();
        (ho.div_ceil(4), wo.div_ceil(4))
    }

    /// `G g` along one axis of [`KLANES`] kernels, F(4x4, 3x3).
    #[inline(always)]
    fn kernel_1d(g: [&KLanes; 3]) -> [KLanes; 6] {
        let mut a = [[0f32; KLANES]; 6];
        for l in 0..KLANES {
            let (g0, g1, g2) = (g[0][l], g[1][l], g[2][l]);
            a[0][l] = g0 / 4.0;
            a[1][l] = -(g0 + g1 + g2) / 6.0;
            a[2][l] = -(g0 - g1 + g2) / 6.0;
            a[3][l] = g0 / 24.0 + g1 / 12.0 + g2 / 6.0;
            a[4][l] = g0 / 24.0 - g1 / 12.0 + g2 / 6.0;
            a[5][l] = g2;
        }
        a
    }

    /// `U = G g Gᵀ` of [`KLANES`] kernels: along the columns of `g`, then along the rows.
    #[multiversion(targets = "simd")]
    pub(super) fn kernel_block(g: &[KLanes; 9], u: &mut [KLanes; XI]) {
        let cols: [[KLanes; 6]; 3] =
            std::array::from_fn(|j| kernel_1d([&g[j], &g[3 + j], &g[6 + j]]));
        for r in 0..6 {
            let row = kernel_1d([&cols[0][r], &cols[1][r], &cols[2][r]]);
            u[r * 6..r * 6 + 6].copy_from_slice(&row);
        }
    }

    /// `Bᵀ d` along one axis, for [`LANES`] patches at once.
    #[inline(always)]
    fn input_1d(d: [&[f32; LANES]; 6]) -> [[f32; LANES]; 6] {
        let mut t = [[0f32; LANES]; 6];
        for l in 0..LANES {
            let [d0, d1, d2, d3, d4, d5] = d.map(|x| x[l]);
            t[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
            t[1][l] = -4.0 * d1 - 4.0 * d2 + d3 + d4;
            t[2][l] = 4.0 * d1 - 4.0 * d2 - d3 + d4;
            t[3][l] = -2.0 * d1 - d2 + 2.0 * d3 + d4;
            t[4][l] = 2.0 * d1 - d2 - 2.0 * d3 + d4;
            t[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
        }
        t
    }

    /// `Aᵀ m` along one axis, for [`LANES`] tiles at once.
    #[inline(always)]
    fn output_1d(m: [&[f32; LANES]; 6]) -> [[f32; LANES]; 4] {
        let mut y = [[0f32; LANES]; 4];
        for l in 0..LANES {
            let [m0, m1, m2, m3, m4, m5] = m.map(|x| x[l]);
            y[0][l] = m0 + m1 + m2 + m3 + m4;
            y[1][l] = m1 - m2 + 2.0 * m3 - 2.0 * m4;
            y[2][l] = m1 + m2 + 4.0 * m3 + 4.0 * m4;
            y[3][l] = m1 - m2 + 8.0 * m3 - 8.0 * m4 + m5;
        }
        y
    }

    /// `V = Bᵀ d B` of every tile of the samples `xs` (`[samples, C, H, W]`), into `v` laid
    /// out `[C][ξ][tile]` with row length `stride` (tiles numbered sample by sample, row by row).
    #[multiversion(targets = "simd")]
    pub(super) fn input_transform(s: &Shape3x3, xs: &[f32], v: &mut [f32], stride: usize) {
        let (th, tw) = tiles(s);
        gather_patches::<6>(s, xs, (th, tw), |ci, t0, d| {
            // Along rows (over r for each column q), then along columns.
            let mut t = [[[0f32; LANES]; 6]; 6];
            for q in 0..6 {
                let col = input_1d(std::array::from_fn(|r| &d[r][q]));
                for (r, v) in col.into_iter().enumerate() {
                    t[r][q] = v;
                }
            }
            for (r, tr) in t.iter().enumerate() {
                let row = input_1d(std::array::from_fn(|q| &tr[q]));
                for (q, vals) in row.iter().enumerate() {
                    let at = (ci * XI + r * 6 + q) * stride + t0;
                    v[at..at + LANES].copy_from_slice(vals);
                }
            }
        });
    }

    /// `Y = Aᵀ M A` of every tile of the samples of `ys` (`[samples, O, Ho, Wo]`) from `m`,
    /// laid out `[O][ξ][tile]` with row length `stride`; then the bias and, with `relu`, ReLU.
    #[multiversion(targets = "simd")]
    pub(super) fn output_transform(
        s: &Shape3x3,
        m: &[f32],
        stride: usize,
        ys: &mut [f32],
        (bias, relu): (Option<&[f32]>, bool),
    ) {
        let act = |v: f32| {
            if relu {
                super::super::relu::value(v)
            } else {
                v
            }
        };
        let (ho, wo) = s.out();
        let (th, tw) = tiles(s);
        let tps = th * tw;
        let o = s.o;
        let sc = ys.len() / (o * ho * wo);
        let mut mt = [[0f32; LANES]; XI];
        for j in 0..sc {
            for oc in 0..o {
                let plane = &mut ys[(j * o + oc) * ho * wo..(j * o + oc + 1) * ho * wo];
                let bv = bias.map_or(0.0, |b| b[oc]);
                for t0 in (0..tps).step_by(LANES) {
                    let lanes = LANES.min(tps - t0);
                    let t = j * tps + t0;
                    for (xi, lane_vals) in mt.iter_mut().enumerate() {
                        let at = (oc * XI + xi) * stride + t;
                        lane_vals.copy_from_slice(&m[at..at + LANES]);
                    }
                    // Along rows (s = Aᵀ M, 4x6), then along columns (s A, 4x4).
                    let mut sm = [[[0f32; LANES]; 6]; 4];
                    for q in 0..6 {
                        let col = output_1d(std::array::from_fn(|r| &mt[r * 6 + q]));
                        for (r, v) in col.into_iter().enumerate() {
                            sm[r][q] = v;
                        }
                    }
                    let out: [[[f32; LANES]; 4]; 4] =
                        std::array::from_fn(|r| output_1d(std::array::from_fn(|q| &sm[r][q])));
                    for l in 0..lanes {
                        let tile = t0 + l;
                        let (ty, tx) = (tile / tw, tile % tw);
                        for (r, out_r) in out.iter().enumerate() {
                            let oy = 4 * ty + r;
                            if oy >= ho {
                                break;
                            }
                            for (q, out_q) in out_r.iter().enumerate() {
                                let ox = 4 * tx + q;
                                if ox >= wo {
                                    break;
                                }
                                plane[oy * wo + ox] = act(out_q[l] + bv);
                            }
                        }
                    }
                }
            }
        }
    }
}
