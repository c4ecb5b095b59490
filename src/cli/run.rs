//! `runner FILE` / `runner run FILE`: check, train, evaluate, write the run directory.

use std::path::{Path, PathBuf};

use crate::check::{check_file_weights, Weights};
use crate::data::resolve_data_dir;
use crate::experiment::{print::to_toml, Experiment};
use crate::graph::summary::thousands;
use crate::graph::Graph;
use crate::report::text::for_terminal;
use crate::report::{
    init_tracing, FolderLock, RunDir, RunState, RunStatus, Summary, CONFIG_FILE, LOCK_FILE,
    METRICS_FILE, TRACE_FILE,
};
use crate::train::{self, RunOptions, TrainError};

/// Options of `runner run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The experiment file.
    pub file: PathBuf,
    /// Folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`, `cifar-100-binary/` [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Root of the results tree; runs go to `<out>/<experiment>/<run-id>/`.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Train for N epochs instead of the file's `train.epochs`.
    /// A fraction is allowed, as in the file: `--epochs 0.25` trains a quarter of an epoch.
    #[arg(long, value_name = "N", value_parser = super::parse_epochs)]
    pub epochs: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Plain progress: one line every N steps (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub log_every: usize,
    /// Write no TensorBoard event files (`events.out.tfevents.*`) into the run folder.
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Override a value of the experiment, typed as in the file: `--set train.optimizer.lr=0.1`
    /// (repeatable). (Not the shared `SetArgs`: a nested flatten stops clap from recognising
    /// `runner FILE` without the `run` verb.)
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
    /// For a file with a `[sweep]`: run the variant of this name (`runner check` lists them).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Continue the interrupted run in RUN_DIR from its last checkpoint instead of starting a
    /// new one. The file (with its --set, --epochs, --variant) must resolve to the run's
    /// config.toml; the keys that differ are listed otherwise.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
}

/// Options of `runner resume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// The run folder, `<out>/<experiment>/<run-id>/`: its config.toml is the experiment.
    pub run_dir: PathBuf,
    /// Folder holding the data sets [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Plain progress: one line every N steps (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub log_every: usize,
    /// Write no TensorBoard event files (`events.out.tfevents.*`) into the run folder.
    #[arg(long)]
    pub no_tensorboard: bool,
}

