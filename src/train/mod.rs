//! Training: optimizers, schedules, and the run loop.
pub mod optim;
pub mod run;
pub mod schedule;

pub use run::{run, select_device, RunOptions, TrainError};
