//! Forward functions for the ops that candle does not provide with PyTorch semantics.
//!
//! Everything here is built from differentiable candle ops, so backprop works through it.

use candle_core::{bail, DType, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Pads the two spatial dims of `[B, C, H, W]` by `p` on every side with `value`.
pub(crate) fn pad2d(x: &Tensor, p: usize, value: f32) -> Result<Tensor> {
    if p == 0 {
        return Ok(x.clone());
    }
    let (b, c, h, w) = x.dims4()?;
    let (dtype, dev) = (x.dtype(), x.device());
    let rows = Tensor::full(value, (b, c, p, w), dev)?.to_dtype(dtype)?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = Tensor::full(value, (b, c, h + 2 * p, p), dev)?.to_dtype(dtype)?;
    Tensor::cat(&[&cols, &x, &cols], 3)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pool {
    Max,
    Avg,
}

/// `nn.MaxPool2d(kernel, stride, padding)`: padding never wins the max.
pub(crate) fn max_pool2d(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if super::kernels::supported(x) {
        return super::kernels::pool::max_pool2d(x, kernel, stride, padding);
    }
    // A finite stand-in for -inf: PyTorch requires padding <= kernel/2, so every window holds
    // at least one real value, and a finite value cannot turn a gradient into NaN.
    let x = pad2d(x, padding, f32::MIN)?;
    pool2d(&x, kernel, stride, Pool::Max)
}

/// `nn.AvgPool2d(kernel, stride, padding)` with `count_include_pad=True`.
pub(crate) fn avg_pool2d(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let x = pad2d(x, padding, 0.0)?;
    pool2d(&x, kernel, stride, Pool::Avg)
}

/// Pools an already padded input (floor mode).
fn pool2d(x: &Tensor, kernel: usize, stride: usize, kind: Pool) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h < kernel || w < kernel {
        bail!("pooling kernel {kernel} is larger than the (padded) input {h}x{w}")
    }
    let (ho, wo) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    if kernel == stride {
        return pool2d_tiled(x, kernel, ho, wo, kind);
    }
    pool2d_by_offsets(x, kernel, stride, ho, wo, kind)
}

/// Windows that tile the input (`kernel == stride`): drop the rows and columns no window
/// reaches, then reduce over `[B, C, Ho, k, Wo, k]`.
///
/// candle's own `max_pool2d` backward scales the gradient by `1 / kernel^2` (candle-core
/// 0.11.1, `backprop.rs`, `Op::MaxPool2D`), so max uses a reduction, whose backward is right.
/// candle's `avg_pool2d` backward is right, but only for windows that tile the input exactly.
fn pool2d_tiled(x: &Tensor, kernel: usize, ho: usize, wo: usize, kind: Pool) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let x = if ho * kernel != h || wo * kernel != w {
        x.narrow(2, 0, ho * kernel)?
            .narrow(3, 0, wo * kernel)?
            .contiguous()?
    } else {
        x.clone()
    };
    match kind {
        Pool::Max => x.reshape((b, c, ho, kernel, wo, kernel))?.max(5)?.max(3),
        Pool::Avg => x.avg_pool2d_with_stride(kernel, kernel),
    }
}

/// Overlapping or gapped windows: combine the `kernel * kernel` strided sub-grids
/// `x[:, :, di::stride, dj::stride]`, each gathered with `index_select` (differentiable).
fn pool2d_by_offsets(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    ho: usize,
    wo: usize,
    kind: Pool,
) -> Result<Tensor> {
    let grid = |offset: usize, n: usize| {
        let idx: Vec<u32> = (0..n).map(|i| (offset + i * stride) as u32).collect();
        Tensor::from_vec(idx, n, x.device())
    };
    let mut acc: Option<Tensor> = None;
    for di in 0..kernel {
        let rows = x.index_select(&grid(di, ho)?, 2)?;
        for dj in 0..kernel {
            let win = rows.index_select(&grid(dj, wo)?, 3)?;
            acc = Some(match (acc, kind) {
                (None, _) => win,
                (Some(a), Pool::Max) => a.maximum(&win)?,
                (Some(a), Pool::Avg) => (a + win)?,
            });
        }
    }
    let acc = acc.expect("kernel >= 1");
    match kind {
        Pool::Max => Ok(acc),
        Pool::Avg => acc / (kernel * kernel) as f64,
    }
}

