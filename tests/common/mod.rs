//! Helpers shared by the tests that run the `runner` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `runner` binary from the repository root, downloads off, `$RUNNER_DATA` unset.
pub fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUNNER_NO_DOWNLOAD", "1")
        .env_remove("RUNNER_DATA")
        .output()
        .expect("runner starts")
}

/// stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Trains the synthetic demo (with `sets` as `--set`) into `root` and returns its run folder.
#[allow(dead_code)] // Not every test binary that shares this module trains.
pub fn train_demo(root: &Path, sets: &[&str]) -> PathBuf {
    let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
    train_demo_with(root, &args)
}

/// Trains the synthetic demo into `root` with `extra` command-line arguments and returns its
/// run folder.
#[allow(dead_code)] // Not every test binary that shares this module trains.
pub fn train_demo_with(root: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "experiments/synthetic_demo.toml",
        "--out",
        root.to_str().expect("utf8"),
        "--plain",
    ];
    args.extend(extra);
    let o = runner(&args);
    assert!(o.status.success(), "{}", text(&o));
    let dirs: Vec<PathBuf> = std::fs::read_dir(root.join("synthetic_demo"))
        .expect("experiment folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run expected in {}", root.display());
    dirs.into_iter().next().expect("one run")
}
