//! Every kernel against candle's reference ops (forward and gradients), on odd sizes, strides,
//! padding and batch 1.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn flat(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1().unwrap()
}

fn close(a: &Tensor, b: &Tensor, tol: f32, msg: &str) {
    assert_eq!(a.dims(), b.dims(), "{msg}: shapes");
    let (a, b) = (flat(a), flat(b));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let scale = 1f32.max(x.abs()).max(y.abs());
        assert!(
            (x - y).abs() <= tol * scale,
            "{msg}: element {i}: {x} vs {y}"
        );
    }
}

/// `sum(f(x) * r)` with a fixed random `r`, so every output position gets its own gradient.
fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
    let r = random(y.dims(), seed);
    (y * r).unwrap().sum_all().unwrap()
}

#[test]
fn conv2d_matches_candle_forward_and_backward() {
    // (batch, in, h, w, out, kernel, stride, padding, bias)
    let cases = [
        (1, 1, 5, 5, 2, 3, 1, 0, true),
        (2, 3, 7, 6, 4, 3, 2, 1, true),
        (3, 2, 9, 9, 5, 5, 1, 2, false),
        (1, 4, 6, 8, 3, 1, 1, 0, true),
        (5, 3, 4, 4, 8, 3, 1, 1, true),
        (16, 3, 2, 2, 4, 3, 1, 1, true),
        (9, 2, 3, 3, 3, 3, 1, 1, false),
        (2, 2, 8, 7, 3, 3, 3, 2, true),
        (4, 6, 12, 12, 6, 5, 1, 0, true),
        (8, 1, 28, 28, 6, 5, 1, 0, true),
        // Winograd (3x3, stride 1, >= 16 channels): odd sizes, padding 0-2, 1x1 maps, batch 1,
        // a batch that does not divide into chunks, and fewer output than input channels
        // (then the input gradient goes through col2im).
        (1, 16, 5, 5, 16, 3, 1, 1, true),
        (3, 17, 7, 6, 18, 3, 1, 0, true),
        (2, 16, 1, 1, 20, 3, 1, 1, false),
        (5, 24, 4, 4, 16, 3, 1, 2, true),
        (13, 20, 2, 3, 24, 3, 1, 1, true),
        (2, 32, 9, 11, 8, 3, 1, 1, true),
        // F(4x4, 3x3) (maps of at least 4x4 outputs): whole tiles, ragged tiles, padding 0-2.
        (4, 16, 16, 16, 32, 3, 1, 1, true),
        (1, 16, 6, 6, 16, 3, 1, 0, true),
        (3, 20, 10, 13, 17, 3, 1, 0, false),
        (2, 16, 5, 7, 24, 3, 1, 2, true),
    ];
    for (i, &(b, c, h, w, o, k, s, p, with_bias)) in cases.iter().enumerate() {
        let msg = format!("case {i}: b{b} c{c} {h}x{w} o{o} k{k} s{s} p{p} bias {with_bias}");
        let x = Var::from_tensor(&random(&[b, c, h, w], i as u64)).unwrap();
        let wt = Var::from_tensor(&random(&[o, c, k, k], 100 + i as u64)).unwrap();
        let bias = Var::from_tensor(&random(&[o], 200 + i as u64)).unwrap();
        let bias_t = with_bias.then(|| bias.as_tensor().clone());
        let ours = conv::conv2d(
            x.as_tensor(),
            wt.as_tensor(),
            bias_t.as_ref(),
            (s, p),
            false,
        )
        .unwrap();
        let mut theirs = x.as_tensor().conv2d(wt.as_tensor(), p, s, 1, 1).unwrap();
        if with_bias {
            theirs = theirs
                .broadcast_add(&bias.as_tensor().reshape((1, o, 1, 1)).unwrap())
                .unwrap();
        }
        // F(4x4, 3x3) rounds more than direct summation (its transforms scale values by up to
        // 8): up to 6e-5 relative seen on these cases, against under 1e-5 for F(2x2, 3x3).
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let f4 = k == 3 && s == 1 && c >= 16 && ho >= 4 && wo >= 4;
        let tol = if f4 { 1e-4 } else { 1e-5 };
        close(&ours, &theirs, tol, &format!("{msg}: forward"));
        let g1 = weighted_sum(&ours, 7).backward().unwrap();
        let mut vars = vec![("x", &x), ("w", &wt)];
        if with_bias {
            vars.push(("bias", &bias));
        }
        // candle 0.11's own conv2d backward fails when the stride does not divide the padded
        // size (its transposed convolution comes out one column short): finite differences
        // then, which are exact up to rounding since the loss is linear in each argument.
        match weighted_sum(&theirs, 7).backward() {
            Ok(g2) => {
                for (name, v) in vars {
                    close(
                        g1.get(v).unwrap(),
                        g2.get(v).unwrap(),
                        1e-4,
                        &format!("{msg}: grad {name}"),
                    );
                }
            }
            Err(_) => {
                let loss = |xv: &Tensor, wv: &Tensor, bv: &Tensor| {
                    let bv = with_bias.then_some(bv);
                    let y = conv::conv2d(xv, wv, bv, (s, p), false).unwrap();
                    weighted_sum(&y, 7).to_scalar::<f32>().unwrap()
                };
                let (x0, w0, b0) = (x.as_tensor(), wt.as_tensor(), bias.as_tensor());
                for (arg, (name, v)) in vars.into_iter().enumerate() {
                    let base = flat(v.as_tensor());
                    let numeric: Vec<f32> = (0..base.len())
                        .map(|j| {
                            let at = |d: f32| {
                                let mut vals = base.clone();
                                vals[j] += d;
                                let t = Tensor::from_vec(vals, v.dims(), &Device::Cpu).unwrap();
                                match arg {
                                    0 => loss(&t, w0, b0),
                                    1 => loss(x0, &t, b0),
                                    _ => loss(x0, w0, &t),
                                }
                            };
                            (at(0.01) - at(-0.01)) / 0.02
                        })
                        .collect();
                    let numeric = Tensor::from_vec(numeric, v.dims(), &Device::Cpu).unwrap();
                    close(
                        g1.get(v).unwrap(),
                        &numeric,
                        2e-3,
                        &format!("{msg}: grad {name} (finite differences)"),
                    );
                }
            }
        }
    }
}

