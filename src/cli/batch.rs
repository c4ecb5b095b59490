//! `runner batch FILES_OR_DIRS...`: run every experiment and sweep variant as one ablation,
//! resume an interrupted batch, spread it over machines with `--shard I/N`, and join the
//! shards' tables with `--merge DIR...`.
//!
//! Layout under `--out`: a run goes to `<experiment>/<run-id>/`, or for a sweep variant to
//! `<experiment>/<variant>/<run-id>/` (the same tree `runner run --out` writes), and the tables
//! to `batch.csv` and `batch.md`. A variant is finished when a run folder beside it holds the
//! identical `config.toml` and a `summary.csv`; a batch run again skips it and reuses its row.
//! A variant whose folder is unfinished (interrupted, killed, failed) is resumed in that folder
//! from its last checkpoint.
//!
//! **One writer per folder.** A batch decides what to do with each variant while it holds the
//! output folder's lock (`<out>/.lock`), and trains a variant only in a run folder whose own
//! lock it holds. Batches started together on one `--out` therefore split the variants between
//! them: none is trained twice, and the last one to end writes the complete table.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::check::check_file_with;
use crate::data::resolve_data_dir;
use crate::experiment::{print::to_toml, Experiment};
use crate::graph::Graph;
use crate::report::text::for_terminal;
use crate::report::{
    batch_csv, batch_md, init_tracing, is_locked, read_batch, read_summary, write_atomic, BatchRow,
    FolderLock, RunDir, RunStatus, TraceGuard, BATCH_CSV, BATCH_MD, CONFIG_FILE, SUMMARY_FILE,
};
use crate::train::{self, RunOptions};

/// Options of `runner batch`.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// Experiment files, or folders whose `*.toml` files are all taken (not recursive).
    #[arg(required_unless_present = "merge")]
    pub paths: Vec<PathBuf>,
    /// Output folder: runs, `batch.csv` and `batch.md`.
    #[arg(long, value_name = "DIR", default_value = "results/batch")]
    pub out: PathBuf,
    /// Folder holding the data sets [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Train every variant for N epochs instead of its `train.epochs`.
    /// A fraction is allowed, as in the file: `--epochs 0.25` trains a quarter of an epoch.
    #[arg(long, value_name = "N", value_parser = super::parse_epochs)]
    pub epochs: Option<f64>,
    /// Train every variant on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Run only shard I of N (0-based): variants whose batch index is I modulo N. For a Slurm
    /// job array: `--shard $((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))/$SLURM_ARRAY_TASK_COUNT`;
    /// for a Kubernetes Indexed Job: `--shard $JOB_COMPLETION_INDEX/<completions>`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Join the `batch.csv` of these folders (one per shard) into `--out`; trains nothing.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["paths", "shard"])]
    pub merge: Vec<PathBuf>,
    /// List the variants (of this shard) with their batch index and status, and every
    /// unfinished or orphaned run folder; trains nothing.
    #[arg(long)]
    pub list: bool,
    /// Remove the variants' unfinished run folders that no process is writing (the next batch
    /// then starts them again), and temporary files left in finished ones; trains nothing.
    #[arg(long, conflicts_with = "list")]
    pub clean: bool,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Plain progress: one line every N steps (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub log_every: usize,
    /// Write no TensorBoard event files (`events.out.tfevents.*`) into the run folder.
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Overrides applied to every file.
    #[command(flatten)]
    pub set: super::SetArgs,
}

/// `I/N`: shard I of N, 0 <= I < N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N such as 0/4, found `{s}`"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be from 0 to {} (shards count from 0)",
                count.saturating_sub(1)
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the variant at batch index `i` belongs to this shard.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

/// One variant to run.
pub struct Job {
    /// Position in the whole batch.
    pub index: usize,
    /// The file it came from.
    pub file: PathBuf,
    /// Sweep variant name, empty for a plain file.
    pub variant: String,
    /// Overrides applied, `key.path=value`.
    pub overrides: Vec<String>,
    /// The checked experiment (`--epochs`/`--train-limit` were applied as overrides).
    pub exp: Experiment,
    /// Its graph.
    pub graph: Graph,
    /// Its resolved config text: identical text means an identical run.
    pub config: String,
}

