//! The example Slurm job array (`scripts/slurm/*.sbatch`) end to end, on a real Slurm: shards
//! run as array tasks, a dependent job merges them, and the merged table has every variant once.
//! Skipped, with a message, where no Slurm controller answers (`sinfo` fails), as in CI.
//! On a single machine: `apt install slurm-wlm munge`, a one-node slurm.conf, then start
//! munged, slurmctld and slurmd (see the notes of the ablations issue).
//!
//! The array task script's signal handling (checkpoint and requeue at the time limit) runs
//! everywhere, with bash and stand-ins for runner and `scontrol` instead of Slurm.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
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

/// Stands in for runner: records its pid and arguments, and on SIGTERM "checkpoints" (takes a
/// moment) and exits 143 as runner does; exits 0 once `$LOG.finish` exists.
const FAKE_RUNNER: &str = r#"#!/usr/bin/env bash
trap 'echo TERM >> "$LOG"; sleep 0.5; echo checkpointed >> "$LOG"; exit 143' TERM
echo "pid $$ args $*" >> "$LOG"
while [ ! -e "$LOG.finish" ]; do sleep 0.05; done
echo finished >> "$LOG"
"#;

/// Stands in for `scontrol`: records its arguments.
const FAKE_SCONTROL: &str = "#!/usr/bin/env bash\necho \"$*\" >> \"$LOG.scontrol\"\n";

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write stand-in");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

fn wait_for(child: &mut Child, what: &str) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{what}: the script still runs after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--signal=B:USR1@120` makes Slurm send USR1 to the batch shell alone before the time limit:
/// the shell passes SIGTERM on to runner, waits for its checkpoint and requeues the task. On
/// preemption or scancel Slurm sends SIGTERM to every process: runner gets it once (the shell
/// does not pass it on a second time) and nothing is requeued. A runner that just finishes ends
/// the task with its own status.
#[test]
fn the_array_task_checkpoints_at_the_time_limit_and_requeues_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/slurm/ablation.sbatch");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    executable(&bin.join("scontrol"), FAKE_SCONTROL);
    let fake = dir.path().join("fake-runner");
    executable(&fake, FAKE_RUNNER);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // (what happens, signals to send as (to the shell?, signal), exit code, SIGTERMs runner
    // saw, what scontrol was asked)
    type Case = (
        &'static str,
        &'static [(bool, &'static str)],
        i32,
        usize,
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            "time limit warning",
            &[(true, "USR1")],
            143,
            1,
            "requeue 42\n",
        ),
        (
            "preemption: SIGTERM to every process",
            &[(true, "TERM"), (false, "TERM")],
            143,
            1,
            "",
        ),
        ("runner finishes", &[], 0, 0, ""),
    ];
    for (i, (what, signals, code, terms, scontrol)) in cases.into_iter().enumerate() {
        let log = dir.path().join(format!("log{i}"));
        let mut child = Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .env("LOG", &log)
            .env("RUNNER", &fake)
            .env("FILES", "a.toml b")
            .env("OUT", dir.path().join("out"))
            .env("SLURM_ARRAY_JOB_ID", "40")
            .env("SLURM_ARRAY_TASK_ID", "3")
            .env("SLURM_ARRAY_TASK_MIN", "2")
            .env("SLURM_ARRAY_TASK_COUNT", "4")
            .env("SLURM_JOB_ID", "42")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bash runs");
        let started = Instant::now();
        let runner_pid: u32 = loop {
            let text = read(&log);
            if let Some(pid) = text
                .lines()
                .find_map(|l| l.strip_prefix("pid "))
                .and_then(|l| l.split(' ').next())
            {
                break pid.parse().expect("a pid");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: runner never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            read(&log).contains(&format!(
                "args batch a.toml b --data-dir ../shared/data --out {}/shard-1 --shard 1/4 --plain",
                dir.path().join("out").display()
            )),
            "{what}: runner's arguments: {}",
            read(&log)
        );
        for &(to_shell, sig) in signals {
            signal(if to_shell { child.id() } else { runner_pid }, sig);
        }
        if signals.is_empty() {
            std::fs::write(log.with_extension("finish"), "").expect("finish");
        }
        let exit = wait_for(&mut child, what);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        let text = read(&log);
        assert_eq!(exit, Some(code), "{what}: exit code\n{text}{stderr}");
        assert_eq!(
            text.matches("TERM").count(),
            terms,
            "{what}: SIGTERMs\n{text}{stderr}"
        );
        if terms > 0 {
            assert!(
                text.ends_with("checkpointed\n"),
                "{what}: the shell must outlive runner's checkpoint\n{text}{stderr}"
            );
        }
        assert_eq!(
            read(&log.with_extension("scontrol")),
            scontrol,
            "{what}: scontrol\n{stderr}"
        );
    }
}
