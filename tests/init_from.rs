//! `train.init_from`: weights PyTorch wrote give PyTorch's outputs; a run starts from the
//! weights it names (BatchNorm buffers too) and resumes from its checkpoint bit for bit; the
//! resolved config records the file's absolute path and SHA-256; `runner run` refuses weights
//! that do not fit before a step runs.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use runner::check::{check_file, check_str, Checked};
use runner::experiment::print::to_toml;
use runner::experiment::Experiment;
use runner::graph::Graph;
use runner::model::weights::sha256_hex;
use runner::model::Model;
use runner::report::{RunDir, METRICS_FILE, MODEL_FILE};
use runner::train::{self, RunOptions, TrainError};

const TINY: &str = "tests/fixtures/torch/tiny.toml";
const TINY_WEIGHTS: &str = "tests/fixtures/torch/tiny.safetensors";
const TINY_IO: &str = "tests/fixtures/torch/tiny_io.safetensors";

fn ok(checked: Checked) -> (Experiment, Graph) {
    let rendered = checked.render();
    checked
        .result
        .unwrap_or_else(|| panic!("invalid experiment:\n{rendered}"))
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(candle_core::DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .expect("values")
}

#[test]
fn weights_pytorch_wrote_give_the_outputs_pytorch_computed() {
    let (exp, graph) = ok(check_file(Path::new(TINY)));
    let model = Model::new(&graph, exp.seed(), &Device::Cpu).expect("model");
    let seeded = flat(model.named_parameters()[0].1.as_tensor());
    model
        .load_init(Path::new(TINY_WEIGHTS), None)
        .expect("PyTorch's state_dict loads");
    assert_ne!(
        seeded,
        flat(model.named_parameters()[0].1.as_tensor()),
        "the weights were replaced"
    );
    // Golden numbers: `input` and `logits` of tiny_io.safetensors, PyTorch's eval-mode output
    // of its own weights (tiny.safetensors); tiny.toml names the command that wrote both.
    let io = candle_core::safetensors::load(TINY_IO, &Device::Cpu).expect("tiny_io");
    let ours = flat(&model.infer(&io["input"]).expect("forward"));
    let theirs = flat(&io["logits"]);
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-5, "max |runner - torch| = {worst}");
    // The BatchNorm counts came along (the fixture sets them to 17).
    for (name, var) in model.named_buffers() {
        if name.ends_with("num_batches_tracked") {
            assert_eq!(
                var.as_tensor().to_scalar::<i64>().expect("count"),
                17,
                "{name}"
            );
        }
    }
}

#[test]
fn a_relative_path_is_relative_to_the_file_and_the_config_pins_its_sha256() {
    let text = std::fs::read_to_string(TINY)
        .expect("tiny.toml")
        .replace("[train]\n", "[train]\ninit_from = \"tiny.safetensors\"\n");
    let (exp, _) = ok(check_str(TINY, &text, "tiny"));
    let init = exp.train().init_from.as_ref().expect("init_from");
    let want = std::path::absolute(TINY_WEIGHTS).expect("absolute");
    assert_eq!(init.path, want);
    let sha = sha256_hex(&std::fs::read(TINY_WEIGHTS).expect("weights"));
    assert_eq!(init.sha256.as_deref(), Some(sha.as_str()));
    let config = to_toml(&exp);
    assert!(
        config.contains(&format!(
            "init_from = {{ path = \"{}\", sha256 = \"{sha}\" }}",
            want.display()
        )),
        "{config}"
    );
    // The resolved config reads back as the same experiment, from any folder.
    let (again, _) = ok(check_str("elsewhere/config.toml", &config, "tiny"));
    assert_eq!(again, exp);
    // A pinned SHA-256 that the file does not have is an error at the value.
    let wrong = config.replace(&sha, &"0".repeat(64));
    let checked = check_str("config.toml", &wrong, "tiny");
    assert!(!checked.ok());
    let rendered = checked.render();
    assert!(
        rendered.contains("the `init_from` weights are not the ones `sha256` names"),
        "{rendered}"
    );
    assert!(
        rendered.contains(&format!("the file's SHA-256 is {sha}")),
        "{rendered}"
    );
}

