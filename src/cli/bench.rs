//! `runner bench`: training and evaluation throughput of the seed nets on random data, side by
//! side with PyTorch when a Python with `torch` is available.
//!
//! Each net runs in a child process (`runner bench --child FILE`), so that its peak resident
//! memory is its own, and the PyTorch baseline (`scripts/bench_torch.py`) runs right after it,
//! round after round, so that both see the same machine load. A train step is forward, loss,
//! backward and optimizer step, exactly as `runner run` does them; an eval step is a forward pass
//! in evaluation mode. Throughput is the batch size over the median step time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{epoch_batches, Dataset, Pipeline};
use crate::model::Model;
use crate::train::{optim, GradientSteps, StepOutcome};

/// The seed nets `runner bench` measures: experiment file stem and PyTorch name.
const NETS: [&str; 3] = ["mnist_cnn", "cifar_lenet", "vgg16_cifar"];

/// Options of `runner bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Nets to measure, by experiment name [default: mnist_cnn, cifar_lenet, vgg16_cifar].
    #[arg(long = "net", value_name = "NAME")]
    pub nets: Vec<String>,
    /// Folder holding the seed experiment files (`<name>.toml`).
    #[arg(long, value_name = "DIR", default_value = "experiments")]
    pub experiments: PathBuf,
    /// Interleaved rounds (runner, then PyTorch) per net; the report takes the median.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Untimed steps before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Measure at least this many seconds per phase (train, eval)...
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// ...and at least this many steps.
    #[arg(long, default_value_t = 3)]
    pub min_steps: usize,
    /// Device for both sides: `cpu`, or `cuda` (a CUDA build on a GPU machine; PyTorch on
    /// `cuda` too). Every timed step ends by reading a result back, so device work is included.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,
    /// Threads for both sides: `RAYON_NUM_THREADS` for runner, `torch.set_num_threads`.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Python interpreter with torch [default: the first that imports torch of
    /// `.venv-torch/bin/python` (scripts/install-torch-baseline.sh: PyTorch from PyPI),
    /// `python3`, `/usr/bin/python3` (Debian's PyTorch 1.13)].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch baseline.
    #[arg(long)]
    pub no_torch: bool,
    /// Measure both sides only with `--threads` (and PyTorch's default OpenMP settings). By
    /// default each side also runs with one thread, PyTorch also with `OMP_WAIT_POLICY=PASSIVE`,
    /// and each keeps its best result: on a shared machine, spinning OpenMP threads can make
    /// PyTorch many times slower, and one thread can beat two.
    #[arg(long)]
    pub plain: bool,
    /// Skip the data pipeline measurement.
    #[arg(long)]
    pub no_pipeline: bool,
    /// Also measure another runner executable (say, a build of an older commit) in every
    /// round, and print its numbers and the speed-up next to this one's.
    #[arg(long, value_name = "PATH")]
    pub baseline_exe: Option<PathBuf>,
    /// Also measure PyTorch with `torch.compile` (2 threads, best memory format) and show it as
    /// an extra column. No bar depends on it; its compile time is spent in the warm-up steps.
    #[arg(long)]
    pub torch_compile: bool,
    /// Internal: measure one experiment file in this process and print JSON.
    #[arg(long, value_name = "FILE", hide = true)]
    pub child: Option<PathBuf>,
}

/// What one measurement of one net reports (both sides print this JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measured {
    train_img_s: f64,
    eval_img_s: f64,
    peak_rss_mib: f64,
    /// PyTorch only: `torch.__version__`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    torch: Option<String>,
    /// PyTorch only: `torch.backends.cpu.get_cpu_capability()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu_capability: Option<String>,
    /// PyTorch only: the memory format that won each phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_format: Option<Formats>,
}

/// The memory format (`contiguous` or `channels_last`) PyTorch was fastest with, per phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Formats {
    train: String,
    eval: String,
}

