//! The whole check of an experiment file: the front end ([`crate::experiment`]: text to a
//! checked experiment) then the graph ([`crate::graph`]: order and shapes). This is the only
//! place that joins the two stages; everything downstream takes the [`Checked`] result.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Source};
use crate::experiment::{self, Experiment, Loaded};
use crate::graph::{self, Graph};

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

/// Runs the graph stage on what the front end produced.
fn with_graph(l: Loaded) -> Checked {
    let mut diagnostics = l.diagnostics;
    let result = l.result.and_then(|(e, spans)| {
        let g = graph::of_experiment(&e, Some(&spans), &mut diagnostics);
        g.map(|g| (e, g))
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
    }
}

fn first(mut all: Vec<Checked>) -> Checked {
    all.truncate(1);
    all.pop().unwrap_or_else(|| Checked {
        source: Source::default(),
        diagnostics: vec![Diagnostic::error(0..0, "nothing was checked")],
        result: None,
        variant: None,
        overrides: Vec::new(),
    })
}

/// Checks a file with `--set` overrides: one [`Checked`] per sweep variant (exactly one for a
/// file without `[sweep]`, or when the file or an override has errors that every variant would
/// share).
pub fn check_file_with(path: &Path, sets: &[String]) -> Vec<Checked> {
    experiment::load_file_with(path, sets)
        .into_iter()
        .map(with_graph)
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
        .map(with_graph)
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
        .map(with_graph)
        .collect()
}
