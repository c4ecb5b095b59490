//! The optimizer's rate throughout.

use super::EpochSchedule;

/// The same rate every epoch.
pub(super) struct Constant {
    /// The rate.
    pub(super) lr: f64,
}

impl EpochSchedule for Constant {
    fn lr_at_epoch(&self, _epoch: usize) -> f64 {
        self.lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_changes() {
        let s = Constant { lr: 0.3 };
        for epoch in [0, 1, 1000] {
            assert_eq!(s.lr_at_epoch(epoch), 0.3, "epoch {epoch}");
        }
    }
}
