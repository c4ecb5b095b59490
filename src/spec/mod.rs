//! Experiment files: TOML text -> raw spanned types ([`raw`]) -> checked [`Experiment`]
//! ([`validate`]), with every problem reported as a located [`Diagnostic`].

pub mod experiment;
pub mod print;
pub mod raw;
pub mod read;
pub mod validate;
pub mod variants;

pub use experiment::*;

use std::path::Path;

use crate::diagnostic::{Diagnostic, Source};
use crate::graph::build::Graph;

/// Largest experiment file accepted; anything bigger is certainly not hand-written.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Deepest nesting of arrays/tables accepted before parsing (guards the parser's recursion).
const MAX_NESTING: usize = 64;

/// The outcome of checking one file.
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

/// Reads and checks a file without overrides; for a file with a `[sweep]`, this is its first
/// variant (see [`check_file_with`] for all of them).
pub fn check_file(path: &Path) -> Checked {
    let mut all = check_file_with(path, &[]);
    all.truncate(1);
    all.pop()
        .expect("check_file_with returns at least one result")
}

/// Reads and checks a file with `--set` overrides: one [`Checked`] per sweep variant (exactly
/// one for a file without `[sweep]`, or when the file or an override has errors that every
/// variant would share). I/O problems become a diagnostic at the start of the file.
pub fn check_file_with(path: &Path, sets: &[String]) -> Vec<Checked> {
    let display = path.display().to_string();
    let fail = |msg: String| {
        vec![Checked {
            source: Source {
                path: display.clone(),
                ..Source::default()
            },
            diagnostics: vec![Diagnostic::error(0..0, msg)],
            result: None,
            variant: None,
            overrides: Vec::new(),
        }]
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return fail(format!(
                "`{display}` is a directory, not an experiment file"
            ))
        }
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return fail(format!(
                "`{display}` is {} bytes; experiment files are at most {MAX_FILE_BYTES}",
                m.len()
            ))
        }
        Ok(_) => {}
        Err(e) => return fail(format!("cannot read `{display}`: {e}")),
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read `{display}`: {e}")),
    };
    let stem = path
        .file_stem()
        .map_or("experiment".into(), |s| s.to_string_lossy().into_owned());
    check_bytes_with(&display, &bytes, &stem, sets)
}

/// Checks file contents; `default_name` is used when the file has no `name`.
pub fn check_bytes(path: &str, bytes: &[u8], default_name: &str) -> Checked {
    let mut all = check_bytes_with(path, bytes, default_name, &[]);
    all.truncate(1);
    all.pop()
        .expect("check_bytes_with returns at least one result")
}

/// [`check_bytes`] with `--set` overrides, one result per sweep variant.
pub fn check_bytes_with(
    path: &str,
    bytes: &[u8],
    default_name: &str,
    sets: &[String],
) -> Vec<Checked> {
    match std::str::from_utf8(bytes) {
        Ok(text) => check_str_with(path, text, default_name, sets),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            vec![Checked {
                source: Source {
                    path: path.to_string(),
                    text,
                    sets_from: None,
                },
                // In the lossy text the bad byte became U+FFFD; underline exactly that character.
                diagnostics: vec![Diagnostic::error(
                    at..at + '\u{FFFD}'.len_utf8(),
                    "the file is not valid UTF-8 text",
                )
                .label("invalid byte here")
                .help("experiment files are TOML text")],
                result: None,
                variant: None,
                overrides: Vec::new(),
            }]
        }
    }
}

/// Checks TOML text (for a file with a `[sweep]`, its first variant).
pub fn check_str(path: &str, text: &str, default_name: &str) -> Checked {
    let mut all = check_str_with(path, text, default_name, &[]);
    all.truncate(1);
    all.pop()
        .expect("check_str_with returns at least one result")
}

