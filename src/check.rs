//! The whole check of an experiment file: the front end ([`crate::experiment`]: text to a
//! checked experiment) then the graph ([`crate::graph`]: order and shapes), then the weights
//! the run starts from (`train.init_from`, read and checked tensor by tensor against the
//! graph's layout: [`crate::model::weights`]). This is the only place that joins the stages;
//! everything downstream takes the [`Checked`] result.

use std::ops::Range;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Source};
use crate::experiment::{self, Experiment, Loaded};
use crate::graph::{self, Graph};
use crate::model::weights::{self, WeightsFile};

/// Whether a check reads the `train.init_from` weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Read the file, check every tensor against the model and record its SHA-256 in the
    /// experiment: what a new run needs, and what `runner check` does.
    Check,
    /// Leave the file unread: the weights come from elsewhere (`runner eval` of a run's own
    /// weights, `runner resume` from a checkpoint), so a run folder stays usable after the
    /// file it started from is gone.
    Skip,
}

/// The outcome of checking one file (or one of its sweep variants).
#[derive(Debug)]
pub struct Checked {
    /// The file, for rendering diagnostics.
    pub source: Source,
    /// Errors and warnings in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The experiment and its graph, when there were no errors.
    pub result: Option<(Experiment, Graph)>,
    /// The sweep variant's name (`lr=0.01,momentum=0.9`); `None` for a file without `[sweep]`.
    pub variant: Option<String>,
    /// Every override applied, `--set` arguments first, as `key.path=value`.
    pub overrides: Vec<String>,
    /// For an image folder or CSV data set checked with a data directory: what was found
    /// there (classes, images, the first image's size), or that it was not found.
    pub data: Option<String>,
}

impl Checked {
    /// Whether the file is free of errors.
    pub fn ok(&self) -> bool {
        self.result.is_some()
    }

