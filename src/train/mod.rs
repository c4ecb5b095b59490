//! Training: optimizers, schedules, the loop.
