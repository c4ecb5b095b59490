//! `runner FILE` / `runner run FILE`: check, train, evaluate, write the run directory.

use std::path::PathBuf;

use crate::data::resolve_data_dir;
use crate::graph::summary::thousands;
use crate::report::{init_tracing, RunDir, METRICS_FILE, TRACE_FILE};
use crate::spec::{check_file, print::to_toml};
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
}

/// Runs the verb; returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let checked = check_file(&args.file);
    if !checked.diagnostics.is_empty() {
        eprint!("{}", checked.render());
    }
    let Some((mut exp, _graph)) = checked.result else {
        eprintln!(
            "{}: not run: fix the errors above (`runner check` shows the same)",
            args.file.display()
        );
        return Ok(super::exit::ERROR);
    };
    if let Some(e) = args.epochs {
        exp.train.epochs = e as usize;
    }
    if let Some(l) = args.train_limit {
        exp.data.train_limit = Some(l as usize);
    }
    let device = match train::select_device(exp.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::exit::ERROR);
        }
    };
    let run_dir = match RunDir::create(&args.out, &exp.name) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::exit::ERROR);
        }
    };
    let guard = init_tracing(Some(&run_dir.file(TRACE_FILE)))?;
    let params: usize = exp.model.layers.iter().map(|l| l.params).sum();
    eprintln!(
        "runner: training `{}` on {} ({} parameters, {} epoch{}) -> {}",
        exp.name,
        train::run::device_name(&device),
        thousands(params as u64),
        exp.train.epochs,
        if exp.train.epochs == 1 { "" } else { "s" },
        run_dir.path.display()
    );
    let opts = RunOptions {
        data_dir: resolve_data_dir(args.data_dir.as_deref()),
        plain_progress: args.plain,
        log_every: args.log_every,
    };
    let result = train::run(&exp, &to_toml(&exp), &run_dir, &opts);
    let trace = guard.finish();
    match result {
        Ok(s) => {
            if let Err(e) = trace {
                eprintln!("warning: {e}");
            }
            println!(
                "{}: test accuracy {:.2}% (best {:.2}% at epoch {}), {:.1}s, {:.0} train images/s -> {}",
                s.experiment,
                s.test_acc,
                s.best_test_acc,
                s.best_epoch,
                s.seconds,
                s.train_images_per_sec,
                run_dir.path.display()
            );
            Ok(super::exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            // A run that failed before finishing an epoch (missing data, a model that does not
            // fit, ...) holds nothing of value: do not leave it behind. A diverged run keeps its
            // config and trace, which the message points to.
            let finished_an_epoch = run_dir.file(METRICS_FILE).exists();
            if !finished_an_epoch && !matches!(e, TrainError::NonFinite { .. }) {
                let _ = std::fs::remove_dir_all(&run_dir.path);
            }
            Ok(super::exit::ERROR)
        }
    }
}
