//! `[sweep]`: variants of one experiment file, crossed from lists of values.
//!
//! A variant's name is built from its overrides, `shuffle=false,seed=1`: the last key segment
//! (the whole path where two keys share it) and the value as written, or the group's label.

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::overrides::{article, shown, split_path, KeyPath, Override};
use super::read::Value;
use crate::diagnostic::{did_you_mean, Diagnostic};

/// Most variants one sweep may expand to.
pub const MAX_VARIANTS: usize = 10_000;

/// The key of the sweep table inside an experiment file.
pub const SWEEP_KEY: &str = "sweep";

/// One variant of a sweep: its name and the overrides that make it.
#[derive(Debug, Clone)]
pub struct SweepVariant<'a> {
    /// Readable name, e.g. `lr=0.01,momentum=0.9`.
    pub name: String,
    /// Overrides in the order they are applied.
    pub overrides: Vec<Override<'a>>,
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
