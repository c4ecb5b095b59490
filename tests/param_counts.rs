//! The parameter-count table: `runner check` must count what PyTorch counts for the seed's models,
//! and every shipped experiment must check cleanly.

use std::path::{Path, PathBuf};

use runner::check::{check_file, Checked};
use runner::graph::Op;

fn experiment(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(file)
}

fn checked_ok(file: &str) -> Checked {
    let c = check_file(&experiment(file));
    assert!(c.ok(), "{file} should be valid:\n{}", c.render());
    c
}

fn params(c: &Checked) -> usize {
    c.result.as_ref().map_or(0, |(_, g)| g.params())
}

/// Golden counts: `sum(p.numel() for p in model.parameters())` for the seed notebook's PyTorch
/// models; the arithmetic is spelt out beside each.
const PARAMS: &[(&str, usize, &str)] = &[
    // FC2Layer(784, 8, 10): (784*8 + 8) + (8*8 + 8) + (8*10 + 10)
    ("mnist_fc2layer.toml", 6_442, "784 -> 8 -> 8 -> 10"),
    // CNN(n_feature=6): (1*6*5*5 + 6) + (6*6*5*5 + 6) + (96*50 + 50) + (50*10 + 10)
    (
        "mnist_cnn.toml",
        6_422,
        "two 5x5 convs of 6 maps, fc 96 -> 50 -> 10",
    ),
    // Net: (3*6*25 + 6) + (6*16*25 + 16) + (400*120 + 120) + (120*84 + 84) + (84*10 + 10)
    ("cifar_lenet.toml", 62_006, "LeNet-5 on CIFAR"),
    // VGG('VGG16') of the seed with cfg [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M]:
    // eight conv3x3 (+ bias) with BatchNorm (2 per channel), then Linear(512, 10).
    (
        "vgg16_cifar.toml",
        9_231_114,
        "the seed's VGG with BatchNorm",
    ),
    // The twins only add a pixel permutation to the data.
    (
        "mnist_fc2layer_permuted.toml",
        6_442,
        "same net as mnist_fc2layer",
    ),
    ("mnist_cnn_permuted.toml", 6_422, "same net as mnist_cnn"),
    // The CIFAR ResNet-18 (kuangliu/pytorch-cifar's `ResNet18(num_classes=100)`): the
    // 11,173,962 of its CIFAR-10 version plus 90 more classes of fc, 90 * (512 + 1).
    (
        "cifar100_resnet18.toml",
        11_220_132,
        "CIFAR ResNet-18, 100 classes",
    ),
];

#[test]
fn parameter_counts_match_pytorch() {
    for &(file, expected, what) in PARAMS {
        let c = checked_ok(file);
        assert_eq!(params(&c), expected, "{file} ({what})");
    }
}

#[test]
fn vgg_parameters_add_up_layer_by_layer() {
    let c = checked_ok("vgg16_cifar.toml");
    let (_, g) = c.result.as_ref().expect("valid");
    let widths = [64, 128, 256, 256, 512, 512, 512, 512];
    let mut c_in = 3;
    let mut expected = 0;
    for w in widths {
        expected += c_in * w * 9 + w; // conv3x3 with bias
        expected += 2 * w; // BatchNorm2d weight and bias
        c_in = w;
    }
    expected += 512 * 10 + 10;
    assert_eq!(expected, 9_231_114, "the formula itself");
    assert_eq!(g.params(), expected);
    let classifier = g.layers.last().expect("layers");
    assert_eq!(classifier.name, "classifier");
    assert!(
        matches!(
            classifier.op,
            Op::Linear {
                in_features: 512,
                out_features: 10,
                bias: true,
                ..
            }
        ),
        "{:?}",
        classifier.op
    );
}