/// Checks TOML text with `--set` overrides, one result per sweep variant.
pub fn check_str_with(path: &str, text: &str, default_name: &str, sets: &[String]) -> Vec<Checked> {
    let file_len = text.len();
    let (full, region) = if sets.is_empty() {
        (text.to_string(), None)
    } else {
        let (full, region) = variants::append_sets(text, sets);
        (full, Some(region))
    };
    let source = Source {
        path: path.to_string(),
        text: full,
        sets_from: region.as_ref().map(|r| r.start),
    };
    let only = |source: Source, diagnostics: Vec<Diagnostic>| {
        vec![Checked {
            source,
            diagnostics,
            result: None,
            variant: None,
            overrides: Vec::new(),
        }]
    };
    if let Some(at) = too_deep(text) {
        return only(
            source,
            vec![Diagnostic::error(
                at..at + 1,
                format!("arrays and tables nest more than {MAX_NESTING} deep"),
            )
            .label("too deep")],
        );
    }
    let full: &str = &source.text;
    let (doc, errors) = toml::de::DeTable::parse_recoverable(&full[..file_len]);
    let mut cx = read::Cx {
        text: full,
        ..read::Cx::default()
    };
    if !errors.is_empty() {
        for e in &errors {
            let span = e.span().unwrap_or(0..0);
            cx.push(
                Diagnostic::error(span, format!("invalid TOML: {}", e.message().trim()))
                    .label("here"),
            );
        }
        let mut diagnostics = cx.diags;
        diagnostics.sort_by_key(|d| (d.span.start, d.severity));
        // An unclosed array or table makes the parser misread everything after it: one missing
        // `]` would otherwise produce a screenful of errors. Keep the first, which is where the
        // misreading starts.
        let unclosed = errors.iter().any(|e| e.message().contains("unclosed"));
        if unclosed && diagnostics.len() > 1 {
            let more = diagnostics.len() - 1;
            diagnostics.truncate(1);
            let first = &mut diagnostics[0];
            first.notes.push(format!(
                "{more} more syntax error{} after this point not shown",
                if more == 1 { "" } else { "s" }
            ));
            first.help = Some(
                "an array or table opened above is never closed: look for a missing `]` or `}`"
                    .into(),
            );
        }
        return only(source.clone(), diagnostics);
    }
    let (span, mut table) = (doc.span(), doc.into_inner());
    // Overrides: `--set` first, then each sweep variant on top.
    let mut early = Vec::new();
    let sets = match &region {
        Some(r) => variants::parse_sets(full, r, &mut early),
        None => Vec::new(),
    };
    for ov in &sets {
        variants::apply(&mut table, ov, &mut early);
    }
    let sweep = variants::take_sweep(&mut table, full, &mut early);
    if let Some(first) = sweep.as_ref().and_then(|v| v.first()) {
        for set in &sets {
            if let Some(swept) = first.overrides.iter().find(|o| o.key() == set.key()) {
                let at = set.path[0].1.start..set.path.last().map_or(0, |p| p.1.end);
                early.push(
                    Diagnostic::error(at, format!("`{}` is varied by the file's sweep", set.key()))
                        .label("would be overridden by every variant")
                        .note(format!(
                            "the sweep varies it at {}",
                            cx.line_col(swept.path[0].1.start)
                        ))
                        .help("edit the sweep, or run one variant with `--variant NAME`"),
                );
            }
        }
    }
    if early.iter().any(Diagnostic::is_error) {
        early.sort_by_key(|d| (d.span.start, d.severity));
        return only(source.clone(), early);
    }
    let set_names: Vec<String> = sets.iter().map(variants::Override::assignment).collect();
    let plans: Vec<(Option<String>, Vec<String>, toml::de::DeTable<'_>)> = match sweep {
        None => vec![(None, set_names.clone(), table)],
        Some(vs) => vs
            .into_iter()
            .map(|v| {
                let mut t = table.clone();
                for ov in &v.overrides {
                    variants::apply(&mut t, ov, &mut early);
                }
                let mut names = set_names.clone();
                names.extend(v.overrides.iter().map(variants::Override::assignment));
                (Some(v.name), names, t)
            })
            .collect(),
    };
    let docs: Vec<_> = plans
        .into_iter()
        .map(|(variant, overrides, t)| {
            (
                variant,
                overrides,
                toml::Spanned::new(span.clone(), toml::de::DeValue::Table(t)),
            )
        })
        .collect();
    docs.iter()
        .map(|(variant, overrides, doc)| {
            let mut cx = read::Cx {
                text: full,
                diags: early.clone(),
                ..read::Cx::default()
            };
            let result = {
                let raw = raw::read_experiment(doc, &mut cx);
                validate::validate(&mut cx, raw, default_name)
            };
            let mut diagnostics = std::mem::take(&mut cx.diags);
            diagnostics.sort_by_key(|d| (d.span.start, d.severity));
            diagnostics.dedup();
            Checked {
                source: source.clone(),
                diagnostics,
                result,
                variant: variant.clone(),
                overrides: overrides.clone(),
            }
        })
        .collect()
}

/// Byte offset where bracket nesting first exceeds [`MAX_NESTING`], ignoring strings and comments
/// approximately (a false alarm needs 64 brackets inside strings).
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => {}
            _ => {}
        }
    }
    None
}