impl Job {
    /// Folder holding this variant's runs, relative to the batch output.
    pub fn folder(&self) -> PathBuf {
        let base = PathBuf::from(&self.exp.name());
        if self.variant.is_empty() {
            base
        } else {
            base.join(folder_name(&self.variant))
        }
    }
}

/// A variant name as one folder name: characters outside `[A-Za-z0-9._=,+-]` become `_`.
pub fn folder_name(variant: &str) -> String {
    let mut s: String = variant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        s.insert(0, '_');
    }
    s.truncate(200);
    s
}

/// Expands files and folders into the batch's variants, in order: files as given (a folder's
/// files sorted by name), each file's variants in sweep order. Prints diagnostics; `None` when
/// any file has errors (nothing runs then).
pub fn collect_jobs(args: &BatchArgs) -> Option<Vec<Job>> {
    let mut files = Vec::new();
    let mut ok = true;
    for p in &args.paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        crate::ewriteln!("error: {} holds no .toml files", p.display());
                        ok = false;
                    }
                    files.extend(found);
                }
                Err(e) => {
                    crate::ewriteln!("error: cannot list {}: {e}", p.display());
                    ok = false;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut jobs: Vec<Job> = Vec::new();
    let sets = super::overrides(&args.set.sets, args.epochs, args.train_limit);
    for f in files {
        let checked = check_file_with(&f, &sets);
        for c in checked {
            if !c.diagnostics.is_empty() {
                crate::ewrite!("{}", c.render());
            }
            let Some((exp, graph)) = c.result else {
                ok = false;
                continue;
            };
            let config = to_toml(&exp);
            jobs.push(Job {
                index: jobs.len(),
                file: f.clone(),
                variant: c.variant.unwrap_or_default(),
                overrides: c.overrides,
                exp,
                graph,
                config,
            });
        }
    }
    // Two variants with the same experiment name and variant name would share a folder and a
    // table key.
    for (i, a) in jobs.iter().enumerate() {
        if let Some(b) = jobs[..i]
            .iter()
            .find(|b| b.exp.name() == a.exp.name() && b.variant == a.variant)
        {
            crate::ewriteln!(
                "error: {} and {} both define experiment `{}`{}: give one a different `name`",
                b.file.display(),
                a.file.display(),
                for_terminal(a.exp.name()),
                if a.variant.is_empty() {
                    String::new()
                } else {
                    format!(" variant `{}`", for_terminal(&a.variant))
                }
            );
            ok = false;
        }
    }
    if !ok {
        crate::ewriteln!(
            "runner batch: nothing run: fix the errors above (`runner check` shows the same)"
        );
        return None;
    }
    Some(jobs)
}

/// The run folders of `job` under `out`: those beside it holding the identical `config.toml`.
#[derive(Debug, Default)]
pub struct Survey {
    /// The newest finished run (a readable `summary.csv`).
    pub finished: Option<(PathBuf, crate::report::Summary)>,
    /// Folders another process is writing now (their lock is held).
    pub running: Vec<PathBuf>,
    /// Unfinished folders nobody is writing (interrupted, killed, failed), newest first: the
    /// first is the one the batch resumes.
    pub unfinished: Vec<PathBuf>,
}

