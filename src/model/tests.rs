use super::*;
use candle_core::DType;
use candle_nn::Optimizer;
use rand::Rng;

fn layer(name: &str, op: Op, inputs: &[NodeRef], shape: &[usize], params: usize) -> Layer {
    Layer {
        name: name.to_string(),
        op,
        inputs: inputs.to_vec(),
        shape: shape.to_vec(),
        params,
        macs: 0,
    }
}

fn conv(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize, bias: bool) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride,
        padding,
        bias,
        init: Init::Default,
    }
}

fn linear(fin: usize, fout: usize) -> Op {
    Op::Linear {
        in_features: fin,
        out_features: fout,
        bias: true,
        init: Init::Default,
    }
}

fn bn(features: usize) -> Op {
    Op::BatchNorm2d {
        features,
        eps: 1e-5,
        momentum: 0.1,
    }
}

use NodeRef::{Input, Layer as L};

/// The seed experiment's MNIST CNN. Shapes and counts from
/// `sum(p.numel() for p in net.parameters())` of the equivalent `nn.Sequential`: 6,422.
fn mnist_cnn() -> Graph {
    let pool = Op::MaxPool2d {
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    Graph {
        input: [1, 28, 28],
        layers: vec![
            layer(
                "conv1",
                conv(1, 6, 5, 1, 0, true),
                &[Input],
                &[6, 24, 24],
                156,
            ),
            layer("relu1", Op::Relu, &[L(0)], &[6, 24, 24], 0),
            layer("pool1", pool.clone(), &[L(1)], &[6, 12, 12], 0),
            layer("conv2", conv(6, 6, 5, 1, 0, true), &[L(2)], &[6, 8, 8], 906),
            layer("relu2", Op::Relu, &[L(3)], &[6, 8, 8], 0),
            layer("pool2", pool, &[L(4)], &[6, 4, 4], 0),
            layer("flatten", Op::Flatten, &[L(5)], &[96], 0),
            layer("fc1", linear(96, 50), &[L(6)], &[50], 4850),
            layer("relu3", Op::Relu, &[L(7)], &[50], 0),
            layer("fc2", linear(50, 10), &[L(8)], &[10], 510),
            layer("log_softmax", Op::LogSoftmax, &[L(9)], &[10], 0),
        ],
    }
}

/// Every op: a residual block with a 1x1 stride-2 projection, overlapping and tiling pools,
/// channel and feature concatenation, dropout.
fn residual_net() -> Graph {
    Graph {
        input: [3, 8, 8],
        layers: vec![
            layer(
                "stem",
                conv(3, 8, 3, 1, 1, false),
                &[Input],
                &[8, 8, 8],
                216,
            ),
            layer("bn1", bn(8), &[L(0)], &[8, 8, 8], 16),
            layer("relu1", Op::Relu, &[L(1)], &[8, 8, 8], 0),
            layer(
                "conv_a",
                conv(8, 16, 3, 2, 1, false),
                &[L(2)],
                &[16, 4, 4],
                1152,
            ),
            layer("bn_a", bn(16), &[L(3)], &[16, 4, 4], 32),
            layer("relu_a", Op::Relu, &[L(4)], &[16, 4, 4], 0),
            layer(
                "proj",
                conv(8, 16, 1, 2, 0, false),
                &[L(2)],
                &[16, 4, 4],
                128,
            ),
            layer("add", Op::Add, &[L(5), L(6)], &[16, 4, 4], 0),
            layer(
                "max",
                Op::MaxPool2d {
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                },
                &[L(7)],
                &[16, 2, 2],
                0,
            ),
            layer(
                "avg",
                Op::AvgPool2d {
                    kernel: 2,
                    stride: 2,
                    padding: 0,
                },
                &[L(7)],
                &[16, 2, 2],
                0,
            ),
            layer("cat", Op::Concat, &[L(8), L(9)], &[32, 2, 2], 0),
            layer(
                "smooth",
                Op::AvgPool2d {
                    kernel: 3,
                    stride: 1,
                    padding: 1,
                },
                &[L(10)],
                &[32, 2, 2],
                0,
            ),
            layer("gap", Op::GlobalAvgPool, &[L(11)], &[32], 0),
            layer("drop", Op::Dropout { p: 0.1 }, &[L(12)], &[32], 0),
            layer("fc_a", linear(32, 10), &[L(13)], &[10], 330),
            layer("id", Op::Identity, &[L(10)], &[32, 2, 2], 0),
            layer("flat", Op::Flatten, &[L(15)], &[128], 0),
            layer("fc_b", linear(128, 4), &[L(16)], &[4], 516),
            layer("cat_f", Op::Concat, &[L(14), L(17)], &[14], 0),
            layer("out", Op::LogSoftmax, &[L(18)], &[14], 0),
        ],
    }
}

fn random_batch(spec: &Graph, batch: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [c, h, w] = spec.input;
    let v: Vec<f32> = (0..batch * c * h * w)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    Tensor::from_vec(v, (batch, c, h, w), &Device::Cpu).unwrap()
}

/// The values as `f32` (a BatchNorm count is an `i64`).
fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn names(vars: &[(String, Var)]) -> Vec<&str> {
    vars.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn param_count_and_names_follow_pytorch() {
    let cases = [
        (
            "mnist cnn",
            mnist_cnn(),
            6422,
            vec![
                "conv1.weight",
                "conv1.bias",
                "conv2.weight",
                "conv2.bias",
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "fc2.bias",
            ],
            vec![],
        ),
        (
            "residual net",
            residual_net(),
            2390,
            vec![
                "stem.weight",
                "bn1.weight",
                "bn1.bias",
                "conv_a.weight",
                "bn_a.weight",
                "bn_a.bias",
                "proj.weight",
                "fc_a.weight",
                "fc_a.bias",
                "fc_b.weight",
                "fc_b.bias",
            ],
            vec![
                "bn1.running_mean",
                "bn1.running_var",
                "bn1.num_batches_tracked",
                "bn_a.running_mean",
                "bn_a.running_var",
                "bn_a.num_batches_tracked",
            ],
        ),
    ];
    for (what, spec, count, params, buffers) in cases {
        let model = Model::new(&spec, 0, &Device::Cpu).unwrap();
        let declared: usize = spec.layers.iter().map(|l| l.params).sum();
        assert_eq!(declared, count, "{what}: declared params");
        assert_eq!(model.param_count(), count, "{what}: built params");
        assert_eq!(names(model.named_parameters()), params, "{what}: names");
        assert_eq!(names(model.named_buffers()), buffers, "{what}: buffers");
        assert_eq!(model.trainable_vars().len(), params.len(), "{what}");
        assert_eq!(
            model.layout(),
            weights::state_layout(&spec),
            "{what}: the layout the check uses is the model's"
        );
    }
    let model = Model::new(&mnist_cnn(), 0, &Device::Cpu).unwrap();
    let dims: Vec<&[usize]> = model.params.iter().map(|(_, v)| v.dims()).collect();
    let want: [&[usize]; 8] = [
        &[6, 1, 5, 5],
        &[6],
        &[6, 6, 5, 5],
        &[6],
        &[50, 96],
        &[50],
        &[10, 50],
        &[10],
    ];
    assert_eq!(dims, want, "PyTorch layouts");
}

#[test]
fn forward_shapes_equal_declared_shapes() {
    for (what, spec) in [("mnist cnn", mnist_cnn()), ("residual net", residual_net())] {
        let model = Model::new(&spec, 1, &Device::Cpu).unwrap();
        for batch in [2, 1] {
            for train in [false, true] {
                let x = random_batch(&spec, batch, 7);
                let outs = model.run(&x, train, true, true).unwrap();
                for (layer, out) in spec.layers.iter().zip(&outs) {
                    let mut want = vec![batch];
                    want.extend(&layer.shape);
                    let got = out.as_ref().expect("kept").dims();
                    assert_eq!(
                        got, want,
                        "{what}: {} (batch {batch}, train {train})",
                        layer.name
                    );
                }
                let y = model.forward(&x, train).unwrap();
                assert_eq!(y.dims(), outs.last().unwrap().as_ref().unwrap().dims());
            }
        }
    }
}

#[test]
fn intermediate_outputs_are_freed_after_their_last_use() {
    let spec = residual_net();
    let model = Model::new(&spec, 1, &Device::Cpu).unwrap();
    let outs = model
        .run(&random_batch(&spec, 2, 0), false, true, false)
        .unwrap();
    let kept: Vec<usize> = (0..outs.len()).filter(|i| outs[*i].is_some()).collect();
    assert_eq!(
        kept,
        vec![spec.layers.len() - 1],
        "only the output survives"
    );
    // An unread branch is dropped right away.
    let mut spec = mnist_cnn();
    spec.layers
        .insert(10, layer("dead", Op::Relu, &[L(9)], &[10], 0));
    spec.layers[10 + 1].inputs = vec![L(9)];
    let frees = frees(&spec.layers);
    assert_eq!(frees[10], vec![L(10)]);
    assert_eq!(frees[11], vec![L(9)]);
    assert_eq!(frees[0], vec![Input]);
}

#[test]
fn wrong_input_shape_is_an_error() {
    let model = Model::new(&mnist_cnn(), 0, &Device::Cpu).unwrap();
    let x = Tensor::zeros((2, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
    let err = model.forward(&x, false).unwrap_err().to_string();
    assert!(err.contains("[batch, 1, 28, 28]"), "{err}");
}

#[test]
fn batch_norm_uses_batch_stats_in_training_and_running_stats_in_eval() {
    let spec = residual_net();
    let model = Model::new(&spec, 3, &Device::Cpu).unwrap();
    let x = random_batch(&spec, 4, 5);
    let buffers =
        |m: &Model| -> Vec<Vec<f32>> { m.named_buffers().iter().map(|(_, v)| flat(v)).collect() };
    let fresh = buffers(&model);
    let eval1 = flat(&model.forward(&x, false).unwrap());
    assert_eq!(buffers(&model), fresh, "eval leaves running stats alone");
    assert_eq!(
        flat(&model.forward(&x, false).unwrap()),
        eval1,
        "eval is deterministic"
    );

    let train = flat(&model.forward(&x, true).unwrap());
    assert_ne!(train, eval1, "train and eval differ");
    let after = buffers(&model);
    for (i, (a, b)) in after.iter().zip(&fresh).enumerate() {
        assert_ne!(a, b, "buffer {} moved", model.named_buffers()[i].0);
    }
    assert_ne!(
        flat(&model.forward(&x, false).unwrap()),
        eval1,
        "eval sees new stats"
    );

    let trainable: Vec<_> = model.trainable_vars().iter().map(|v| v.id()).collect();
    for (name, v) in model.named_buffers() {
        assert!(!trainable.contains(&v.id()), "{name} is not trainable");
    }
}

#[test]
fn conv_then_batch_norm_matches_hand_computation() {
    let spec = Graph {
        input: [1, 3, 3],
        layers: vec![
            layer("c", conv(1, 1, 2, 1, 0, true), &[Input], &[1, 2, 2], 5),
            layer("b", bn(1), &[L(0)], &[1, 2, 2], 2),
        ],
    };
    let model = Model::new(&spec, 0, &Device::Cpu).unwrap();
    let dev = Device::Cpu;
    let (w, b) = ([1.0f32, -1.0, 0.5, 2.0], 0.25f32);
    model.params[0]
        .1
        .set(&Tensor::from_slice(&w, (1, 1, 2, 2), &dev).unwrap())
        .unwrap();
    model.params[1]
        .1
        .set(&Tensor::new(&[b], &dev).unwrap())
        .unwrap();
    let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let x = Tensor::from_slice(&img, (1, 1, 3, 3), &dev).unwrap();
    let conv: Vec<f32> = (0..4)
        .map(|o| {
            let (r, c) = (o / 2, o % 2);
            w[0] * img[r * 3 + c]
                + w[1] * img[r * 3 + c + 1]
                + w[2] * img[(r + 1) * 3 + c]
                + w[3] * img[(r + 1) * 3 + c + 1]
                + b
        })
        .collect();
    // Eval with fresh stats: y = conv / sqrt(1 + eps).
    let y = flat(&model.forward(&x, false).unwrap());
    for (g, c) in y.iter().zip(&conv) {
        assert!((g - c / (1.0f32 + 1e-5).sqrt()).abs() < 1e-4, "{g} vs {c}");
    }
    // Train: (conv - mean) / sqrt(biased var + eps).
    let mean = conv.iter().sum::<f32>() / 4.0;
    let var = conv.iter().map(|c| (c - mean).powi(2)).sum::<f32>() / 4.0;
    let y = flat(&model.forward(&x, true).unwrap());
    for (g, c) in y.iter().zip(&conv) {
        let want = (c - mean) / (var + 1e-5).sqrt();
        assert!((g - want).abs() < 1e-4, "{g} vs {want}");
    }
}

#[test]
fn init_follows_pytorch_bounds_and_is_seeded() {
    let spec = mnist_cnn();
    let model = Model::new(&spec, 42, &Device::Cpu).unwrap();
    let fan_in = |name: &str| match name.split('.').next().unwrap() {
        "conv1" => 25.0,
        "conv2" => 150.0,
        "fc1" => 96.0,
        _ => 50.0,
    };
    for (name, v) in model.named_parameters() {
        let bound = 1.0 / f64::sqrt(fan_in(name));
        let vals = flat(v);
        assert!(
            vals.iter().all(|x| (*x as f64).abs() <= bound),
            "{name} within ±{bound}"
        );
        if vals.len() >= 900 {
            // U(-b, b) has standard deviation b / sqrt(3).
            let n = vals.len() as f64;
            let mean = vals.iter().map(|x| *x as f64).sum::<f64>() / n;
            let std = (vals.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            let want = bound / 3f64.sqrt();
            assert!(
                (std / want - 1.0).abs() < 0.08,
                "{name}: std {std}, want {want}"
            );
            assert!(mean.abs() < 0.1 * bound, "{name}: mean {mean}");
        }
    }
    let weights = |seed| -> Vec<Vec<f32>> {
        let m = Model::new(&spec, seed, &Device::Cpu).unwrap();
        m.named_parameters().iter().map(|(_, v)| flat(v)).collect()
    };
    assert_eq!(weights(42), weights(42), "same seed, same weights");
    assert_ne!(
        weights(42),
        weights(43),
        "different seed, different weights"
    );

    let bn = Model::new(&residual_net(), 0, &Device::Cpu).unwrap();
    for (name, v) in bn.named_parameters().iter().chain(bn.named_buffers()) {
        let want = if name.ends_with("running_var")
            || name.starts_with("bn") && name.ends_with("weight")
        {
            Some(1.0)
        } else if name.starts_with("bn") {
            Some(0.0)
        } else {
            None
        };
        if let Some(want) = want {
            assert!(flat(v).iter().all(|x| *x == want), "{name} = {want}");
        }
    }
}

#[test]
fn tiny_model_trains_through_every_op() {
    let spec = residual_net();
    let model = Model::new(&spec, 11, &Device::Cpu).unwrap();
    let x = random_batch(&spec, 8, 12);
    let targets = Tensor::from_slice(&[0u32, 1, 2, 3, 4, 5, 6, 7], 8, &Device::Cpu).unwrap();
    let mut sgd = candle_nn::SGD::new(model.trainable_vars(), 0.1).unwrap();
    let mut losses = Vec::new();
    for step in 0..25 {
        let loss = candle_nn::loss::nll(&model.forward(&x, true).unwrap(), &targets).unwrap();
        let grads = loss.backward().unwrap();
        if step == 0 {
            for (name, v) in model.named_parameters() {
                let g = grads
                    .get(v)
                    .unwrap_or_else(|| panic!("{name} has a gradient"));
                let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
                assert!(
                    norm > 0.0 && norm.is_finite(),
                    "{name}: gradient norm {norm}"
                );
            }
        }
        sgd.step(&grads).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.5 * first, "loss {first} -> {last}: {losses:?}");
}

#[test]
fn dropout_is_identity_in_eval_and_drops_about_p_in_training() {
    let spec = Graph {
        input: [1, 50, 50],
        layers: vec![
            layer("flat", Op::Flatten, &[Input], &[2500], 0),
            layer("drop", Op::Dropout { p: 0.25 }, &[L(0)], &[2500], 0),
        ],
    };
    let x = Tensor::ones((4, 1, 50, 50), DType::F32, &Device::Cpu).unwrap();
    let model = Model::new(&spec, 9, &Device::Cpu).unwrap();
    assert_eq!(flat(&model.forward(&x, false).unwrap()), vec![1.0; 10_000]);
    let a = flat(&model.forward(&x, true).unwrap());
    let dropped = a.iter().filter(|v| **v == 0.0).count() as f64 / a.len() as f64;
    assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
    assert!(a.iter().all(|v| *v == 0.0 || (*v - 4.0 / 3.0).abs() < 1e-6));
    assert_ne!(
        a,
        flat(&model.forward(&x, true).unwrap()),
        "fresh mask each call"
    );
    let again = Model::new(&spec, 9, &Device::Cpu).unwrap();
    assert_eq!(
        a,
        flat(&again.forward(&x, true).unwrap()),
        "same seed, same masks"
    );
}

#[test]
fn save_and_load_round_trip_params_and_buffers() {
    let spec = residual_net();
    let model = Model::new(&spec, 2, &Device::Cpu).unwrap();
    model.forward(&random_batch(&spec, 2, 0), true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();
    let stored = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let mut keys: Vec<&str> = stored.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want: Vec<&str> = names(model.named_parameters());
    want.extend(names(model.named_buffers()));
    want.sort_unstable();
    assert_eq!(keys, want);

    let other = Model::new(&spec, 3, &Device::Cpu).unwrap();
    other.load(&path).unwrap();
    for ((n, a), (_, b)) in model
        .named_parameters()
        .iter()
        .chain(model.named_buffers())
        .zip(other.named_parameters().iter().chain(other.named_buffers()))
    {
        assert_eq!(flat(a), flat(b), "{n}");
    }
    let wrong = Model::new(&mnist_cnn(), 0, &Device::Cpu).unwrap();
    assert!(wrong.load(&path).is_err());
}

#[test]
fn a_file_without_batch_norm_counts_still_loads_and_a_misfit_is_named_by_layer() {
    // Files runner wrote before it saved `num_batches_tracked` have none.
    let spec = residual_net();
    let model = Model::new(&spec, 2, &Device::Cpu).unwrap();
    model.forward(&random_batch(&spec, 2, 0), true).unwrap();
    let old: Vec<(&str, &Tensor)> = model
        .state_dict()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.safetensors");
    std::fs::write(&path, safetensors::serialize(old, None).unwrap()).unwrap();
    let other = Model::new(&spec, 3, &Device::Cpu).unwrap();
    other.load(&path).unwrap();
    for ((n, a), (_, b)) in model
        .named_parameters()
        .iter()
        .zip(other.named_parameters())
    {
        assert_eq!(flat(a), flat(b), "{n}");
    }
    let counts = |m: &Model| -> Vec<f32> {
        m.named_buffers()
            .iter()
            .filter(|(n, _)| n.ends_with("num_batches_tracked"))
            .flat_map(|(_, v)| flat(v))
            .collect()
    };
    assert_eq!(counts(&model), [1.0, 1.0], "one training-mode pass");
    assert_eq!(counts(&other), [0.0, 0.0], "absent counts keep their value");

    let wrong = Model::new(&mnist_cnn(), 0, &Device::Cpu).unwrap();
    let err = wrong.load(&path).unwrap_err().to_string();
    assert!(
        err.contains("layer conv1: weight is not in the file"),
        "{err}"
    );
    assert!(
        err.contains("the file has `stem.weight`, but the model has no layer `stem`"),
        "{err}"
    );
}

#[test]
fn gradients_match_finite_differences() {
    // Checks candle's backward of strided, padded conv and of every op here end to end.
    let mut spec = residual_net();
    spec.layers[13].op = Op::Dropout { p: 0.0 };
    let model = Model::new(&spec, 5, &Device::Cpu).unwrap();
    let x = random_batch(&spec, 3, 6);
    let targets = Tensor::from_slice(&[1u32, 5, 12], 3, &Device::Cpu).unwrap();
    let loss = || -> Tensor {
        let y = model
            .forward(&x, true)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        candle_nn::loss::nll(&y, &targets).unwrap()
    };
    let grads = loss().backward().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (name, var) in model.named_parameters() {
        let g = flat(grads.get(var).unwrap());
        let base = flat(var);
        for _ in 0..4 {
            let i = rng.random_range(0..base.len());
            // Small enough to rarely cross a relu or max kink, large enough for f32 noise.
            let h = 2.5e-3;
            let at = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                loss().to_scalar::<f64>().unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
            at(0.0);
            let tol = 1e-3 + 2e-2 * numeric.abs();
            assert!(
                (g[i] as f64 - numeric).abs() < tol,
                "{name}[{i}]: backprop {} vs finite difference {numeric}",
                g[i]
            );
        }
    }
}

#[test]
fn infer_equals_eval_forward_and_records_no_graph() {
    let spec = residual_net();
    let model = Model::new(&spec, 3, &Device::Cpu).unwrap();
    // Move the running statistics away from their initial values first.
    let x = random_batch(&spec, 4, 5);
    model.forward(&x, true).unwrap();
    let eval = model.forward(&x, false).unwrap();
    let inferred = model.infer(&x).unwrap();
    assert_eq!(flat(&inferred), flat(&eval), "same values, bit for bit");
    assert!(eval.track_op(), "forward(x, false) keeps gradients flowing");
    assert!(!inferred.track_op(), "infer builds no backward graph");
}

fn conv_init(cin: usize, cout: usize, kernel: usize, padding: usize, init: Init) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride: 1,
        padding,
        bias: true,
        init,
    }
}

/// airbench's partial Dirac: the first `in` filters pass their channel through (so with
/// `padding = 1` the first outputs equal the input), the bias is zero, the other filters keep
/// the default init drawn for them.
#[test]
fn dirac_init_is_the_identity_on_the_first_filters_only() {
    let spec = |init| Graph {
        input: [4, 5, 5],
        layers: vec![layer(
            "conv",
            conv_init(4, 6, 3, 1, init),
            &[Input],
            &[6, 5, 5],
            6 * 4 * 9 + 6,
        )],
    };
    let dirac = Model::new(&spec(Init::Dirac), 7, &Device::Cpu).unwrap();
    let default = Model::new(&spec(Init::Default), 7, &Device::Cpu).unwrap();
    let w = |m: &Model, i: usize| -> Vec<f32> {
        m.named_parameters()[i]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (wd, wp) = (w(&dirac, 0), w(&default, 0));
    let filter = 4 * 9;
    for o in 0..4 {
        for j in 0..filter {
            let want = if j == o * 9 + 4 { 1.0 } else { 0.0 };
            assert_eq!(wd[o * filter + j], want, "filter {o}, value {j}");
        }
    }
    assert_eq!(
        wd[4 * filter..],
        wp[4 * filter..],
        "filters 4 and 5 keep the default init"
    );
    assert!(w(&dirac, 1).iter().all(|b| *b == 0.0), "bias zeroed");
    let x = Tensor::randn(0f32, 1.0, (2, 4, 5, 5), &Device::Cpu).unwrap();
    let y = dirac.forward(&x, false).unwrap();
    let first = y.narrow(1, 0, 4).unwrap();
    let diff = (first - &x).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
}

/// `{ op = "scale" }` multiplies by its factor, forward and backward.
#[test]
fn scale_multiplies_by_its_factor() {
    let spec = Graph {
        input: [1, 2, 2],
        layers: vec![layer(
            "s",
            Op::Scale { factor: 1.0 / 9.0 },
            &[Input],
            &[1, 2, 2],
            0,
        )],
    };
    let model = Model::new(&spec, 0, &Device::Cpu).unwrap();
    let x = Var::from_vec(vec![9f32, -18.0, 4.5, 0.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let y = model.forward(x.as_tensor(), true).unwrap();
    let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(v, [1.0, -2.0, 0.5, 0.0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let gx: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(gx.iter().all(|d| (d - 1.0 / 9.0).abs() < 1e-7), "{gx:?}");
}

fn whitening_model(images: &Tensor, eps: f64) -> Model {
    let (_, c, h, w) = images.dims4().unwrap();
    let d = c * 4;
    let spec = Graph {
        input: [c, h, w],
        layers: vec![layer(
            "whiten",
            conv_init(
                c,
                2 * d,
                2,
                0,
                Init::Whitening {
                    images: images.dims()[0],
                    eps,
                },
            ),
            &[Input],
            &[2 * d, h - 1, w - 1],
            2 * d * d + 2 * d,
        )],
    };
    let source = |n: usize| images.narrow(0, 0, n);
    Model::with_images(&spec, 0, &Device::Cpu, Some(&source)).unwrap()
}

/// The whitened patches of the images the init read have covariance
/// `diag(lambda / (lambda + eps))`: no correlation left, and with a tiny eps the identity.
#[test]
fn whitening_decorrelates_the_patches() {
    // Channels mixed so that the raw patches are strongly correlated.
    let raw = Tensor::randn(0f32, 1.0, (40, 3, 6, 7), &Device::Cpu).unwrap();
    let c0 = raw.narrow(1, 0, 1).unwrap();
    let c1 = ((&c0 * 0.9).unwrap() + (raw.narrow(1, 1, 1).unwrap() * 0.1).unwrap()).unwrap();
    let c2 = ((raw.narrow(1, 2, 1).unwrap() * 3.0).unwrap() + 0.5).unwrap();
    let images = Tensor::cat(&[c0, c1, c2], 1).unwrap();
    for (eps, diag_tol) in [(1e-9, 1e-4), (0.05, f64::INFINITY)] {
        let model = whitening_model(&images, eps);
        assert!(
            model.named_parameters()[1]
                .1
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .all(|b| *b == 0.0),
            "bias zeroed"
        );
        let y = model.forward(&images, false).unwrap(); // [n, 24, 5, 6]
        let y = y.narrow(1, 0, 12).unwrap().to_dtype(DType::F64).unwrap();
        let flat = y.permute((0, 2, 3, 1)).unwrap().reshape(((), 12)).unwrap();
        let n = flat.dims()[0] as f64;
        let cov: Vec<Vec<f64>> = (flat.t().unwrap().matmul(&flat).unwrap() / n)
            .unwrap()
            .to_vec2()
            .unwrap();
        for i in 0..12 {
            for (j, v) in cov[i].iter().enumerate() {
                if i != j {
                    assert!(v.abs() < 1e-4, "eps {eps}: cov[{i}][{j}] = {v}");
                }
            }
            assert!(
                cov[i][i] <= 1.0 + 1e-6,
                "eps {eps}: cov[{i}][{i}] = {}",
                cov[i][i]
            );
            assert!(
                (cov[i][i] - 1.0).abs() < diag_tol,
                "eps {eps}: cov[{i}][{i}] = {}",
                cov[i][i]
            );
            // lambda / (lambda + eps) falls with lambda: the eigenvalues are descending.
            if i > 0 && eps > 0.01 {
                assert!(
                    cov[i][i] <= cov[i - 1][i - 1] + 1e-9,
                    "eps {eps}: order at {i}"
                );
            }
        }
    }
}

/// airbench's own whitening weight (`tests/fixtures/whitening_golden.json`, written by
/// `scripts/golden_whitening.py`) agrees with runner's up to the sign of each eigenvector,
/// that is element by element in absolute value.
#[test]
fn whitening_matches_airbench_up_to_sign() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/whitening_golden.json"
    ));
    let golden: serde_json::Value = serde_json::from_str(text).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let images = Tensor::from_vec(
        floats(&golden["images"]["data"]),
        (6, 3, 5, 5),
        &Device::Cpu,
    )
    .unwrap();
    let eps = golden["eps"].as_f64().unwrap();
    let model = whitening_model(&images, eps);
    let ours: Vec<f32> = model.named_parameters()[0]
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let theirs = floats(&golden["weight"]["data"]);
    assert_eq!(ours.len(), theirs.len());
    for (row, (a, b)) in ours.chunks(12).zip(theirs.chunks(12)).enumerate() {
        // One sign per row: the eigenvector's.
        let sign = if a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() < 0.0 {
            -1.0
        } else {
            1.0
        };
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            let scale = 1f32.max(y.abs());
            assert!(
                (sign * x - y).abs() <= 1e-3 * scale,
                "row {row}, value {j}: {x} vs {y}"
            );
        }
    }
}

/// A model with a whitening conv built without images keeps the default init (its weights are
/// to be loaded); with too few images it is an error that says so.
#[test]
fn whitening_without_enough_images_is_an_error() {
    let images = Tensor::randn(0f32, 1.0, (3, 1, 4, 4), &Device::Cpu).unwrap();
    let spec = Graph {
        input: [1, 4, 4],
        layers: vec![layer(
            "whiten",
            conv_init(
                1,
                8,
                2,
                0,
                Init::Whitening {
                    images: 5,
                    eps: 5e-4,
                },
            ),
            &[Input],
            &[8, 3, 3],
            40,
        )],
    };
    assert!(Model::new(&spec, 0, &Device::Cpu).is_ok());
    let source = |n: usize| images.narrow(0, 0, n.min(3));
    let err = Model::with_images(&spec, 0, &Device::Cpu, Some(&source))
        .expect_err("too few images")
        .to_string();
    assert!(
        err.contains("reads 5 training images, but the training set has 3"),
        "{err}"
    );
}