/// The vector instructions runner's matrix kernels use on this CPU. `gemm` is built with its
/// AVX-512 (`x86-v4`) kernels and picks them at run time where the CPU has AVX-512 F, BW, CD,
/// DQ and VL; otherwise its AVX2 + FMA (`x86-v3`) kernels.
pub fn runner_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512cd")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
        {
            return "AVX-512 (gemm x86-v4 kernels)";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "AVX2 + FMA (gemm x86-v3 kernels; this CPU has no AVX-512)";
        }
        "SSE2 (gemm's portable kernels)"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "not x86-64 (gemm's kernels for this architecture)"
    }
}

/// Runs the verb; returns the exit code.
pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    if let Some(file) = &args.child {
        let m = measure_file(file, args)?;
        crate::outln!("{}", serde_json::to_string(&m)?)?;
        return Ok(super::exit::OK);
    }
    let nets: Vec<String> = if args.nets.is_empty() {
        NETS.iter().map(|s| s.to_string()).collect()
    } else {
        args.nets.clone()
    };
    let python = if args.no_torch {
        None
    } else {
        find_python(args.python.as_deref())
    };
    let script = torch_script();
    let python = match (python, &script) {
        (Some(p), Some(s)) => Some((p, s.clone())),
        (None, _) if !args.no_torch => {
            crate::ewriteln!("note: no Python with torch found (try scripts/install-torch-baseline.sh or --python): runner only");
            None
        }
        (Some(_), None) => {
            crate::ewriteln!("note: scripts/bench_torch.py not found next to the experiments folder: runner only");
            None
        }
        _ => None,
    };
    let exe = std::env::current_exe().context("cannot find the runner executable")?;
    crate::outln!(
        "runner bench: {} thread(s) each side, {} round(s), warm-up {} step(s), >= {} s and >= {} steps per phase; random data",
        args.threads, args.rounds, args.warmup, args.seconds, args.min_steps
    )?;
    crate::outln!("runner: vector ISA {}", runner_isa())?;
    let mut rows = Vec::new();
    let mut bases = Vec::new();
    let mut compiled_rows = Vec::new();
    let mut scaling = Vec::new();
    let mut torch_line: Option<String> = None;
    for net in &nets {
        let file = args.experiments.join(format!("{net}.toml"));
        if !file.is_file() {
            bail!("{}: no such experiment file", file.display());
        }
        let (mut ours, mut theirs, mut base) = (Vec::new(), Vec::new(), Vec::new());
        let mut compiled = Vec::new();
        // (threads, runner?, measurement) of every round, for the thread-scaling table.
        let mut by_threads: Vec<(usize, bool, Measured)> = Vec::new();
        for round in 1..=args.rounds.max(1) {
            if let Some(exe) = &args.baseline_exe {
                let m = child_runner(exe, &file, args.threads, args)?;
                crate::ewriteln!(
                    "  {net} round {round}: baseline runner train {:.1} img/s, eval {:.1} img/s",
                    m.train_img_s,
                    m.eval_img_s
                );
                base.push(m);
            }
            let mut best: Option<Measured> = None;
            for threads in runner_threads(args) {
                let m = child_runner(&exe, &file, threads, args)?;
                by_threads.push((threads, true, m.clone()));
                crate::ewriteln!(
                    "  {net} round {round}: runner ({threads} thread(s)) train {:.1} img/s, eval {:.1} img/s",
                    m.train_img_s, m.eval_img_s
                );
                best = Some(best_of(best, m));
            }
            ours.extend(best);
            if let Some((py, script)) = &python {
                let mut best: Option<Measured> = None;
                for (label, threads, passive) in torch_configs(args) {
                    match child_torch(py, script, net, threads, passive, false, args) {
                        Ok(m) => {
                            crate::ewriteln!(
                                "  {net} round {round}: torch ({label}) train {:.1} img/s, eval {:.1} img/s{}",
                                m.train_img_s, m.eval_img_s, formats_note(&m)
                            );
                            if !passive {
                                by_threads.push((threads, false, m.clone()));
                            }
                            best = Some(best_of(best, m));
                        }
                        Err(e) => crate::ewriteln!("  {net}: the PyTorch baseline failed: {e:#}"),
                    }
                }
                if let Some(m) = &best {
                    if torch_line.is_none() {
                        let line = torch_description(py, m);
                        crate::outln!("{line}")?;
                        torch_line = Some(line);
                    }
                }
                theirs.extend(best);
                if args.torch_compile {
                    match child_torch(py, script, net, args.threads, false, true, args) {
                        Ok(m) => {
                            crate::ewriteln!(
                                "  {net} round {round}: torch.compile ({} threads) train {:.1} img/s, eval {:.1} img/s",
                                args.threads, m.train_img_s, m.eval_img_s
                            );
                            compiled.push(m);
                        }
                        Err(e) => crate::ewriteln!("  {net}: torch.compile failed: {e:#}"),
                    }
                }
            }
        }
        rows.push((net.clone(), summarize(&ours), summarize_opt(&theirs)));
        bases.push(summarize_opt(&base));
        compiled_rows.push(summarize_opt(&compiled));
        scaling.push(Scaling::of(&by_threads, args.threads));
    }
    let mut out = super::out::stdout();
    writeln!(out)?;
    writeln!(
        out,
        "{:<12} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6} | {:>9} {:>9}",
        "net", "train", "torch", "ratio", "eval", "torch", "ratio", "peak MiB", "torch MiB"
    )?;
    writeln!(out, "{}", "-".repeat(98))?;
    for (net, ours, theirs) in &rows {
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".into(), |b| format!("{:.2}", a / b));
        let num = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        writeln!(
            out,
            "{:<12} | {:>10.1} {:>10} {:>6} | {:>10.1} {:>10} {:>6} | {:>9.0} {:>9}",
            net,
            ours.train_img_s,
            num(theirs.as_ref().map(|t| t.train_img_s)),
            ratio(ours.train_img_s, theirs.as_ref().map(|t| t.train_img_s)),
            ours.eval_img_s,
            num(theirs.as_ref().map(|t| t.eval_img_s)),
            ratio(ours.eval_img_s, theirs.as_ref().map(|t| t.eval_img_s)),
            ours.peak_rss_mib,
            theirs
                .as_ref()
                .map_or("-".into(), |t| format!("{:.0}", t.peak_rss_mib)),
        )?;
    }
    writeln!(out, "(img/s: images per second, median step, median over rounds; ratio: runner / PyTorch; peak MiB: peak resident memory of the process)")?;
    if python.is_some() && !args.plain {
        writeln!(out, "(per round, runner: the best of {t} threads and 1 thread; torch: the best of {t} threads, {t} threads with OMP_WAIT_POLICY=PASSIVE, and 1 thread)", t = args.threads)?;
    }
    if compiled_rows.iter().any(Option::is_some) {
        writeln!(out)?;
        writeln!(
            out,
            "torch.compile ({} threads, best memory format; no bar depends on it):",
            args.threads
        )?;
        for ((net, ours, _), c) in rows.iter().zip(&compiled_rows) {
            let Some(c) = c else { continue };
            writeln!(
                out,
                "{:<12} | train {:>10.1} ratio {:>5.2} | eval {:>10.1} ratio {:>5.2}",
                net,
                c.train_img_s,
                ours.train_img_s / c.train_img_s,
                c.eval_img_s,
                ours.eval_img_s / c.eval_img_s
            )?;
        }
    }
    if scaling.iter().any(|s| s.runner.is_some()) {
        writeln!(out)?;
        writeln!(
            out,
            "thread scaling, {t} threads / 1 thread (medians of the rounds above; train | eval):",
            t = args.threads
        )?;
        for ((net, _, _), sc) in rows.iter().zip(&scaling) {
            let fmt = |p: &Option<(f64, f64)>| {
                p.map_or("-".to_string(), |(t, e)| format!("{t:.2}x | {e:.2}x"))
            };
            writeln!(
                out,
                "{:<12} | runner {:>15} | torch {:>15}",
                net,
                fmt(&sc.runner),
                fmt(&sc.torch)
            )?;
        }
    }
    if let Some(exe) = &args.baseline_exe {
        writeln!(out)?;
        writeln!(out, "baseline runner: {}", exe.display())?;
        writeln!(
            out,
            "{:<12} | {:>10} {:>10} {:>7} | {:>10} {:>10} {:>7} | {:>9} {:>9}",
            "net",
            "base train",
            "train",
            "speedup",
            "base eval",
            "eval",
            "speedup",
            "base MiB",
            "peak MiB"
        )?;
        writeln!(out, "{}", "-".repeat(98))?;
        for ((net, ours, _), base) in rows.iter().zip(&bases) {
            let Some(b) = base else { continue };
            writeln!(
                out,
                "{:<12} | {:>10.1} {:>10.1} {:>7.2} | {:>10.1} {:>10.1} {:>7.2} | {:>9.0} {:>9.0}",
                net,
                b.train_img_s,
                ours.train_img_s,
                ours.train_img_s / b.train_img_s,
                b.eval_img_s,
                ours.eval_img_s,
                ours.eval_img_s / b.eval_img_s,
                b.peak_rss_mib,
                ours.peak_rss_mib
            )?;
        }
    }
    if !args.no_pipeline {
        // The tables show while the pipeline is measured.
        out.flush()?;
        let vgg = rows
            .iter()
            .find(|(n, _, _)| n == "vgg16_cifar")
            .map(|(_, m, _)| m.train_img_s);
        let file = args.experiments.join("vgg16_cifar.toml");
        let ips = pipeline_images_per_sec(&file, args.seconds)?;
        write!(out, "data pipeline (vgg16_cifar train transforms: random crop + flip + normalize, the loader's one thread): {ips:.0} img/s")?;
        match vgg {
            Some(v) => writeln!(out, " = {:.1}x VGG training", ips / v)?,
            None => writeln!(out)?,
        }
    }
    out.finish()?;
    Ok(super::exit::OK)
}

