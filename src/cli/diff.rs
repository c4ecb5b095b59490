//! `runner diff BASELINE NEW [--tol COLUMN=AMOUNT]...`: compare two `summary.csv` or
//! `batch.csv` files; exit 0 within tolerance, 1 on a regression, 2 when they cannot be compared.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::report::diff::{compare, write_markdown, Table, Tolerance};
use crate::report::{RunState, RunStatus};

/// Options of `runner diff`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The baseline table (`summary.csv` or `batch.csv`).
    pub baseline: PathBuf,
    /// The new table, same kind.
    pub new: PathBuf,
    /// How far a column may move in its bad direction: `test_acc=0.5` (points), `seconds=+50%`
    /// (relative; `+`: only an increase regresses, `-`: only a decrease). Accuracies and
    /// images/s regress downwards, losses and seconds upwards. Repeatable
    /// [default: test_acc=0.5].
    #[arg(long = "tol", value_name = "COLUMN=AMOUNT")]
    pub tol: Vec<Tolerance>,
}

fn read(path: &Path) -> Result<Table, String> {
    let bytes =
        crate::bounded::read(path, crate::bounded::TABLE_LIMIT).map_err(|e| e.to_string())?;
    Table::parse(&bytes).map_err(|e| format!("{} is not a valid CSV table: {e}", path.display()))
}

/// For a `summary.csv` in a run folder whose `status.json` says the run is not finished (a
/// resumed run that was interrupted again after writing an old summary, a killed one), a
/// line saying so.
fn run_state_note(path: &Path) -> Option<String> {
    let dir = path.parent()?;
    let status = RunStatus::read(dir).ok()??;
    (status.effective(dir) != RunState::Finished).then(|| {
        format!(
            "{}: the run folder says {}",
            path.display(),
            status.describe(dir)
        )
    })
}

/// Runs the verb; returns the exit code.
pub fn run(args: &DiffArgs) -> anyhow::Result<i32> {
    let tolerances = if args.tol.is_empty() {
        vec!["test_acc=0.5".parse().expect("a valid default tolerance")]
    } else {
        args.tol.clone()
    };
    for path in [&args.baseline, &args.new] {
        if let Some(note) = run_state_note(path) {
            crate::ewriteln!("runner diff: {note}");
        }
    }
    let tables = read(&args.baseline).and_then(|b| read(&args.new).map(|n| (b, n)));
    let (base, new) = match tables {
        Ok(t) => t,
        Err(e) => bail!("{e}"),
    };
    let d = match compare(&base, &new, &tolerances) {
        Ok(d) => d,
        Err(e) => bail!(
            "cannot compare {} with {}: {e}",
            args.baseline.display(),
            args.new.display()
        ),
    };
    let mut out = super::out::stdout();
    write_markdown(&d, &mut out)?;
    out.finish()?;
    Ok(if d.regressions().next().is_some() {
        super::exit::REGRESSION
    } else {
        super::exit::OK
    })
}
