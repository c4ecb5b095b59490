//! Learning-rate schedules, queried once per optimizer step.
//!
//! Epoch-based schedules ([`ScheduleKind::Constant`], `Step`, `MultiStep`, `Cosine`) give the
//! rate of epoch `step / steps_per_epoch`, exactly as the PyTorch scheduler stepped once per
//! epoch; `OneCycle` changes every step like `OneCycleLR`, and `PiecewiseLinear` every step
//! like airbench's `LambdaLR(get_lr)`. A linear warm-up multiplies the base
//! rate during the first steps.

mod constant;
mod cosine;
mod multi_step;
mod one_cycle;
mod piecewise_linear;
mod step;
mod warmup;

use crate::experiment::{ScheduleKind, ScheduleSpec};

/// A learning rate as a function of the optimizer step.
pub trait Schedule: Send {
    /// lr to use for global optimizer step `step` (0-based)
    fn lr(&self, step: usize) -> f64;
}

/// A rate that changes only at epoch boundaries, like a PyTorch scheduler stepped per epoch.
trait EpochSchedule: Send {
    /// The rate during epoch `epoch` (0-based).
    fn lr_at_epoch(&self, epoch: usize) -> f64;
}

/// Drives an [`EpochSchedule`] from the optimizer step.
struct PerEpoch<S> {
    inner: S,
    steps_per_epoch: usize,
}

impl<S: EpochSchedule> Schedule for PerEpoch<S> {
    fn lr(&self, step: usize) -> f64 {
        self.inner.lr_at_epoch(step / self.steps_per_epoch)
    }
}

/// Boxes `inner` to be driven per optimizer step.
fn per_epoch<S: EpochSchedule + 'static>(inner: S, steps_per_epoch: usize) -> Box<dyn Schedule> {
    Box::new(PerEpoch {
        inner,
        steps_per_epoch,
    })
}

