//! Linear warm-up on top of a base schedule.

use super::Schedule;

/// The base rate times `start_factor + (1 - start_factor) * min(1, step / steps)`: PyTorch's
/// `LinearLR(start_factor, end_factor=1, total_iters=steps)` stepped per optimizer step,
/// composed multiplicatively with the base schedule.
pub(super) struct Warmup {
    /// The base schedule.
    pub(super) inner: Box<dyn Schedule>,
    /// Length of the warm-up in optimizer steps (positive).
    pub(super) steps: usize,
    /// Factor at step 0.
    pub(super) start_factor: f64,
}

impl Warmup {
    /// The factor at `step`, in PyTorch's closed-form operation order.
    fn factor(&self, step: usize) -> f64 {
        let steps = self.steps.max(1);
        self.start_factor + (1.0 - self.start_factor) * step.min(steps) as f64 / steps as f64
    }
}

impl Schedule for Warmup {
    fn lr(&self, step: usize) -> f64 {
        self.inner.lr(step) * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::super::constant::Constant;
    use super::super::testing::assert_rates;
    use super::super::PerEpoch;
    use super::*;

    #[test]
    fn matches_pytorch_linear_lr() {
        // per_epoch(lambda o: S.LinearLR(o, start_factor=0.25, total_iters=5), 8)
        let want = [
            0.025,
            0.04000000000000001,
            0.05500000000000001,
            0.07,
            0.085,
            0.1,
            0.1,
            0.1,
        ];
        let s = Warmup {
            inner: Box::new(PerEpoch {
                inner: Constant { lr: 0.1 },
                steps_per_epoch: 1,
            }),
            steps: 5,
            start_factor: 0.25,
        };
        assert_rates(&s, &want, "LinearLR(start_factor=0.25, total_iters=5)");
    }
}
