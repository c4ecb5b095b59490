//! Training: optimizers, schedules, the loop.
pub mod optim;
pub mod schedule;