#[test]
fn permuted_twins_have_the_same_network_as_their_plain_ones() {
    for (twin, plain) in [
        ("mnist_fc2layer_permuted.toml", "mnist_fc2layer.toml"),
        ("mnist_cnn_permuted.toml", "mnist_cnn.toml"),
    ] {
        let (a, b) = (checked_ok(twin), checked_ok(plain));
        let ((ea, ga), (eb, gb)) = (
            a.result.as_ref().expect("valid"),
            b.result.as_ref().expect("valid"),
        );
        assert_eq!(ga.layers, gb.layers, "{twin} vs {plain}: layers");
        assert_eq!(ga.params(), gb.params(), "{twin} vs {plain}: parameters");
        assert_eq!(ea.model(), eb.model(), "{twin} vs {plain}: model spec");
        assert_eq!(ea.train(), eb.train(), "{twin} vs {plain}: training");
        assert_ne!(
            ea.data().train_transforms,
            eb.data().train_transforms,
            "{twin}: the permutation is the only difference"
        );
    }
}

#[test]
fn every_shipped_experiment_is_valid_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("experiments/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected the seed experiments, found {files:?}"
    );
    for f in &files {
        let c = check_file(f);
        assert!(c.ok(), "{}:\n{}", f.display(), c.render());
        assert!(
            c.diagnostics.is_empty(),
            "{} has warnings:\n{}",
            f.display(),
            c.render()
        );
    }
}

#[test]
fn the_seed_vgg_mistake_points_at_the_classifier() {
    let path = experiment("broken/vgg16_classifier_2048.toml");
    let c = check_file(&path);
    assert!(!c.ok(), "the 2048 classifier must be rejected");
    let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", c.render());
    let d = errors[0];
    assert!(
        d.message.contains("2048") && d.message.contains("512"),
        "{}",
        d.message
    );
    let line = c.source.position(d.span.start).line;
    let classifier_line = c
        .source
        .text
        .lines()
        .position(|l| l.contains("in = 2048"))
        .expect("the fixture declares in = 2048")
        + 1;
    assert_eq!(line, classifier_line, "{}", c.render());
    assert_eq!(
        &c.source.text[d.span.clone()],
        "2048",
        "the caret is under the 2048"
    );
    assert!(
        d.help.as_deref().is_some_and(|h| h.contains("in = 512")),
        "{d:?}"
    );
}

/// airbench94's `make_net()` (`tests/fixtures/models/airbench94_net.toml`): PyTorch counts
/// 1,972,792 parameters, the frozen whitening weight and BatchNorm weights included:
///
/// ```text
/// git -C /work/.mirror/KellerJordan+cifar10-airbench/repo show \
///   f1c599c4af24aca803e3e65a6a7e52a502e09d0e:legacy/airbench94.py | sed -n '1,236p' \
///   | sed 's/net = net.half().cuda()/pass/' > /tmp/ab_net.py
/// .venv-torch/bin/python -c "exec(open('/tmp/ab_net.py').read()); \
///   print(sum(p.numel() for p in make_net().parameters()))"   # 1972792
/// ```
///
/// By hand: whitening 24*3*2*2 + 24; per group c_in*w*9 + 2w + w*w*9 + 2w; fc 256*10.
#[test]
fn airbench94_network_counts_as_pytorch() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/airbench94_net.toml");
    let c = check_file(&path);
    assert!(c.ok(), "{}", c.render());
    let (_, g) = c.result.as_ref().expect("valid");
    let group = |cin: usize, w: usize| cin * w * 9 + 2 * w + w * w * 9 + 2 * w;
    let by_hand = 24 * 3 * 4 + 24 + group(24, 64) + group(64, 256) + group(256, 256) + 2560;
    assert_eq!(by_hand, 1_972_792, "the formula itself");
    assert_eq!(g.params(), 1_972_792);
    assert_eq!(g.output_shape(), [10]);
    // `padding = "same"` keeps the size: 31 -> 15 -> 7 -> 3 after the pools, then pool 3 -> 1.
    let shapes: Vec<(&str, Vec<usize>)> = g
        .layers
        .iter()
        .filter(|l| l.name.ends_with("conv2") || l.name == "whiten")
        .map(|l| (l.name.as_str(), l.shape.clone()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("whiten", vec![24, 31, 31]),
            ("group1.conv2", vec![64, 15, 15]),
            ("group2.conv2", vec![256, 7, 7]),
            ("group3.conv2", vec![256, 3, 3]),
        ]
    );
}