#[test]
fn conv2d_computes_no_input_gradient_for_data() {
    let x = random(&[3, 2, 6, 6], 1);
    let wt = Var::from_tensor(&random(&[4, 2, 3, 3], 2)).unwrap();
    let y = conv::conv2d(&x, wt.as_tensor(), None, (1, 1), false).unwrap();
    let grads = weighted_sum(&y, 3).backward().unwrap();
    assert!(grads.get(&x).is_none(), "the data batch needs no gradient");
    let reference = x.conv2d(wt.as_tensor(), 1, 1, 1, 1).unwrap();
    let g2 = weighted_sum(&reference, 3).backward().unwrap();
    close(
        grads.get(&wt).unwrap(),
        g2.get(&wt).unwrap(),
        1e-4,
        "weight grad",
    );
}

#[test]
fn conv2d_is_deterministic() {
    // im2col, then Winograd.
    for (c, o) in [(3, 7), (16, 17)] {
        let x = Var::from_tensor(&random(&[13, c, 5, 5], 1)).unwrap();
        let wt = Var::from_tensor(&random(&[o, c, 3, 3], 2)).unwrap();
        let run = || {
            let y = conv::conv2d(x.as_tensor(), wt.as_tensor(), None, (1, 1), false).unwrap();
            let g = weighted_sum(&y, 3).backward().unwrap();
            (
                flat(&y),
                flat(g.get(&x).unwrap()),
                flat(g.get(&wt).unwrap()),
            )
        };
        let first = run();
        let second = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        assert!(
            first == second,
            "c{c} o{o}: 1 thread and the default pool differ"
        );
    }
}

