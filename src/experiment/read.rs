//! Reading spanned TOML values into raw types, collecting every problem instead of stopping at
//! the first (serde would stop at the first unknown key or wrong type), and the leaf value types
//! of the format: each reads itself, describes itself in the JSON Schema and writes itself back.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::json;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::decl::{FormatValue, Json, SchemaCx};
use crate::diagnostic::{did_you_mean, Diagnostic};

/// A parsed TOML value with its byte span.
pub type Value<'a> = Spanned<DeValue<'a>>;

/// A value together with the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Byte range in the source file.
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    /// Wraps a value with a span.
    pub fn new(value: T, span: Range<usize>) -> Self {
        Sp { value, span }
    }
}

impl<T> Sp<T> {
    /// A value without a place in any file (for experiments built in code, and the printer).
    pub fn bare(value: T) -> Self {
        Sp { value, span: 0..0 }
    }
}

/// A spanned value is read through [`read`], so inside a block body it may be a `"$param"`.
impl<'a, T: FormatValue<'a>> FormatValue<'a> for Sp<T> {
    fn expected() -> &'static str {
        T::expected()
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        read(v, cx)
    }
    fn schema(s: &mut SchemaCx) -> Json {
        let inner = T::schema(s);
        if s.params {
            json!({ "anyOf": [inner, { "$ref": "#/$defs/param" }] })
        } else {
            inner
        }
    }
    fn to_toml(&self) -> toml::Value {
        self.value.to_toml()
    }
}

/// Block arguments in scope while a block body is read: `"$name"` strings are replaced by them.
pub type Args<'a> = HashMap<String, &'a Value<'a>>;

/// Reading context: collected diagnostics and the block arguments in scope.
#[derive(Default)]
pub struct Cx<'a> {
    /// Everything found so far.
    pub diags: Vec<Diagnostic>,
    /// Arguments of the block instance being read, if any.
    pub args: Option<Args<'a>>,
    /// The source text, so that notes can name the line of a second location.
    pub text: &'a str,
    /// The experiment file's folder: relative paths in the file are relative to it (empty: the
    /// current directory).
    pub dir: std::path::PathBuf,
    /// Where the `--set` arguments start in `text`, if any: a relative path given there is
    /// relative to the current directory, where the command was typed.
    pub sets_from: Option<usize>,
}

impl<'a> Cx<'a> {
    /// Records a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Errors recorded so far.
    pub fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// The absolute path that `path`, written at `span`, names: relative to [`Cx::dir`], or
    /// to the current directory for a `--set` argument.
    pub fn resolve_path(
        &self,
        path: &str,
        span: &Range<usize>,
    ) -> std::io::Result<std::path::PathBuf> {
        let given = std::path::Path::new(path);
        let in_sets = self.sets_from.is_some_and(|from| span.start >= from);
        let joined = if in_sets {
            given.to_path_buf()
        } else {
            self.dir.join(given)
        };
        std::path::absolute(joined)
    }

    /// `line L, column C` of a byte offset, for notes that point at a second place in the file.
    pub fn line_col(&self, offset: usize) -> String {
        let p = crate::diagnostic::position_in(self.text, offset);
        format!("line {}, column {}", p.line, p.col)
    }

    /// Follows a `"$param"` reference to the block argument it names.
    pub fn resolve(&mut self, v: &'a Value<'a>) -> Option<&'a Value<'a>> {
        let Some(s) = v.get_ref().as_str() else {
            return Some(v);
        };
        let Some(param) = s.strip_prefix('$') else {
            return Some(v);
        };
        match &self.args {
            None => {
                self.push(
                    Diagnostic::error(
                        v.span(),
                        format!("`${param}` is a block parameter, but this is not inside a block"),
                    )
                    .label("only allowed in `[model.blocks.*]` layers"),
                );
                None
            }
            Some(args) => match args.get(param) {
                Some(arg) => Some(*arg),
                None => {
                    let names: Vec<&str> = args.keys().map(String::as_str).collect();
                    let mut d =
                        Diagnostic::error(v.span(), format!("unknown block parameter `${param}`"))
                            .label("not among the block's `params`");
                    if let Some(m) = did_you_mean(param, names) {
                        d = d.help(format!("did you mean `${m}`?"));
                    }
                    self.push(d);
                    None
                }
            },
        }
    }
}

