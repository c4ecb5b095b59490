//! PyTorch's default initialisation, drawn from a seeded generator, and the init specs that
//! start from it (airbench's partial Dirac, whitening).

use candle_core::{Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `U(-bound, bound)` with `bound = 1 / sqrt(fan_in)`: what PyTorch's `Conv2d` and `Linear`
/// use for both weight and bias. For the weight that is `kaiming_uniform_(a = sqrt(5))`:
/// gain `sqrt(2 / (1 + 5))`, bound `gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)`.
pub(crate) fn fan_in_values(rng: &mut ChaCha8Rng, shape: &[usize], fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let n: usize = shape.iter().product();
    (0..n)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
        .collect()
}

/// A variable of `values` in `shape` on `device`.
pub(crate) fn var(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)?)
}

/// A tensor of `value`s (BatchNorm weight 1, bias 0, running mean 0, running var 1).
pub(crate) fn constant(value: f32, len: usize, device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::full(value, len, device)?)
}

/// airbench's partial Dirac on a `[out, in, k, k]` weight (`k = 1` for a linear layer's
/// `[out, in]`) as a flat row-major vector: `torch.nn.init.dirac_(w[:in])`, i.e. filter
/// `o < in` becomes 1 at channel `o`'s kernel centre and 0 elsewhere; filters `o >= in`
/// are left as they are. Needs `out >= in` and an odd `k` (checked by the graph).
pub(crate) fn partial_dirac(w: &mut [f32], out: usize, inp: usize, k: usize) {
    let filter = inp * k * k;
    let centre = (k / 2) * k + k / 2;
    for o in 0..out.min(inp) {
        let f = &mut w[o * filter..(o + 1) * filter];
        f.fill(0.0);
        f[o * k * k + centre] = 1.0;
    }
}

/// Images per parallel chunk of the patch covariance: the chunks' sums are added in order, so
/// the result does not depend on the number of threads.
const COV_CHUNK: usize = 64;

/// The whitening weight of airbench's `init_whitening_conv` for a `k`x`k` conv on `images`
/// (`[n, c, h, w]`, `f32` values, row-major), as a flat `[2 * c * k * k, c, k, k]` vector.
///
/// The patches are every `k`x`k` window (stride 1, no padding) of every image, flattened in
/// the weight's `(channel, row, column)` order; their covariance is `X^T X / n` without
/// centring, as airbench's, accumulated in `f64` (airbench: `f32` on the GPU). The
/// eigen-decomposition is nalgebra's `SymmetricEigen` instead of LAPACK's `eigh`; the
/// eigenvalues `lambda` are put in descending order with their eigenvectors `v`, and the weight
/// is `cat(v / sqrt(lambda + eps), -v / sqrt(lambda + eps))`. An eigenvector's sign is
/// arbitrary and may differ from LAPACK's: flipping it swaps filter `i` with filter
/// `i + c * k * k` (its negative): a permutation of the output channels between the two halves
/// and nothing else.
pub(crate) fn whitening_weight(
    images: &[f32],
    [n, c, h, w]: [usize; 4],
    k: usize,
    eps: f64,
) -> std::result::Result<Vec<f32>, String> {
    use rayon::prelude::*;
    let d = c * k * k;
    if n == 0 || h < k || w < k {
        return Err(format!(
            "the whitening init needs at least one image of at least {k}x{k} pixels"
        ));
    }
    let plane = h * w;
    let image = c * plane;
    let chunk_cov = |imgs: &[f32]| {
        let mut cov = vec![0f64; d * d];
        let mut patch = vec![0f64; d];
        for img in imgs.chunks_exact(image) {
            for y in 0..=h - k {
                for x in 0..=w - k {
                    let mut j = 0;
                    for ch in 0..c {
                        for dy in 0..k {
                            let row = ch * plane + (y + dy) * w + x;
                            for dx in 0..k {
                                patch[j] = f64::from(img[row + dx]);
                                j += 1;
                            }
                        }
                    }
                    for a in 0..d {
                        let pa = patch[a];
                        let r = &mut cov[a * d..(a + 1) * d];
                        for b in a..d {
                            r[b] += pa * patch[b];
                        }
                    }
                }
            }
        }
        cov
    };
    let partial: Vec<Vec<f64>> = images[..n * image]
        .par_chunks(COV_CHUNK * image)
        .map(chunk_cov)
        .collect();
    let mut cov = vec![0f64; d * d];
    for p in &partial {
        for (s, v) in cov.iter_mut().zip(p) {
            *s += v;
        }
    }
    let count = (n * (h - k + 1) * (w - k + 1)) as f64;
    let mut m = nalgebra::DMatrix::<f64>::zeros(d, d);
    for a in 0..d {
        for b in a..d {
            let v = cov[a * d + b] / count;
            m[(a, b)] = v;
            m[(b, a)] = v;
        }
    }
    let eig = nalgebra::SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    let mut out = vec![0f32; 2 * d * d];
    for (row, &i) in order.iter().enumerate() {
        let scale = 1.0 / (eig.eigenvalues[i] + eps).sqrt();
        if !scale.is_finite() {
            return Err(format!(
                "the patch covariance has eigenvalue {} and eps {eps}: 1 / sqrt(eigenvalue + eps) is not finite",
                eig.eigenvalues[i]
            ));
        }
        for j in 0..d {
            let v = (eig.eigenvectors[(j, i)] * scale) as f32;
            out[row * d + j] = v;
            out[(row + d) * d + j] = -v;
        }
    }
    Ok(out)
}