#[test]
fn max_pool_matches_finite_differences_and_forward() {
    // (batch, channels, h, w, kernel, stride, padding)
    let cases = [
        (1, 1, 4, 4, 2, 2, 0),
        (2, 3, 5, 7, 2, 2, 0),
        (1, 2, 5, 5, 3, 2, 1),
        (3, 2, 6, 5, 3, 1, 1),
        (2, 1, 7, 7, 2, 3, 1),
        (1, 1, 5, 5, 1, 2, 0),
    ];
    for (i, &(b, c, h, w, k, s, p)) in cases.iter().enumerate() {
        let msg = format!("case {i}: b{b} c{c} {h}x{w} k{k} s{s} p{p}");
        let x0 = random(&[b, c, h, w], i as u64);
        let y = pool::max_pool2d(&x0, k, s, p).unwrap();
        // Forward against a direct computation.
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        assert_eq!(y.dims(), &[b, c, ho, wo], "{msg}");
        let xv = flat(&x0);
        let mut want = Vec::new();
        for plane in 0..b * c {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut m = f32::NEG_INFINITY;
                    for iy in 0..k {
                        for ix in 0..k {
                            let (yy, xx) = (
                                (oy * s + iy) as isize - p as isize,
                                (ox * s + ix) as isize - p as isize,
                            );
                            if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                                m = m.max(xv[plane * h * w + yy as usize * w + xx as usize]);
                            }
                        }
                    }
                    want.push(m);
                }
            }
        }
        assert_eq!(flat(&y), want, "{msg}: forward");
        // Gradient against central differences.
        let r = random(&[b, c, ho, wo], 99);
        let loss = |x: &Tensor| {
            (pool::max_pool2d(x, k, s, p).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let x = Var::from_tensor(&x0).unwrap();
        let l = loss(x.as_tensor());
        // The first backward pass uses the forward pass's argmax, a second one (same graph)
        // recomputes it: both must agree.
        let g = flat(l.backward().unwrap().get(&x).unwrap());
        let again = flat(l.backward().unwrap().get(&x).unwrap());
        assert_eq!(g, again, "{msg}: kept and recomputed argmax");
        let hstep = 1e-3;
        for j in 0..xv.len() {
            let at = |d: f32| {
                let mut v = xv.clone();
                v[j] += d;
                let t = Tensor::from_vec(v, x0.shape(), &Device::Cpu).unwrap();
                loss(&t).to_scalar::<f32>().unwrap()
            };
            let numeric = (at(hstep) - at(-hstep)) / (2.0 * hstep);
            assert!(
                (numeric - g[j]).abs() < 2e-3,
                "{msg}: grad {j}: {} vs {numeric}",
                g[j]
            );
        }
    }
}

