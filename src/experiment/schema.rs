//! The JSON Schema of experiment files (`runner schema`, committed as
//! `schemas/experiment.schema.json`), derived from the format's declarations
//! ([`super::format`]): the same keys, required keys and names the reader accepts.

use serde_json::json;

use super::decl::{FormatValue, SchemaCx};
use super::format::{param_schema, RawExperiment};

/// The dialect the schema is written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema as a JSON value.
pub fn schema() -> serde_json::Value {
    let mut s = SchemaCx::default();
    let mut root = RawExperiment::schema(&mut s);
    s.defs.insert("param".into(), param_schema());
    let mut doc = json!({ "$schema": DIALECT, "title": "runner experiment" });
    if let (Some(d), Some(r)) = (doc.as_object_mut(), root.as_object_mut()) {
        d.append(r);
        d.insert("$defs".into(), serde_json::Value::Object(s.defs));
    }
    doc
}

/// The schema as pretty JSON with a trailing newline.
pub fn schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}
