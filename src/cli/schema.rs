//! `runner schema`: print the JSON Schema of experiment files (committed as `schemas/experiment.schema.json`).

use std::io::Write;

use crate::spec::raw::RawExperiment;

/// Runs the verb: the schema to stdout; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    let mut out = super::out::stdout();
    out.write_all(schema_json().as_bytes())?;
    out.finish()?;
    Ok(super::exit::OK)
}

/// The schema as pretty JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawExperiment<'static>);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