/// A small net with BatchNorm on synthetic data, trained without anything that depends on the
/// epoch number (no shuffling, no augmentation, no dropout, a constant rate) and with a
/// stateless optimizer, so that epoch 2 of a run is epoch 1 of a run started from its epoch-1
/// weights. 48 images in batches of 16: 3 steps per epoch.
fn continuation(epochs: usize, init: Option<&Path>) -> (Experiment, Graph) {
    let init = init.map_or(String::new(), |p| {
        format!("init_from = {:?}\n", p.display().to_string())
    });
    let text = format!(
        r#"
name = "init_test"
seed = 4

[data]
dataset = "synthetic"
batch_size = 16
shuffle = false
synthetic = {{ shape = [2, 6, 6], classes = 3, train_size = 48, test_size = 24 }}

[model]
layers = [
  {{ op = "conv2d", name = "conv1", out = 4, kernel = 3, padding = 1 }},
  {{ op = "batch_norm2d", name = "bn1" }},
  {{ op = "relu" }},
  {{ op = "flatten" }},
  {{ op = "linear", name = "fc", out = 3 }},
]

[train]
epochs = {epochs}
optimizer = {{ kind = "sgd", lr = 0.1 }}
{init}"#
    );
    ok(check_str("init_test.toml", &text, "init_test"))
}

fn options(stop_after_steps: Option<usize>) -> RunOptions {
    RunOptions {
        data_dir: PathBuf::from("unused-for-synthetic-data"),
        plain_progress: true,
        log_every: 0,
        stop_after_steps,
        tensorboard: false,
    }
}

/// A finished run of `exp` under `root/<what>`.
fn finished(root: &Path, what: &str, (exp, graph): &(Experiment, Graph)) -> RunDir {
    let dir = RunDir::create(&root.join(what), exp.name()).expect("run dir");
    train::run(exp, graph, &to_toml(exp), &dir, &options(None), false).expect("run");
    dir
}

/// metrics.csv rows without the epoch and the timing columns.
fn metric_rows(dir: &RunDir) -> Vec<String> {
    std::fs::read_to_string(dir.file(METRICS_FILE))
        .expect("metrics.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).take(5).collect::<Vec<_>>().join(","))
        .collect()
}

fn weights(dir: &RunDir) -> Vec<u8> {
    std::fs::read(dir.file(MODEL_FILE)).expect("model.safetensors")
}

#[test]
fn a_run_from_saved_weights_continues_where_they_left_off() {
    let root = tempfile::tempdir().expect("tempdir");
    let two = finished(root.path(), "two", &continuation(2, None));
    let one = finished(root.path(), "one", &continuation(1, None));
    let from = finished(
        root.path(),
        "from",
        &continuation(1, Some(&one.file(MODEL_FILE))),
    );
    assert_eq!(metric_rows(&from), metric_rows(&two)[1..]);
    // Parameters, running statistics and `num_batches_tracked` (3 in the file, 3 more steps).
    assert!(
        weights(&from) == weights(&two),
        "epoch 1 from epoch-1 weights is not epoch 2"
    );
    assert!(weights(&from) != weights(&one), "the run trained");
}

#[test]
fn a_run_from_saved_weights_resumes_bit_for_bit_even_without_the_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let start = finished(root.path(), "start", &continuation(1, None));
    for (stop, checkpoint) in [(4, Some(1)), (2, None)] {
        // A copy the test can delete: the checkpoint holds the weights.
        let init = root.path().join(format!("init-{stop}.safetensors"));
        std::fs::copy(start.file(MODEL_FILE), &init).expect("copy");
        let (exp, graph) = continuation(3, Some(&init));
        let config = to_toml(&exp);
        let whole = finished(
            root.path(),
            &format!("whole-{stop}"),
            &(exp.clone(), graph.clone()),
        );
        let parted =
            RunDir::create(&root.path().join(format!("parted-{stop}")), exp.name()).expect("dir");
        match train::run(&exp, &graph, &config, &parted, &options(Some(stop)), false) {
            Err(TrainError::Interrupted { checkpoint: c, .. }) => assert_eq!(c, checkpoint),
            other => panic!("expected an interruption after {stop} steps, got {other:?}"),
        }
        if checkpoint.is_some() {
            std::fs::remove_file(&init).expect("remove the init weights");
        }
        train::run(&exp, &graph, &config, &parted, &options(None), true).expect("resumed");
        assert_eq!(metric_rows(&parted), metric_rows(&whole), "stop {stop}");
        assert!(
            weights(&parted) == weights(&whole),
            "stop {stop}: weights differ"
        );
    }
}

#[test]
fn run_refuses_weights_that_do_not_fit_before_a_step() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("results");
    let o = common::runner(&[
        "run",
        TINY,
        "--out",
        out.to_str().expect("utf-8"),
        "--set",
        "model.layers.0.kernel=5",
        "--set",
        &format!(
            "train.init_from={:?}",
            std::path::absolute(TINY_WEIGHTS)
                .expect("absolute")
                .display()
                .to_string()
        ),
    ]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    for line in [
        "error: layer conv1: weight is [4, 3, 3, 3] in the file, the model needs [4, 3, 5, 5]",
        "error: layer fc: weight is [4, 16] in the file, the model needs [4, 4]",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert_eq!(text.matches("error: ").count(), 2, "{text}");
    assert!(!text.contains("training"), "a step ran:\n{text}");
    assert!(!out.exists(), "a run folder was made");
}
