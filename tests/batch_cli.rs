//! Ablations from the command line: `--set`, `[sweep]` variants, `runner batch` (resume,
//! shards, merge) and `runner diff`, on small generated data.

mod common;
use common::{runner, text};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A tiny synthetic experiment; `sweep` is appended as written.
fn experiment(dir: &Path, name: &str, sweep: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let body = format!(
        r#"name = "{name}"
seed = 0
[data]
dataset = "synthetic"
synthetic = {{ shape = [1, 6, 6], classes = 3, train_size = 96, test_size = 48 }}
batch_size = 16
[model]
layers = [{{ op = "flatten" }}, {{ op = "linear", out = 3 }}]
[train]
optimizer = {{ kind = "sgd", lr = 0.1 }}
{sweep}"#
    );
    std::fs::write(&path, body).expect("write experiment");
    path
}

/// All run folders (those holding a config.toml) under `root`.
fn run_folders(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.join("config.toml").is_file() {
                    out.insert(p);
                } else {
                    stack.push(p);
                }
            }
        }
    }
    out
}

#[test]
fn a_sweep_run_twice_trains_once_and_reproduces_batch_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(
        dir.path(),
        "lr_sweep",
        "[sweep]\n\"train.optimizer.lr\" = [0.01, 0.1]\n",
    );
    let out = dir.path().join("out");
    let first = runner(&["batch", s(&file), "--out", s(&out), "--plain"]);
    assert!(first.status.success(), "{}", text(&first));
    let csv1 = std::fs::read_to_string(out.join("batch.csv")).expect("batch.csv");
    let runs1 = run_folders(&out);
    assert_eq!(runs1.len(), 2, "{runs1:?}");
    assert!(out.join("lr_sweep/lr=0.01").is_dir() && out.join("lr_sweep/lr=0.1").is_dir());
    let lines: Vec<&str> = csv1.lines().collect();
    assert_eq!(lines.len(), 3, "{csv1}");
    assert!(
        lines[1].starts_with("0,lr_sweep,lr=0.01,train.optimizer.lr=0.01,ok,0,111,1,96,"),
        "{csv1}"
    );
    assert!(
        lines[2].starts_with("1,lr_sweep,lr=0.1,train.optimizer.lr=0.1,ok,"),
        "{csv1}"
    );
    let md = std::fs::read_to_string(out.join("batch.md")).expect("batch.md");
    assert!(md.contains("| 0 | lr_sweep | `lr=0.01` | 111 |"), "{md}");
    for picture in [
        "compare_accuracy.png",
        "compare_curves.png",
        "compare_curves.svg",
    ] {
        assert!(out.join(picture).is_file(), "{picture} missing");
    }

    let second = runner(&["batch", s(&file), "--out", s(&out), "--plain"]);
    assert!(second.status.success(), "{}", text(&second));
    let t = text(&second);
    assert_eq!(t.matches("finished before").count(), 2, "{t}");
    assert!(
        !t.contains("runner: training"),
        "the second batch trained:\n{t}"
    );
    assert_eq!(
        run_folders(&out),
        runs1,
        "the second batch made new run folders"
    );
    let csv2 = std::fs::read_to_string(out.join("batch.csv")).expect("batch.csv");
    assert_eq!(csv1, csv2);

    // A changed config (here through --set) is a different run: it trains.
    let third = runner(&[
        "batch",
        s(&file),
        "--out",
        s(&out),
        "--plain",
        "--set",
        "data.batch_size=32",
    ]);
    assert!(third.status.success(), "{}", text(&third));
    assert_eq!(text(&third).matches("runner: training").count(), 2);
    assert_eq!(run_folders(&out).len(), 4);
}

/// `runner batch --list`: (index, experiment, variant) per line.
fn listed(args: &[&str]) -> Vec<(usize, String, String)> {
    let o = runner(args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().expect("index"),
                f[1].to_string(),
                f[2].to_string(),
            )
        })
        .collect()
}

