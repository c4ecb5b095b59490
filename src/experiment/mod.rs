//! The front end: experiment files from TOML text to the checked [`Experiment`], with every
//! problem reported as a located [`Diagnostic`]. One direction, one stage per module:
//!
//! text -> raw spanned tables ([`format`], declared once with [`decl`], read by [`read`])
//! -> overrides ([`overrides`]: `--set`, `--epochs`, ...) and sweep variants ([`sweep`])
//! -> expansion ([`expand`]: blocks, the VGG shorthand, names)
//! -> checked [`Experiment`] ([`validate`], by section; [`checked`] holds the types).
//!
//! The way back: [`print`] writes a checked experiment as a resolved `config.toml` through the
//! same declarations, and [`schema`] derives the JSON Schema from them. This module never uses
//! the graph ([`crate::graph`] takes a checked experiment; `tests/architecture.rs` enforces it).

pub mod checked;
pub mod decl;
pub mod emit;
pub mod expand;
pub mod format;
pub mod overrides;
pub mod print;
pub mod read;
pub mod schema;
pub mod sweep;
pub mod validate;

pub use checked::*;
pub use expand::LayerSpans;
pub use format::{Cifar100Labels, DatasetName, OnCorrupt, ParamRole, Tta, TtaWhen};
pub use validate::ModelSpans;

use std::path::Path;

use crate::bounded::ReadErrorKind;
use crate::diagnostic::{Diagnostic, Source};

/// Largest experiment file accepted; anything bigger is certainly not hand-written.
const MAX_FILE_BYTES: u64 = crate::bounded::EXPERIMENT_LIMIT;
/// Deepest nesting of arrays/tables accepted before parsing (guards the parser's recursion).
const MAX_NESTING: usize = 64;

/// The outcome of reading one file (or one of its sweep variants).
#[derive(Debug)]
pub struct Loaded {
    /// The file, for rendering diagnostics.
    pub source: Source,
    /// Errors and warnings in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The experiment and where its layers came from, when there were no errors.
    pub result: Option<(Experiment, ModelSpans)>,
    /// When other sections have errors but the model is valid: the model, its spans and the
    /// data set, so that the graph's mistakes are reported in the same pass.
    pub model_only: Option<(ModelSpec, ModelSpans, DatasetKind)>,
    /// The sweep variant's name (`lr=0.01,momentum=0.9`); `None` for a file without `[sweep]`.
    pub variant: Option<String>,
    /// Every override applied, `--set` arguments first, as `key.path=value`.
    pub overrides: Vec<String>,
}

/// Reads a file with `--set` overrides: one [`Loaded`] per sweep variant (exactly one for a
/// file without `[sweep]`, or when the file or an override has errors that every variant would
/// share). I/O problems become a diagnostic at the start of the file.
pub fn load_file_with(path: &Path, sets: &[String]) -> Vec<Loaded> {
    let display = path.display().to_string();
    let fail = |msg: String| {
        vec![Loaded {
            source: Source {
                path: display.clone(),
                ..Source::default()
            },
            diagnostics: vec![Diagnostic::error(0..0, msg)],
            result: None,
            model_only: None,
            variant: None,
            overrides: Vec::new(),
        }]
    };
    let bytes = match crate::bounded::read(path, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            return fail(match e.kind {
                ReadErrorKind::NotRegular("a directory") => {
                    format!("`{display}` is a directory, not an experiment file")
                }
                ReadErrorKind::TooLarge { limit } => format!(
                "`{display}` holds more than {limit} bytes; experiment files are at most {limit}"
            ),
                kind => format!("cannot read `{display}`: {kind}"),
            })
        }
    };
    let stem = path
        .file_stem()
        .map_or("experiment".into(), |s| s.to_string_lossy().into_owned());
    load_bytes_with(&display, &bytes, &stem, sets)
}

/// Reads file contents with `--set` overrides, one result per sweep variant; `default_name` is
/// used when the file has no `name`.
pub fn load_bytes_with(
    path: &str,
    bytes: &[u8],
    default_name: &str,
    sets: &[String],
) -> Vec<Loaded> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str_with(path, text, default_name, sets),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            vec![Loaded {
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
                model_only: None,
                variant: None,
                overrides: Vec::new(),
            }]
        }
    }
}

/// Reads TOML text with `--set` overrides, one result per sweep variant.
pub fn load_str_with(path: &str, text: &str, default_name: &str, sets: &[String]) -> Vec<Loaded> {
    let file_len = text.len();
    let (full, region) = if sets.is_empty() {
        (text.to_string(), None)
    } else {
        let (full, region) = overrides::append_sets(text, sets);
        (full, Some(region))
    };
    let source = Source {
        path: path.to_string(),
        text: full,
        sets_from: region.as_ref().map(|r| r.start),
    };
    let only = |source: Source, diagnostics: Vec<Diagnostic>| {
        vec![Loaded {
            source,
            diagnostics,
            result: None,
            model_only: None,
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
        Some(r) => overrides::parse_sets(full, r, &mut early),
        None => Vec::new(),
    };
    overrides::drop_replaced(&mut table, &sets.iter().collect::<Vec<_>>());
    for ov in &sets {
        overrides::apply(&mut table, ov, &mut early);
    }
    let sweep = sweep::take_sweep(&mut table, full, &mut early);
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
    let set_names: Vec<String> = sets.iter().map(overrides::Override::assignment).collect();
    let plans: Vec<(Option<String>, Vec<String>, toml::de::DeTable<'_>)> = match sweep {
        None => vec![(None, set_names.clone(), table)],
        Some(vs) => vs
            .into_iter()
            .map(|v| {
                let mut t = table.clone();
                let all: Vec<_> = sets.iter().chain(&v.overrides).collect();
                overrides::drop_replaced(&mut t, &all);
                for ov in &v.overrides {
                    overrides::apply(&mut t, ov, &mut early);
                }
                let mut names = set_names.clone();
                names.extend(v.overrides.iter().map(overrides::Override::assignment));
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
                dir: Path::new(path)
                    .parent()
                    .map_or_else(Default::default, Path::to_path_buf),
                sets_from: region.as_ref().map(|r| r.start),
                ..read::Cx::default()
            };
            let validated = format::read_experiment(doc, &mut cx)
                .map_or(validate::Validated::Failed, |raw| {
                    validate::validate(&mut cx, raw, default_name)
                });
            let (result, model_only) = match validated {
                validate::Validated::Ok(e, spans) => (Some((*e, spans)), None),
                validate::Validated::ModelOnly(m, spans, d) => (None, Some((m, spans, d))),
                validate::Validated::Failed => (None, None),
            };
            let mut diagnostics = std::mem::take(&mut cx.diags);
            diagnostics.sort_by_key(|d| (d.span.start, d.severity));
            diagnostics.dedup();
            Loaded {
                source: source.clone(),
                diagnostics,
                result,
                model_only,
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
