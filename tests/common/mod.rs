//! Helpers shared by the tests that run the `runner` binary.

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