/// Speed-up from 1 thread to `--threads`, (train, eval), of each side: medians over rounds.
struct Scaling {
    runner: Option<(f64, f64)>,
    torch: Option<(f64, f64)>,
}

impl Scaling {
    fn of(ms: &[(usize, bool, Measured)], threads: usize) -> Scaling {
        let side = |runner: bool| {
            let pick = |t: usize| -> Vec<Measured> {
                ms.iter()
                    .filter(|(n, r, _)| *n == t && *r == runner)
                    .map(|(_, _, m)| m.clone())
                    .collect()
            };
            let (many, one) = (pick(threads), pick(1));
            (threads > 1 && !many.is_empty() && !one.is_empty()).then(|| {
                let (a, b) = (summarize(&many), summarize(&one));
                (a.train_img_s / b.train_img_s, a.eval_img_s / b.eval_img_s)
            })
        };
        Scaling {
            runner: side(true),
            torch: side(false),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn summarize(ms: &[Measured]) -> Measured {
    Measured {
        train_img_s: median(ms.iter().map(|m| m.train_img_s).collect()),
        eval_img_s: median(ms.iter().map(|m| m.eval_img_s).collect()),
        peak_rss_mib: ms.iter().map(|m| m.peak_rss_mib).fold(0.0, f64::max),
        torch: None,
        cpu_capability: None,
        memory_format: None,
    }
}

fn summarize_opt(ms: &[Measured]) -> Option<Measured> {
    (!ms.is_empty()).then(|| summarize(ms))
}

/// `scripts/bench_torch.py` of the source tree: next to the working directory, or the executable's.
fn torch_script() -> Option<PathBuf> {
    let rel = Path::new("scripts/bench_torch.py");
    if rel.is_file() {
        return Some(rel.to_path_buf());
    }
    let from_exe = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    from_exe.is_file().then_some(from_exe)
}

/// The first interpreter that can `import torch`.
fn find_python(given: Option<&Path>) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            // scripts/install-torch-baseline.sh: PyTorch from PyPI, what users install.
            PathBuf::from(".venv-torch/bin/python"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-torch/bin/python"),
            "python3".into(),
            "/usr/bin/python3".into(),
        ],
    };
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn parse_last_json(out: &std::process::Output, what: &str) -> anyhow::Result<Measured> {
    if !out.status.success() {
        bail!(
            "{what} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what} printed no JSON"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: cannot read {line}"))
}

/// The better throughputs of two measurements (and the larger peak memory).
fn best_of(best: Option<Measured>, m: Measured) -> Measured {
    match best {
        None => m,
        Some(b) => Measured {
            train_img_s: b.train_img_s.max(m.train_img_s),
            eval_img_s: b.eval_img_s.max(m.eval_img_s),
            peak_rss_mib: b.peak_rss_mib.max(m.peak_rss_mib),
            ..m
        },
    }
}

/// Thread counts runner is measured with: `--threads`, and 1 (unless `--plain`).
fn runner_threads(args: &BenchArgs) -> Vec<usize> {
    let mut v = vec![args.threads];
    if !args.plain && args.threads > 1 {
        v.push(1);
    }
    v
}

fn child_runner(
    exe: &Path,
    file: &Path,
    threads: usize,
    args: &BenchArgs,
) -> anyhow::Result<Measured> {
    let out = Command::new(exe)
        .arg("bench")
        .arg("--child")
        .arg(file)
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--min-steps", &args.min_steps.to_string()])
        .args(["--device", &args.device])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .context("cannot start the runner child")?;
    parse_last_json(&out, "runner bench --child")
}

/// PyTorch configurations to try: label, threads, `OMP_WAIT_POLICY=PASSIVE`.
fn torch_configs(args: &BenchArgs) -> Vec<(String, usize, bool)> {
    let t = args.threads;
    let mut v = vec![(format!("{t} threads"), t, false)];
    if !args.plain {
        v.push((format!("{t} threads, passive"), t, true));
        if t > 1 {
            v.push(("1 thread".into(), 1, false));
        }
    }
    v
}

fn child_torch(
    py: &Path,
    script: &Path,
    net: &str,
    threads: usize,
    passive: bool,
    compile: bool,
    args: &BenchArgs,
) -> anyhow::Result<Measured> {
    let mut cmd = Command::new(py);
    if passive {
        cmd.env("OMP_WAIT_POLICY", "PASSIVE");
    }
    if compile {
        cmd.arg("--compile");
    }
    let out = cmd
        .arg(script)
        .arg(net)
        .args(["--threads", &threads.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--min-steps", &args.min_steps.to_string()])
        .args(["--device", &args.device])
        .output()
        .context("cannot start python")?;
    parse_last_json(&out, "bench_torch.py")
}

/// One line naming the PyTorch measured: version, interpreter and vector ISA.
fn torch_description(py: &Path, m: &Measured) -> String {
    format!(
        "PyTorch: {} ({}), CPU capability {}",
        m.torch.as_deref().unwrap_or("unknown version"),
        py.display(),
        m.cpu_capability.as_deref().unwrap_or("unknown")
    )
}

/// `train F, eval F`: the memory formats PyTorch was fastest with ("" when not reported).
fn formats_note(m: &Measured) -> String {
    m.memory_format
        .as_ref()
        .map_or(String::new(), |f| format!(" [{} / {}]", f.train, f.eval))
}

/// Peak resident memory of this process so far, in MiB (`VmHWM`; 0 where unavailable).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Median seconds of `step` after `warmup` untimed calls, over at least `min_steps` calls and
/// `seconds` seconds (at most 500 calls).
fn timed(
    warmup: usize,
    seconds: f64,
    min_steps: usize,
    mut step: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..warmup {
        step()?;
    }
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 500
        && (times.len() < min_steps.max(1) || start.elapsed().as_secs_f64() < seconds)
    {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// Trains and evaluates the model of `file` on random data in this process.
fn measure_file(file: &Path, args: &BenchArgs) -> anyhow::Result<Measured> {
    let Some((exp, graph)) =
        super::run::checked_experiment(file, &[], None, crate::check::Weights::Skip)
    else {
        bail!("{}: not a runnable experiment", file.display());
    };
    let device = match args.device.as_str() {
        "cuda" => Device::new_cuda(0).context("--device cuda: no CUDA device")?,
        _ => Device::Cpu,
    };
    let model = Model::new(&graph, exp.seed(), &device)?;
    let groups = optim::ParamGroups::new(exp.train(), &graph, &model);
    let mut optimizer = optim::build_grouped(&exp.train().optimizer, groups.vars())?;
    model.freeze(&groups.frozen_in(1));
    let batch = exp.data().batch_size;
    let [c, h, w] = exp.model().input;
    let classes = exp.data().dataset.classes().max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..batch * c * h * w)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let y: Vec<u32> = (0..batch)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let x = Tensor::from_vec(x, (batch, c, h, w), &device)?;
    let y = Tensor::from_vec(y, batch, &device)?;
    // The training loop's own step, at the experiment's initial learning rate, with its
    // accumulation and clipping (one optimizer step per `accumulate` batches; a time per batch).
    // A step whose loss is not finite skips the backward pass and the update, so timing on
    // would time less work.
    let lr = exp.train().optimizer.lr();
    let mut steps = GradientSteps::new(exp.train(), &model);
    let loss = exp.train().loss;
    let t_train = timed(args.warmup, args.seconds, args.min_steps, || {
        match steps.batch(&model, optimizer.as_mut(), loss, &x, (&y).into(), lr, false)? {
            StepOutcome::Updated(_) => Ok(()),
            StepOutcome::NonFinite(loss) => bail!(
                "{}: the training loss on the random batch became {loss}; no measurement",
                file.display()
            ),
        }
    })?;
    let peak = peak_rss_mib();
    // As in the training loop's evaluation: on a worker of rayon's pool.
    let t_eval = timed(args.warmup, args.seconds, args.min_steps, || {
        crate::runtime::in_pool(|| -> candle_core::Result<()> {
            let out = model.infer(&x)?;
            let _ = out.argmax(D::Minus1)?.to_vec1::<u32>()?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(Measured {
        train_img_s: batch as f64 / t_train,
        eval_img_s: batch as f64 / t_eval,
        peak_rss_mib: peak,
        torch: None,
        cpu_capability: None,
        memory_format: None,
    })
}

/// Images per second the training loader delivers through the train transforms of `file`, on
/// random CIFAR-sized images (4,096 images per epoch, batches of the experiment's size).
fn pipeline_images_per_sec(file: &Path, seconds: f64) -> anyhow::Result<f64> {
    let Some((exp, _)) =
        super::run::checked_experiment(file, &[], None, crate::check::Weights::Skip)
    else {
        bail!("{}: not a runnable experiment", file.display());
    };
    let shape = exp.data().dataset.image_shape();
    let n = 4096;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let per: usize = shape.iter().product();
    let data = Arc::new(Dataset {
        images: (0..n * per).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        shape,
        classes: (0..10).map(|i| i.to_string()).collect(),
    });
    let pipe = Arc::new(Pipeline::new(&exp.data().train_transforms, shape));
    let start = Instant::now();
    let mut images = 0usize;
    let mut epoch = 1;
    while start.elapsed().as_secs_f64() < seconds || epoch == 1 {
        for b in epoch_batches(
            data.clone(),
            pipe.clone(),
            exp.data().batch_size,
            true,
            0,
            epoch,
            None,
        ) {
            images += b.labels.len();
        }
        epoch += 1;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64())
}
