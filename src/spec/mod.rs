//! Experiment files: raw spanned TOML -> checked [`Experiment`].
pub mod experiment;
pub use experiment::*;
