//! `runner FILE` / `runner run FILE`: check, train, evaluate, write the run directory.

use std::path::{Path, PathBuf};

use crate::check::check_file_with;
use crate::data::resolve_data_dir;
use crate::experiment::{print::to_toml, Experiment};
use crate::graph::summary::thousands;
use crate::graph::Graph;
use crate::report::{init_tracing, RunDir, Summary, METRICS_FILE, TRACE_FILE};
use crate::train::{self, RunOptions, TrainError};

/// Options of `runner run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The experiment file.
    pub file: PathBuf,
    /// Folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/` [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Root of the results tree; runs go to `<out>/<experiment>/<run-id>/`.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Train for N epochs instead of the file's `train.epochs`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub epochs: Option<u64>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Plain progress: one line every N steps (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub log_every: usize,
    /// Override a value of the experiment, typed as in the file: `--set train.optimizer.lr=0.1`
    /// (repeatable). (Not the shared `SetArgs`: a nested flatten stops clap from recognising
    /// `runner FILE` without the `run` verb.)
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
    /// For a file with a `[sweep]`: run the variant of this name (`runner check` lists them).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
}

/// Runs the verb; returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let sets = super::overrides(&args.sets, args.epochs, args.train_limit);
    let Some((exp, graph)) = checked_experiment(&args.file, &sets, args.variant.as_deref()) else {
        return Ok(super::exit::ERROR);
    };
    // Errors go to `main`, which renders them once (`error: ...`, exit 2).
    let device = train::select_device(exp.device()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run_dir = RunDir::create(&args.out, exp.name()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let guard = init_tracing(Some(&run_dir.file(TRACE_FILE)))?;
    let opts = RunOptions {
        data_dir: resolve_data_dir(args.data_dir.as_deref()),
        plain_progress: args.plain,
        log_every: args.log_every,
    };
    let result = train_in(&exp, &graph, &device, &run_dir, &opts);
    let trace = guard.finish();
    match result {
        Ok(s) => {
            if let Err(e) = trace {
                crate::ewriteln!("warning: {e}");
            }
            crate::outln!("{}", outcome_line(&s, &run_dir))?;
            Ok(super::exit::OK)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// Checks `file` with `--set` overrides and picks the one experiment to run: the file itself,
/// or the named variant of its sweep. Prints diagnostics; `None` when there is nothing to run.
pub(crate) fn checked_experiment(
    file: &Path,
    sets: &[String],
    variant: Option<&str>,
) -> Option<(Experiment, Graph)> {
    let mut all = check_file_with(file, sets);
    let names: Vec<String> = all.iter().filter_map(|c| c.variant.clone()).collect();
    let index = match (variant, names.is_empty()) {
        (None, true) => 0,
        (None, false) => {
            crate::ewriteln!(
                "{}: the file's [sweep] makes {} variants: run them all with `runner batch {}`, \
                 or one with `--variant NAME`; the variants are:\n  {}",
                file.display(),
                names.len(),
                file.display(),
                names.join("\n  ")
            );
            return None;
        }
        (Some(v), true) => {
            crate::ewriteln!(
                "{}: `--variant {v}` given, but the file has no [sweep]",
                file.display()
            );
            return None;
        }
        (Some(v), false) => match names.iter().position(|n| n == v) {
            Some(i) => i,
            None => {
                let hint = crate::diagnostic::did_you_mean(v, names.iter().map(String::as_str))
                    .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
                crate::ewriteln!(
                    "{}: no variant named `{v}`{hint}; the variants are:\n  {}",
                    file.display(),
                    names.join("\n  ")
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

/// Trains `exp` into `run_dir` (config, metrics, summary, trace) and prints a header line. A run
/// that failed before finishing an epoch (missing data, a model that does not fit, ...) holds
/// nothing of value: its folder is removed. A diverged run keeps its config and trace, which
/// the error message points to.
pub(crate) fn train_in(
    exp: &Experiment,
    graph: &Graph,
    device: &candle_core::Device,
    run_dir: &RunDir,
    opts: &RunOptions,
) -> Result<Summary, TrainError> {
    let params = graph.params();
    crate::ewriteln!(
        "runner: training `{}` on {} ({} parameters, {} epoch{}) -> {}",
        exp.name(),
        train::run::device_name(device),
        thousands(params as u64),
        exp.train().epochs,
        if exp.train().epochs == 1 { "" } else { "s" },
        run_dir.path.display()
    );
    let result = train::run(exp, graph, &to_toml(exp), run_dir, opts);
    if let Err(e) = &result {
        let finished_an_epoch = run_dir.file(METRICS_FILE).exists();
        if !finished_an_epoch && !matches!(e, TrainError::NonFinite { .. }) {
            let _ = std::fs::remove_dir_all(&run_dir.path);
        }
    }
    result
}

/// `mnist_cnn: test accuracy 94.46% (best ...), 61.2s, 930 train images/s -> DIR`.
pub(crate) fn outcome_line(s: &Summary, run_dir: &RunDir) -> String {
    format!(
        "{}: test accuracy {:.2}% (best {:.2}% at epoch {}), {:.1}s, {:.0} train images/s -> {}",
        s.experiment,
        s.test_acc,
        s.best_test_acc,
        s.best_epoch,
        s.seconds,
        s.train_images_per_sec,
        run_dir.path.display()
    )
}
