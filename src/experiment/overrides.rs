//! Overrides: `--set KEY.PATH=VALUE` from the command line (and the CLI's own flags such as
//! `--epochs`, which become `--set` overrides), applied to the parsed TOML document before it
//! is read, so an override is typed, checked and reported exactly like the same value written
//! in the file. Sweep variants ([`super::sweep`]) are overrides too.
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

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::read::Value;
use crate::diagnostic::Diagnostic;

/// A key path's segments with their spans.
pub type KeyPath = Vec<(String, Range<usize>)>;

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
pub(super) fn split_path(key: &str, at: usize, diags: &mut Vec<Diagnostic>) -> Option<KeyPath> {
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
pub(super) fn shown(v: &Value<'_>, text: &str) -> String {
    if let DeValue::String(s) = v.get_ref() {
        return s.to_string();
    }
    let raw = text.get(v.span()).unwrap_or("?");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Keys of which a file gives at most one, because they set one value (the training length):
/// an override of one replaces the file's other, so `--set train.steps=500`, or `--epochs 2`,
/// shortens a file that says `epochs = 10` rather than being refused as giving both. Overrides
/// that set both are left for the reader to refuse.
const ONE_OF: &[[&str; 2]] = &[["train.epochs", "train.steps"]];

/// Removes from `doc` the key that `overrides` (all of those about to be applied to it, `--set`
/// and a sweep variant's) replace by setting its partner in [`ONE_OF`].
pub fn drop_replaced(doc: &mut DeTable<'_>, overrides: &[&Override<'_>]) {
    for pair in ONE_OF {
        let given = pair.map(|k| overrides.iter().any(|o| o.key() == k));
        for (set, other) in [(0, 1), (1, 0)] {
            if given[set] && !given[other] {
                remove_key(doc, pair[other]);
            }
        }
    }
}

/// Removes `table.key` (every key of [`ONE_OF`] is one) from `doc` if it is there.
fn remove_key(doc: &mut DeTable<'_>, path: &str) {
    if let Some((table, key)) = path.split_once('.') {
        if let Some(DeValue::Table(t)) = doc.get_mut(table).map(Spanned::get_mut) {
            t.remove(key);
        }
    }
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
                let message = match n {
                    0 => format!(
                        "`{}` is an empty array: it has no index `{idx}`",
                        path_to(ov, i)
                    ),
                    1 => format!("`{}` is an array of 1: the only index is 0", path_to(ov, i)),
                    _ => format!(
                        "`{}` is an array of {n}: expected an index from 0 to {}",
                        path_to(ov, i),
                        n - 1
                    ),
                };
                diags.push(
                    Diagnostic::error(ispan.clone(), message).label("not an index of this array"),
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

pub(super) fn article(t: &str) -> String {
    match t.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {t}"),
        _ => format!("a {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `--set` arguments to `text` and returns the messages of what went wrong.
    fn messages(text: &str, sets: &[&str]) -> Vec<String> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let (full, region) = append_sets(text, &sets);
        let mut diags = Vec::new();
        let ovs = parse_sets(&full, &region, &mut diags);
        let mut doc = DeTable::parse(&full[..text.len()])
            .expect("valid")
            .into_inner();
        for ov in &ovs {
            apply(&mut doc, ov, &mut diags);
        }
        diags.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn indices_into_arrays_are_worded_by_their_length() {
        let cases: [(&str, &str, &str); 4] = [
            (
                "a = []\n",
                "a.0=1",
                "`a` is an empty array: it has no index `0`",
            ),
            (
                "a = [1]\n",
                "a.3=1",
                "`a` is an array of 1: the only index is 0",
            ),
            (
                "a = [1, 2, 3]\n",
                "a.7=1",
                "`a` is an array of 3: expected an index from 0 to 2",
            ),
            (
                "a = [1, 2]\n",
                "a.x=1",
                "`a` is an array of 2: expected an index from 0 to 1",
            ),
        ];
        for (text, set, want) in cases {
            assert_eq!(messages(text, &[set]), [want], "{text} --set {set}");
        }
    }

    /// A valid experiment whose training length is `length`.
    fn with_length(length: &str) -> String {
        format!(
            "[data]\ndataset = \"synthetic\"\nbatch_size = 8\n\
             synthetic = {{ shape = [1, 4, 4], classes = 2, train_size = 32, test_size = 8 }}\n\
             [model]\nlayers = [{{ op = \"flatten\" }}, {{ op = \"linear\", out = 2 }}]\n\
             [train]\n{length}\n"
        )
    }

    /// The training length of `text` with `sets`, or the errors.
    fn length_of(text: &str, sets: &[&str]) -> Result<Vec<String>, Vec<String>> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let loaded = super::super::load_str_with("x.toml", text, "x", &sets);
        let errors: Vec<String> = loaded
            .iter()
            .flat_map(|l| &l.diagnostics)
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(loaded
            .iter()
            .map(|l| {
                let (e, _) = l.result.as_ref().expect("no errors, so a result");
                e.train().length.to_string()
            })
            .collect())
    }

    /// The training lengths a case expects, or its one error.
    type Wanted<'a> = Result<&'a [&'a str], &'a str>;

    #[test]
    fn an_override_of_the_training_length_replaces_the_files() {
        let both = "`steps` and `epochs` both set the training length".to_string();
        let cases: [(&str, &[&str], Wanted); 6] = [
            ("epochs = 10", &["train.steps=5"], Ok(&["5 steps"][..])),
            ("steps = 5", &["train.epochs=2"], Ok(&["2 epochs"][..])),
            (
                "epochs = 10",
                &["train.epochs=0.5"],
                Ok(&["0.5 epochs"][..]),
            ),
            ("epochs = 10", &[], Ok(&["10 epochs"][..])),
            // The command line giving both is still a mistake, and so is the file.
            (
                "epochs = 10",
                &["train.steps=5", "train.epochs=2"],
                Err(both.as_str()),
            ),
            ("epochs = 10\nsteps = 5", &[], Err(both.as_str())),
        ];
        for (length, sets, want) in cases {
            let got = length_of(&with_length(length), sets);
            match want {
                Ok(w) => assert_eq!(
                    got,
                    Ok(w.iter().map(|s| s.to_string()).collect()),
                    "{length} {sets:?}"
                ),
                Err(w) => assert_eq!(got, Err(vec![w.to_string()]), "{length} {sets:?}"),
            }
        }
        // A sweep over steps in a file that says `epochs`: every variant trains by steps.
        let swept = format!(
            "{}[sweep]\n\"train.steps\" = [3, 4]\n",
            with_length("epochs = 10")
        );
        assert_eq!(
            length_of(&swept, &[]),
            Ok(vec!["3 steps".into(), "4 steps".into()])
        );
        // ... but with `--set train.epochs` as well, each variant gives both.
        assert!(length_of(&swept, &["train.epochs=2"]).is_err());
    }

    #[test]
    fn bare_words_are_strings_and_values_are_typed() {
        assert!(messages(
            "[train]\n",
            &["train.optimizer.kind=adam", "train.epochs=3"]
        )
        .is_empty());
        assert_eq!(
            messages("x = 1\n", &["x=[1,"]).len(),
            1,
            "an unclosed array is reported once"
        );
    }
}
