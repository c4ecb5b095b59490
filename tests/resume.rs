//! Long runs from the command line: a real signal in the middle of an epoch, `runner resume`,
//! a second signal, a refused resume, and two batches on one folder. (The bit-exact resume of
//! SGD, Adam and a sparse checkpoint interval is tested in process, in `train::run`.)

mod common;
use common::{runner, text};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A synthetic experiment slow enough to be caught in the middle of an epoch (well under a
/// second per epoch in release builds, a few in debug builds): 2,048 images of 3x16x16 through
/// a small conv net with BatchNorm, dropout, augmentation and a schedule.
fn slow_experiment(dir: &Path, name: &str, epochs: usize, sweep: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let body = format!(
        r#"name = "{name}"
seed = 11
[data]
dataset = "synthetic"
synthetic = {{ shape = [3, 16, 16], classes = 4, train_size = 2048, test_size = 256 }}
batch_size = 32
train_transforms = [{{ op = "random_crop", size = 16, padding = 2 }}, {{ op = "random_horizontal_flip" }}]
[model]
layers = [
  {{ op = "conv2d", out = 16, kernel = 3, padding = 1 }},
  {{ op = "batch_norm2d" }},
  {{ op = "relu" }},
  {{ op = "max_pool2d", kernel = 2 }},
  {{ op = "conv2d", out = 16, kernel = 3, padding = 1 }},
  {{ op = "relu" }},
  {{ op = "max_pool2d", kernel = 2 }},
  {{ op = "flatten" }},
  {{ op = "dropout", p = 0.1 }},
  {{ op = "linear", out = 4 }},
]
[train]
epochs = {epochs}
optimizer = {{ kind = "sgd", lr = 0.05, momentum = 0.9 }}
schedule = {{ kind = "cosine" }}
{sweep}"#
    );
    std::fs::write(&path, body).expect("write experiment");
    path
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUNNER_NO_DOWNLOAD", "1")
        .env_remove("RUNNER_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runner starts")
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: `kill` only sends a signal to the child's pid, which is alive (not yet waited).
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill");
}

/// Waits until `path` exists (or fails the test after `limit`).
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{} did not appear in {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `parent` holds a folder (a run's), and returns it.
fn first_run_dir(parent: &Path) -> PathBuf {
    let start = Instant::now();
    loop {
        if let Ok(mut entries) = std::fs::read_dir(parent) {
            if let Some(Ok(e)) = entries.next() {
                return e.path();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no run folder in {}",
            parent.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one run folder under `root/<experiment>/`.
fn only_run(root: &Path, experiment: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root.join(experiment))
        .expect("experiment folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().expect("one")
}

/// Every file under `dir` whose name marks a temporary file.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(".tmp-") {
                found.push(p);
            }
        }
    }
    found
}

/// metrics.csv without its three timing columns.
fn metrics(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .expect("metrics.csv")
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

fn status(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("status.json")).expect("status.json");
    serde_json::from_str(&text).expect("status.json is JSON")
}

#[test]
fn sigterm_in_the_middle_of_an_epoch_checkpoints_and_the_resume_gives_the_same_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    // With mixup/cutmix, whose draws must also continue as in the uninterrupted run.
    let mix = "mixup = { mixup_alpha = 0.8, cutmix_alpha = 1.0 }";
    let file = slow_experiment(dir.path(), "slow", 3, mix);
    let whole = dir.path().join("whole");
    let parted = dir.path().join("parted");
    let common = ["--plain", "--log-every", "0"];

    let child = spawn(&[&[s(&file), "--out", s(&parted)][..], &common].concat());
    // Epoch 1 is done when its row is written; the signal then lands in epoch 2 (or, on a very
    // fast machine, later: the assertions below hold for any epoch after the first).
    let run_dir = first_run_dir(&parted.join("slow"));
    wait_for(&run_dir.join("metrics.csv"), Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(50));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    let log = text(&out);
    assert_eq!(out.status.code(), Some(143), "{log}");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    assert!(
        log.contains(&format!("runner resume {}", run_dir.display())),
        "{log}"
    );
    assert!(
        temporaries(&run_dir).is_empty(),
        "{:?}",
        temporaries(&run_dir)
    );
    let st = status(&run_dir);
    assert_eq!(st["state"], "interrupted", "{st}");
    let done = st["epochs_done"].as_u64().expect("epochs_done");
    assert!((1..3).contains(&done), "{st}");
    assert!(run_dir.join("checkpoints/last.json").is_file());
    assert!(!run_dir.join("summary.csv").exists());

    let resumed = runner(&[&["resume", s(&run_dir)][..], &common].concat());
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains(&format!("resuming after epoch {done} of 3")),
        "{}",
        text(&resumed)
    );
    assert_eq!(status(&run_dir)["state"], "finished");

    let straight = runner(&[&[s(&file), "--out", s(&whole)][..], &common].concat());
    assert!(straight.status.success(), "{}", text(&straight));
    let whole_dir = only_run(&whole, "slow");
    assert_eq!(metrics(&whole_dir), metrics(&run_dir));
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).expect("weights");
    assert!(
        weights(&whole_dir) == weights(&run_dir),
        "final weights differ"
    );
    assert!(temporaries(&run_dir).is_empty());

    // Resuming a finished run does nothing.
    let again = runner(&["resume", s(&run_dir)]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("is finished: nothing to resume"));
}

