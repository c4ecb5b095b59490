//! `runner check FILE...`: validate experiment files and print their layer tables. Allocates no weights.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::check::{check_file_data, Checked};
use crate::diagnostic::{Position, Severity};
use crate::graph::summary::{rows, table, thousands, Row};

/// Options of `runner check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Experiment files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print only diagnostics and a one-line verdict per file, no layer table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Folder an `image_folder` or `csv` data set's paths are relative to: it is listed (one
    /// image header read, nothing decoded) to report its classes and check them against the
    /// model [default: $RUNNER_DATA, else ./data]. Data that is not there is no error.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides applied to every file.
    #[command(flatten)]
    pub set: super::SetArgs,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    message: &'a str,
    /// The file, or `--set` for a diagnostic inside a `--set` argument.
    file: &'a str,
    line: usize,
    col: usize,
    end: Position,
    label: &'a str,
    notes: &'a [String],
    help: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    overrides: &'a [String],
    ok: bool,
    diagnostics: Vec<JsonDiagnostic<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<[usize; 3]>,
    layers: Vec<Row>,
    params: usize,
    macs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    /// Optimizer steps of the run, where the data set fixes its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_steps: Option<usize>,
}

fn json_file(c: &Checked) -> JsonFile<'_> {
    let diagnostics = c
        .diagnostics
        .iter()
        .map(|d| {
            let (file, start) = c.source.located(d.span.start);
            JsonDiagnostic {
                severity: d.severity,
                message: &d.message,
                file,
                line: start.line,
                col: start.col,
                end: c.source.located(d.span.end).1,
                label: &d.label,
                notes: &d.notes,
                help: d.help.as_deref(),
            }
        })
        .collect();
    let (experiment, input, layers, params, macs) = match &c.result {
        Some((e, g)) => (Some(e.name()), Some(g.input), rows(g), g.params(), g.macs()),
        None => (None, None, Vec::new(), 0, 0),
    };
    JsonFile {
        path: &c.source.path,
        variant: c.variant.as_deref(),
        overrides: &c.overrides,
        ok: c.ok(),
        diagnostics,
        experiment,
        input,
        layers,
        params,
        macs,
        data: c.data.as_deref(),
        total_steps: c.result.as_ref().and_then(|(e, _)| {
            let n = e.data().known_train_images()?;
            Some(e.plan(n).total_steps)
        }),
    }
}

/// Text report for one checked file: diagnostics, then the table when valid.
pub fn text_report(c: &Checked, quiet: bool) -> String {
    let mut out = c.render();
    if !out.is_empty() {
        out.push('\n');
    }
    let who = match &c.variant {
        Some(v) => format!("{} [{v}]", c.source.path),
        None => c.source.path.clone(),
    };
    match &c.result {
        Some((e, g)) => {
            out += &format!(
                "{}: ok: `{}` on {} ({} layers, {} parameters, {} MACs per image)\n",
                who,
                e.name(),
                e.data().dataset.name(),
                g.layers.len(),
                thousands(g.params() as u64),
                thousands(g.macs())
            );
            out += &format!("{}\n", length_line(e));
            if let Some(d) = &c.data {
                out += &format!("{d}\n");
            }
            out += &groups_report(e, g);
            if !quiet {
                out += &table(g);
            }
        }
        None => {
            let n = c.diagnostics.iter().filter(|d| d.is_error()).count();
            out += &match n {
                // A sweep variant whose errors were all shown with an earlier variant.
                0 => format!("{who}: the errors above\n"),
                1 => format!("{who}: 1 error\n"),
                n => format!("{who}: {n} errors\n"),
            };
        }
    }
    out
}

