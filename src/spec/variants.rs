//! Variants of one experiment file: `--set KEY.PATH=VALUE` overrides from the command line and
//! the `[sweep]` table, both applied to the parsed TOML document before it is read, so an
//! override is typed, checked and reported exactly like the same value written in the file.
//!
//! ```toml
//! [sweep]                            # crossed: 2 x 3 = 6 variants
//! "data.shuffle" = [true, false]
//! seed = [0, 1, 2]
//!
//! [[sweep.zip]]                      # varied together, crossed with the rest
//! label = ["small", "large"]         # optional: names the values of this group
//! "data.batch_size" = [32, 256]
//! "train.optimizer.lr" = [0.005, 0.04]
//! ```
//!
//! A variant's name is built from its overrides, `shuffle=false,seed=1`: the last key segment
//! (the whole path where two keys share it) and the value as written, or the group's label.

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::read::Value;
use crate::diagnostic::{did_you_mean, Diagnostic};

/// Most variants one sweep may expand to.
pub const MAX_VARIANTS: usize = 10_000;

/// The key of the sweep table inside an experiment file.
pub const SWEEP_KEY: &str = "sweep";

/// A key path's segments with their spans.
type KeyPath = Vec<(String, Range<usize>)>;

/// One override: a key path and a value, both with spans into the checked text.
#[derive(Debug, Clone)]
pub struct Override<'a> {
    /// Key path segments with their spans.
    pub path: KeyPath,
    /// The value.
    pub value: Value<'a>,
    /// The value as written (strings without quotes), for names and tables.
    pub shown: String,
}

impl Override<'_> {
    /// `a.b.c`.
    pub fn key(&self) -> String {
        self.path
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }

    /// `a.b.c=value`.
    pub fn assignment(&self) -> String {
        format!("{}={}", self.key(), self.shown)
    }
}

/// One variant of a sweep: its name and the overrides that make it.
#[derive(Debug, Clone)]
pub struct SweepVariant<'a> {
    /// Readable name, e.g. `lr=0.01,momentum=0.9`.
    pub name: String,
    /// Overrides in the order they are applied.
    pub overrides: Vec<Override<'a>>,
}

/// Where the `--set` arguments live inside the checked text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRegion {
    /// Byte offset where the region starts (after the file's text).
    pub start: usize,
    /// Byte range of each `--set` argument, in order.
    pub lines: Vec<Range<usize>>,
}

/// Appends the `--set` arguments to the file's text, one per line, so spans can point into
/// them. A value that is not TOML but a bare word (`kind=adam`) is quoted as a string.
pub fn append_sets(text: &str, sets: &[String]) -> (String, SetRegion) {
    let mut out =
        String::with_capacity(text.len() + sets.iter().map(|s| s.len() + 3).sum::<usize>() + 1);
    out.push_str(text);
    out.push('\n');
    let start = out.len();
    let mut lines = Vec::new();
    for s in sets {
        // One line each: a newline inside an argument would break the line arithmetic.
        let s = s.replace(['\n', '\r'], " ");
        let line = match s.split_once('=') {
            Some((k, v)) if bare_word(v.trim()) => {
                format!("{k}={}", toml_string(v.trim()))
            }
            _ => s,
        };
        let from = out.len();
        out.push_str(&line);
        lines.push(from..out.len());
        out.push('\n');
    }
    (out, SetRegion { start, lines })
}