#[test]
fn a_second_signal_aborts_at_once_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = slow_experiment(dir.path(), "slow", 50, "");
    let out = dir.path().join("out");
    let child = spawn(&[s(&file), "--out", s(&out), "--plain", "--log-every", "0"]);
    let run_dir = first_run_dir(&out.join("slow"));
    wait_for(&run_dir.join("status.json"), Duration::from_secs(120));
    // Two different signals: two of the same kind sent together may arrive as one.
    signal(&child, libc::SIGINT);
    signal(&child, libc::SIGTERM);
    let done = child.wait_with_output().expect("wait");
    // Both signals are pending at once, and which one runner's signal thread sees first is not
    // defined: the first names the exit code (130 for SIGINT, 143 for SIGTERM), the second aborts.
    let (first, code) = if text(&done).contains("SIGINT received") {
        ("SIGINT", 130)
    } else {
        ("SIGTERM", 143)
    };
    assert!(
        text(&done).contains(&format!("{first} received")),
        "{}",
        text(&done)
    );
    assert_eq!(done.status.code(), Some(code), "{}", text(&done));
    assert!(text(&done).contains("aborting now"), "{}", text(&done));
    assert!(
        temporaries(&run_dir).is_empty(),
        "{:?}",
        temporaries(&run_dir)
    );
    // The abort writes nothing more: the status is the last one written.
    let st = status(&run_dir);
    assert!(
        st["state"] == "running" || st["state"] == "interrupted",
        "{st}"
    );
}

#[test]
fn resume_refuses_a_different_experiment_and_names_the_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = slow_experiment(dir.path(), "slow", 1, "");
    let out = dir.path().join("out");
    let first = runner(&[s(&file), "--out", s(&out), "--plain", "--train-limit", "64"]);
    assert!(first.status.success(), "{}", text(&first));
    let run_dir = only_run(&out, "slow");
    let other = runner(&[
        s(&file),
        "--resume",
        s(&run_dir),
        "--set",
        "train.optimizer.lr=0.5",
        "--set",
        "seed=12",
        "--train-limit",
        "64",
    ]);
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    let msg = text(&other);
    assert!(
        msg.contains("differs from this experiment in 2 keys"),
        "{msg}"
    );
    assert!(msg.contains("train.optimizer.lr: 0.05 -> 0.5"), "{msg}");
    assert!(msg.contains("seed: 11 -> 12"), "{msg}");
    // The same experiment is accepted (and the run is already finished).
    let same = runner(&[s(&file), "--resume", s(&run_dir), "--train-limit", "64"]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(text(&same).contains("nothing to resume"), "{}", text(&same));
    // `runner diff` says when a summary's folder is not a finished run.
    std::fs::write(
        run_dir.join("status.json"),
        r#"{ "state": "interrupted", "epochs_done": 0, "epochs": 1, "reason": "SIGTERM" }"#,
    )
    .expect("status");
    let summary = run_dir.join("summary.csv");
    let diff = runner(&["diff", s(&summary), s(&summary)]);
    assert!(diff.status.success(), "{}", text(&diff));
    assert!(
        text(&diff).contains("the run folder says interrupted after epoch 0 of 1 by SIGTERM"),
        "{}",
        text(&diff)
    );
    let missing = runner(&["resume", s(&dir.path().join("nowhere"))]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("is not a run folder"),
        "{}",
        text(&missing)
    );
}

