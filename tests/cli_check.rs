//! `runner check` as a user runs it: the built binary, its output and its exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BROKEN: &str = "experiments/broken/vgg16_classifier_2048.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `runner check ARGS...` from the crate root, so that paths in the output are relative.
fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("check")
        .args(args)
        .current_dir(root())
        .output()
        .expect("the runner binary starts")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn shipped_experiments() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("experiments"))
        .expect("experiments/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".toml")
                .then(|| format!("experiments/{name}"))
        })
        .collect();
    files.sort();
    files
}

/// Line and column (1-based, characters) of the `2048` in the broken file's `in = 2048`.
fn position_of_2048() -> (usize, usize) {
    let text = std::fs::read_to_string(root().join(BROKEN)).expect("broken fixture");
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("in = 2048"))
        .expect("the classifier line");
    let col = line[..line.find("2048").expect("2048")].chars().count() + 1;
    (i + 1, col)
}

#[test]
fn every_shipped_experiment_exits_0_and_prints_its_table() {
    for file in shipped_experiments() {
        let o = check(&[&file]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{file}:\n{}", all_output(&o));
        assert!(out.contains(&format!("{file}: ok")), "{file}:\n{out}");
        assert!(
            out.contains("params") && out.contains("total"),
            "{file}: no table\n{out}"
        );
    }
}

#[test]
fn all_experiments_at_once_exit_0() {
    let files = shipped_experiments();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let o = check(&args);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert_eq!(stdout(&o).matches(": ok: ").count(), files.len());
}

#[test]
fn broken_file_exits_2_with_file_line_col() {
    let o = check(&[BROKEN]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let (line, col) = position_of_2048();
    assert!(out.contains(&format!("--> {BROKEN}:{line}:{col}")), "{out}");
    assert!(out.contains("2048") && out.contains("512"), "{out}");
    assert!(out.contains(&format!("{BROKEN}: 1 error")), "{out}");
}

#[test]
fn one_bad_file_among_good_ones_exits_2_and_reports_both() {
    let o = check(&["experiments/mnist_cnn.toml", BROKEN]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(out.contains("experiments/mnist_cnn.toml: ok"), "{out}");
    assert!(out.contains(&format!("{BROKEN}: 1 error")), "{out}");
}

#[test]
fn json_output_parses_and_locates_the_error() {
    let o = check(&["--json", BROKEN]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["ok"], false);
    let file = &v["files"][0];
    assert_eq!(file["path"], BROKEN);
    assert_eq!(file["ok"], false);
    let d = &file["diagnostics"][0];
    let (line, col) = position_of_2048();
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], line, "{d}");
    assert_eq!(d["col"], col, "{d}");
    assert_eq!(d["end"]["line"], line, "{d}");
    assert_eq!(d["end"]["col"], col + 4, "{d}");
    assert!(
        d["message"].as_str().is_some_and(|m| m.contains("2048")),
        "{d}"
    );
}

#[test]
fn json_output_for_a_valid_file_has_the_layer_table() {
    let o = check(&["--json", "experiments/cifar_lenet.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["ok"], true);
    let file = &v["files"][0];
    assert_eq!(file["params"], 62_006);
    assert_eq!(file["experiment"], "cifar_lenet");
    assert_eq!(file["input"], serde_json::json!([3, 32, 32]));
    assert_eq!(file["layers"].as_array().map(Vec::len), Some(12));
    assert_eq!(file["diagnostics"], serde_json::json!([]));
}

#[test]
fn the_table_shows_the_fused_relus() {
    // The ReLUs after LeNet's convs run inside them; those after the linear layers do not.
    let o = check(&["experiments/cifar_lenet.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let text = stdout(&o);
    assert!(text.contains("conv2d 3->6 k5 + relu"), "{text}");
    assert!(text.contains("relu (fused into conv2)"), "{text}");
    let o = check(&["--json", "experiments/cifar_lenet.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let layers = v["files"][0]["layers"].as_array().expect("a layer table");
    let fused: Vec<&str> = layers
        .iter()
        .filter_map(|l| l.get("fused_into").and_then(|h| h.as_str()))
        .collect();
    assert_eq!(fused, ["conv1", "conv2"]);
}

#[test]
fn quiet_prints_the_verdict_without_the_table() {
    let o = check(&["--quiet", "experiments/mnist_cnn.toml"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(out.contains("experiments/mnist_cnn.toml: ok"), "{out}");
    assert!(!out.contains("total"), "--quiet printed the table:\n{out}");
}

#[test]
fn missing_files_and_folders_are_clear_errors_not_panics() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["experiments/no_such_file.toml"],
            "cannot read `experiments/no_such_file.toml`",
        ),
        (&["experiments"], "is a directory"),
        (
            &["--json", "experiments/no_such_file.toml"],
            "\"ok\": false",
        ),
    ];
    for (args, expected) in cases {
        let o = check(args);
        let all = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}:\n{all}");
        assert!(all.contains(expected), "{args:?}:\n{all}");
        assert!(!all.contains("panicked"), "{args:?}:\n{all}");
    }
}

#[test]
fn garbage_input_exits_2_without_panicking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, Vec<u8>); 4] = [
        ("binary.toml", (0..=255u8).cycle().take(4096).collect()),
        (
            "deep.toml",
            format!("x = {}", "[".repeat(100_000)).into_bytes(),
        ),
        ("empty.toml", Vec::new()),
        (
            "huge_width.toml",
            b"[model]\nlayers = [{ op = \"linear\", out = 1_000_000_000_000_000 }]\n".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write temp file");
        let o = check(&[path.to_str().expect("utf-8 temp path")]);
        let all = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{name}:\n{all}");
        assert!(all.contains("error: "), "{name}:\n{all}");
        assert!(!all.contains("panicked"), "{name}:\n{all}");
    }
}

#[test]
fn no_files_is_a_usage_error() {
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
}
