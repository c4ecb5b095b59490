//! `torch.optim.lr_scheduler.OneCycleLR` (cosine annealing, two phases).

use std::f64::consts::PI;

use super::Schedule;

/// PyTorch's `OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy='cos', div_factor,
/// final_div_factor, three_phase=False)`, stepped every optimizer step: cosine from
/// `max_lr / div_factor` up to `max_lr` until step `pct_start * total_steps - 1`, then cosine
/// down to `max_lr / div_factor / final_div_factor` at step `total_steps - 1`.
///
/// Past the last step, where PyTorch raises, the rate stays at its minimum. Momentum is not
/// cycled (PyTorch's `cycle_momentum=False`).
pub(super) struct OneCycle {
    initial_lr: f64,
    max_lr: f64,
    min_lr: f64,
    /// Last step of the rising phase (fractional, as in PyTorch).
    peak_step: f64,
    /// Last step of the falling phase.
    last_step: f64,
}

impl OneCycle {
    /// The schedule over `total_steps` optimizer steps.
    pub(super) fn new(
        max_lr: f64,
        total_steps: usize,
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
    ) -> Self {
        let initial_lr = max_lr / div_factor;
        let total = total_steps as f64;
        Self {
            initial_lr,
            max_lr,
            min_lr: initial_lr / final_div_factor,
            peak_step: pct_start * total - 1.0,
            last_step: total - 1.0,
        }
    }
}

/// PyTorch's `_annealing_cos`, same operation order.
fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
    let cos_out = (PI * pct).cos() + 1.0;
    end + (start - end) / 2.0 * cos_out
}

/// Fraction of a phase from `start` to `end` done at `step`, within `[0, 1]`. A phase of zero
/// length (PyTorch divides by zero there) counts as done.
fn progress(step: f64, start: f64, end: f64) -> f64 {
    if end > start {
        ((step - start) / (end - start)).min(1.0)
    } else {
        1.0
    }
}

impl Schedule for OneCycle {
    fn lr(&self, step: usize) -> f64 {
        let step = step as f64;
        if step <= self.peak_step {
            let pct = progress(step, 0.0, self.peak_step);
            annealing_cos(self.initial_lr, self.max_lr, pct)
        } else {
            let pct = progress(step, self.peak_step, self.last_step);
            annealing_cos(self.max_lr, self.min_lr, pct)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_rates;
    use super::*;

    #[test]
    fn matches_pytorch() {
        // per_epoch(lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=12, pct_start=0.3,
        //     div_factor=25.0, final_div_factor=1e4, anneal_strategy='cos', three_phase=False,
        //     cycle_momentum=False), 12)
        let want = [
            0.020000000000000018,
            0.17489482710979154,
            0.43964257956106434,
            0.49720771772545586,
            0.46650648492070584,
            0.4058728269748815,
            0.32368949884755166,
            0.23131855133348753,
            0.14153049910434962,
            0.0667387650944153,
            0.01728349371269761,
            2e-06,
        ];
        let s = OneCycle::new(0.5, 12, 0.3, 25.0, 1e4);
        assert_rates(
            &s,
            &want,
            "OneCycleLR(max_lr=0.5, total_steps=12, pct_start=0.3)",
        );
    }

    #[test]
    fn holds_the_minimum_past_the_last_step() {
        let s = OneCycle::new(0.5, 12, 0.3, 25.0, 1e4);
        for step in [12, 13, 1000] {
            assert!((s.lr(step) - 2e-6).abs() < 1e-18, "step {step}");
        }
    }
}