impl Survey {
    /// Looks at every folder of `job` under `out`.
    pub fn of(out: &Path, job: &Job) -> Survey {
        let mut survey = Survey::default();
        let Ok(entries) = std::fs::read_dir(out.join(job.folder())) else {
            return survey;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs.into_iter().rev() {
            match crate::bounded::read_to_string(
                &d.join(CONFIG_FILE),
                crate::bounded::EXPERIMENT_LIMIT,
            ) {
                Ok(config) if config == job.config => {}
                _ => continue,
            }
            if is_locked(&d) {
                survey.running.push(d);
            } else if let Ok(summary) = read_summary(&d.join(SUMMARY_FILE)) {
                if survey.finished.is_none() {
                    survey.finished = Some((d, summary));
                }
            } else {
                survey.unfinished.push(d);
            }
        }
        survey
    }
}

/// The finished run of `job` under `out`, if any: a folder beside it with the identical
/// `config.toml` and a readable `summary.csv`. The newest wins.
pub fn finished_run(out: &Path, job: &Job) -> Option<(PathBuf, crate::report::Summary)> {
    Survey::of(out, job).finished
}

/// What this process does with a variant, decided while it holds the batch folder's lock.
enum Claim {
    /// It finished before.
    Finished(PathBuf, crate::report::Summary),
    /// Another process is training it.
    Busy(PathBuf),
    /// Train it in this folder, locked for this process; `resume` when the folder holds an
    /// unfinished run.
    Train {
        run_dir: RunDir,
        lock: FolderLock,
        resume: bool,
    },
}

/// Decides what to do with `job`. Call it with the batch lock held: a folder this returns for
/// training is locked and holds the variant's `config.toml` before the batch lock is let go, so
/// a concurrent batch sees it as taken.
fn claim(out: &Path, job: &Job) -> anyhow::Result<Claim> {
    let survey = Survey::of(out, job);
    if let Some((dir, summary)) = survey.finished {
        return Ok(Claim::Finished(dir, summary));
    }
    if let Some(dir) = survey.running.into_iter().next() {
        return Ok(Claim::Busy(dir));
    }
    if let Some(dir) = survey.unfinished.into_iter().next() {
        // Not held a moment ago, and other batches wait for the batch lock; a `runner resume`
        // started by hand may still have taken it.
        return Ok(match FolderLock::try_acquire(&dir)? {
            Some(lock) => Claim::Train {
                run_dir: RunDir::open(&dir)?,
                lock,
                resume: true,
            },
            None => Claim::Busy(dir),
        });
    }
    let folder = job.folder();
    let (root, leaf) = match (folder.parent(), folder.file_name()) {
        (Some(p), Some(l)) => (out.join(p), l.to_string_lossy().into_owned()),
        _ => (out.to_path_buf(), job.exp.name().to_string()),
    };
    let run_dir = RunDir::create(&root, &leaf)?;
    let Some(lock) = FolderLock::try_acquire(&run_dir.path)? else {
        anyhow::bail!(
            "another process took {} as soon as it was made",
            run_dir.path.display()
        );
    };
    run_dir.write_config(&job.config)?;
    Ok(Claim::Train {
        run_dir,
        lock,
        resume: false,
    })
}

/// The state of `job` under `out` in one line, for `--list`.
fn describe(out: &Path, job: &Job) -> Vec<String> {
    let survey = Survey::of(out, job);
    let mut lines = Vec::new();
    if let Some((d, _)) = &survey.finished {
        lines.push(format!("finished: {}", d.display()));
    }
    for d in &survey.running {
        lines.push(format!("running: {}", d.display()));
    }
    for (k, d) in survey.unfinished.iter().enumerate() {
        let state = match RunStatus::read(d) {
            Ok(Some(s)) => s.describe(d),
            Ok(None) => "incomplete (no status.json: written by an older runner)".into(),
            Err(e) => format!("unreadable status: {e}"),
        };
        let what = if survey.finished.is_some() || k > 0 {
            "orphan (`--clean` removes it)"
        } else {
            "the next batch resumes it"
        };
        lines.push(format!("{state}; {what}: {}", d.display()));
    }
    if lines.is_empty() {
        lines.push("to run".into());
    }
    lines
}

/// `--clean`: removes the unfinished folders of `jobs` that nobody is writing, and the
/// temporary files a killed process left in their finished ones. Returns what it removed.
fn clean(out: &Path, jobs: &[&Job]) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for job in jobs {
        let survey = Survey::of(out, job);
        for d in survey.unfinished {
            std::fs::remove_dir_all(&d)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", d.display()))?;
            removed.push(d);
        }
        if let Some((d, _)) = survey.finished {
            for tmp in leftover_temps(&d) {
                std::fs::remove_file(&tmp)
                    .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", tmp.display()))?;
                removed.push(tmp);
            }
        }
    }
    Ok(removed)
}

/// `.<name>.tmp-<pid>-<n>` files in `dir` and its `checkpoints/`.
fn leftover_temps(dir: &Path) -> Vec<PathBuf> {
    [
        dir.to_path_buf(),
        dir.join(train::checkpoint::CHECKPOINT_DIR),
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flat_map(|entries| entries.filter_map(Result::ok))
    .filter(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with('.') && name.contains(".tmp-")
    })
    .map(|e| e.path())
    .collect()
}

