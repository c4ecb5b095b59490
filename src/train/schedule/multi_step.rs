//! `torch.optim.lr_scheduler.MultiStepLR`.

use super::EpochSchedule;

/// `base_lr * gamma^(milestones reached)`, a milestone counting from its own epoch on:
/// PyTorch's closed form of `MultiStepLR`.
pub(super) struct MultiStep {
    /// The optimizer's rate.
    pub(super) base_lr: f64,
    /// Epochs at which the rate decays.
    pub(super) milestones: Vec<usize>,
    /// Decay factor.
    pub(super) gamma: f64,
}

impl EpochSchedule for MultiStep {
    fn lr_at_epoch(&self, epoch: usize) -> f64 {
        let reached = self.milestones.iter().filter(|&&m| m <= epoch).count();
        self.base_lr * self.gamma.powf(reached as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_rates;
    use super::super::PerEpoch;
    use super::*;

    #[test]
    fn matches_pytorch() {
        // per_epoch(lambda o: S.MultiStepLR(o, milestones=[1, 3, 4], gamma=0.1), 6)
        let want = [
            0.1,
            0.010000000000000002,
            0.010000000000000002,
            0.0010000000000000002,
            0.00010000000000000003,
            0.00010000000000000003,
        ];
        let s = MultiStep {
            base_lr: 0.1,
            milestones: vec![1, 3, 4],
            gamma: 0.1,
        };
        let s = PerEpoch {
            inner: s,
            steps_per_epoch: 1,
        };
        assert_rates(&s, &want, "MultiStepLR(milestones=[1, 3, 4], gamma=0.1)");
    }
}