#[test]
fn shards_cover_every_variant_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = experiment(
        dir.path(),
        "grid",
        "[sweep]\nseed = [0, 1, 2]\n\"data.shuffle\" = [true, false]\n[[sweep.zip]]\nlabel = [\"s\", \"l\"]\n\"data.batch_size\" = [8, 32]\n\"train.optimizer.lr\" = [0.05, 0.2]\n",
    );
    let b = experiment(dir.path(), "plain", "");
    let out = dir.path().join("out");
    let all = listed(&["batch", s(&a), s(&b), "--out", s(&out), "--list"]);
    assert_eq!(all.len(), 13, "{all:?}");
    assert_eq!(all[0], (0, "grid".into(), "seed=0,shuffle=true,s".into()));
    assert_eq!(all[12], (12, "plain".into(), "-".into()));
    for n in [1usize, 2, 3, 5, 13, 20] {
        let mut seen = Vec::new();
        for i in 0..n {
            let shard = format!("{i}/{n}");
            seen.extend(listed(&[
                "batch",
                s(&a),
                s(&b),
                "--out",
                s(&out),
                "--list",
                "--shard",
                &shard,
            ]));
        }
        seen.sort();
        assert_eq!(seen, all, "{n} shards");
    }
    let bad = runner(&["batch", s(&a), "--shard", "3/3", "--list"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn sharded_batches_merge_into_one_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds", "[sweep]\nseed = [0, 1, 2]\n");
    let shard = |i: usize| dir.path().join(format!("shard-{i}"));
    for i in 0..2 {
        let o = runner(&[
            "batch",
            s(&file),
            "--out",
            s(&shard(i)),
            "--plain",
            "--shard",
            &format!("{i}/2"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let merged = dir.path().join("all");
    let o = runner(&[
        "batch",
        "--merge",
        s(&shard(0)),
        s(&shard(1)),
        "--out",
        s(&merged),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(merged.join("batch.csv")).expect("merged batch.csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[2])).collect();
    assert_eq!(
        keys,
        [("0", "seed=0"), ("1", "seed=1"), ("2", "seed=2")],
        "{csv}"
    );
    // Run folders are given relative to the merged table and exist.
    for r in &rows {
        let run = merged.join(r[15]);
        assert!(run.join("summary.csv").is_file(), "{}", run.display());
    }
    // A shard missing from the merge is an error, and so is the same shard twice.
    let o = runner(&["batch", "--merge", s(&shard(1)), "--out", s(&merged)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = runner(&[
        "batch",
        "--merge",
        s(&shard(0)),
        s(&shard(0)),
        "--out",
        s(&merged),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is in both"), "{}", text(&o));
}

#[test]
fn diff_exit_codes_follow_the_tolerances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.csv");
    std::fs::write(
        &base,
        "index,experiment,variant,test_acc,seconds\n0,a,x,90.0,10\n1,a,y,80.0,10\n",
    )
    .expect("write");
    let same = runner(&["diff", s(&base), s(&base)]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));

    let worse = dir.path().join("worse.csv");
    std::fs::write(
        &worse,
        "index,experiment,variant,test_acc,seconds\n0,a,x,90.1,12\n1,a,y,79.2,10\n",
    )
    .expect("write");
    let o = runner(&["diff", s(&base), s(&worse), "--tol", "test_acc=0.5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("| a [y] | 80 → 79.2 (-0.8, -1.0%) **✗** | **regression** |"),
        "{out}"
    );
    assert!(
        out.contains("| a [x] | 90 → 90.1 (+0.1, +0.1%) | ok |"),
        "{out}"
    );
    // Within a looser tolerance it passes; seconds may grow 50%, not 10%.
    let o = runner(&["diff", s(&base), s(&worse), "--tol", "test_acc=1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = runner(&[
        "diff",
        s(&base),
        s(&worse),
        "--tol",
        "test_acc=1",
        "--tol",
        "seconds=+10%",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Tables that cannot be compared: exit 2 with the reason.
    let cases = [
        (
            "index,experiment,variant,test_acc,seconds\n0,a,x\n",
            "is not a valid CSV table",
        ),
        (
            "index,experiment,variant,test_acc,seconds\n0,a,x,90.0,10\n",
            "1 of the baseline's 2 rows are missing from the new table [a [y]]",
        ),
        (
            "index,experiment,test_acc,seconds\n0,a,90.0,10\n",
            "different columns",
        ),
        (
            "index,experiment,variant,test_acc,seconds\n",
            "the new table has a header but no data rows",
        ),
        (
            "index,experiment,variant,test_acc,test_acc\n0,a,x,90.0,10\n",
            "the column name `test_acc` appears twice in the header (columns 4 and 5)",
        ),
    ];
    for (i, (body, reason)) in cases.iter().enumerate() {
        let new = dir.path().join(format!("bad{i}.csv"));
        std::fs::write(&new, body).expect("write");
        let o = runner(&["diff", s(&base), s(&new)]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(reason), "{reason}: {}", text(&o));
    }
    // An emptied baseline is an error, not a pass.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "index,experiment,variant,test_acc,seconds\n").expect("write");
    let o = runner(&["diff", s(&empty), s(&base)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the baseline has a header but no data rows: against an empty baseline every table would pass"),
        "{}",
        text(&o)
    );
    let o = runner(&["diff", s(&base), s(&dir.path().join("missing.csv"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
}

#[test]
fn diff_compares_the_summaries_of_two_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "one", "");
    for out in ["a", "b"] {
        let o = runner(&[
            "run",
            s(&file),
            "--out",
            s(&dir.path().join(out)),
            "--plain",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let summary = |out: &str| {
        let root = dir.path().join(out).join("one");
        let run = std::fs::read_dir(&root)
            .expect("runs")
            .next()
            .expect("a run")
            .expect("entry");
        run.path().join("summary.csv")
    };
    let o = runner(&[
        "diff",
        s(&summary("a")),
        s(&summary("b")),
        "--tol",
        "test_acc=0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_wrong_set_path_is_located_with_a_suggestion() {
    let o = runner(&[
        "check",
        "--quiet",
        "experiments/mnist_cnn.toml",
        "--set",
        "train.optimizer.lrr=0.1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("error: unknown key `lrr` in `[train.optimizer]`"),
        "{t}"
    );
    assert!(t.contains("--> --set:1:17"), "{t}");
    assert!(t.contains("help: did you mean `lr`?"), "{t}");

    let o = runner(&[
        "check",
        "--quiet",
        "experiments/mnist_cnn.toml",
        "--set",
        "data.batch_size=big",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("expected a non-negative integer, found string"),
        "{}",
        text(&o)
    );

    let o = runner(&[
        "check",
        "--quiet",
        "experiments/mnist_cnn.toml",
        "--set",
        "train.optimizer.momentum=0.9",
        "--set",
        "model.layers.0.out=8",
        "--set",
        "model.layers.3.in=8",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("6,774 parameters"), "{}", text(&o));
}

#[test]
fn run_needs_a_variant_for_a_sweep_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "two", "[sweep]\nseed = [0, 1]\n");
    let out = dir.path().join("out");
    let o = runner(&["run", s(&file), "--out", s(&out), "--plain"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("runner batch"), "{}", text(&o));
    let o = runner(&[
        "run",
        s(&file),
        "--out",
        s(&out),
        "--plain",
        "--variant",
        "seed=2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("did you mean `seed=0`?"), "{}", text(&o));
    let o = runner(&[
        "run",
        s(&file),
        "--out",
        s(&out),
        "--plain",
        "--variant",
        "seed=1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let config = std::fs::read_to_string(
        run_folders(&out)
            .iter()
            .next()
            .expect("run")
            .join("config.toml"),
    )
    .expect("config");
    assert!(config.contains("seed = 1"), "{config}");
}

#[test]
fn a_batch_with_an_invalid_file_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = experiment(dir.path(), "good", "");
    let bad = experiment(dir.path(), "bad", "[sweep]\n\"train.epochs\" = [1, 0]\n");
    let out = dir.path().join("out");
    let o = runner(&["batch", s(&good), s(&bad), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nothing run"), "{}", text(&o));
    assert!(
        !out.exists(),
        "a batch with errors created {}",
        out.display()
    );
}
