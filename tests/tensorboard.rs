//! `runner FILE` writes TensorBoard event files: read back, they hold metrics.csv's numbers.
//! (`scripts/read-tensorboard.py` makes the same comparison with TensorBoard's own reader.)

mod common;

use std::path::{Path, PathBuf};

use runner::report::tensorboard::{
    epoch_tag, event_files, read_event_file, read_scalars, What, BATCH_ACC, BATCH_LOSS, BATCH_LR,
    BATCH_RUNNING_LOSS,
};

/// The synthetic demo (512 images in batches of 32: 16 steps an epoch, 3 epochs) trained into
/// `root` with `extra` arguments.
fn train_demo(root: &Path, extra: &[&str]) -> PathBuf {
    common::train_demo_with(root, extra)
}

#[test]
fn the_event_file_holds_metrics_csv_epoch_by_epoch_and_the_logged_steps() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &["--log-every", "4"]);
    let files = event_files(&dir).expect("event files");
    assert_eq!(files.len(), 1, "{files:?}");
    let file = read_event_file(&files[0]).expect("a valid event file");
    assert!(!file.truncated, "the run closed its file");
    assert_eq!(
        file.events[0].what,
        What::FileVersion("brain.Event:2".into())
    );
    assert_eq!(
        (file.events[1].step, &file.events[1].what),
        (1, &What::SessionStart)
    );

    let scalars = read_scalars(&dir).expect("scalars");
    // metrics.csv read as text, each cell as f32: what TensorBoard must show.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for (i, column) in header.iter().enumerate() {
        let tag = epoch_tag(column);
        // An empty column (`val_*` without a validation split) has no series.
        if rows.iter().all(|r| r[i].is_empty()) {
            assert!(!scalars.contains_key(&tag), "{tag} should not be written");
            continue;
        }
        let got: Vec<(i64, f32)> = scalars
            .get(&tag)
            .unwrap_or_else(|| panic!("no series {tag} in {:?}", scalars.keys()))
            .iter()
            .map(|p| (p.step, p.value))
            .collect();
        let want: Vec<(i64, f32)> = rows
            .iter()
            .enumerate()
            .map(|(e, row)| {
                let cell: f64 = row[i].parse().unwrap_or_else(|_| panic!("{}", row[i]));
                (16 * (e as i64 + 1), cell as f32)
            })
            .collect();
        assert_eq!(got, want, "{column} as {tag}");
    }
    // Every 4th step of each epoch, at the global step.
    let logged: Vec<i64> = (1..=48).filter(|s| s % 4 == 0).collect();
    for tag in [BATCH_LOSS, BATCH_RUNNING_LOSS, BATCH_ACC, BATCH_LR] {
        let steps: Vec<i64> = scalars[tag].iter().map(|p| p.step).collect();
        assert_eq!(steps, logged, "{tag}");
    }
    // A constant schedule: every step's lr is the file's.
    assert!(scalars[BATCH_LR].iter().all(|p| p.value == 0.05_f32));
    // The running loss at an epoch's last step is the epoch's train loss, unrounded.
    for (e, row) in rows.iter().enumerate() {
        let last = scalars[BATCH_RUNNING_LOSS][4 * e + 3];
        let csv: f64 = row[1].parse().expect("train_loss");
        assert!(
            (f64::from(last.value) - csv).abs() < 1e-6,
            "epoch {}: {} vs {csv}",
            e + 1,
            last.value
        );
    }
    // Every column but the empty `val_*` and `ema_*` ones, and the four `batch/*` series.
    assert_eq!(scalars.len(), header.len() - 4 + 4, "{:?}", scalars.keys());
}

#[test]
fn no_tensorboard_writes_no_event_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &["--no-tensorboard", "--epochs", "1"]);
    assert_eq!(event_files(&dir).expect("listing"), Vec::<PathBuf>::new());
    assert!(dir.join("metrics.csv").is_file());
}