#[test]
fn two_batches_on_one_folder_train_every_variant_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = slow_experiment(
        dir.path(),
        "pair",
        1,
        "[sweep]\n\"train.optimizer.lr\" = [0.01, 0.02, 0.03, 0.04]\n",
    );
    let out = dir.path().join("out");
    let args = [
        "batch",
        s(&file),
        "--out",
        s(&out),
        "--plain",
        "--log-every",
        "0",
        "--train-limit",
        "512",
    ];
    let a = spawn(&args);
    let b = spawn(&args);
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    for lr in ["0.01", "0.02", "0.03", "0.04"] {
        let variant = out.join("pair").join(format!("lr={lr}"));
        let runs: Vec<PathBuf> = std::fs::read_dir(&variant)
            .expect("variant folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "lr={lr}: {runs:?}\n{}\n{}",
            text(&a),
            text(&b)
        );
        assert!(runs[0].join("summary.csv").is_file(), "lr={lr}");
        assert_eq!(status(&runs[0])["state"], "finished");
    }
    // Every variant trained once in all: the two logs' outcome lines add up to four.
    let trained = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("pair: test accuracy"))
            .count()
    };
    assert_eq!(trained(&a) + trained(&b), 4, "{}\n{}", text(&a), text(&b));
    // The batch that ended last wrote the whole table.
    let csv = std::fs::read_to_string(out.join("batch.csv")).expect("batch.csv");
    let ok = csv.lines().skip(1).filter(|l| l.contains(",ok,")).count();
    assert_eq!(ok, 4, "{csv}");
    // Run again: nothing to train.
    let again = runner(&args);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        text(&again).matches("finished before").count(),
        4,
        "{}",
        text(&again)
    );
}

#[test]
fn a_batch_resumes_its_interrupted_variant_and_lists_it_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = slow_experiment(
        dir.path(),
        "pair",
        2,
        "[sweep]\n\"train.optimizer.lr\" = [0.01, 0.02]\n",
    );
    let out = dir.path().join("out");
    let args = [
        "batch",
        s(&file),
        "--out",
        s(&out),
        "--plain",
        "--log-every",
        "0",
    ];
    let child = spawn(&args);
    let first = out.join("pair").join("lr=0.01");
    let run_dir = first_run_dir(&first);
    wait_for(&run_dir.join("metrics.csv"), Duration::from_secs(300));
    signal(&child, libc::SIGTERM);
    let stopped = child.wait_with_output().expect("wait");
    assert_eq!(stopped.status.code(), Some(143), "{}", text(&stopped));
    assert!(text(&stopped).contains("run the same command again to resume"));

    let list = runner(&["batch", s(&file), "--out", s(&out), "--list"]);
    let listing = text(&list);
    assert!(listing.contains("interrupted after epoch"), "{listing}");
    assert!(listing.contains("the next batch resumes it"), "{listing}");

    let resumed = runner(&args);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("resuming after epoch"),
        "{}",
        text(&resumed)
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(&first)
        .expect("variant folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        runs.as_slice(),
        std::slice::from_ref(&run_dir),
        "resumed in place, no second folder"
    );
    assert!(run_dir.join("summary.csv").is_file());
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
}