/// Runs the verb; returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let sets = super::overrides(&args.sets, args.epochs, args.train_limit);
    let Some((exp, graph)) =
        checked_experiment(&args.file, &sets, args.variant.as_deref(), Weights::Check)
    else {
        return Ok(super::exit::ERROR);
    };
    let opts = RunOptions {
        data_dir: resolve_data_dir(args.data_dir.as_deref()),
        plain_progress: args.plain,
        log_every: args.log_every,
        stop_after_steps: None,
        tensorboard: !args.no_tensorboard,
    };
    if let Some(dir) = &args.resume {
        return continue_run(dir, &exp, &graph, &opts);
    }
    // Errors go to `main`, which renders them once (`error: ...`, exit 2).
    let device = train::select_device(exp.device()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run_dir = RunDir::create(&args.out, exp.name()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let lock = FolderLock::try_acquire(&run_dir.path)?;
    if lock.is_none() {
        anyhow::bail!(
            "another process took {} as soon as it was made",
            run_dir.path.display()
        );
    }
    crate::interrupt::install();
    let guard = init_tracing(Some(&run_dir.file(TRACE_FILE)))?;
    let result = train_in(&exp, &graph, &device, &run_dir, &opts, false);
    report_outcome(result, guard.finish(), &run_dir)
}

/// `runner resume RUN_DIR`: continues the run from its folder's config.toml and checkpoint.
pub fn resume(args: &ResumeArgs) -> anyhow::Result<i32> {
    let config = args.run_dir.join(CONFIG_FILE);
    if !config.is_file() {
        anyhow::bail!(
            "{} is not a run folder: it has no {CONFIG_FILE}",
            args.run_dir.display()
        );
    }
    // The checkpoint holds the weights; a run that has none yet reads `init_from` at its start.
    let Some((exp, graph)) = checked_experiment(&config, &[], None, Weights::Skip) else {
        return Ok(super::exit::ERROR);
    };
    let opts = RunOptions {
        data_dir: resolve_data_dir(args.data_dir.as_deref()),
        plain_progress: args.plain,
        log_every: args.log_every,
        stop_after_steps: None,
        tensorboard: !args.no_tensorboard,
    };
    continue_run(&args.run_dir, &exp, &graph, &opts)
}

/// Continues the run in `dir` with `exp`, which must resolve to the folder's config.toml:
/// takes the folder's lock, refuses a finished run, and trains from the last checkpoint.
pub(crate) fn continue_run(
    dir: &Path,
    exp: &Experiment,
    graph: &Graph,
    opts: &RunOptions,
) -> anyhow::Result<i32> {
    let run_dir = RunDir::open(dir)?;
    let Some(_lock) = FolderLock::try_acquire(dir)? else {
        anyhow::bail!(
            "another runner process is writing {} (its pid is in {}): wait for it to end or stop it first",
            dir.display(),
            dir.join(LOCK_FILE).display()
        );
    };
    let stored = crate::bounded::read_to_string(
        &run_dir.file(CONFIG_FILE),
        crate::bounded::EXPERIMENT_LIMIT,
    )?;
    let ours = to_toml(exp);
    if stored != ours {
        let keys = differing_keys(&stored, &ours);
        anyhow::bail!(
            "not resuming {}: its {CONFIG_FILE} differs from this experiment in {} key{}:\n  {}",
            dir.display(),
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
            keys.join("\n  ")
        );
    }
    if let Some(status) = RunStatus::read(dir)? {
        if status.state == RunState::Finished {
            crate::outln!("{} is finished: nothing to resume", dir.display())?;
            return Ok(super::exit::OK);
        }
    }
    let device = train::select_device(exp.device()).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::interrupt::install();
    let guard = init_tracing(Some(&next_trace_file(&run_dir)))?;
    let result = train_in(exp, graph, &device, &run_dir, opts, true);
    report_outcome(result, guard.finish(), &run_dir)
}

/// `trace.json`, or for a resumed run the first of `trace.2.json`, `trace.3.json`, ... that
/// does not exist yet: each session of a run keeps its own trace.
pub(crate) fn next_trace_file(run_dir: &RunDir) -> PathBuf {
    let first = run_dir.file(TRACE_FILE);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| run_dir.file(&format!("trace.{n}.json")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The outcome line and exit code of a run: 0 when it finished, 130 or 143 with one line
/// saying how to resume when a signal stopped it, an error for `main` otherwise.
pub(crate) fn report_outcome(
    result: Result<Summary, TrainError>,
    trace: Result<(), crate::report::ReportError>,
    run_dir: &RunDir,
) -> anyhow::Result<i32> {
    // A new run that failed early has had its folder removed (see `train_in`), and its trace
    // with it: that is no warning.
    if let Err(e) = trace {
        if run_dir.path.exists() {
            crate::ewriteln!("warning: {e}");
        }
    }
    match result {
        Ok(s) => {
            crate::outln!("{}", outcome_line(&s, run_dir))?;
            Ok(super::exit::OK)
        }
        Err(e @ TrainError::Interrupted { signal, .. }) => {
            crate::ewriteln!("runner: {e}");
            Ok(signal.exit_code())
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// The dotted keys whose values differ between two resolved configs, each as
/// `key: stored -> new` (`(absent)` for a key only one has).
pub(crate) fn differing_keys(stored: &str, new: &str) -> Vec<String> {
    let flat = |text: &str| {
        let mut out = std::collections::BTreeMap::new();
        match text.parse::<toml::Table>() {
            Ok(t) => flatten("", &toml::Value::Table(t), &mut out),
            Err(e) => {
                out.insert("(file)".to_string(), format!("cannot be read: {e}"));
            }
        }
        out
    };
    let (a, b) = (flat(stored), flat(new));
    let absent = "(absent)".to_string();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} -> {}",
                a.get(k).unwrap_or(&absent),
                b.get(k).unwrap_or(&absent)
            )
        })
        .collect()
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&key(k), v, out);
            }
        }
        toml::Value::Array(items) if items.iter().any(|i| i.is_table() || i.is_array()) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
            out.insert(key("len"), items.len().to_string());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Checks `file` with `--set` overrides and picks the one experiment to run: the file itself,
