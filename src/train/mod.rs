//! Training: optimizers, schedules, the loop.
pub mod optim;
