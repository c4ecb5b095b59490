//! A closed stdout (`runner check experiments/*.toml | head -1`) ends a verb quietly with
//! exit 0, as in ripgrep; a closed stderr changes no exit code and panics nothing.
//!
//! Each case runs the binary with stdout (or stderr) connected to a pipe whose read end is
//! closed before the program starts, so that its first write fails, however little it writes.
#![cfg(unix)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The write end of a pipe whose read end is already closed. Both ends are close-on-exec, so
/// no child of another test inherits the read end and keeps the pipe open.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    #[cfg(target_os = "linux")]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(r, 0, "pipe: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and nothing else owns them.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    Stdio::from(writer)
}

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.current_dir(root())
        .env("RUNNER_NO_DOWNLOAD", "1")
        .env_remove("RUNNER_DATA")
        .stdin(Stdio::null());
    c
}

/// `runner ARGS...` with stdout closed; stderr captured.
fn closed_stdout(args: &[String]) -> Output {
    runner()
        .args(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("the runner binary starts")
}

/// `runner ARGS...` with stderr closed; stdout captured.
fn closed_stderr(args: &[String]) -> Output {
    runner()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .output()
        .expect("the runner binary starts")
}

/// `runner ARGS...` as usual, both captured.
fn open(args: &[String]) -> Output {
    runner()
        .args(args)
        .output()
        .expect("the runner binary starts")
}

/// `experiments/*.toml` (not `experiments/broken/`, not the ablations), sorted.
fn experiment_files() -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("experiments"))
        .expect("experiments/ is there")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .expect("below the crate root")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn args(verb: &[&str], files: &[String]) -> Vec<String> {
    verb.iter()
        .map(|s| s.to_string())
        .chain(files.iter().cloned())
        .collect()
}

/// The verb writes to an open stdout and succeeds; with stdout closed it still exits 0, and
/// says nothing about the pipe on stderr.
fn assert_quiet_success(args: &[String]) {
    let o = open(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {o:?}");
    assert!(!o.stdout.is_empty(), "{args:?} prints to stdout");

    let o = closed_stdout(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?} with stdout closed: {stderr}"
    );
    assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
}

#[test]
fn schema_to_a_closed_pipe_exits_0() {
    assert_quiet_success(&args(&["schema"], &[]));
}

#[test]
fn check_to_a_closed_pipe_exits_0() {
    let files = experiment_files();
    assert_quiet_success(&args(&["check"], &files));
    assert_quiet_success(&args(&["check", "--quiet"], &files));
    assert_quiet_success(&args(&["check"], &files[..1]));
}

#[test]
fn check_json_to_a_closed_pipe_exits_0() {
    let files = experiment_files();
    assert_quiet_success(&args(&["check", "--json"], &files));
    assert_quiet_success(&args(&["check", "--json"], &files[..1]));
}

#[test]
fn batch_list_to_a_closed_pipe_exits_0() {
    let out = tempfile::tempdir().expect("tempdir");
    let out = out.path().to_string_lossy().into_owned();
    let files = experiment_files();
    assert_quiet_success(&args(&["batch", "--list", "--out", &out], &files));
}

#[test]
fn diff_to_a_closed_pipe_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("summary.csv");
    std::fs::write(
        &table,
        "index,experiment,variant,test_acc,seconds\n0,a,x,90.0,10\n",
    )
    .expect("write");
    let t = table.to_string_lossy().into_owned();
    assert_quiet_success(&args(&["diff", &t, &t], &[]));
}

#[test]
fn help_to_a_closed_pipe_exits_0() {
    let o = closed_stdout(&args(&["--help"], &[]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A closed stderr loses the messages, nothing else: the exit code is the one they would
/// have explained (2), not a panic's (101), and stdout is unaffected.
#[test]
fn a_closed_stderr_keeps_the_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir
        .path()
        .join("missing.toml")
        .to_string_lossy()
        .into_owned();
    for a in [
        args(&["run"], std::slice::from_ref(&missing)),
        args(&["diff", &missing, &missing], &[]),
        args(&["show-data"], std::slice::from_ref(&missing)),
        args(&[], &[]),
    ] {
        let o = closed_stderr(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {o:?}");
    }
    let files = experiment_files();
    let o = closed_stderr(&args(&["check", "--quiet"], &files));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(": ok: "),
        "{o:?}"
    );
}

/// Without a reader on either side, an invalid file still exits 0: the closed stdout ends the
/// command before its verdict, as ripgrep does.
#[test]
fn both_closed_never_panics() {
    let o = runner()
        .args(["check", "experiments/broken/vgg16_classifier_2048.toml"])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .output()
        .expect("the runner binary starts");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn predict_to_a_closed_pipe_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_string_lossy().into_owned();
    let o = open(&args(
        &["experiments/synthetic_demo.toml", "--out", &out, "--plain"],
        &[],
    ));
    assert!(o.status.success(), "{o:?}");
    let run = std::fs::read_dir(dir.path().join("synthetic_demo"))
        .expect("the experiment's folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let png = dir.path().join("grey.png");
    image::GrayImage::from_pixel(12, 12, image::Luma([128]))
        .save(&png)
        .expect("save");
    let (run, png) = (run.to_string_lossy(), png.to_string_lossy());
    for format in [&[][..], &["--json"], &["--csv"]] {
        let mut a = args(&["predict", &run, &png], &[]);
        a.extend(format.iter().map(|s| s.to_string()));
        assert_quiet_success(&a);
    }
}
