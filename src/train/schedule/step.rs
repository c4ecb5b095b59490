//! `torch.optim.lr_scheduler.StepLR`.

use super::EpochSchedule;

/// `base_lr * gamma^(epoch / step_size)`: PyTorch's closed form of `StepLR`.
pub(super) struct StepDecay {
    /// The optimizer's rate.
    pub(super) base_lr: f64,
    /// Epochs between decays.
    pub(super) step_size: usize,
    /// Decay factor.
    pub(super) gamma: f64,
}

impl EpochSchedule for StepDecay {
    fn lr_at_epoch(&self, epoch: usize) -> f64 {
        // `step_size` is validated positive; a zero would mean "never decay", not a panic.
        let decays = epoch.checked_div(self.step_size).unwrap_or(0);
        self.base_lr * self.gamma.powf(decays as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_rates;
    use super::super::PerEpoch;
    use super::*;

    #[test]
    fn matches_pytorch() {
        // per_epoch(lambda o: S.StepLR(o, step_size=2, gamma=0.5), 7)
        let want = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125];
        let s = StepDecay {
            base_lr: 0.1,
            step_size: 2,
            gamma: 0.5,
        };
        let s = PerEpoch {
            inner: s,
            steps_per_epoch: 1,
        };
        assert_rates(&s, &want, "StepLR(step_size=2, gamma=0.5)");
    }
}