/// A value that TOML would reject but a shell user means as a string: `adam`, `cross_entropy`.
fn bare_word(v: &str) -> bool {
    !v.is_empty()
        && v != "true"
        && v != "false"
        && DeValue::parse(v).is_err()
        && v.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'))
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses the `--set` lines of `text` (see [`append_sets`]) into overrides.
pub fn parse_sets<'a>(
    text: &'a str,
    region: &SetRegion,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Override<'a>> {
    let mut out = Vec::new();
    for line in &region.lines {
        let s = &text[line.clone()];
        let Some(eq) = s.find('=') else {
            diags.push(
                Diagnostic::error(line.clone(), "expected `--set KEY.PATH=VALUE`")
                    .label("no `=` here")
                    .help("for example `--set train.optimizer.lr=0.01`"),
            );
            continue;
        };
        let Some(path) = split_path(&s[..eq], line.start, diags) else {
            continue;
        };
        let vstart = line.start + eq + 1;
        let vtext = &text[vstart..line.end];
        let lead = vtext.len() - vtext.trim_start().len();
        let vtext = vtext.trim();
        let vstart = vstart + lead;
        match DeValue::parse(vtext) {
            Ok(v) => {
                let value = shift(v, vstart);
                out.push(Override {
                    shown: shown(&value, text),
                    path,
                    value,
                });
            }
            Err(e) => {
                let span = e.span().map_or(vstart..vstart + vtext.len(), |r| {
                    vstart + r.start..vstart + r.end
                });
                let span = if span.is_empty() {
                    vstart..vstart + vtext.len().max(1)
                } else {
                    span
                };
                diags.push(
                    Diagnostic::error(span, format!("invalid value: {}", e.message().trim()))
                        .label("not a TOML value")
                        .help("values are written as in the file: 0.01, true, \"adam\", [1, 2]"),
                );
            }
        }
    }
    out
}

/// Splits `a.b.c` (as it appears at byte `at`) into segments with spans.
fn split_path(key: &str, at: usize, diags: &mut Vec<Diagnostic>) -> Option<KeyPath> {
    let mut path = Vec::new();
    let mut pos = at;
    let trimmed_end = key.trim_end().len();
    for seg in key[..trimmed_end].split('.') {
        let lead = seg.len() - seg.trim_start().len();
        let name = seg.trim();
        let span = pos + lead..pos + lead + name.len();
        if name.is_empty() {
            diags.push(
                Diagnostic::error(
                    if span.is_empty() { pos..pos + 1 } else { span },
                    "empty key in key path",
                )
                .label("a key is missing here")
                .help("key paths look like `train.optimizer.lr`"),
            );
            return None;
        }
        path.push((name.to_string(), span));
        pos += seg.len() + 1;
    }
    Some(path)
}

/// Moves every span of a value parsed on its own by `by` bytes.
fn shift(v: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = v.span();
    let span = span.start + by..span.end + by;
    let inner = match v.into_inner() {
        DeValue::Array(items) => {
            let mut out = DeArray::new();
            for item in items.iter() {
                out.push(shift(item.clone(), by));
            }
            DeValue::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = DeTable::new();
            for (k, val) in t {
                let ks = k.span();
                out.insert(
                    Spanned::new(ks.start + by..ks.end + by, k.into_inner()),
                    shift(val, by),
                );
            }
            DeValue::Table(out)
        }
        other => other,
    };
    Spanned::new(span, inner)
}

/// A value as the user wrote it: the source text, whitespace collapsed; strings unquoted.
fn shown(v: &Value<'_>, text: &str) -> String {
    if let DeValue::String(s) = v.get_ref() {
        return s.to_string();
    }
    let raw = text.get(v.span()).unwrap_or("?");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies one override to a document table.
pub fn apply<'a>(doc: &mut DeTable<'a>, ov: &Override<'a>, diags: &mut Vec<Diagnostic>) {
    set_in_table(doc, ov, 0, diags);
}

/// Sets `ov.path[i..]` inside table `t`, creating tables on the way (the reader then reports an
/// unknown key with its suggestions).
fn set_in_table<'a>(t: &mut DeTable<'a>, ov: &Override<'a>, i: usize, diags: &mut Vec<Diagnostic>) {
    let (seg, span) = &ov.path[i];
    if i + 1 == ov.path.len() {
        t.insert(
            Spanned::new(span.clone(), Cow::Owned(seg.clone())),
            ov.value.clone(),
        );
        return;
    }
    if !t.contains_key(seg.as_str()) {
        t.insert(
            Spanned::new(span.clone(), Cow::Owned(seg.clone())),
            Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
        );
    }
    if let Some(next) = t.get_mut(seg.as_str()) {
        set_in_value(next, ov, i + 1, diags);
    }
}

