//! `runner eval`: the numbers a run reports for its final model, found again from its weights.

mod common;
use common::{runner, text, train_demo};

use std::path::Path;

/// The cells of the last line of `metrics.csv` under `column`.
fn last_metric(dir: &Path, column: &str) -> String {
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let mut lines = metrics.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let i = header.iter().position(|h| *h == column).expect("column");
    let last = lines.last().expect("a row");
    last.split(',').nth(i).expect("cell").to_string()
}

/// `NAME: test accuracy A%, loss L on ...`: `(A, L)` as printed.
fn printed_numbers(stdout: &str, split: &str) -> (String, String) {
    let first = stdout.lines().next().expect("a line");
    let after = first
        .split_once(&format!("{split} accuracy "))
        .unwrap_or_else(|| panic!("no accuracy in {first:?}"))
        .1;
    let (acc, rest) = after.split_once("%, loss ").expect("loss");
    let loss = rest.split_whitespace().next().expect("loss value");
    (acc.to_string(), loss.to_string())
}

#[test]
fn eval_of_a_run_reproduces_its_final_numbers_exactly() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &[]);
    let dir_s = dir.to_str().expect("utf8");
    let o = runner(&["eval", dir_s]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let (acc, loss) = printed_numbers(&stdout, "test");
    assert_eq!(acc, last_metric(&dir, "test_acc"), "{stdout}");
    assert_eq!(loss, last_metric(&dir, "test_loss"), "{stdout}");
    let summary = runner::report::read_summary(&dir.join("summary.csv")).expect("summary");
    assert_eq!(acc, runner::report::accuracy_cell(summary.test_acc));
    assert_eq!(loss, runner::report::loss_cell(summary.final_test_loss));

    let out = dir.join("eval-test");
    for f in ["per_class.csv", "confusion.csv"] {
        assert_eq!(
            std::fs::read(out.join(f)).expect("eval table"),
            std::fs::read(dir.join(f)).expect("run table"),
            "{f} differs from the run's"
        );
    }
    assert!(out.join("confusion.png").is_file());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).expect("eval.json"))
            .expect("eval.json is JSON");
    assert_eq!(written["images"], 256);
    assert_eq!(written["split"], "test");
    assert_eq!(written["experiment"], "synthetic_demo");

    // --json: one object on stdout, the same numbers.
    let j = runner(&["eval", dir_s, "--json"]);
    assert!(j.status.success(), "{}", text(&j));
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("stdout is JSON");
    let json_acc = v["accuracy"].as_f64().expect("accuracy");
    assert_eq!(runner::report::accuracy_cell(json_acc), acc);
    assert_eq!(
        runner::report::loss_cell(v["loss"].as_f64().expect("loss")),
        loss
    );
    assert_eq!(v, written, "--json prints what eval.json holds");

    // The bare weights with the experiment file: the same evaluation.
    let elsewhere = root.path().join("bare");
    let bare = runner(&[
        "eval",
        dir.join("model.safetensors").to_str().expect("utf8"),
        "--experiment",
        "experiments/synthetic_demo.toml",
        "--out",
        elsewhere.to_str().expect("utf8"),
        "--json",
    ]);
    assert!(bare.status.success(), "{}", text(&bare));
    let b: serde_json::Value = serde_json::from_slice(&bare.stdout).expect("stdout is JSON");
    assert_eq!(b["accuracy"].as_f64(), Some(json_acc));
    assert_eq!(
        std::fs::read(elsewhere.join("per_class.csv")).expect("bare per_class"),
        std::fs::read(dir.join("per_class.csv")).expect("run per_class")
    );

    // The training split: all 512 images, written beside the test evaluation.
    let train = runner(&["eval", dir_s, "--split", "train"]);
    assert!(train.status.success(), "{}", text(&train));
    let stdout = String::from_utf8_lossy(&train.stdout);
    assert!(stdout.contains("train accuracy"), "{stdout}");
    assert!(stdout.contains("on 512 images"), "{stdout}");
    assert!(dir.join("eval-train").join("confusion.png").is_file());
}

