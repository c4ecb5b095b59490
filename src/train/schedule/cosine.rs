//! `torch.optim.lr_scheduler.CosineAnnealingLR`.

use std::f64::consts::PI;

use super::EpochSchedule;

/// `eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2`, PyTorch's closed form of
/// `CosineAnnealingLR`. PyTorch steps a recursive form that equals it up to rounding, also past
/// `t_max`: the rate then climbs back to `base_lr` at `2 * t_max` and keeps oscillating with
/// period `2 * t_max`. This follows PyTorch there rather than holding `eta_min`.
pub(super) struct Cosine {
    /// The optimizer's rate.
    pub(super) base_lr: f64,
    /// Half period in epochs.
    pub(super) t_max: usize,
    /// Lowest rate, reached at `t_max`.
    pub(super) eta_min: f64,
}

impl EpochSchedule for Cosine {
    fn lr_at_epoch(&self, epoch: usize) -> f64 {
        // `t_max` is validated positive; one keeps a zero from producing NaN.
        let t_max = self.t_max.max(1) as f64;
        self.eta_min
            + (self.base_lr - self.eta_min) * (1.0 + (PI * epoch as f64 / t_max).cos()) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_rates;
    use super::super::PerEpoch;
    use super::*;

    #[test]
    fn matches_pytorch_within_and_beyond_t_max() {
        // per_epoch(lambda o: S.CosineAnnealingLR(o, T_max=4, eta_min=0.001), 10)
        let want = [
            0.1,
            0.0855017856687341,
            0.0505,
            0.0154982143312659,
            0.001,
            0.015498214331265896,
            0.05050000000000001,
            0.08550178566873413,
            0.10000000000000003,
            0.08550178566873413,
        ];
        let s = Cosine {
            base_lr: 0.1,
            t_max: 4,
            eta_min: 0.001,
        };
        let s = PerEpoch {
            inner: s,
            steps_per_epoch: 1,
        };
        assert_rates(&s, &want, "CosineAnnealingLR(T_max=4, eta_min=0.001)");
    }
}
