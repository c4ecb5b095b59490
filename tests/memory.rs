//! No input makes a command use more than about 1 GiB beyond what the declared model and data
//! need: each worst case here runs the `runner` binary and reads its peak resident memory from
//! the kernel (`wait4`'s `ru_maxrss`), so a test fails if an input costs more than its bound.
//!
//! The inputs are the largest each reader accepts (a table at runner diff's cell limit, a
//! metrics.csv at the row limit, an experiment at the size limit) and the ones just past it.

#![cfg(target_os = "linux")]

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

const MIB: i64 = 1024 * 1024;

/// Runs `runner ARGS` with its output discarded; returns the exit code and the peak resident
/// memory in bytes.
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which clippy cannot see"
)]
fn run_peak(args: &[&str]) -> (Option<i32>, i64) {
    let child = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .env("RUNNER_NO_DOWNLOAD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("runner starts");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, and both pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let status = std::process::ExitStatus::from_raw(status);
    assert!(
        status.signal().is_none(),
        "runner {args:?} was killed: {status}"
    );
    // Linux reports kilobytes.
    (status.code(), usage.ru_maxrss * 1024)
}

/// One test at a time, so that no other test's buffers are in this process when it starts a
/// child; each test drops its own before measuring.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends `text` to `file`.
fn append(file: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("append");
}

/// Asserts that `runner ARGS` exits with `code` and peaks below `bound` bytes; returns the peak.
///
/// Linux counts the spawning process's resident memory at the moment of the `exec` into the
/// child's `ru_maxrss`, so a peak at or below that floor (measured with `runner --version`
/// just before) says only that runner used less than this test process; above it, it is
/// runner's own peak.
fn assert_peak(args: &[&str], code: i32, bound: i64) -> i64 {
    let (_, floor) = run_peak(&["--version"]);
    let (got, bytes) = run_peak(args);
    assert_eq!(got, Some(code), "runner {args:?}");
    assert!(
        bytes <= floor || bytes < bound,
        "runner {args:?}: {} MiB, bound {} MiB (floor {} MiB)",
        bytes / MIB,
        bound / MIB,
        floor / MIB
    );
    bytes
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn diff_at_the_cell_limit_stays_well_under_a_gibibyte() {
    let _serial = serial();
    use runner::report::diff::{MAX_CELLS, MAX_ROWS};
    let dir = tempfile::tempdir().expect("tempdir");
    // The costliest table runner diff accepts: the most cells, each one byte, every row a key.
    let cols = 20;
    let rows = (MAX_CELLS / cols).min(MAX_ROWS);
    let mut t = String::from("experiment");
    for c in 1..cols {
        let _ = write!(t, ",c{c}");
    }
    t.push('\n');
    let row_tail = ",1".repeat(cols - 1);
    for r in 0..rows {
        let _ = writeln!(t, "{r:x}{row_tail}");
    }
    let table = dir.path().join("t.csv");
    std::fs::write(&table, &t).expect("write");
    drop(t);
    let bytes = assert_peak(
        &["diff", s(&table), s(&table), "--tol", "c1=0"],
        0,
        1024 * MIB,
    );
    eprintln!("diff of two {rows}-row tables: {} MiB", bytes / MIB);

    // One row more than the cell limit is refused before it costs more.
    append(&table, &format!("extra{row_tail}\n"));
    assert_peak(
        &["diff", s(&table), s(&table), "--tol", "c1=0"],
        2,
        512 * MIB,
    );
}

#[test]
fn plotting_a_metrics_file_at_the_row_limit_stays_well_under_a_gibibyte() {
    let _serial = serial();
    use runner::report::{METRICS_HEADER, SUMMARY_HEADER, TABLE_ROWS};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("mkdir");
    let mut m = format!("{METRICS_HEADER}\n");
    for e in 1..=TABLE_ROWS {
        let test_loss = if e % 3 == 0 {
            "NaN".to_string()
        } else {
            format!("{}", 1.0 / e as f64)
        };
        // The `val_` and `ema_` cells empty, as a run without a split or `[train.ema]` writes them.
        let _ = writeln!(m, "{e},0.5,50,{test_loss},60,0.1,1,100,100,,,,");
    }
    std::fs::write(run.join("metrics.csv"), &m).expect("write");
    drop(m);
    std::fs::write(
        run.join("summary.csv"),
        format!("{SUMMARY_HEADER}\nx,r,0,cpu,10,{TABLE_ROWS},100,60,60,1,0.5,1,1,100,,test,,\n"),
    )
    .expect("write");
    let out = dir.path().join("plots");
    let bytes = assert_peak(&["plot", s(&run), "--out", s(&out)], 0, 1024 * MIB);
    eprintln!("plot of {TABLE_ROWS} epochs: {} MiB", bytes / MIB);

    // Past the row limit: an error that names it, not more memory.
    append(
        &run.join("metrics.csv"),
        &format!("{},0.5,50,1,60,0.1,1,100,100,,,,\n", TABLE_ROWS + 1),
    );
    assert_peak(&["plot", s(&run), "--out", s(&out)], 2, 1024 * MIB);
}

#[test]
fn experiments_at_and_past_every_limit_are_checked_in_little_memory() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/synthetic_demo.toml"),
    )
    .expect("the demo");
    let limit = runner::bounded::EXPERIMENT_LIMIT as usize;
    let cfg = |n: usize| {
        demo.replacen(
            "layers = [",
            &format!(
                "layers = [\n {{ op = \"vgg\", cfg = [{}] }},",
                vec!["8"; n].join(",")
            ),
            1,
        )
    };
    let cases: Vec<(&str, String)> = vec![
        // The largest VGG shorthand that fits in the size limit: far past the layer limit.
        ("cfg", cfg((limit - demo.len() - 100) / 2)),
        (
            "sweep",
            format!(
                "{demo}\n[sweep]\nseed = [{}]\n\"train.epochs\" = [{}]\n",
                (0..1000)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                (1..1000)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        (
            "nesting",
            format!(
                "name = \"x\"\na = {}{}\n",
                "[".repeat(limit / 2 - 20),
                "]".repeat(limit / 2 - 20)
            ),
        ),
        ("string", format!("name = \"{}\"\n", "x".repeat(limit - 20))),
        ("over", format!("name = \"{}\"\n", "x".repeat(limit))),
    ];
    for (what, text) in cases {
        let file = dir.path().join(format!("{what}.toml"));
        std::fs::write(&file, &text).expect("write");
        // The TOML parser's tree of the largest file costs a few hundred MiB (two million
        // array items: 451 MiB with glibc's allocator, 2026-12-02; 654 MiB with mimalloc, which
        // keeps freed memory for reuse, 2026-12-03); everything after it is bounded smaller.
        let bytes = assert_peak(&["check", s(&file)], 2, 800 * MIB);
        eprintln!("check {what}: {} MiB", bytes / MIB);
    }
    for device in ["/dev/zero", "/dev/urandom"] {
        assert_peak(&["check", device], 2, 64 * MIB);
    }
}
