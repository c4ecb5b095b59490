//! A piecewise-linear factor over the optimizer steps (airbench's `get_lr`).

use super::Schedule;

/// The base rate times a factor that is linear between knots.
///
/// Knot `i` is `(fraction_i, factor_i)`; it sits at optimizer step
/// `floor(fraction_i * total_steps)`, the last one (fraction 1) at `total_steps`. At step `s`
/// in `[k_i, k_{i+1})`, `frac = (s - k_i) / (k_{i+1} - k_i)` and the factor is
/// `factor_i * (1 - frac) + factor_{i+1} * frac`, in that operation order: airbench94's
/// `get_lr` with the knots `[0, 0.2], [0.23, 1.0], [1, 0.07]` (its `warmup_steps =
/// int(total_train_steps * 0.23)`), bit for bit. A segment whose knots fall on the same step
/// is skipped; from `total_steps` on the factor is the last knot's.
pub(super) struct PiecewiseLinear {
    base_lr: f64,
    /// `(step, factor)` per knot, steps non-decreasing, the first 0.
    knots: Vec<(usize, f64)>,
}

impl PiecewiseLinear {
    /// The schedule over `total_steps` optimizer steps; `points` are `(fraction, factor)` with
    /// fractions increasing from 0 to 1 (as validation guarantees).
    pub(super) fn new(base_lr: f64, points: &[(f64, f64)], total_steps: usize) -> Self {
        let last = points.len().saturating_sub(1);
        let knots = points
            .iter()
            .enumerate()
            .map(|(i, &(fraction, factor))| {
                let step = if i == last {
                    total_steps
                } else {
                    // Python's `int(total * fraction)` for a non-negative product.
                    ((total_steps as f64 * fraction).floor() as usize).min(total_steps)
                };
                (step, factor)
            })
            .collect();
        Self { base_lr, knots }
    }

    /// The factor at optimizer step `step`.
    fn factor(&self, step: usize) -> f64 {
        for pair in self.knots.windows(2) {
            let [(k0, v0), (k1, v1)] = [pair[0], pair[1]];
            if step < k1 {
                let frac = (step - k0) as f64 / (k1 - k0) as f64;
                return v0 * (1.0 - frac) + v1 * frac;
            }
        }
        self.knots.last().map_or(1.0, |&(_, v)| v)
    }
}

impl Schedule for PiecewiseLinear {
    fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// airbench94's `get_lr` (`legacy/airbench94.py`, KellerJordan/cifar10-airbench at
    /// f1c599c4af24), transcribed:
    ///
    /// ```python
    /// def get_lr(step):
    ///     warmup_steps = int(total_train_steps * 0.23)
    ///     warmdown_steps = total_train_steps - warmup_steps
    ///     if step < warmup_steps:
    ///         frac = step / warmup_steps
    ///         return 0.2 * (1 - frac) + 1.0 * frac
    ///     else:
    ///         frac = (step - warmup_steps) / warmdown_steps
    ///         return 1.0 * (1 - frac) + 0.07 * frac
    /// ```
    fn airbench_get_lr(total: usize, step: usize) -> f64 {
        let warmup_steps = (total as f64 * 0.23).floor() as usize;
        let warmdown_steps = total - warmup_steps;
        if step < warmup_steps {
            let frac = step as f64 / warmup_steps as f64;
            0.2 * (1.0 - frac) + 1.0 * frac
        } else {
            let frac = (step - warmup_steps) as f64 / warmdown_steps as f64;
            1.0 * (1.0 - frac) + 0.07 * frac
        }
    }

    const AIRBENCH: [(f64, f64); 3] = [(0.0, 0.2), (0.23, 1.0), (1.0, 0.07)];

    #[test]
    fn matches_airbench_get_lr_at_every_step() {
        // airbench94: 50,000 images in batches of 1024 (the last one partial) is 49 steps an
        // epoch; airbench's loader drops the last batch, 48 steps; ceil(48 * 9.9) = 476.
        for total in [476, 49 * 10, 7, 100] {
            let s = PiecewiseLinear::new(1.0, &AIRBENCH, total);
            for step in 0..total {
                let (got, want) = (s.lr(step), airbench_get_lr(total, step));
                assert_eq!(got.to_bits(), want.to_bits(), "total {total}, step {step}");
            }
        }
    }

    #[test]
    fn matches_python_at_the_knots() {
        // python3: total = 476; [get_lr(s) for s in (0, 1, 54, 108, 109, 200, 475)] with the
        // `get_lr` above; int(476 * 0.23) = 109.
        let want = [
            (0, 0.2),
            (1, 0.20733944954128442),
            (54, 0.5963302752293578),
            (108, 0.9926605504587156),
            (109, 1.0),
            (200, 0.769400544959128),
            (475, 0.07253405994550413),
        ];
        let s = PiecewiseLinear::new(2.0, &AIRBENCH, 476);
        for (step, factor) in want {
            assert_eq!(s.lr(step), 2.0 * factor, "step {step}");
        }
    }

    #[test]
    fn holds_the_last_factor_and_skips_empty_segments() {
        // 3 steps: the 0.23 knot falls on step 0, so the first segment is empty.
        let s = PiecewiseLinear::new(1.0, &AIRBENCH, 3);
        let third = 1.0 / 3.0;
        let want = [1.0, 1.0 * (1.0 - third) + 0.07 * third];
        for (step, w) in want.into_iter().enumerate() {
            assert_eq!(s.lr(step), w, "step {step}");
        }
        for step in [3, 4, 1000] {
            assert_eq!(s.lr(step), 0.07, "step {step}");
        }
        let empty = PiecewiseLinear::new(0.5, &AIRBENCH, 0);
        assert_eq!(empty.lr(0), 0.5 * 0.07);
    }
}
