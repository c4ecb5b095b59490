//! `runner plot RUN_DIR...`: compare finished runs (curves overlaid, final accuracy bars).
//!
//! A `metrics.csv` with non-finite values or repeated epochs is drawn as
//! [`crate::plot::points`] says (gaps in the lines; the last row of an epoch), with one warning
//! line on stderr per kind of problem and run; the exit code stays 0. A file with no finite value
//! at all still gives the pictures, with that run's curves empty, and a warning that says so.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::plot::{check_metrics, load_run, plot_comparison, ComparedRun};
use crate::report::RunStatus;
use crate::report::{METRICS_FILE, SUMMARY_FILE};

/// Options of `runner plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Run directories (holding `metrics.csv` and `summary.csv`), or folders of runs such as
    /// `results/mnist_cnn`, whose runs are all taken, oldest first.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Folder for `compare_curves.png`, `compare_curves.svg` and `compare_accuracy.png`
    /// (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Runs the verb; returns the exit code.
pub fn run(args: &PlotArgs) -> anyhow::Result<i32> {
    let mut dirs = Vec::new();
    for d in &args.runs {
        match run_dirs(d) {
            Ok(found) => dirs.extend(found),
            Err(message) => bail!("{message}"),
        }
    }
    let mut loaded = Vec::with_capacity(dirs.len());
    for d in &dirs {
        match load_run(d) {
            Ok((metrics, summary)) => {
                for problem in check_metrics(&metrics).problems {
                    let file = d.join(METRICS_FILE);
                    crate::ewriteln!("runner plot: {}: {problem}", file.display());
                }
                loaded.push((metrics, summary));
            }
            Err(e) => bail!("{}: not a finished run: {e}", d.display()),
        }
    }
    // The experiment name labels a run unless two runs share it; then the run id is added.
    let names: Vec<&str> = loaded.iter().map(|(_, s)| s.experiment.as_str()).collect();
    let unique: HashSet<&str> = names.iter().copied().collect();
    let runs: Vec<ComparedRun> = loaded
        .iter()
        .map(|(metrics, s)| {
            let label = if unique.len() == names.len() {
                s.experiment.clone()
            } else {
                format!("{} {}", s.experiment, s.run_id)
            };
            (label, metrics.clone(), s.clone())
        })
        .collect();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        bail!("cannot create {}: {e}", args.out.display());
    }
    let paths = match plot_comparison(&runs, &args.out) {
        Ok(paths) => paths,
        Err(e) => bail!("{e}"),
    };
    let mut out = super::out::stdout();
    for p in paths {
        writeln!(out, "{}", p.display())?;
    }
    out.finish()?;
    Ok(super::exit::OK)
}

/// `dir` itself when it holds a `summary.csv`, else its sub-folders that do (sorted by name, which
/// for run ids is oldest first).
fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if dir.join(SUMMARY_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut runs = Vec::new();
    let mut unfinished = Vec::new();
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if p.join(SUMMARY_FILE).is_file() {
            runs.push(p);
        } else if let Ok(Some(status)) = RunStatus::read(&p) {
            unfinished.push((p.clone(), status.describe(&p)));
        }
    }
    runs.sort();
    unfinished.sort();
    // Said, not silently skipped: a folder of runs often holds one that did not finish.
    for (p, state) in &unfinished {
        crate::ewriteln!("runner plot: skipping {}: {state}", p.display());
    }
    if runs.is_empty() {
        return Err(format!(
            "{}: no {SUMMARY_FILE} in it or in its sub-folders (is it a finished run?)",
            dir.display()
        ));
    }
    Ok(runs)
}