#[test]
fn eval_of_the_moving_average_reproduces_its_ema_columns() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(
        root.path(),
        &[
            "train.ema.decay=0.9",
            "train.accumulate=2",
            "train.clip_grad.value=0.1",
        ],
    );
    let weights = dir.join("model_ema.safetensors");
    let out = root.path().join("ema-eval");
    let o = runner(&[
        "eval",
        weights.to_str().expect("utf8"),
        "--experiment",
        dir.join("config.toml").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let (acc, loss) = printed_numbers(&stdout, "test");
    assert_eq!(acc, last_metric(&dir, "ema_test_acc"), "{stdout}");
    assert_eq!(loss, last_metric(&dir, "ema_test_loss"), "{stdout}");
    assert_ne!(
        loss,
        last_metric(&dir, "test_loss"),
        "the average is the model"
    );
}

#[test]
fn eval_refuses_what_it_cannot_evaluate_with_exit_2() {
    let root = tempfile::tempdir().expect("tempdir");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let wider = train_demo(&root.path().join("wider"), &["model.layers.0.out=6"]);
    let weights = wider.join("model.safetensors");
    let weights_s = weights.to_str().expect("utf8");
    let missing = root.path().join("missing");
    let x = root.path().join("x");
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "a folder without weights",
            vec!["eval", empty.to_str().expect("utf8")],
            "has no model.safetensors",
        ),
        (
            "a path that does not exist",
            vec!["eval", missing.to_str().expect("utf8")],
            "does not exist",
        ),
        (
            "bare weights without an experiment",
            vec!["eval", weights_s],
            "--experiment FILE",
        ),
        (
            "weights of a wider model",
            vec![
                "eval",
                weights_s,
                "--experiment",
                "experiments/synthetic_demo.toml",
                "--out",
                x.to_str().expect("utf8"),
            ],
            "layer conv1: weight is [6, 1, 3, 3] in the file, the model needs [8, 1, 3, 3]",
        ),
    ];
    for (what, args, message) in cases {
        let o = runner(&args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {all}");
        assert!(
            all.contains(message),
            "{what}: expected {message:?} in {all}"
        );
        assert!(!all.contains("panicked"), "{what}: {all}");
        assert_eq!(all.trim().lines().count(), 1, "{what}: one line: {all}");
    }
}

#[test]
fn eval_on_the_validation_split_reproduces_the_runs_val_numbers() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &["data.validation=0.25"]);
    let dir_s = dir.to_str().expect("utf8");
    let o = runner(&["eval", dir_s, "--split", "val"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let (acc, loss) = printed_numbers(&stdout, "val");
    assert_eq!(acc, last_metric(&dir, "val_acc"), "{stdout}");
    assert_eq!(loss, last_metric(&dir, "val_loss"), "{stdout}");
    // The synthetic demo has 512 training images: a quarter is held out.
    assert!(stdout.contains("on 128 images"), "{stdout}");
    let summary = runner::report::read_summary(&dir.join("summary.csv")).expect("summary");
    assert_eq!(summary.selected_on, "val");
    assert_eq!(summary.train_images, 384);

    // A run without a split has none to evaluate.
    let plain = train_demo(&root.path().join("plain"), &[]);
    let o = runner(&["eval", plain.to_str().expect("utf8"), "--split", "val"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no validation split"), "{}", text(&o));
}

#[test]
fn test_time_augmentation_is_part_of_every_evaluation() {
    let root = tempfile::tempdir().expect("tempdir");
    let plain = train_demo(&root.path().join("plain"), &[]);
    let tta = train_demo(&root.path().join("tta"), &["data.tta=\"flip_translate\""]);
    // Training is the same; the evaluation averages the views' logits, so the loss moves.
    assert_eq!(
        last_metric(&plain, "train_loss"),
        last_metric(&tta, "train_loss")
    );
    assert_ne!(
        last_metric(&plain, "test_loss"),
        last_metric(&tta, "test_loss"),
        "TTA changed nothing"
    );
    let config = std::fs::read_to_string(tta.join("config.toml")).expect("config.toml");
    assert!(config.contains("tta = \"flip_translate\""), "{config}");
    // `runner eval` reads the setting from the run and finds the same numbers.
    let o = runner(&["eval", tta.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", text(&o));
    let (acc, loss) = printed_numbers(&String::from_utf8_lossy(&o.stdout), "test");
    assert_eq!(acc, last_metric(&tta, "test_acc"));
    assert_eq!(loss, last_metric(&tta, "test_loss"));
}

#[test]
fn mixup_and_cutmix_change_training_and_stay_reproducible() {
    let root = tempfile::tempdir().expect("tempdir");
    let mix = "train.mixup={ mixup_alpha = 0.8, cutmix_alpha = 1.0 }";
    let plain = train_demo(&root.path().join("plain"), &[]);
    let a = train_demo(&root.path().join("a"), &[mix]);
    let b = train_demo(&root.path().join("b"), &[mix]);
    assert_ne!(
        last_metric(&plain, "train_loss"),
        last_metric(&a, "train_loss"),
        "mixing changed nothing"
    );
    for column in ["train_loss", "train_acc", "test_loss", "test_acc"] {
        assert_eq!(last_metric(&a, column), last_metric(&b, column), "{column}");
    }
    let config = std::fs::read_to_string(a.join("config.toml")).expect("config.toml");
    assert!(config.contains("mixup_alpha = 0.8"), "{config}");
}
