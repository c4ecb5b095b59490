//! Experiment files: TOML text -> raw spanned types ([`raw`]) -> checked [`Experiment`]
//! ([`validate`]), with every problem reported as a located [`Diagnostic`].

pub mod experiment;
pub mod print;
pub mod raw;
pub mod read;
pub mod validate;

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

/// Reads and checks a file. I/O problems become a diagnostic at the start of the file.
pub fn check_file(path: &Path) -> Checked {
    let display = path.display().to_string();
    let fail = |msg: String| Checked {
        source: Source {
            path: display.clone(),
            text: String::new(),
        },
        diagnostics: vec![Diagnostic::error(0..0, msg)],
        result: None,
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
    check_bytes(&display, &bytes, &stem)
}

/// Checks file contents; `default_name` is used when the file has no `name`.
pub fn check_bytes(path: &str, bytes: &[u8], default_name: &str) -> Checked {
    match std::str::from_utf8(bytes) {
        Ok(text) => check_str(path, text, default_name),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            Checked {
                source: Source {
                    path: path.to_string(),
                    text,
                },
                // In the lossy text the bad byte became U+FFFD; underline exactly that character.
                diagnostics: vec![Diagnostic::error(
                    at..at + '\u{FFFD}'.len_utf8(),
                    "the file is not valid UTF-8 text",
                )
                .label("invalid byte here")
                .help("experiment files are TOML text")],
                result: None,
            }
        }
    }
}

/// Checks TOML text.
pub fn check_str(path: &str, text: &str, default_name: &str) -> Checked {
    let source = Source {
        path: path.to_string(),
        text: text.to_string(),
    };
    if let Some(at) = too_deep(text) {
        return Checked {
            source,
            diagnostics: vec![Diagnostic::error(
                at..at + 1,
                format!("arrays and tables nest more than {MAX_NESTING} deep"),
            )
            .label("too deep")],
            result: None,
        };
    }
    let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
    let mut cx = read::Cx {
        text,
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
        return Checked {
            source,
            diagnostics,
            result: None,
        };
    }
    let (span, table) = (doc.span(), doc.into_inner());
    let doc = toml::Spanned::new(span, toml::de::DeValue::Table(table));
    let result = {
        let raw = raw::read_experiment(&doc, &mut cx);
        validate::validate(&mut cx, raw, default_name)
    };
    let mut diagnostics = std::mem::take(&mut cx.diags);
    diagnostics.sort_by_key(|d| (d.span.start, d.severity));
    diagnostics.dedup();
    Checked {
        source,
        diagnostics,
        result,
    }
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
