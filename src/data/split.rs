//! The validation split: images carved from the training set, stratified by class and drawn
//! from the seed, so that the same experiment always holds out the same images.

use std::path::Path;

use super::{derived_rng, fisher_yates, DataError, Dataset, Stream};
use crate::experiment::{DataSpec, ValidationSize};

/// A part of an experiment's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The training images (less the validation split).
    Train,
    /// The validation split carved from the training set (`data.validation`).
    Val,
    /// The test images.
    Test,
}

impl Split {
    /// `train`, `val` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// An experiment's data as training sees it: the images it trains on, its validation split and
/// the test set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentData {
    /// The training images, without the validation split (`train_limit` is applied later, by
    /// the training loop).
    pub train: Dataset,
    /// The validation split, when the experiment has one.
    pub val: Option<Dataset>,
    /// The test images.
    pub test: Dataset,
}

impl ExperimentData {
    /// One part; `None` for [`Split::Val`] without a validation split.
    pub fn take(self, split: Split) -> Option<Dataset> {
        match split {
            Split::Train => Some(self.train),
            Split::Val => self.val,
            Split::Test => Some(self.test),
        }
    }
}

/// Loads the experiment's data set ([`super::load`]) and carves its validation split.
pub fn load_experiment(
    spec: &DataSpec,
    data_dir: &Path,
    seed: u64,
) -> Result<ExperimentData, DataError> {
    let splits = super::load(&spec.dataset, data_dir, seed)?;
    let (train, val) = match spec.validation {
        Some(size) => {
            let (train, val) = split_validation(splits.train, size, seed)?;
            (train, Some(val))
        }
        None => (splits.train, None),
    };
    Ok(ExperimentData {
        train,
        val,
        test: splits.test,
    })
}

/// Splits `train` into the images left to train on and the validation split.
///
/// Each class gives its share of the split: `k * n_c / n` images, rounded down, with the
/// images left over going to the classes with the largest remainders (lower class first on a
/// tie), so that the split holds exactly `k` images and every class in proportion. The images
/// of class `c` are drawn by a Fisher-Yates shuffle from a generator determined by
/// `(seed, c)`. Both parts keep the training set's order.
pub fn split_validation(
    train: Dataset,
    size: ValidationSize,
    seed: u64,
) -> Result<(Dataset, Dataset), DataError> {
    let n = train.len();
    let k = size.images(n);
    if k == 0 || k >= n {
        return Err(DataError::ValidationSize {
            wanted: k,
            train: n,
        });
    }
    let counts = train.class_counts();
    let quotas = quotas(&counts, k);
    let mut by_class: Vec<Vec<usize>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
    for (i, &l) in train.labels.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    let mut held = vec![false; n];
    for (c, (members, &quota)) in by_class.iter_mut().zip(&quotas).enumerate() {
        fisher_yates(
            members,
            &mut derived_rng(seed, Stream::Validation, c as u64, 0),
        );
        for &i in &members[..quota] {
            held[i] = true;
        }
    }
    let pick = |keep: bool| {
        let idx: Vec<usize> = (0..n).filter(|&i| held[i] == keep).collect();
        let mut images = Vec::with_capacity(idx.len() * train.image_len());
        for &i in &idx {
            images.extend_from_slice(train.image(i));
        }
        Dataset {
            images,
            labels: idx.iter().map(|&i| train.labels[i]).collect(),
            shape: train.shape,
            classes: train.classes.clone(),
        }
    };
    Ok((pick(false), pick(true)))
}

/// Per class, how many of its `counts[c]` images go to a split of `k` of `sum(counts)`
/// (largest remainder method).
fn quotas(counts: &[usize], k: usize) -> Vec<usize> {
    let n: usize = counts.iter().sum();
    let mut quotas: Vec<usize> = counts.iter().map(|&c| c * k / n).collect();
    let mut left = k - quotas.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Remainders as exact integers: `counts[c] * k mod n`.
    order.sort_by_key(|&c| (std::cmp::Reverse(counts[c] * k % n), c));
    for c in order {
        if left == 0 {
            break;
        }
        if quotas[c] < counts[c] {
            quotas[c] += 1;
            left -= 1;
        }
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 images: 50 of class 0, 30 of class 1, 20 of class 2; image `i` holds byte `i`.
    fn data() -> Dataset {
        let labels: Vec<u8> = (0..100u8)
            .map(|i| {
                if i < 50 {
                    0
                } else if i < 80 {
                    1
                } else {
                    2
                }
            })
            .collect();
        Dataset {
            images: (0..100u8).collect(),
            labels,
            shape: [1, 1, 1],
            classes: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn the_split_is_stratified_exact_and_disjoint() {
        let (train, val) = split_validation(data(), ValidationSize::Fraction(0.1), 7).unwrap();
        assert_eq!(val.len(), 10);
        assert_eq!(train.len(), 90);
        assert_eq!(val.class_counts(), vec![5, 3, 2]);
        let mut all: Vec<u8> = train.images.iter().chain(&val.images).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..100u8).collect::<Vec<_>>(),
            "every image exactly once"
        );
        // Labels travel with their images.
        for (img, l) in val.images.iter().zip(&val.labels) {
            assert_eq!(data().labels[usize::from(*img)], *l);
        }
        // Both parts keep the original order.
        assert!(train.images.windows(2).all(|w| w[0] < w[1]));
        assert!(val.images.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_same_seed_holds_out_the_same_images_and_another_seed_others() {
        let a = split_validation(data(), ValidationSize::Count(12), 1)
            .unwrap()
            .1;
        let b = split_validation(data(), ValidationSize::Count(12), 1)
            .unwrap()
            .1;
        let c = split_validation(data(), ValidationSize::Count(12), 2)
            .unwrap()
            .1;
        assert_eq!(a, b);
        assert_ne!(a.images, c.images);
    }

    #[test]
    fn leftover_images_go_to_the_largest_remainders() {
        // 7 of 100: exact shares 3.5, 2.1, 1.4 -> 3, 2, 1 and one more for class 0.
        assert_eq!(quotas(&[50, 30, 20], 7), vec![4, 2, 1]);
        // A class with no image gets none.
        assert_eq!(quotas(&[0, 3, 1], 2), vec![0, 2, 0]);
        assert_eq!(quotas(&[1, 1, 1], 2), vec![1, 1, 0]);
    }

    #[test]
    fn a_split_that_leaves_nothing_to_train_on_is_refused() {
        for size in [
            ValidationSize::Count(100),
            ValidationSize::Count(500),
            ValidationSize::Fraction(0.001),
        ] {
            let err = split_validation(data(), size, 0).unwrap_err();
            assert!(matches!(err, DataError::ValidationSize { .. }), "{err}");
        }
    }
}
