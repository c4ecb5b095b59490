//! `runner schema`: print the JSON Schema of experiment files (committed as `schemas/experiment.schema.json`).

use crate::spec::raw::RawExperiment;

/// The schema as pretty JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawExperiment<'static>);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