    /// All diagnostics rendered for a terminal, without colour.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| self.source.render(d))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the graph stage on what the front end produced, then the check of the weights, then
/// (with `data_dir`) the check of an image folder's classes against the model.
fn with_graph(l: Loaded, weights: Weights, data_dir: Option<&Path>) -> Checked {
    let mut data = None;
    let mut diagnostics = l.diagnostics;
    let result = l.result.and_then(|(mut e, spans)| {
        let g = graph::of_experiment(&e, Some(&spans), &mut diagnostics)?;
        if weights == Weights::Check {
            let span = spans.init_from.clone().unwrap_or(0..0);
            let before = diagnostics.len();
            if let Some(sha256) = check_init(&e, &g, span, &mut diagnostics) {
                e.pin_init_sha256(&sha256);
            }
            if diagnostics[before..].iter().any(Diagnostic::is_error) {
                return None;
            }
        }
        if !check_groups(&e, &g, &spans.param_groups, &mut diagnostics) {
            return None;
        }
        if let Some(dir) = data_dir {
            let (ok, note) = check_folder(&e, &g, dir, &spans, &mut diagnostics);
            data = note;
            if !ok {
                return None;
            }
        }
        Some((e, g))
    });
    if let Some((model, spans, dataset)) = &l.model_only {
        // The file has errors elsewhere; the graph's are reported in the same pass.
        graph::for_dataset(model, dataset, Some(spans), &mut diagnostics);
    }
    diagnostics.sort_by_key(|d| (d.span.start, d.severity));
    diagnostics.dedup();
    Checked {
        source: l.source,
        diagnostics,
        result,
        variant: l.variant,
        overrides: l.overrides,
        data,
    }
}

/// For an image folder or CSV data set: lists it under `data_dir` (reading one image header,
/// decoding nothing) and checks the classes found against the declared `classes` and the
/// model's output. Returns whether it fits, and a line saying what was found. Data that is not
/// there is no error: the declared `classes` and `image_size` were checked already.
fn check_folder(
    e: &Experiment,
    g: &Graph,
    data_dir: &Path,
    spans: &experiment::ModelSpans,
    diags: &mut Vec<Diagnostic>,
) -> (bool, Option<String>) {
    let kind = &e.data().dataset;
    let Some(spec) = kind.folder() else {
        return (true, None);
    };
    let [c, h, w] = spec.shape;
    let root = data_dir.join(&spec.path);
    if std::fs::symlink_metadata(&root).is_err() {
        let classes = match spec.classes {
            Some(n) => format!("`classes = {n}` and "),
            None => "(no `classes` declared, so the model's output is unchecked) ".into(),
        };
        return (
            true,
            Some(format!(
                "data: {} not found; checked with the declared {classes}`image_size` ({c}x{h}x{w})",
                root.display()
            )),
        );
    }
    let span = spans.dataset.clone().unwrap_or(0..0);
    let probe = match crate::data::folder::probe(kind, data_dir) {
        Ok(p) => p,
        Err(err) => {
            diags.push(
                Diagnostic::error(span, format!("the `{}` data set: {err}", kind.name()))
                    .label("these images"),
            );
            return (false, None);
        }
    };
    let n = probe.train.classes.len();
    let what = format!("{}", root.display());
    let fits = crate::graph::output_fits(e.model(), g, n, &what, Some(spans), diags);
    let names = if n <= 10 {
        probe.train.classes.join(", ")
    } else {
        format!("{}, ...", probe.train.classes[..10].join(", "))
    };
    let first = match &probe.first {
        Ok((_, fw, fh)) => format!("first image {fw}x{fh}, "),
        Err(why) => format!("first image unreadable ({why}), "),
    };
    let note = format!(
        "data: {} training images in {n} classes ({names}) in {}; {first}input [{c}, {h}, {w}]",
        probe.train.files.len(),
        root.display()
    );
    (fits, Some(note))
}

/// Reads the `init_from` file of `e` (if it names one) and reports, at `span`, a file that
/// cannot be read, is not safetensors, has other contents than the pinned SHA-256, or does not
/// fit the graph (every tensor, by layer). Returns the file's SHA-256 when it fits.
fn check_init(
    e: &Experiment,
    g: &Graph,
    span: Range<usize>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let init = e.train().init_from.as_ref()?;
    let relative = "a relative path is relative to the experiment file's folder (to the current directory in a `--set`)";
    let file = match WeightsFile::read(&init.path) {
        Ok(f) => f,
        Err(err) => {
            let mut d = Diagnostic::error(
                span,
                format!("cannot read the `init_from` weights: {}", err.kind),
            )
            .label("this file");
            if err.kind.is_not_found() {
                d = d.help(relative);
            }
            diags.push(d);
            return None;
        }
    };
    if let Some(want) = &init.sha256 {
        if *want != file.sha256 {
            diags.push(
                Diagnostic::error(
                    span,
                    "the `init_from` weights are not the ones `sha256` names",
                )
                .label("this file")
                .note(format!("the file's SHA-256 is {}", file.sha256)),
            );
            return None;
        }
    }
    let problems = match weights::check(file.bytes(), &weights::state_layout(g)) {
        Ok(p) => p,
        Err(why) => {
            diags.push(
                Diagnostic::error(span, format!("the `init_from` file is {why}"))
                    .label("this file")
                    .help("save weights with `safetensors.torch.save_file(net.state_dict(), path)`, or use a run's `model.safetensors`"),
            );
            return None;
        }
    };
    if problems.is_empty() {
        return Some(file.sha256);
    }
    for p in problems {
        diags.push(Diagnostic::error(span.clone(), p).label("these weights do not fit the model"));
    }
    None
}

/// Reports, at its `match`, each `[[train.param_groups]]` that takes no parameter of the model
/// (none matches, or earlier groups took every one that does). Returns whether every group
/// takes one.
fn check_groups(
    e: &Experiment,
    g: &Graph,
    spans: &[Range<usize>],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let groups = &e.train().param_groups;
    let assigned = weights::parameter_groups(g, groups);
    let mut ok = true;
    for (i, group) in groups.iter().enumerate() {
        if assigned.iter().any(|(_, a)| *a == Some(i)) {
            continue;
        }
        ok = false;
        let matching = assigned
            .iter()
            .filter(|(p, _)| group.selector.matches(p.op, &p.slot.name))
            .count();
        let span = spans.get(i).cloned().unwrap_or(0..0);
        let names: Vec<&str> = assigned.iter().map(|(p, _)| p.slot.name.as_str()).collect();
        let mut d = if matching > 0 {
            Diagnostic::error(span, "this parameter group takes no parameter")
                .label(format!("earlier groups take all {matching} it matches"))
                .help("the first group that matches a parameter is its group: put this one first, or narrow the earlier one")
        } else {
            Diagnostic::error(
                span,
                "this parameter group matches no parameter of the model",
            )
            .label("no parameter matches")
        };
        d = d.note(if names.is_empty() {
            "the model has no parameters".to_string()
        } else if names.len() <= 8 {
            format!("the parameters are: {}", names.join(", "))
        } else {
            format!(
                "the parameters are: {}, ... ({} in all)",
                names[..8].join(", "),
                names.len()
            )
        });
        diags.push(d);
    }
    ok
}

/// Per `[[train.param_groups]]` of `e`, in file order: how many parameter tensors it takes and
/// how many scalars they hold; then the same for the parameters no group takes.
pub fn group_counts(e: &Experiment, g: &Graph) -> (Vec<(usize, usize)>, (usize, usize)) {
    let groups = &e.train().param_groups;
    let mut counts = vec![(0, 0); groups.len()];
    let mut rest = (0, 0);
    for (p, group) in weights::parameter_groups(g, groups) {
        let c = group.map_or(&mut rest, |i| &mut counts[i]);
        c.0 += 1;
        c.1 += p.slot.dims.iter().product::<usize>();
    }
    (counts, rest)
}

fn first(mut all: Vec<Checked>) -> Checked {
    all.truncate(1);
    all.pop().unwrap_or_else(|| Checked {
        source: Source::default(),
        diagnostics: vec![Diagnostic::error(0..0, "nothing was checked")],
        result: None,
        variant: None,
        overrides: Vec::new(),
        data: None,
    })
}

/// Checks a file with `--set` overrides: one [`Checked`] per sweep variant (exactly one for a
/// file without `[sweep]`, or when the file or an override has errors that every variant would
/// share).
pub fn check_file_with(path: &Path, sets: &[String]) -> Vec<Checked> {
    check_file_weights(path, sets, Weights::Check)
}

/// [`check_file_with`], reading the `init_from` weights or not.
pub fn check_file_weights(path: &Path, sets: &[String], weights: Weights) -> Vec<Checked> {
    experiment::load_file_with(path, sets)
        .into_iter()
        .map(|l| with_graph(l, weights, None))
        .collect()
}

/// [`check_file_with`], also listing an image folder or CSV data set under `data_dir` (what
/// `runner check` does): its classes are checked against the model, nothing is decoded.
pub fn check_file_data(path: &Path, sets: &[String], data_dir: &Path) -> Vec<Checked> {
    experiment::load_file_with(path, sets)
        .into_iter()
        .map(|l| with_graph(l, Weights::Check, Some(data_dir)))
        .collect()
}

/// Checks a file without overrides; for a file with a `[sweep]`, its first variant.
pub fn check_file(path: &Path) -> Checked {
    first(check_file_with(path, &[]))
}

/// Checks file contents; `default_name` is used when the file has no `name`.
pub fn check_bytes(path: &str, bytes: &[u8], default_name: &str) -> Checked {
    first(check_bytes_with(path, bytes, default_name, &[]))
}

/// [`check_bytes`] with `--set` overrides, one result per sweep variant.
pub fn check_bytes_with(
    path: &str,
    bytes: &[u8],
    default_name: &str,
    sets: &[String],
) -> Vec<Checked> {
    experiment::load_bytes_with(path, bytes, default_name, sets)
        .into_iter()
        .map(|l| with_graph(l, Weights::Check, None))
        .collect()
}

/// Checks TOML text (for a file with a `[sweep]`, its first variant).
pub fn check_str(path: &str, text: &str, default_name: &str) -> Checked {
    first(check_str_with(path, text, default_name, &[]))
}

/// Checks TOML text with `--set` overrides, one result per sweep variant.
pub fn check_str_with(path: &str, text: &str, default_name: &str, sets: &[String]) -> Vec<Checked> {
    experiment::load_str_with(path, text, default_name, sets)
        .into_iter()
        .map(|l| with_graph(l, Weights::Check, None))
        .collect()
}