/// The tensors of one `nn.BatchNorm2d`.
pub(crate) struct BatchNormVars<'a> {
    pub weight: &'a Tensor,
    pub bias: &'a Tensor,
    pub running_mean: &'a Var,
    pub running_var: &'a Var,
    /// Training-mode passes so far (PyTorch's `num_batches_tracked`), an `i64` scalar.
    pub num_batches_tracked: &'a Var,
}

/// `nn.BatchNorm2d` forward. In training, normalises with the batch mean and biased variance
/// over `(N, H, W)` and moves the running statistics towards the batch mean and *unbiased*
/// variance (`new = (1 - momentum) * old + momentum * batch`) and counts the pass in
/// `num_batches_tracked`; in evaluation, normalises with the running statistics and leaves
/// them alone. With `relu`, a ReLU follows (fused into the kernels' pass on the CPU).
pub(crate) fn batch_norm2d(
    x: &Tensor,
    v: &BatchNormVars<'_>,
    (eps, momentum): (f64, f64),
    train: bool,
    relu: bool,
) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let bshape = (1, c, 1, 1);
    let xhat = if train {
        let n = b * h * w;
        if n < 2 {
            bail!("batch_norm2d: expected more than 1 value per channel when training, got input [{b}, {c}, {h}, {w}]")
        }
        let count = v.num_batches_tracked;
        count.set(&count.as_tensor().affine(1.0, 1.0)?)?;
        if super::kernels::supported(x) {
            let (y, stats) =
                super::kernels::batch_norm::batch_norm_train(x, v.weight, v.bias, (eps, relu))?;
            let dev = x.device();
            let mean = Tensor::from_vec(stats.mean, c, dev)?;
            let unbiased = (Tensor::from_vec(stats.var, c, dev)? * (n as f64 / (n - 1) as f64))?;
            update_running(v.running_mean, &mean, momentum)?;
            update_running(v.running_var, &unbiased, momentum)?;
            return Ok(y);
        }
        let mean = x.mean_keepdim((0, 2, 3))?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim((0, 2, 3))?;
        let xhat = centered.broadcast_div(&(&var + eps)?.sqrt()?)?;

        let mean = mean.detach().reshape(c)?;
        let unbiased = (var.detach().reshape(c)? * (n as f64 / (n - 1) as f64))?;
        update_running(v.running_mean, &mean, momentum)?;
        update_running(v.running_var, &unbiased, momentum)?;
        xhat
    } else if super::kernels::supported(x) {
        // One pass: x * (w / std) + (b - mean * w / std), the per-channel factors from candle
        // ops on [C] so that gradients reach the weight and bias.
        let mean = v.running_mean.as_tensor().detach();
        let std = (v.running_var.as_tensor().detach() + eps)?.sqrt()?;
        let scale = v.weight.div(&std)?;
        let shift = v.bias.sub(&mean.mul(&scale)?)?;
        return super::kernels::batch_norm::channel_affine(x, &scale, &shift, relu);
    } else {
        let mean = v.running_mean.as_tensor().detach().reshape(bshape)?;
        let std = (v.running_var.as_tensor().detach().reshape(bshape)? + eps)?.sqrt()?;
        x.broadcast_sub(&mean)?.broadcast_div(&std)?
    };
    let y = xhat
        .broadcast_mul(&v.weight.reshape(bshape)?)?
        .broadcast_add(&v.bias.reshape(bshape)?)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// `stat = (1 - momentum) * stat + momentum * batch` (PyTorch's running statistics).
fn update_running(stat: &Var, batch: &Tensor, momentum: f64) -> Result<()> {
    let new = ((stat.as_tensor().detach() * (1.0 - momentum))? + (batch * momentum)?)?;
    stat.set(&new)
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by
/// `1 / (1 - p)`. The mask is drawn on the CPU from `rng`, so runs are reproducible.
pub(crate) fn dropout(x: &Tensor, p: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), &candle_core::Device::Cpu)?
        .to_dtype(x.dtype())?
        .to_device(x.device())?;
    x.mul(&mask)
}