/// Builds the schedule `spec` describes for an optimizer whose rate is `base_lr`, over
/// `total_steps` optimizer steps in epochs of `steps_per_epoch` (the last one perhaps partial:
/// [`crate::experiment::TrainLength`]).
pub fn build_schedule(
    spec: &ScheduleSpec,
    base_lr: f64,
    total_steps: usize,
    steps_per_epoch: usize,
) -> Box<dyn Schedule> {
    // An empty epoch has no steps to schedule; one keeps the step -> epoch division defined.
    let steps_per_epoch = steps_per_epoch.max(1);
    // `cosine`'s default period: the epochs the run starts.
    let epochs = total_steps.div_ceil(steps_per_epoch);
    let base: Box<dyn Schedule> = match spec.kind {
        ScheduleKind::Constant => per_epoch(constant::Constant { lr: base_lr }, steps_per_epoch),
        ScheduleKind::Step { step_size, gamma } => per_epoch(
            step::StepDecay {
                base_lr,
                step_size,
                gamma,
            },
            steps_per_epoch,
        ),
        ScheduleKind::MultiStep {
            ref milestones,
            gamma,
        } => per_epoch(
            multi_step::MultiStep {
                base_lr,
                milestones: milestones.clone(),
                gamma,
            },
            steps_per_epoch,
        ),
        ScheduleKind::Cosine { t_max, eta_min } => per_epoch(
            cosine::Cosine {
                base_lr,
                t_max: t_max.unwrap_or(epochs),
                eta_min,
            },
            steps_per_epoch,
        ),
        ScheduleKind::OneCycle {
            max_lr,
            pct_start,
            div_factor,
            final_div_factor,
        } => Box::new(one_cycle::OneCycle::new(
            max_lr,
            total_steps,
            pct_start,
            div_factor,
            final_div_factor,
        )),
        ScheduleKind::PiecewiseLinear { ref points } => {
            Box::new(piecewise_linear::PiecewiseLinear::new(
                base_lr,
                points,
                epochs.saturating_mul(steps_per_epoch),
            ))
        }
    };
    if spec.warmup_steps == 0 {
        base
    } else {
        Box::new(warmup::Warmup {
            inner: base,
            steps: spec.warmup_steps,
            start_factor: spec.warmup_start_factor,
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Comparing rate sequences with PyTorch's.
    //!
    //! Golden sequences come from PyTorch 1.13 (Debian `python3-torch`, run with
    //! `/usr/bin/python3`) through this harness; each test quotes the line that calls it:
    //!
    //! ```python
    //! import torch, warnings
    //! warnings.simplefilter("ignore")
    //! S = torch.optim.lr_scheduler
    //! def opt(lr=0.1):
    //!     return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    //! def per_epoch(make, epochs, lr=0.1):  # "epochs" are optimizer steps for per-step ones
    //!     o = opt(lr); s = make(o); out = []
    //!     for e in range(epochs):
    //!         out.append(o.param_groups[0]['lr']); o.step(); s.step()
    //!     return out
    //! ```
    //!
    //! The lists print with `repr`.

    use super::Schedule;

    /// Asserts `schedule.lr(k) == want[k]` to 1e-12 relative.
    pub(crate) fn assert_rates(schedule: &dyn Schedule, want: &[f64], what: &str) {
        for (k, &w) in want.iter().enumerate() {
            let got = schedule.lr(k);
            assert!(
                (got - w).abs() <= 1e-12 * w.abs(),
                "{what}: step {k}: got {got:e}, PyTorch {w:e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::assert_rates;
    use super::*;

    fn spec(kind: ScheduleKind, warmup_steps: usize, warmup_start_factor: f64) -> ScheduleSpec {
        ScheduleSpec {
            kind,
            warmup_steps,
            warmup_start_factor,
        }
    }

    #[test]
    fn epoch_schedules_hold_their_rate_through_the_epoch() {
        // Step-decay golden numbers (see `step.rs`), three steps per epoch.
        let kind = ScheduleKind::Step {
            step_size: 2,
            gamma: 0.5,
        };
        let s = build_schedule(&spec(kind, 0, 1.0), 0.1, 7 * 3, 3);
        let want = [
            0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025,
        ];
        assert_rates(s.as_ref(), &want, "StepLR(2, 0.5), 3 steps per epoch");
    }

    #[test]
    fn warmup_multiplies_an_epoch_schedule() {
        // Warm-up per step and StepLR per epoch on one optimizer, 3 steps per epoch:
        // o = opt(); w = S.LinearLR(o, start_factor=0.25, total_iters=5)
        // st = S.StepLR(o, step_size=1, gamma=0.5); out = []
        // for e in range(4):
        //     for i in range(3):
        //         out.append(o.param_groups[0]['lr']); o.step(); w.step()
        //     st.step()
        let want = [
            0.025,
            0.04000000000000001,
            0.05500000000000001,
            0.035,
            0.0425,
            0.05,
            0.025,
            0.025,
            0.025,
            0.0125,
            0.0125,
            0.0125,
        ];
        let kind = ScheduleKind::Step {
            step_size: 1,
            gamma: 0.5,
        };
        let s = build_schedule(&spec(kind, 5, 0.25), 0.1, 4 * 3, 3);
        assert_rates(s.as_ref(), &want, "LinearLR(0.25, 5) x StepLR(1, 0.5)");
    }

    #[test]
    fn warmup_multiplies_one_cycle() {
        // Defined as a product, which PyTorch has no scheduler for (chaining OneCycleLR, which
        // sets the rate outright, with LinearLR, which rescales it, is not a product).
        let kind = ScheduleKind::OneCycle {
            max_lr: 0.5,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        let plain = build_schedule(&spec(kind.clone(), 0, 1.0), 0.1, 3 * 4, 4);
        let warm = build_schedule(&spec(kind, 4, 0.5), 0.1, 3 * 4, 4);
        for (step, factor) in [
            (0, 0.5),
            (1, 0.625),
            (2, 0.75),
            (3, 0.875),
            (4, 1.0),
            (9, 1.0),
        ] {
            let want = plain.lr(step) * factor;
            assert!((warm.lr(step) - want).abs() <= 1e-15, "step {step}");
        }
    }

    #[test]
    fn builds_every_kind_without_panicking_on_degenerate_sizes() {
        let kinds = [
            ScheduleKind::Constant,
            ScheduleKind::Step {
                step_size: 1,
                gamma: 0.1,
            },
            ScheduleKind::MultiStep {
                milestones: vec![1, 2],
                gamma: 0.1,
            },
            ScheduleKind::Cosine {
                t_max: Some(3),
                eta_min: 0.0,
            },
            ScheduleKind::Cosine {
                t_max: None,
                eta_min: 0.0,
            },
            ScheduleKind::OneCycle {
                max_lr: 1.0,
                pct_start: 0.25,
                div_factor: 25.0,
                final_div_factor: 1e4,
            },
            ScheduleKind::PiecewiseLinear {
                points: vec![(0.0, 0.2), (0.23, 1.0), (1.0, 0.07)],
            },
        ];
        for kind in kinds {
            for (epochs, steps_per_epoch) in [(3, 5), (1, 1), (0, 0)] {
                let total = epochs * steps_per_epoch;
                let s = build_schedule(&spec(kind.clone(), 2, 0.1), 0.1, total, steps_per_epoch);
                for step in 0..20 {
                    let lr = s.lr(step);
                    assert!(
                        lr.is_finite() && lr >= 0.0,
                        "{kind:?}, {epochs}x{steps_per_epoch}: step {step} gives {lr}"
                    );
                }
            }
        }
    }
}