/// Sets `ov.path[i..]` inside `v`, a table or an array indexed by number (`model.layers.0.out`).
fn set_in_value<'a>(v: &mut Value<'a>, ov: &Override<'a>, i: usize, diags: &mut Vec<Diagnostic>) {
    match v.get_mut() {
        DeValue::Table(t) => set_in_table(t, ov, i, diags),
        DeValue::Array(items) => {
            let (idx, ispan) = &ov.path[i];
            let n = items.len();
            let Some(k) = idx.parse::<usize>().ok().filter(|&k| k < n) else {
                diags.push(
                    Diagnostic::error(
                        ispan.clone(),
                        format!(
                            "`{}` is an array of {n}: expected an index from 0 to {}",
                            path_to(ov, i),
                            n.saturating_sub(1)
                        ),
                    )
                    .label("not an index of this array"),
                );
                return;
            };
            let slot = &mut items.as_mut()[k];
            if i + 1 == ov.path.len() {
                *slot = ov.value.clone();
            } else {
                set_in_value(slot, ov, i + 1, diags);
            }
        }
        other => {
            diags.push(
                Diagnostic::error(
                    ov.path[i - 1].1.clone(),
                    format!(
                        "`{}` is {}, not a table: it has no key `{}`",
                        path_to(ov, i),
                        article(other.type_str()),
                        ov.path[i].0
                    ),
                )
                .label("not a table"),
            );
        }
    }
}

fn path_to(ov: &Override<'_>, n: usize) -> String {
    ov.path[..n]
        .iter()
        .map(|(s, _)| s.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

fn article(t: &str) -> String {
    match t.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {t}"),
        _ => format!("a {t}"),
    }
}

/// One axis of a sweep: values of one key, or of a `zip` group of keys varied together.
struct Axis<'a> {
    /// Position in the file, for ordering.
    at: usize,
    /// For each value index: the overrides and the name part.
    choices: Vec<(Vec<Override<'a>>, Option<String>)>,
}

/// Removes `[sweep]` from the document and expands it into variants. `None` when the document
/// has no sweep; `Some(vec![])` when the sweep has errors (reported into `diags`).
pub fn take_sweep<'a>(
    doc: &mut DeTable<'a>,
    text: &'a str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<SweepVariant<'a>>> {
    let (key, value) = doc.remove_entry(SWEEP_KEY)?;
    let errors_before = diags.iter().filter(|d| d.is_error()).count();
    let DeValue::Table(table) = value.get_ref() else {
        diags.push(
            Diagnostic::error(
                value.span(),
                "`sweep` must be a table of key paths to lists",
            )
            .label("not a table")
            .help("write `[sweep]` followed by lines like `\"train.optimizer.lr\" = [0.01, 0.1]`"),
        );
        return Some(Vec::new());
    };
    let mut axes: Vec<Axis<'a>> = Vec::new();
    for (k, v) in table.iter() {
        if k.get_ref().as_ref() == "zip" {
            read_zip_groups(v, text, &mut axes, diags);
            continue;
        }
        let Some(path) = key_path(k, text, diags) else {
            continue;
        };
        let Some(items) = list(v, &path_text(&path), diags) else {
            continue;
        };
        axes.push(Axis {
            at: k.span().start,
            choices: items
                .iter()
                .map(|item| {
                    let ov = Override {
                        path: path.clone(),
                        shown: shown(item, text),
                        value: item.clone(),
                    };
                    (vec![ov], None)
                })
                .collect(),
        });
    }
    if axes.is_empty() && diags.iter().filter(|d| d.is_error()).count() == errors_before {
        diags.push(
            Diagnostic::error(key.span(), "the sweep varies nothing")
                .label("empty sweep")
                .help("add lines like `\"train.optimizer.lr\" = [0.01, 0.1]`, or remove `[sweep]`"),
        );
    }
    duplicate_keys(&axes, diags);
    let count = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.choices.len()))
        .filter(|&n| n <= MAX_VARIANTS);
    if count.is_none() {
        diags.push(
            Diagnostic::error(
                key.span(),
                format!("the sweep expands to more than {MAX_VARIANTS} variants"),
            )
            .label("too many variants"),
        );
    }
    if diags.iter().filter(|d| d.is_error()).count() > errors_before {
        return Some(Vec::new());
    }
    axes.sort_by_key(|a| a.at);
    let variants = cartesian(&axes);
    let variants = name_variants(variants);
    if let Some((a, b, name)) = first_duplicate_name(&variants) {
        diags.push(
            Diagnostic::error(
                key.span(),
                format!("variants {a} and {b} would both be named `{name}`"),
            )
            .label("in this sweep")
            .help("give a `zip` group a `label = [...]` list to name its values"),
        );
        return Some(Vec::new());
    }
    Some(variants)
}

