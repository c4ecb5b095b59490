//! `runner schema`: print the JSON Schema of experiment files (committed as
//! `schemas/experiment.schema.json`), derived from the format's declarations.

pub use crate::experiment::schema::schema_json;
