//! `runner`: run deep-learning experiments declared in TOML.
//!
//! The crate is one pipeline, and its modules follow the data:
//! [`experiment`] (TOML -> checked [`experiment::Experiment`]) -> [`graph`] (DAG, shapes,
//! parameter counts; [`check`] joins the two) ->
//! [`model`] (candle modules) -> [`data`] (datasets, transforms, loader) -> [`train`] (loop,
//! optimizers, schedules) -> [`report`] (run directory, CSVs, traces) and [`plot`] (pictures of
//! the data, the training and the predictions).
#![warn(missing_docs)]

pub mod bounded;
pub mod check;
pub mod cli;
pub mod data;
pub mod diagnostic;
pub mod experiment;
pub mod graph;
pub mod interrupt;
pub mod model;
pub mod plot;
pub mod report;
pub mod runtime;
pub mod train;