/// Runs the verb; returns the exit code.
pub fn run(args: &BatchArgs) -> anyhow::Result<i32> {
    if !args.merge.is_empty() {
        return merge(&args.merge, &args.out);
    }
    let Some(jobs) = collect_jobs(args) else {
        return Ok(super::exit::ERROR);
    };
    let mine: Vec<&Job> = jobs
        .iter()
        .filter(|j| args.shard.is_none_or(|s| s.owns(j.index)))
        .collect();
    if args.list {
        for j in &mine {
            for state in describe(&args.out, j) {
                crate::outln!(
                    "{}\t{}\t{}\t{}",
                    j.index,
                    for_terminal(j.exp.name()),
                    if j.variant.is_empty() {
                        "-".into()
                    } else {
                        for_terminal(&j.variant)
                    },
                    state
                )?;
            }
        }
        return Ok(super::exit::OK);
    }
    if args.clean {
        let _batch = FolderLock::acquire(&args.out)?;
        let removed = clean(&args.out, &mine)?;
        for p in &removed {
            crate::outln!("removed {}", p.display())?;
        }
        crate::outln!(
            "runner batch --clean: removed {} folder{} and file{}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            if removed.len() == 1 { "" } else { "s" }
        )?;
        return Ok(super::exit::OK);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        anyhow::bail!("cannot create {}: {e}", args.out.display());
    }
    let shard_note = args.shard.map_or(String::new(), |s| {
        format!(" (shard {}/{})", s.index, s.count)
    });
    crate::ewriteln!(
        "runner batch: {} variant{}{shard_note} of {} -> {}",
        mine.len(),
        if mine.len() == 1 { "" } else { "s" },
        jobs.len(),
        args.out.display()
    );
    let opts = RunOptions {
        data_dir: resolve_data_dir(args.data_dir.as_deref()),
        plain_progress: args.plain,
        log_every: args.log_every,
        stop_after_steps: None,
        tensorboard: !args.no_tensorboard,
    };
    crate::interrupt::install();
    // This process's rows, by position in `mine`; the others come from disk.
    let mut rows: Vec<Option<BatchRow>> = vec![None; mine.len()];
    let mut guard: Option<TraceGuard> = None;
    let mut failed = 0;
    let mut busy = 0;
    let mut interrupted = None;
    for (n, job) in mine.iter().enumerate() {
        if let Some(signal) = crate::interrupt::requested() {
            interrupted = Some(signal);
            break;
        }
        let label = if job.variant.is_empty() {
            for_terminal(job.exp.name()).into_owned()
        } else {
            format!(
                "{} [{}]",
                for_terminal(job.exp.name()),
                for_terminal(&job.variant)
            )
        };
        crate::ewriteln!("[{}/{}] {label}", n + 1, mine.len());
        let claimed = {
            let _batch = FolderLock::acquire(&args.out)?;
            claim(&args.out, job)
        };
        let outcome = match claimed {
            Ok(Claim::Finished(dir, summary)) => {
                crate::ewriteln!("  finished before: {}", dir.display());
                Ok(BatchRow::done(
                    job.index,
                    &job.variant,
                    &job.overrides,
                    &summary,
                    &relative(&dir, &args.out),
                ))
            }
            Ok(Claim::Busy(dir)) => {
                crate::ewriteln!("  another process is training it: {}", dir.display());
                busy += 1;
                continue;
            }
            Ok(Claim::Train {
                run_dir,
                lock,
                resume,
            }) => {
                let trained = train_job(job, &run_dir, resume, &args.out, &opts, &mut guard);
                drop(lock);
                trained
            }
            Err(e) => Err(JobError::Failed(e.to_string())),
        };
        let row = match outcome {
            Ok(row) => row,
            Err(JobError::Interrupted(signal, message)) => {
                crate::ewriteln!("  {message}");
                interrupted = Some(signal);
                break;
            }
            Err(JobError::Failed(reason)) => {
                crate::ewriteln!("  error: {reason}");
                failed += 1;
                BatchRow::failed(
                    job.index,
                    job.exp.name(),
                    &job.variant,
                    &job.overrides,
                    &reason,
                )
            }
        };
        rows[n] = Some(row);
        // Rewritten after every variant, so an interrupted batch still shows what finished.
        write_tables(&args.out, &mine, &rows)?;
    }
    if let Some(g) = guard {
        if let Err(e) = g.finish() {
            crate::ewriteln!("warning: {e}");
        }
    }
    let table = write_tables(&args.out, &mine, &rows)?;
    if let Some(signal) = interrupted {
        crate::ewriteln!(
            "runner batch: interrupted by {}: run the same command again to resume (finished \
             variants are kept; an interrupted one continues from its last checkpoint)",
            signal.name()
        );
        return Ok(signal.exit_code());
    }
    draw_comparison(&args.out, &table);
    let finished = table.iter().filter(|r| r.status == "ok").count();
    crate::outln!(
        "runner batch: {finished} finished, {failed} failed{} -> {}",
        if busy == 0 {
            String::new()
        } else {
            format!(", {busy} being trained by another process")
        },
        args.out.join(BATCH_CSV).display()
    )?;
    Ok(if failed == 0 {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}

/// Why a variant did not finish.
enum JobError {
    /// A signal stopped it; the message says how to resume.
    Interrupted(crate::interrupt::Signal, String),
    /// It failed.
    Failed(String),
}

fn train_job(
    job: &Job,
    run_dir: &RunDir,
    resume: bool,
    out: &Path,
    opts: &RunOptions,
    guard: &mut Option<TraceGuard>,
) -> Result<BatchRow, JobError> {
    let failed = |e: &dyn std::fmt::Display| JobError::Failed(e.to_string());
    let device = train::select_device(job.exp.device()).map_err(|e| failed(&e))?;
    let trace = super::run::next_trace_file(run_dir);
    match guard {
        Some(g) => g.start_new(&trace).map_err(|e| failed(&e))?,
        None => *guard = Some(init_tracing(Some(&trace)).map_err(|e| failed(&e))?),
    }
    let summary = match super::run::train_in(&job.exp, &job.graph, &device, run_dir, opts, resume) {
        Ok(s) => s,
        Err(e @ train::TrainError::Interrupted { signal, .. }) => {
            return Err(JobError::Interrupted(signal, e.to_string()))
        }
        Err(e) => return Err(failed(&e)),
    };
    // A closed stdout is not this variant's failure: the batch goes on, and its last line
    // meets the closed pipe again and ends it quietly.
    let _ = crate::outln!("{}", super::run::outcome_line(&summary, run_dir));
    Ok(BatchRow::done(
        job.index,
        &job.variant,
        &job.overrides,
        &summary,
        &relative(&run_dir.path, out),
    ))
}

/// `compare_curves.png`/`.svg` and `compare_accuracy.png` over the batch's finished runs; a
/// failure to draw is a warning (the tables are the result).
fn draw_comparison(out: &Path, rows: &[BatchRow]) {
    let mut runs = Vec::new();
    for r in rows.iter().filter(|r| r.status == "ok") {
        match crate::plot::load_run(&out.join(&r.run_dir)) {
            Ok((metrics, summary)) => runs.push((r.label(), metrics, summary)),
            Err(e) => crate::ewriteln!(
                "warning: no comparison plot for {}: {e}",
                for_terminal(&r.label())
            ),
        }
    }
    if runs.len() < 2 {
        return;
    }
    match crate::plot::plot_comparison(&runs, out) {
        Ok(files) => {
            for f in files {
                crate::ewriteln!("  drew {}", f.display());
            }
        }
        Err(e) => crate::ewriteln!("warning: cannot draw the comparison: {e}"),
    }
}

fn relative(dir: &Path, out: &Path) -> String {
    dir.strip_prefix(out)
        .unwrap_or(dir)
        .to_string_lossy()
        .into_owned()
}

/// Writes `batch.csv` and `batch.md` for `jobs`: this process's `rows` where it has one, else
/// what the folder says (a run another batch finished, or is training). Variants neither this
/// process nor the folder knows anything of yet are left out. Holds the batch lock, so that
/// concurrent batches write whole tables one after the other; the last one to finish writes
/// the complete table.
fn write_tables(
    out: &Path,
    jobs: &[&Job],
    rows: &[Option<BatchRow>],
) -> anyhow::Result<Vec<BatchRow>> {
    let _batch = FolderLock::acquire(out)?;
    let mut table = Vec::new();
    for (job, row) in jobs.iter().zip(rows) {
        if let Some(r) = row {
            table.push(r.clone());
            continue;
        }
        let survey = Survey::of(out, job);
        if let Some((dir, summary)) = survey.finished {
            table.push(BatchRow::done(
                job.index,
                &job.variant,
                &job.overrides,
                &summary,
                &relative(&dir, out),
            ));
        } else {
            let state = match (survey.running.first(), survey.unfinished.first()) {
                (Some(dir), _) => Some(("running", dir)),
                (None, Some(dir)) => Some(("interrupted", dir)),
                (None, None) => None,
            };
            if let Some((status, dir)) = state {
                table.push(BatchRow::unfinished(
                    job.index,
                    job.exp.name(),
                    &job.variant,
                    &job.overrides,
                    status,
                    &relative(dir, out),
                ));
            }
        }
    }
    write_rows(out, &table)?;
    Ok(table)
}

fn write_rows(out: &Path, rows: &[BatchRow]) -> anyhow::Result<()> {
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|r| r.index);
    write_atomic(&out.join(BATCH_CSV), batch_csv(&sorted).as_bytes())?;
    write_atomic(&out.join(BATCH_MD), batch_md(&sorted).as_bytes())?;
    Ok(())
}

/// `--merge DIR...`: joins the shards' tables, in batch order, into `out`.
fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<i32> {
    let mut rows: Vec<BatchRow> = Vec::new();
    let mut from: Vec<(usize, PathBuf)> = Vec::new();
    for d in dirs {
        let path = d.join(BATCH_CSV);
        let part = read_batch(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        for mut r in part {
            if let Some((_, other)) = from.iter().find(|(i, _)| *i == r.index) {
                anyhow::bail!(
                    "variant {} ({}) is in both {} and {}: were the shards run with the same files and --shard counts?",
                    r.index,
                    r.label(),
                    other.display(),
                    path.display()
                );
            }
            from.push((r.index, path.clone()));
            if !r.run_dir.is_empty() {
                let run = d.join(&r.run_dir);
                r.run_dir = relative_to(&run, out);
            }
            rows.push(r);
        }
    }
    rows.sort_by_key(|r| r.index);
    let missing: Vec<usize> = (0..rows.last().map_or(0, |r| r.index + 1))
        .filter(|i| rows.binary_search_by_key(i, |r| r.index).is_err())
        .collect();
    if let Err(e) = std::fs::create_dir_all(out) {
        anyhow::bail!("cannot create {}: {e}", out.display());
    }
    write_rows(out, &rows)?;
    draw_comparison(out, &rows);
    crate::outln!(
        "runner batch --merge: {} rows from {} folder{} -> {}",
        rows.len(),
        dirs.len(),
        if dirs.len() == 1 { "" } else { "s" },
        out.join(BATCH_CSV).display()
    )?;
    if !missing.is_empty() {
        crate::ewriteln!(
            "warning: no row for batch index {}: a shard has not finished (or was not given)",
            missing
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(super::exit::ERROR);
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    Ok(if failed == 0 {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}

/// `path` relative to `base` when both are relative or both absolute and `path` is below
/// `base`'s parent chain; otherwise `path` as given.
fn relative_to(path: &Path, base: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, b) = (abs(path), abs(base));
    let common = p
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    if common == 0 {
        return path.to_string_lossy().into_owned();
    }
    let ups = b.components().count() - common;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    for c in p.components().skip(common) {
        rel.push(c);
    }
    rel.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_partitions() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().is_err());
        for n in 1..6 {
            for i in 0..20 {
                let owners = (0..n)
                    .filter(|&k| Shard { index: k, count: n }.owns(i))
                    .count();
                assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn folder_names_are_one_safe_component() {
        assert_eq!(folder_name("lr=0.01,momentum=0.9"), "lr=0.01,momentum=0.9");
        assert_eq!(folder_name("a/b c"), "a_b_c");
        assert_eq!(folder_name(".."), "_..");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("out/s0/a/1"), Path::new("out/all")),
            "../s0/a/1"
        );
        assert_eq!(relative_to(Path::new("out/a"), Path::new("out")), "a");
    }
}
