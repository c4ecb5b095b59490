//! `runner schema`: print the JSON Schema of experiment files (committed as
//! `schemas/experiment.schema.json`), derived from the format's declarations.

use std::io::Write;

pub use crate::experiment::schema::schema_json;

/// Runs the verb: the schema to stdout; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    let mut out = super::out::stdout();
    out.write_all(schema_json().as_bytes())?;
    out.finish()?;
    Ok(super::exit::OK)
}