/// or the named variant of its sweep. Prints diagnostics; `None` when there is nothing to run.
/// `weights` says whether the `init_from` weights are read and checked.
pub(crate) fn checked_experiment(
    file: &Path,
    sets: &[String],
    variant: Option<&str>,
    weights: Weights,
) -> Option<(Experiment, Graph)> {
    let mut all = check_file_weights(file, sets, weights);
    let names: Vec<String> = all.iter().filter_map(|c| c.variant.clone()).collect();
    // As listed on the terminal; the names themselves are matched.
    let shown: Vec<String> = names.iter().map(|n| for_terminal(n).into_owned()).collect();
    let index = match (variant, names.is_empty()) {
        (None, true) => 0,
        (None, false) => {
            crate::ewriteln!(
                "{}: the file's [sweep] makes {} variants: run them all with `runner batch {}`, \
                 or one with `--variant NAME`; the variants are:\n  {}",
                file.display(),
                names.len(),
                file.display(),
                shown.join("\n  ")
            );
            return None;
        }
        (Some(v), true) => {
            crate::ewriteln!(
                "{}: `--variant {}` given, but the file has no [sweep]",
                file.display(),
                for_terminal(v)
            );
            return None;
        }
        (Some(v), false) => match names.iter().position(|n| n == v) {
            Some(i) => i,
            None => {
                let hint = crate::diagnostic::did_you_mean(v, names.iter().map(String::as_str))
                    .map_or(String::new(), |m| {
                        format!(" (did you mean `{}`?)", for_terminal(m))
                    });
                crate::ewriteln!(
                    "{}: no variant named `{}`{hint}; the variants are:\n  {}",
                    file.display(),
                    for_terminal(v),
                    shown.join("\n  ")
                );
                return None;
            }
        },
    };
    let checked = all.swap_remove(index);
    if !checked.diagnostics.is_empty() {
        crate::ewrite!("{}", checked.render());
    }
    match checked.result {
        Some(r) => Some(r),
        None => {
            crate::ewriteln!(
                "{}: nothing done: fix the errors above (`runner check` shows the same)",
                file.display()
            );
            None
        }
    }
}

/// Trains `exp` into `run_dir` (config, metrics, summary, trace) and prints a header line;
/// with `resume`, continues the run already there. A new run that failed before finishing an
/// epoch (missing data, a model that does not fit, ...) holds nothing of value: its folder is
/// removed. A diverged run keeps its config and trace, which the error message points to, and
/// an interrupted one its status and the command that resumes it.
pub(crate) fn train_in(
    exp: &Experiment,
    graph: &Graph,
    device: &candle_core::Device,
    run_dir: &RunDir,
    opts: &RunOptions,
    resume: bool,
) -> Result<Summary, TrainError> {
    let params = graph.params();
    crate::ewriteln!(
        "runner: training `{}` on {} ({} parameters, {}) -> {}",
        for_terminal(exp.name()),
        train::run::device_name(device),
        thousands(params as u64),
        exp.train().length,
        run_dir.path.display()
    );
    let result = train::run(exp, graph, &to_toml(exp), run_dir, opts, resume);
    if let Err(e) = &result {
        let finished_an_epoch = run_dir.file(METRICS_FILE).exists();
        let keep = resume
            || finished_an_epoch
            || matches!(
                e,
                TrainError::NonFinite { .. } | TrainError::Interrupted { .. }
            );
        if !keep {
            let _ = std::fs::remove_dir_all(&run_dir.path);
        }
    }
    result
}

/// `mnist_cnn: test accuracy 94.46% (best ...), 61.2s, 930 train images/s -> DIR`; with a
/// validation split, the best epoch is the validation split's:
/// `(best epoch 7 on val: val 98.10%, test 97.95%)`.
pub(crate) fn outcome_line(s: &Summary, run_dir: &RunDir) -> String {
    let best = match s.best_val_acc {
        Some(val) if s.selected_on == "val" => format!(
            "best epoch {} on val: val {val:.2}%, test {:.2}%",
            s.best_epoch, s.best_test_acc
        ),
        _ => format!("best {:.2}% at epoch {}", s.best_test_acc, s.best_epoch),
    };
    format!(
        "{}: test accuracy {:.2}% ({best}), {:.1}s, {:.0} train images/s -> {}",
        for_terminal(&s.experiment),
        s.test_acc,
        s.seconds,
        s.train_images_per_sec,
        run_dir.path.display()
    )
}
