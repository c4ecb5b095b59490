//! Training: optimizers, schedules, the training step (with gradient accumulation and clipping),
//! weight averages (EMA), checkpoints and the run loop.
pub mod average;
pub mod checkpoint;
pub(crate) mod eval;
pub(crate) mod mix;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod select;
pub mod step;

pub use run::{run, select_device, RunOptions, TrainError};
pub use step::{train_step, GradientSteps, StepOutcome, StepOutput};