/// Reads any [`FormatValue`] with its span, following block parameters.
pub fn read<'a, T: FormatValue<'a>>(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Sp<T>> {
    let v = cx.resolve(v)?;
    T::from_toml(v, cx).map(|t| Sp::new(t, v.span()))
}

/// Reports `v` as the wrong type (`expected ...`, found its TOML type) and gives `None`.
pub(crate) fn type_error<T>(v: &Value<'_>, cx: &mut Cx<'_>, expected: &str) -> Option<T> {
    cx.push(
        Diagnostic::error(
            v.span(),
            format!("expected {expected}, found {}", v.get_ref().type_str()),
        )
        .label(format!("expected {expected}")),
    );
    None
}

/// A literal the TOML parser let through as an integer but that has no digits (it accepts `0x`).
fn not_an_integer(v: &Value<'_>, e: &std::num::ParseIntError) -> Option<Diagnostic> {
    use std::num::IntErrorKind;
    match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => None,
        _ => Some(
            Diagnostic::error(v.span(), "invalid integer")
                .label("expected digits after the prefix"),
        ),
    }
}

/// Largest integer accepted anywhere in a file; keeps every later product far from overflow.
pub const MAX_INT: u64 = 1 << 40;

impl<'a> FormatValue<'a> for u64 {
    fn expected() -> &'static str {
        "a non-negative integer"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let DeValue::Integer(i) = v.get_ref() else {
            return type_error(v, cx, Self::expected());
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if n < 0 => {
                cx.push(
                    Diagnostic::error(
                        v.span(),
                        format!("expected a non-negative integer, found {n}"),
                    )
                    .label("must be >= 0"),
                );
                None
            }
            Ok(n) if n as u64 > MAX_INT => {
                cx.push(
                    Diagnostic::error(v.span(), format!("{n} is too large"))
                        .label(format!("at most {MAX_INT}")),
                );
                None
            }
            Ok(n) => Some(n as u64),
            Err(e) => {
                cx.push(not_an_integer(v, &e).unwrap_or_else(|| {
                    Diagnostic::error(v.span(), "integer out of range")
                        .label(format!("at most {MAX_INT}"))
                }));
                None
            }
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "integer", "minimum": 0, "maximum": MAX_INT })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Integer(*self as i64)
    }
}

/// A seed: any 64-bit unsigned integer TOML can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl<'a> FormatValue<'a> for Seed {
    fn expected() -> &'static str {
        "a non-negative integer"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let DeValue::Integer(i) = v.get_ref() else {
            return type_error(v, cx, Self::expected());
        };
        match u64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(Seed(n)),
            Err(e) => {
                cx.push(not_an_integer(v, &e).unwrap_or_else(|| {
                    Diagnostic::error(v.span(), "a seed must be an integer from 0 to 2^64-1")
                        .label("out of range")
                }));
                None
            }
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        // TOML integers are signed 64-bit: seeds above 2^63 - 1 cannot be written in a file.
        json!({ "type": "integer", "minimum": 0 })
    }
    fn to_toml(&self) -> toml::Value {
        // A seed above i64::MAX came from code, not a file; TOML cannot hold it, so it is
        // written as its two's-complement bits, which the reader rejects loudly.
        toml::Value::Integer(self.0 as i64)
    }
}

impl<'a> FormatValue<'a> for f64 {
    fn expected() -> &'static str {
        "a number"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let parsed = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            _ => return type_error(v, cx, Self::expected()),
        };
        match parsed {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                cx.push(
                    Diagnostic::error(v.span(), "expected a finite number").label("not finite"),
                );
                None
            }
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "number" })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Float(*self)
    }
}

impl<'a> FormatValue<'a> for bool {
    fn expected() -> &'static str {
        "true or false"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "boolean" })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Boolean(*self)
    }
}

impl<'a> FormatValue<'a> for String {
    fn expected() -> &'static str {
        "a string"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "string" })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.clone())
    }
}

impl<'a, T: FormatValue<'a>> FormatValue<'a> for Vec<Sp<T>> {
    fn expected() -> &'static str {
        "an array"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let DeValue::Array(items) = v.get_ref() else {
            return type_error(v, cx, Self::expected());
        };
        let before = cx.diags.len();
        let out: Vec<Sp<T>> = items
            .iter()
            .filter_map(|item| read::<T>(item, cx))
            .collect();
        (cx.diags.len() == before).then_some(out)
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "type": "array", "items": Sp::<T>::schema(s) })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Array(self.iter().map(|x| x.value.to_toml()).collect())
    }
}

/// Reads the keys of one table, remembering which were used so that the rest can be reported.
pub struct TableReader<'a> {
    table: &'a DeTable<'a>,
    /// Span of the whole table (used for "missing key" errors).
    pub span: Range<usize>,
    /// How the table is called in messages, e.g. "`[train.optimizer]`".
    what: String,
    fields: Vec<&'static str>,
}

