//! The example Slurm job array (`scripts/slurm/*.sbatch`) end to end, on a real Slurm: shards
//! run as array tasks, a dependent job merges them, and the merged table has every variant once.
//! Skipped, with a message, where no Slurm controller answers (`sinfo` fails), as in CI.
//! On a single machine: `apt install slurm-wlm munge`, a one-node slurm.conf, then start
//! munged, slurmctld and slurmd (see the notes of the ablations issue).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn slurm_answers() -> bool {
    Command::new("sinfo")
        .arg("--noheader")
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

fn sbatch(args: &[&str], env: &[(&str, &Path)], dir: &Path) -> String {
    let mut c = Command::new("sbatch");
    c.arg("--parsable").args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("sbatch runs");
    assert!(
        o.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn the_example_job_array_covers_every_variant_once() {
    if !slurm_answers() {
        eprintln!("skipped: no Slurm controller answers `sinfo` on this machine");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("seeds.toml");
    std::fs::write(
        &file,
        r#"name = "seeds"
[data]
dataset = "synthetic"
synthetic = { shape = [1, 6, 6], classes = 3, train_size = 96, test_size = 48 }
batch_size = 16
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 3 }]
[sweep]
seed = [0, 1, 2, 3, 4, 5, 6]
"#,
    )
    .expect("write experiment");
    let out = dir.path().join("out");
    let exe = Path::new(env!("CARGO_BIN_EXE_runner"));
    let env = [
        ("RUNNER", exe),
        ("FILES", file.as_path()),
        ("OUT", out.as_path()),
    ];
    // 3 array tasks for 7 variants: uneven shards on purpose.
    let array = sbatch(
        &[
            "--array=0-2",
            s(&root.join("scripts/slurm/ablation.sbatch")),
        ],
        &env,
        dir.path(),
    );
    let merge = sbatch(
        &[
            &format!("--dependency=afterok:{array}"),
            s(&root.join("scripts/slurm/merge.sbatch")),
        ],
        &env,
        dir.path(),
    );
    let merged = out.join("batch.csv");
    let started = Instant::now();
    loop {
        let queued = Command::new("squeue")
            .args(["--noheader", "--jobs", &format!("{array},{merge}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if queued.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "Slurm jobs still queued after 5 minutes:\n{queued}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let csv = std::fs::read_to_string(&merged).unwrap_or_else(|e| {
        let logs: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        panic!("no merged table ({e}); job logs:\n{}", logs.join("\n---\n"))
    });
    let variants: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect();
    let expected: Vec<String> = (0..7).map(|i| format!("{i},seeds,seed={i}")).collect();
    assert_eq!(variants, expected, "{csv}");
    for i in 0..3 {
        assert!(
            out.join(format!("shard-{i}/batch.csv")).is_file(),
            "shard {i} table"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