/// How long the experiment trains: the optimizer steps where the data set fixes its size.
fn length_line(e: &crate::experiment::Experiment) -> String {
    let length = e.train().length;
    let Some(n) = e.data().known_train_images() else {
        return format!("  training: {length} (the steps depend on the data set's size)");
    };
    let plan = e.plan(n);
    let batches = plan.batches_per_epoch;
    let dropped = if e.data().drop_last && n % e.data().batch_size.max(1) != 0 {
        ", the partial batch dropped"
    } else {
        ""
    };
    let grouped = match e.train().accumulate {
        1 => String::new(),
        k => format!(" in groups of {k}"),
    };
    let partial = if plan.total_steps < plan.epochs * plan.steps_per_epoch {
        format!(" ({length}), the last epoch partial")
    } else {
        String::new()
    };
    format!(
        "  training: {} optimizer steps in {} epoch{}{partial}; {} steps per epoch: {batches} batch{} of {} images{grouped}{dropped}",
        thousands(plan.total_steps as u64),
        plan.epochs,
        if plan.epochs == 1 { "" } else { "s" },
        plan.steps_per_epoch,
        if batches == 1 { "" } else { "es" },
        e.data().batch_size,
    )
}

/// One line per `[[train.param_groups]]` (what it matches, what it takes, its settings), then
/// the parameters no group takes; nothing without groups.
fn groups_report(e: &crate::experiment::Experiment, g: &crate::graph::Graph) -> String {
    use crate::experiment::Freeze;
    let groups = &e.train().param_groups;
    if groups.is_empty() {
        return String::new();
    }
    let (counts, rest) = crate::check::group_counts(e, g);
    let taken = |(tensors, scalars): (usize, usize)| {
        let s = if tensors == 1 { "" } else { "s" };
        format!(
            "{tensors} tensor{s}, {} parameters",
            thousands(scalars as u64)
        )
    };
    let mut out = String::new();
    for (i, (group, count)) in groups.iter().zip(counts).enumerate() {
        let sel = &group.selector;
        let keys: Vec<String> = [
            sel.op.map(|o| format!("op = \"{}\"", o.name())),
            sel.role.map(|r| format!("role = \"{}\"", r.name())),
            sel.name.as_ref().map(|n| format!("name = {n:?}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut settings = Vec::new();
        if group.lr_scale != 1.0 {
            settings.push(format!("lr x{}", group.lr_scale));
        }
        if group.weight_decay_scale != 1.0 {
            settings.push(format!("weight_decay x{}", group.weight_decay_scale));
        }
        match group.freeze {
            Freeze::Never => {}
            Freeze::Always => settings.push("frozen".into()),
            Freeze::AfterEpochs(n) => settings.push(format!("frozen after epoch {n}")),
        }
        if settings.is_empty() {
            settings.push("the optimizer's settings".into());
        }
        out += &format!(
            "param group {}: {{ {} }}: {}; {}\n",
            i + 1,
            keys.join(", "),
            taken(count),
            settings.join(", ")
        );
    }
    out += &format!(
        "other parameters: {}; the optimizer's settings\n",
        taken(rest)
    );
    out
}

/// The variants of one file share most diagnostics (everything not caused by the swept
/// values): show each only with the first variant that has it.
fn quiet_repeats(variants: &mut [Checked]) {
    let mut seen: Vec<crate::diagnostic::Diagnostic> = Vec::new();
    for c in variants.iter_mut() {
        c.diagnostics.retain(|d| {
            if seen.contains(d) {
                false
            } else {
                seen.push(d.clone());
                true
            }
        });
    }
}

/// Runs the verb; returns the exit code.
pub fn run(args: &CheckArgs) -> anyhow::Result<i32> {
    let data_dir = crate::data::resolve_data_dir(args.data_dir.as_deref());
    let checked: Vec<Checked> = args
        .files
        .iter()
        .flat_map(|f| {
            let mut variants = check_file_data(f, &args.set.sets, &data_dir);
            quiet_repeats(&mut variants);
            variants
        })
        .collect();
    let all_ok = checked.iter().all(Checked::ok);
    let mut stdout = super::out::stdout();
    if args.json {
        let files: Vec<JsonFile<'_>> = checked.iter().map(json_file).collect();
        serde_json::to_writer_pretty(
            &mut stdout,
            &serde_json::json!({ "ok": all_ok, "files": files }),
        )?;
        writeln!(stdout)?;
    } else {
        for (i, c) in checked.iter().enumerate() {
            if i > 0 {
                writeln!(stdout)?;
            }
            write!(stdout, "{}", text_report(c, args.quiet))?;
        }
    }
    stdout.finish()?;
    Ok(if all_ok {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}