impl<'a> TableReader<'a> {
    /// Starts reading `v`, which must be a table with keys among `fields`.
    pub fn new(
        v: &'a Value<'a>,
        cx: &mut Cx<'a>,
        what: impl Into<String>,
        fields: impl Into<Vec<&'static str>>,
    ) -> Option<Self> {
        let fields = fields.into();
        let what = what.into();
        match v.get_ref() {
            DeValue::Table(table) => {
                let reader = TableReader {
                    table,
                    span: v.span(),
                    what,
                    fields,
                };
                reader.check_unknown(cx);
                Some(reader)
            }
            _ => type_error(v, cx, &format!("a table for {what}")),
        }
    }

    fn check_unknown(&self, cx: &mut Cx<'a>) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !self.fields.contains(&name) {
                let mut d =
                    Diagnostic::error(key.span(), format!("unknown key `{name}` in {}", self.what))
                        .label("unknown key");
                d = match did_you_mean(name, self.fields.iter().copied()) {
                    Some(m) => d.help(format!("did you mean `{m}`?")),
                    None => d.note(format!("expected one of: {}", self.fields.join(", "))),
                };
                cx.push(d);
            }
        }
    }

    /// The raw value of `key`, if present.
    pub fn value(&self, key: &str) -> Option<&'a Value<'a>> {
        self.table.get(key)
    }

    /// How the table is called in messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Reports a required key's absence at the table.
    pub fn missing<T: FormatValue<'a>>(&self, cx: &mut Cx<'a>, key: &str) {
        cx.push(
            Diagnostic::error(
                self.span.clone(),
                format!("missing key `{key}` in {}", self.what),
            )
            .label(format!("`{key}` is required here"))
            .help(format!("add `{key} = {}`", placeholder::<T>())),
        );
    }

    /// Reads an optional key.
    pub fn opt<T: FormatValue<'a>>(&self, cx: &mut Cx<'a>, key: &str) -> Option<Sp<T>> {
        read(self.value(key)?, cx)
    }

    /// Reads a required key, reporting its absence at the table.
    pub fn req<T: FormatValue<'a>>(&self, cx: &mut Cx<'a>, key: &str) -> Option<Sp<T>> {
        match self.value(key) {
            Some(v) => read(v, cx),
            None => {
                self.missing::<T>(cx, key);
                None
            }
        }
    }
}

fn placeholder<'a, T: FormatValue<'a>>() -> &'static str {
    match T::expected() {
        "a string" => "\"...\"",
        "true or false" => "true",
        "an array" => "[...]",
        _ => "...",
    }
}

/// Reads an enum-like string: one of `choices`, with a suggestion when misspelt.
pub fn read_choice<'a>(
    v: &'a Value<'a>,
    cx: &mut Cx<'a>,
    what: &str,
    choices: &[&'static str],
) -> Option<Sp<&'static str>> {
    let s = read::<String>(v, cx)?;
    match choices.iter().find(|c| **c == s.value) {
        Some(c) => Some(Sp::new(*c, s.span)),
        None => {
            let mut d = Diagnostic::error(s.span.clone(), format!("unknown {what} `{}`", s.value))
                .label(format!("not a known {what}"));
            d = match did_you_mean(&s.value, choices.iter().copied()) {
                Some(m) => d.help(format!("did you mean `{m}`?")),
                None => d.note(format!("expected one of: {}", choices.join(", "))),
            };
            cx.push(d);
            None
        }
    }
}

/// The value of an optional setting (or `default` when absent) if `ok` accepts it; otherwise an
/// "out of range" error at the value saying what was `expected`.
pub fn checked<T: Copy + std::fmt::Display>(
    cx: &mut Cx<'_>,
    v: Option<&Sp<T>>,
    default: T,
    ok: impl Fn(T) -> bool,
    what: &str,
    expected: &str,
) -> Option<T> {
    match v {
        None => Some(default),
        Some(s) if !ok(s.value) => {
            cx.push(
                Diagnostic::error(
                    s.span.clone(),
                    format!("{what} = {} is out of range", s.value),
                )
                .label(format!("expected {expected}")),
            );
            None
        }
        Some(s) => Some(s.value),
    }
}

/// An integer setting in `min..=max`, as `usize`.
pub fn int_in(
    cx: &mut Cx<'_>,
    v: Option<&Sp<u64>>,
    default: u64,
    min: u64,
    max: u64,
    what: &str,
) -> Option<usize> {
    checked(
        cx,
        v,
        default,
        |x| (min..=max).contains(&x),
        what,
        &format!("{min} to {max}"),
    )
    .map(|x| x as usize)
}

pub use crate::diagnostic::shape_str;