/// Asserts `x` is a float tensor; candle's own errors for integer inputs are obscure.
pub(crate) fn check_float(x: &Tensor) -> Result<()> {
    if !matches!(
        x.dtype(),
        DType::F32 | DType::F64 | DType::F16 | DType::BF16
    ) {
        bail!("model input must be a float tensor, got {:?}", x.dtype())
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    fn t(v: &[f32], shape: (usize, usize, usize, usize)) -> Tensor {
        Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
    }

    fn flat(x: &Tensor) -> Vec<f32> {
        x.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn random(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn close(a: &[f32], b: &[f32], tol: f32, msg: &str) {
        assert_eq!(a.len(), b.len(), "{msg}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "{msg}: element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn pooling_matches_hand_computation() {
        // 1x1x3x3 input 1..9.
        let x = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], (1, 1, 3, 3));
        // torch.nn.MaxPool2d(3, 2, 1)(torch.arange(1., 10.).view(1, 1, 3, 3)) -> [[5, 6], [8, 9]]
        let y = max_pool2d(&x, 3, 2, 1).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        assert_eq!(flat(&y), vec![5., 6., 8., 9.]);
        // torch.nn.AvgPool2d(3, 2, 1)(same) -> [[12/9, 16/9], [24/9, 28/9]] (zeros counted)
        let y = avg_pool2d(&x, 3, 2, 1).unwrap();
        close(
            &flat(&y),
            &[12. / 9., 16. / 9., 24. / 9., 28. / 9.],
            1e-6,
            "avg k3 s2 p1",
        );
        // Padding with negatives: max over a window holding only negative values and padding.
        let neg = (x.clone() * -1.0).unwrap();
        let y = max_pool2d(&neg, 2, 2, 1).unwrap();
        // Padded 5x5 windows (k2 s2) -> 2x2 of real corners: [-1, -2/-3 max, ...].
        assert_eq!(flat(&y), vec![-1., -2., -4., -5.]);
        // k2 s2 on an odd size drops the last row and column (floor mode).
        let y = max_pool2d(&x, 2, 2, 0).unwrap();
        assert_eq!(flat(&y), vec![5.]);
        let y = avg_pool2d(&x, 2, 1, 0).unwrap();
        assert_eq!(flat(&y), vec![3., 4., 6., 7.]);
    }

    #[test]
    fn offset_pooling_agrees_with_tiled_pooling_forward_and_backward() {
        for (kind, name) in [(Pool::Max, "max"), (Pool::Avg, "avg")] {
            for (k, size) in [(2, 6), (3, 7), (2, 5)] {
                let msg = format!("{name} k{k} size {size}");
                let x = Var::from_tensor(&random((2, 3, size, size), k as u64)).unwrap();
                let ho = (size - k) / k + 1;
                let r = random((2, 3, ho, ho), 99);
                let native = pool2d_tiled(x.as_tensor(), k, ho, ho, kind).unwrap();
                let offsets = pool2d_by_offsets(x.as_tensor(), k, k, ho, ho, kind).unwrap();
                close(&flat(&native), &flat(&offsets), 1e-6, &msg);
                let g1 = (native * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let g2 = (offsets * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                close(
                    &flat(g1.get(&x).unwrap()),
                    &flat(g2.get(&x).unwrap()),
                    1e-6,
                    &msg,
                );
            }
        }
    }

    #[test]
    fn pool_gradients_match_finite_differences() {
        type PoolFn = fn(&Tensor, usize, usize, usize) -> Result<Tensor>;
        let pools: [(&str, PoolFn); 2] = [("max", max_pool2d), ("avg", avg_pool2d)];
        // (kernel, stride, padding): overlapping, tiling, tiling with a dropped row, gapped.
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (2, 2, 1), (1, 2, 0)] {
            for (name, f) in pools {
                let msg = format!("{name} k{k} s{s} p{p}");
                let x0 = random((1, 2, 5, 5), 3);
                let o = (5 + 2 * p - k) / s + 1;
                let r = random((1, 2, o, o), 4);
                let loss = |x: &Tensor| (f(x, k, s, p).unwrap() * &r).unwrap().sum_all().unwrap();
                let x = Var::from_tensor(&x0).unwrap();
                let grads = loss(x.as_tensor()).backward().unwrap();
                let g = flat(grads.get(&x).unwrap());
                let base = flat(&x0);
                let h = 1e-3;
                let at = |i: usize, d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    let t = Tensor::from_vec(v, x0.shape(), &Device::Cpu).unwrap();
                    loss(&t).to_scalar::<f32>().unwrap()
                };
                let numeric: Vec<f32> = (0..base.len())
                    .map(|i| (at(i, h) - at(i, -h)) / (2.0 * h))
                    .collect();
                close(&g, &numeric, 2e-3, &msg);
            }
        }
    }

    #[test]
    fn batch_norm_train_normalises_and_updates_running_stats() {
        // One channel, values 1..4 as [2, 1, 1, 2]: mean 2.5, biased var 1.25, unbiased 5/3.
        let x = t(&[1., 2., 3., 4.], (2, 1, 1, 2));
        let dev = Device::Cpu;
        let weight = Var::new(&[2f32], &dev).unwrap();
        let bias = Var::new(&[0.5f32], &dev).unwrap();
        let running_mean = Var::new(&[0f32], &dev).unwrap();
        let running_var = Var::new(&[1f32], &dev).unwrap();
        let count = Var::from_tensor(&Tensor::new(0i64, &dev).unwrap()).unwrap();
        let vars = BatchNormVars {
            weight: &weight,
            bias: &bias,
            running_mean: &running_mean,
            running_var: &running_var,
            num_batches_tracked: &count,
        };
        let y = batch_norm2d(&x, &vars, (1e-5, 0.1), true, false).unwrap();
        let s = (1.25f32 + 1e-5).sqrt();
        let want: Vec<f32> = [1., 2., 3., 4.]
            .iter()
            .map(|v: &f32| 2.0 * (v - 2.5) / s + 0.5)
            .collect();
        close(&flat(&y), &want, 1e-5, "train output");
        // torch: bn.running_mean == 0.9*0 + 0.1*2.5; bn.running_var == 0.9*1 + 0.1*(5/3)
        close(
            &flat(running_mean.as_tensor()),
            &[0.25],
            1e-6,
            "running mean",
        );
        close(
            &flat(running_var.as_tensor()),
            &[0.9 + 0.5 / 3.0],
            1e-6,
            "running var",
        );

        let y = batch_norm2d(&x, &vars, (1e-5, 0.1), false, false).unwrap();
        let s = (0.9f32 + 0.5 / 3.0 + 1e-5).sqrt();
        let want: Vec<f32> = [1., 2., 3., 4.]
            .iter()
            .map(|v: &f32| 2.0 * (v - 0.25) / s + 0.5)
            .collect();
        close(&flat(&y), &want, 1e-5, "eval output");
        // torch: bn.num_batches_tracked == 1 after one training-mode call, unchanged by eval.
        assert_eq!(count.as_tensor().to_scalar::<i64>().unwrap(), 1);
        close(
            &flat(running_mean.as_tensor()),
            &[0.25],
            0.0,
            "eval keeps mean",
        );

        let one = t(&[1.], (1, 1, 1, 1));
        assert!(batch_norm2d(&one, &vars, (1e-5, 0.1), true, false).is_err());
    }

    #[test]
    fn dropout_scales_survivors_and_is_reproducible() {
        let x = Tensor::ones((100, 100), DType::F32, &Device::Cpu).unwrap();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            flat(&dropout(&x, 0.3, &mut rng).unwrap())
        };
        let a = run(1);
        assert_eq!(a, run(1), "same seed, same mask");
        assert_ne!(a, run(2), "different seed, different mask");
        let zeros = a.iter().filter(|v| **v == 0.0).count() as f64 / a.len() as f64;
        assert!((zeros - 0.3).abs() < 0.03, "dropped fraction {zeros}");
        assert!(a.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.7).abs() < 1e-6));
    }
}
