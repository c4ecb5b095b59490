//! One diagnostic type for every user-facing problem in an experiment file, and its renderer.
//!
//! Diagnostics carry byte spans into the source text; rendering turns them into
//! `file:line:col`, the offending line, a caret underline and optional `note:`/`help:` lines,
//! in the style of rustc and cargo.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The experiment cannot run.
    Error,
    /// Suspicious but runnable.
    Warning,
}

/// A problem located in an experiment file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One-line description.
    pub message: String,
    /// Byte range in the source that the caret underlines.
    pub span: Range<usize>,
    /// Short text printed after the caret.
    pub label: String,
    /// Extra context lines (`= note: ...`).
    pub notes: Vec<String>,
    /// The fix, when one is obvious (`= help: ...`).
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Sets the caret label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds a note line.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file: its display path and text.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Path as the user gave it.
    pub path: String,
    /// Full text: the file, then any `--set` arguments one per line.
    pub text: String,
    /// Where the `--set` arguments start in `text`, if there are any: positions from there on
    /// are shown as `--set:N:COL` (argument N) instead of a line of the file.
    pub sets_from: Option<usize>,
}

/// Longest excerpt of a source line shown under a diagnostic, in characters.
const MAX_SHOWN: usize = 160;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
}

impl Source {
    /// Line and column of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        position_in(&self.text, offset)
    }

    /// The file name and position of an offset as the user should read it: inside the file, or
    /// `--set` and the argument's number when the offset lies in a `--set` argument.
    pub fn located(&self, offset: usize) -> (&str, Position) {
        let p = self.position(offset);
        match self.sets_from {
            Some(from) if offset >= from => {
                let first = position_in(&self.text, from).line;
                (
                    "--set",
                    Position {
                        line: p.line + 1 - first,
                        col: p.col,
                    },
                )
            }
            _ => (&self.path, p),
        }
    }

    /// The text of 1-based line `line`, without its newline.
    fn line_text(&self, line: usize) -> &str {
        self.text
            .split('\n')
            .nth(line - 1)
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// Renders a diagnostic without colour.
    pub fn render(&self, d: &Diagnostic) -> String {
        let (path, shown_at) = self.located(d.span.start);
        let start = self.position(d.span.start);
        // The caret covers the span on its first line only; at least one character.
        let end = if d.span.end > d.span.start {
            self.position(d.span.end)
        } else {
            start
        };
        let text = self.line_text(start.line);
        // An empty span (a missing section, an unreadable file) gets one caret, not the line.
        let width = if d.span.end <= d.span.start {
            1
        } else if end.line == start.line && end.col > start.col {
            end.col - start.col
        } else {
            text.chars().count().saturating_sub(start.col - 1).max(1)
        };
        let gutter = shown_at.line.to_string().len();
        let pad = " ".repeat(gutter);
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        let _ = writeln!(out, "{kind}: {}", d.message);
        let _ = writeln!(out, "{pad}--> {path}:{}:{}", shown_at.line, shown_at.col);
        let _ = writeln!(out, "{pad} |");
        // One character per character, so the caret stays aligned; no raw control bytes on a terminal.
        let chars: Vec<char> = text
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{FFFD}',
                c => c,
            })
            .collect();
        // A very long line (a generated file, a minified array) is shown as a window around the caret.
        let at = start.col - 1;
        let from = if chars.len() > MAX_SHOWN {
            at.saturating_sub(MAX_SHOWN / 3).min(chars.len())
        } else {
            0
        };
        let to = (from + MAX_SHOWN).min(chars.len());
        let (before, after) = (
            if from > 0 { "..." } else { "" },
            if to < chars.len() { "..." } else { "" },
        );
        let shown: String = chars[from..to].iter().collect();
        let _ = writeln!(out, "{} | {before}{shown}{after}", shown_at.line);
        let caret_at = before.len() + at - from;
        let width = if at < to { width.min(to - at) } else { width };
        let underline = format!("{}{}", " ".repeat(caret_at), "^".repeat(width.max(1)));
        if d.label.is_empty() {
            let _ = writeln!(out, "{pad} | {underline}");
        } else {
            let _ = writeln!(out, "{pad} | {underline} {}", d.label);
        }
        for note in &d.notes {
            let _ = writeln!(out, "{pad} = note: {note}");
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }
}

/// Line and column of a byte offset in `text` (clamped to the text).
pub fn position_in(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    Position { line, col }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two adjacent characters counts as one edit (optimal string
/// alignment), so `cdua` is one typo away from `cuda`, not two.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && *ca == b[j - 1] && a[i - 1] == *cb {
                cur[j + 1] = cur[j + 1].min(before[j - 1] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// `[a, b, c]`, for shapes in messages and tables.
pub fn shape_str(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = Source {
            sets_from: None,
            path: "x.toml".into(),
            text: "a = 1\nné = 2\n".into(),
        };
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (9, (2, 3)),
            (999, (3, 1)),
        ];
        for (offset, (line, col)) in cases {
            assert_eq!(
                src.position(offset),
                Position { line, col },
                "offset {offset}"
            );
        }
    }

    #[test]
    fn renders_caret_under_span() {
        let src = Source {
            sets_from: None,
            path: "x.toml".into(),
            text: "[train]\nepochs = -3\n".into(),
        };
        let d = Diagnostic::error(17..19, "bad")
            .label("here")
            .help("fix it");
        let r = src.render(&d);
        assert!(r.contains("--> x.toml:2:10"), "{r}");
        assert!(r.contains("2 | epochs = -3\n  |          ^^ here"), "{r}");
        assert!(r.contains("= help: fix it"), "{r}");
    }

    #[test]
    fn long_lines_are_shown_as_a_window_around_the_caret() {
        let line = format!("cfg = [{}]", "64, ".repeat(100_000));
        let src = Source {
            sets_from: None,
            path: "x.toml".into(),
            text: line.clone(),
        };
        let at = line.len() / 2;
        let r = src.render(&Diagnostic::error(at..at + 2, "bad").label("here"));
        assert!(r.len() < 1000, "{}", r.len());
        let lines: Vec<&str> = r.lines().collect();
        let (code, caret) = (lines[3], lines[4]);
        let col = caret.find('^').expect("caret");
        assert_eq!(&code[col..col + 2], &line[at..at + 2], "{r}");
        assert!(code.contains("| ...") && code.ends_with("..."), "{r}");
    }

    #[test]
    fn suggestions_are_close_names_only() {
        let names = ["lr", "momentum", "dampening", "nesterov", "weight_decay"];
        assert_eq!(did_you_mean("lrr", names), Some("lr"));
        assert_eq!(did_you_mean("momentun", names), Some("momentum"));
        assert_eq!(did_you_mean("weightdecay", names), Some("weight_decay"));
        assert_eq!(did_you_mean("banana", names), None);
        assert_eq!(did_you_mean("cdua", ["cpu", "cuda", "auto"]), Some("cuda"));
        assert_eq!(did_you_mean("nesterov", names), Some("nesterov"));
    }
}