#[test]
fn max_pool_sends_ties_to_the_first_maximum() {
    let x = Var::from_tensor(
        &Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let y = pool::max_pool2d(x.as_tensor(), 2, 2, 0).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(flat(g.get(&x).unwrap()), vec![1.0, 0.0, 0.0, 0.0]);
}

fn bits(x: &Tensor) -> Vec<u32> {
    flat(x).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn max_pool_values_agree_with_and_without_kept_indices() {
    // Evaluation computes the values alone; training also keeps each window's first maximum.
    // Both must give the same bits, NaN, signed zeros and ties included.
    let mut x = flat(&random(&[2, 3, 9, 8], 11));
    for (i, v) in [
        (0, f32::NAN),
        (1, -0.0),
        (8, 0.0),
        (9, 0.0),
        (40, f32::NAN),
        (41, f32::NAN),
    ] {
        x[i] = v;
    }
    let x = Tensor::from_vec(x, (2, 3, 9, 8), &Device::Cpu).unwrap();
    for (k, s, p) in [(2, 2, 0), (3, 2, 1), (2, 1, 0), (3, 3, 1)] {
        let plain = pool::max_pool2d(&x, k, s, p).unwrap();
        let v = Var::from_tensor(&x).unwrap();
        let kept = pool::max_pool2d(v.as_tensor(), k, s, p).unwrap();
        assert_eq!(bits(&plain), bits(&kept), "k{k} s{s} p{p}");
        // The gradient lands on exactly one input per window, holding the pooled value.
        let g = kept.sum_all().unwrap().backward().unwrap();
        let g = flat(g.get(&v).unwrap());
        let hit: usize = g.iter().map(|&d| d as usize).sum();
        assert_eq!(hit, kept.elem_count(), "k{k} s{s} p{p}");
    }
    // The 2x2 window [NaN, -0; 0, 0] pools to NaN, whose gradient is the first input's.
    let v = Var::from_tensor(&x).unwrap();
    let y = pool::max_pool2d(v.as_tensor(), 2, 2, 0).unwrap();
    let yv = flat(&y);
    assert!(yv[0].is_nan());
    let g = flat(y.sum_all().unwrap().backward().unwrap().get(&v).unwrap());
    assert_eq!(&g[..2], &[1.0, 0.0]);
    assert_eq!(g[8], 0.0);
    // x[40] and x[41] are the top row of window (row 5, col 0..1) of a 4-wide output: the
    // first NaN takes the gradient.
    assert_eq!((g[40], g[41]), (1.0, 0.0));
    // Among equal zeros the first wins, sign and gradient both.
    for (first, second) in [(-0.0f32, 0.0f32), (0.0, -0.0)] {
        let z = Tensor::from_vec(
            vec![first, second, second, first],
            (1, 1, 2, 2),
            &Device::Cpu,
        )
        .unwrap();
        let zv = Var::from_tensor(&z).unwrap();
        for t in [&z, zv.as_tensor()] {
            let y = pool::max_pool2d(t, 2, 2, 0).unwrap();
            assert_eq!(bits(&y), vec![first.to_bits()]);
        }
        let y = pool::max_pool2d(zv.as_tensor(), 2, 2, 0).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(flat(g.get(&zv).unwrap()), vec![1.0, 0.0, 0.0, 0.0]);
    }
}

#[test]
fn relu_matches_candle() {
    for (i, shape) in [vec![1, 1, 3, 3], vec![2, 3, 5, 7], vec![64, 16, 8, 8]]
        .into_iter()
        .enumerate()
    {
        let x = Var::from_tensor(&random(&shape, i as u64)).unwrap();
        let ours = relu::relu(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().relu().unwrap();
        close(&ours, &theirs, 0.0, "relu forward");
        let g1 = weighted_sum(&ours, 5).backward().unwrap();
        let g2 = weighted_sum(&theirs, 5).backward().unwrap();
        close(g1.get(&x).unwrap(), g2.get(&x).unwrap(), 0.0, "relu grad");
    }
    let nan = Tensor::new(&[f32::NAN, -1.0, 2.0], &Device::Cpu).unwrap();
    let y = flat(&relu::relu(&nan).unwrap());
    assert!(y[0].is_nan() && y[1] == 0.0 && y[2] == 2.0);
}

/// Training-mode batch norm from candle ops (the reference the kernel replaces).
fn batch_norm_reference(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
    let c = x.dim(1).unwrap();
    let mean = x.mean_keepdim((0, 2, 3)).unwrap();
    let centered = x.broadcast_sub(&mean).unwrap();
    let var = centered.sqr().unwrap().mean_keepdim((0, 2, 3)).unwrap();
    let xhat = centered
        .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
        .unwrap();
    xhat.broadcast_mul(&w.reshape((1, c, 1, 1)).unwrap())
        .unwrap()
        .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
        .unwrap()
}

#[test]
fn batch_norm_matches_candle_forward_and_backward() {
    for (i, shape) in [
        vec![1, 2, 3, 3],
        vec![2, 3, 5, 7],
        vec![7, 4, 1, 1],
        vec![16, 8, 4, 4],
    ]
    .into_iter()
    .enumerate()
    {
        let msg = format!("shape {shape:?}");
        let c = shape[1];
        // Offset and scale the input so that the statistics matter.
        let x0 = ((random(&shape, i as u64) * 3.0).unwrap() + 0.5).unwrap();
        let x = Var::from_tensor(&x0).unwrap();
        let w = Var::from_tensor(&random(&[c], 10 + i as u64)).unwrap();
        let b = Var::from_tensor(&random(&[c], 20 + i as u64)).unwrap();
        let (ours, stats) = batch_norm::batch_norm_train(
            x.as_tensor(),
            w.as_tensor(),
            b.as_tensor(),
            (1e-5, false),
        )
        .unwrap();
        let theirs = batch_norm_reference(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5);
        close(&ours, &theirs, 1e-5, &format!("{msg}: forward"));
        let mean = flat(&x0.mean_keepdim((0, 2, 3)).unwrap());
        for (a, e) in stats.mean.iter().zip(&mean) {
            assert!((a - e).abs() < 1e-5, "{msg}: mean {a} vs {e}");
        }
        assert_eq!(stats.var.len(), c);
        let g1 = weighted_sum(&ours, 3).backward().unwrap();
        let g2 = weighted_sum(&theirs, 3).backward().unwrap();
        for (name, v) in [("x", &x), ("weight", &w), ("bias", &b)] {
            close(
                g1.get(v).unwrap(),
                g2.get(v).unwrap(),
                1e-4,
                &format!("{msg}: grad {name}"),
            );
        }
    }
}

#[test]
fn channel_affine_matches_candle_forward_and_backward() {
    for (i, shape) in [vec![1, 3, 1, 1], vec![3, 5, 4, 7]].into_iter().enumerate() {
        let c = shape[1];
        let x = Var::from_tensor(&random(&shape, i as u64)).unwrap();
        let s = Var::from_tensor(&random(&[c], 30 + i as u64)).unwrap();
        let t = Var::from_tensor(&random(&[c], 40 + i as u64)).unwrap();
        let ours =
            batch_norm::channel_affine(x.as_tensor(), s.as_tensor(), t.as_tensor(), false).unwrap();
        let theirs = x
            .as_tensor()
            .broadcast_mul(&s.as_tensor().reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&t.as_tensor().reshape((1, c, 1, 1)).unwrap())
            .unwrap();
        close(&ours, &theirs, 1e-6, "channel affine forward");
        let g1 = weighted_sum(&ours, 9).backward().unwrap();
        let g2 = weighted_sum(&theirs, 9).backward().unwrap();
        for (name, v) in [("x", &x), ("scale", &s), ("shift", &t)] {
            close(
                g1.get(v).unwrap(),
                g2.get(v).unwrap(),
                1e-5,
                &format!("channel affine grad {name}"),
            );
        }
    }
}

/// `F.gelu(x, approximate)` and its gradient for `dy`, from `tests/fixtures/gelu_goldens.json`
/// (written by `scripts/golden_gelu.py`, the command in its header), against the kernel and
/// candle's `gelu_erf` / `gelu`.
#[test]
fn gelu_matches_torch() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gelu_goldens.json"
    ));
    let golden: serde_json::Value = serde_json::from_str(text).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let xs = floats(&golden["x"]);
    let dys = floats(&golden["dy"]);
    let n = xs.len();
    let dy = Tensor::from_vec(dys, n, &Device::Cpu).unwrap();
    for (name, approx) in [
        ("none", crate::graph::GeluApprox::None),
        ("tanh", crate::graph::GeluApprox::Tanh),
    ] {
        let want_y = Tensor::from_vec(floats(&golden[name]["y"]), n, &Device::Cpu).unwrap();
        let want_dx = Tensor::from_vec(floats(&golden[name]["dx"]), n, &Device::Cpu).unwrap();
        let x = Var::from_vec(xs.clone(), n, &Device::Cpu).unwrap();
        let y = gelu::gelu(x.as_tensor(), approx).unwrap();
        close(&y, &want_y, 2e-6, &format!("{name}: forward"));
        let dx = (y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = dx.get(x.as_tensor()).unwrap();
        close(dx, &want_dx, 2e-6, &format!("{name}: gradient"));
        // candle's own op (the fallback off the CPU) agrees less closely: its backward
        // rounds 1/sqrt(2 pi) to 0.398942.
        let reference = match approx {
            crate::graph::GeluApprox::None => x.as_tensor().gelu_erf().unwrap(),
            crate::graph::GeluApprox::Tanh => x.as_tensor().gelu().unwrap(),
        };
        close(
            &reference,
            &want_y,
            1e-5,
            &format!("{name}: candle forward"),
        );
    }
}

/// A fused op's forward pass and gradients, for comparing bit for bit.
type Run = (Vec<u32>, Vec<Vec<u32>>);

/// `f(vars)` and the gradient of a weighted sum of it for every var, as bits (empty for a var
/// that `f` does not read).
fn run_bits(vars: &[Var], f: impl Fn(&[Var]) -> Tensor) -> Run {
    let y = f(vars);
    let g = weighted_sum(&y, 3).backward().unwrap();
    let grads = vars
        .iter()
        .map(|v| g.get(v).map(bits).unwrap_or_default())
        .collect();
    (bits(&y), grads)
}

#[test]
fn fused_relu_gives_the_bits_of_the_separate_relu() {
    // Both conv paths (im2col and Winograd, with and without bias) and batch norm in training
    // and evaluation: forward values and every gradient, bit for bit.
    for (shape, o, k, pad, bias) in [
        ([3, 2, 9, 9], 5, 5, 2, true),
        ([2, 3, 8, 8], 4, 3, 1, false),
        ([2, 16, 8, 8], 16, 3, 1, true),
        ([3, 16, 6, 6], 17, 3, 0, false),
    ] {
        let c = shape[1];
        let vars = [
            Var::from_tensor(&random(&shape, 1)).unwrap(),
            Var::from_tensor(&random(&[o, c, k, k], 2)).unwrap(),
            Var::from_tensor(&random(&[o], 3)).unwrap(),
        ];
        let conv = |v: &[Var], relu: bool| {
            let b = bias.then(|| v[2].as_tensor().clone());
            conv::conv2d(
                v[0].as_tensor(),
                v[1].as_tensor(),
                b.as_ref(),
                (1, pad),
                relu,
            )
            .unwrap()
        };
        let fused = run_bits(&vars, |v| conv(v, true));
        let apart = run_bits(&vars, |v| relu::relu(&conv(v, false)).unwrap());
        assert_eq!(
            fused, apart,
            "conv {shape:?} -> {o} k{k} p{pad} bias {bias}"
        );
    }
    let shape = [4, 3, 5, 6];
    let vars = [
        Var::from_tensor(&random(&shape, 4)).unwrap(),
        Var::from_tensor(&random(&[3], 5)).unwrap(),
        Var::from_tensor(&random(&[3], 6)).unwrap(),
    ];
    let train = |v: &[Var], relu: bool| {
        let (x, w, b) = (v[0].as_tensor(), v[1].as_tensor(), v[2].as_tensor());
        batch_norm::batch_norm_train(x, w, b, (1e-5, relu))
            .unwrap()
            .0
    };
    let fused = run_bits(&vars, |v| train(v, true));
    let apart = run_bits(&vars, |v| relu::relu(&train(v, false)).unwrap());
    assert_eq!(fused, apart, "batch norm, training");
    let eval = |v: &[Var], relu: bool| {
        let (x, s, t) = (v[0].as_tensor(), v[1].as_tensor(), v[2].as_tensor());
        batch_norm::channel_affine(x, s, t, relu).unwrap()
    };
    let fused = run_bits(&vars, |v| eval(v, true));
    let apart = run_bits(&vars, |v| relu::relu(&eval(v, false)).unwrap());
    assert_eq!(fused, apart, "batch norm, evaluation");
    // And the ReLU did something: some outputs are zero, some gradients masked.
    assert!(fused.0.contains(&0) && fused.0.iter().any(|&b| f32::from_bits(b) > 0.0));
}