fn read_zip_groups<'a>(
    v: &Value<'a>,
    text: &'a str,
    axes: &mut Vec<Axis<'a>>,
    diags: &mut Vec<Diagnostic>,
) {
    let groups: Vec<&Value<'a>> = match v.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        DeValue::Table(_) => vec![v],
        _ => {
            diags.push(
                Diagnostic::error(v.span(), "`sweep.zip` must be a list of tables")
                    .label("not a table")
                    .help("write `[[sweep.zip]]` followed by key paths with lists of equal length"),
            );
            return;
        }
    };
    for g in groups {
        let DeValue::Table(t) = g.get_ref() else {
            diags.push(
                Diagnostic::error(g.span(), "each `sweep.zip` group must be a table")
                    .label("not a table"),
            );
            continue;
        };
        let mut keys: Vec<(KeyPath, Vec<Value<'a>>, Range<usize>)> = Vec::new();
        let mut labels: Option<(Vec<String>, Range<usize>)> = None;
        for (k, val) in t.iter() {
            if k.get_ref().as_ref() == "label" {
                if let Some(items) = list(val, "label", diags) {
                    let mut names = Vec::new();
                    for it in &items {
                        match it.get_ref() {
                            DeValue::String(s) if !s.trim().is_empty() => names.push(s.to_string()),
                            _ => diags.push(
                                Diagnostic::error(it.span(), "a label must be a non-empty string")
                                    .label("expected a string"),
                            ),
                        }
                    }
                    labels = Some((names, val.span()));
                }
                continue;
            }
            let Some(path) = key_path(k, text, diags) else {
                continue;
            };
            if let Some(items) = list(val, &path_text(&path), diags) {
                keys.push((path, items, val.span()));
            }
        }
        let Some(first) = keys.first() else {
            diags.push(
                Diagnostic::error(g.span(), "this `zip` group varies nothing")
                    .label("no key paths"),
            );
            continue;
        };
        let n = first.1.len();
        let mut ok = true;
        for (path, items, span) in keys.iter().skip(1) {
            if items.len() != n {
                diags.push(
                    Diagnostic::error(
                        span.clone(),
                        format!(
                            "`{}` has {} values but `{}` has {n}: keys varied together need lists of equal length",
                            path_text(path),
                            items.len(),
                            path_text(&first.0)
                        ),
                    )
                    .label(format!("{} values", items.len())),
                );
                ok = false;
            }
        }
        if let Some((names, span)) = &labels {
            if names.len() != n {
                diags.push(
                    Diagnostic::error(
                        span.clone(),
                        format!("{} labels for {n} values", names.len()),
                    )
                    .label(format!("expected {n} labels")),
                );
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let choices = (0..n)
            .map(|i| {
                let ovs = keys
                    .iter()
                    .map(|(path, items, _)| Override {
                        path: path.clone(),
                        shown: shown(&items[i], text),
                        value: items[i].clone(),
                    })
                    .collect();
                (ovs, labels.as_ref().map(|(l, _)| l[i].clone()))
            })
            .collect();
        axes.push(Axis {
            at: g.span().start,
            choices,
        });
    }
}

/// A sweep key (`"train.optimizer.lr"`, quoted or bare) as a path with spans in the file.
fn key_path(k: &Spanned<Cow<'_, str>>, text: &str, diags: &mut Vec<Diagnostic>) -> Option<KeyPath> {
    let span = k.span();
    let raw = text.get(span.clone()).unwrap_or("");
    // Quoted keys: segment spans start after the quote (exact unless the key has escapes).
    let (at, inner) = match raw.chars().next() {
        Some('"' | '\'') if raw.len() >= 2 => (span.start + 1, &raw[1..raw.len() - 1]),
        _ => (span.start, raw),
    };
    if inner != k.get_ref().as_ref() {
        // Escapes or a dotted bare key: fall back to the whole key's span.
        return Some(
            k.get_ref()
                .split('.')
                .map(|s| (s.to_string(), span.clone()))
                .collect(),
        );
    }
    let path = split_path(inner, at, diags)?;
    if path[0].0 == SWEEP_KEY {
        diags.push(
            Diagnostic::error(path[0].1.clone(), "a sweep cannot vary the sweep").label("here"),
        );
        return None;
    }
    Some(path)
}

fn path_text(p: &[(String, Range<usize>)]) -> String {
    p.iter()
        .map(|(s, _)| s.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

fn list<'a>(v: &Value<'a>, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<Value<'a>>> {
    match v.get_ref() {
        DeValue::Array(a) if !a.is_empty() => Some(a.iter().cloned().collect()),
        DeValue::Array(_) => {
            diags.push(
                Diagnostic::error(v.span(), format!("`{what}` lists no values"))
                    .label("empty list"),
            );
            None
        }
        other => {
            diags.push(
                Diagnostic::error(
                    v.span(),
                    format!(
                        "a sweep lists the values to try: `{what}` needs a list, found {}",
                        article(other.type_str())
                    ),
                )
                .label("expected a list")
                .help("write `[value1, value2]`; a single value belongs in the experiment itself"),
            );
            None
        }
    }
}

fn duplicate_keys(axes: &[Axis<'_>], diags: &mut Vec<Diagnostic>) {
    let mut seen: Vec<(String, Range<usize>)> = Vec::new();
    for a in axes {
        if let Some((ovs, _)) = a.choices.first() {
            for ov in ovs {
                let key = ov.key();
                if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                    let span = ov.path[0].1.start..ov.path.last().map_or(0, |p| p.1.end);
                    diags.push(
                        Diagnostic::error(span, format!("the sweep varies `{key}` twice"))
                            .label("again here")
                            .note(format!("first at byte {}", first.start)),
                    );
                } else {
                    let span = ov.path[0].1.start..ov.path.last().map_or(0, |p| p.1.end);
                    seen.push((key, span));
                }
            }
        }
    }
}

fn cartesian<'a>(axes: &[Axis<'a>]) -> Vec<Vec<(Vec<Override<'a>>, Option<String>)>> {
    let mut out: Vec<Vec<(Vec<Override<'a>>, Option<String>)>> = vec![Vec::new()];
    for a in axes {
        let mut next = Vec::with_capacity(out.len() * a.choices.len());
        for prefix in &out {
            for c in &a.choices {
                let mut v = prefix.clone();
                v.push(c.clone());
                next.push(v);
            }
        }
        out = next;
    }
    out
}

/// Names each variant from its overrides: last key segments, unless two keys share one.
fn name_variants<'a>(
    variants: Vec<Vec<(Vec<Override<'a>>, Option<String>)>>,
) -> Vec<SweepVariant<'a>> {
    let keys: Vec<String> = variants
        .first()
        .map(|v| {
            v.iter()
                .flat_map(|(ovs, _)| ovs.iter().map(Override::key))
                .collect()
        })
        .unwrap_or_default();
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let short = |k: &str| {
        let l = last(k);
        if keys.iter().filter(|o| last(o) == l).count() > 1 {
            k.to_string()
        } else {
            l
        }
    };
    variants
        .into_iter()
        .map(|parts| {
            let name = parts
                .iter()
                .map(|(ovs, label)| match label {
                    Some(l) => l.clone(),
                    None => ovs
                        .iter()
                        .map(|o| format!("{}={}", short(&o.key()), o.shown))
                        .collect::<Vec<_>>()
                        .join(","),
                })
                .collect::<Vec<_>>()
                .join(",");
            SweepVariant {
                name,
                overrides: parts.into_iter().flat_map(|(o, _)| o).collect(),
            }
        })
        .collect()
}

fn first_duplicate_name(v: &[SweepVariant<'_>]) -> Option<(usize, usize, String)> {
    let mut seen = std::collections::HashMap::new();
    for (i, x) in v.iter().enumerate() {
        if let Some(j) = seen.insert(x.name.clone(), i) {
            return Some((j + 1, i + 1, x.name.clone()));
        }
    }
    None
}

/// Suggests a variant name for a `--variant` that matches none.
pub fn suggest_variant<'n>(
    wanted: &str,
    names: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    did_you_mean(wanted, names)
}
