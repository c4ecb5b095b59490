//! A generated, learnable data set for tests and demos.
//!
//! Each class has a smooth random prototype per channel (a 4x4 grid of random grey levels,
//! bilinearly upsampled to the image size); a sample is its class prototype plus independent
//! per-pixel noise, rounded and clamped to `u8`. Labels are balanced (`i % classes`, shuffled).
//! Everything is a function of the spec and the seed.

use rand::Rng;

use super::{derived_rng, fisher_yates, DataError, Dataset, Splits, Stream};
use crate::experiment::SyntheticSpec;

/// Side of the random grid each prototype is interpolated from.
const GRID: usize = 4;
/// Standard deviation of the per-pixel noise, in grey levels.
const NOISE_STD: f32 = 48.0;

/// Generates the training and test sets described by `spec`.
#[tracing::instrument(skip_all)]
pub fn generate(spec: &SyntheticSpec, seed: u64) -> Result<Splits, DataError> {
    if spec.classes == 0 || spec.classes > 256 {
        return Err(DataError::InvalidSynthetic {
            reason: format!("needs 1 to 256 classes, got {}", spec.classes),
        });
    }
    let too_large = || DataError::InvalidSynthetic {
        reason: format!(
            "{} + {} images of shape {:?} do not fit in memory",
            spec.train_size, spec.test_size, spec.shape
        ),
    };
    let image_len = spec.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let image_len = image_len.ok_or_else(too_large)?;
    let total = spec
        .train_size
        .checked_add(spec.test_size)
        .ok_or_else(too_large)?;
    total.checked_mul(image_len).ok_or_else(too_large)?;

    let mut proto_rng = derived_rng(seed, Stream::Synthetic, 0, 0);
    let prototypes: Vec<Vec<f32>> = (0..spec.classes)
        .map(|_| prototype(spec.shape, &mut proto_rng))
        .collect();
    let classes = class_names(spec.classes);
    let split = |n: usize, stream: u64| {
        let mut rng = derived_rng(seed, Stream::Synthetic, stream, 0);
        let mut labels: Vec<u8> = (0..n).map(|i| (i % spec.classes) as u8).collect();
        fisher_yates(&mut labels, &mut rng);
        let mut images = Vec::with_capacity(n * image_len);
        for &label in &labels {
            images.extend(prototypes[usize::from(label)].iter().map(|&p| {
                let noise: f32 = (0..3).map(|_| rng.random::<f32>()).sum::<f32>() - 1.5;
                // A sum of three uniforms has std 0.5; scale it to NOISE_STD.
                (p + 2.0 * NOISE_STD * noise).round().clamp(0.0, 255.0) as u8
            }));
        }
        Dataset {
            images,
            labels,
            shape: spec.shape,
            classes: classes.clone(),
        }
    };
    Ok(Splits {
        train: split(spec.train_size, 1),
        test: split(spec.test_size, 2),
    })
}

/// The names of `classes` generated classes: `class0`, `class1`, ...
pub fn class_names(classes: usize) -> Vec<String> {
    (0..classes).map(|c| format!("class{c}")).collect()
}

/// A smooth random CHW image with values in `[0, 255]`.
fn prototype([c, h, w]: [usize; 3], rng: &mut impl Rng) -> Vec<f32> {
    let mut img = Vec::with_capacity(c * h * w);
    for _ in 0..c {
        let grid: Vec<f32> = (0..GRID * GRID)
            .map(|_| rng.random::<f32>() * 255.0)
            .collect();
        // Position of pixel i of n on the grid's 0..GRID-1 axis, split into cell and fraction.
        let axis = |i: usize, n: usize| -> (usize, f32) {
            let t = if n > 1 {
                i as f32 * (GRID - 1) as f32 / (n - 1) as f32
            } else {
                0.0
            };
            let cell = (t as usize).min(GRID - 2);
            (cell, t - cell as f32)
        };
        for y in 0..h {
            let (gy, fy) = axis(y, h);
            for x in 0..w {
                let (gx, fx) = axis(x, w);
                let at = |yy: usize, xx: usize| grid[yy * GRID + xx];
                let top = at(gy, gx) * (1.0 - fx) + at(gy, gx + 1) * fx;
                let bottom = at(gy + 1, gx) * (1.0 - fx) + at(gy + 1, gx + 1) * fx;
                img.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: [usize; 3], classes: usize, train: usize, test: usize) -> SyntheticSpec {
        SyntheticSpec {
            shape,
            classes,
            train_size: train,
            test_size: test,
        }
    }

    #[test]
    fn sizes_labels_and_names() {
        let s = generate(&spec([3, 5, 7], 4, 40, 12), 1).expect("generates");
        assert_eq!((s.train.len(), s.test.len()), (40, 12));
        assert_eq!(s.train.images.len(), 40 * 3 * 5 * 7);
        assert_eq!(s.train.shape, [3, 5, 7]);
        assert_eq!(s.train.classes, ["class0", "class1", "class2", "class3"]);
        assert_eq!(s.train.class_counts(), [10; 4], "balanced");
        assert_eq!(s.test.class_counts(), [3; 4], "balanced");
    }

    #[test]
    fn deterministic_in_the_seed() {
        let sp = spec([1, 6, 6], 3, 30, 9);
        let a = generate(&sp, 5).expect("generates");
        assert_eq!(
            a,
            generate(&sp, 5).expect("generates"),
            "same seed, same data"
        );
        assert_ne!(
            a,
            generate(&sp, 6).expect("generates"),
            "other seed, other data"
        );
        assert_ne!(
            a.train.images[..36],
            a.test.images[..36],
            "train and test differ"
        );
    }

    #[test]
    fn nearest_class_mean_beats_chance() {
        let sp = spec([1, 8, 8], 10, 500, 200);
        let s = generate(&sp, 0).expect("generates");
        let len = 64;
        let mut means = vec![vec![0.0f64; len]; 10];
        for i in 0..s.train.len() {
            let m = &mut means[usize::from(s.train.labels[i])];
            for (a, &p) in m.iter_mut().zip(s.train.image(i)) {
                *a += f64::from(p) / 50.0;
            }
        }
        let correct = (0..s.test.len())
            .filter(|&i| {
                let dist = |m: &Vec<f64>| -> f64 {
                    m.iter()
                        .zip(s.test.image(i))
                        .map(|(a, &p)| (a - f64::from(p)).powi(2))
                        .sum()
                };
                let best = (0..10)
                    .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                    .expect("ten classes");
                best == usize::from(s.test.labels[i])
            })
            .count();
        assert!(
            correct > 150,
            "nearest class mean gets {correct}/200 (chance: 20)"
        );
    }

    #[test]
    fn invalid_specs_are_errors() {
        let cases = [
            (spec([1, 2, 2], 0, 1, 1), "no classes"),
            (spec([1, 2, 2], 257, 1, 1), "more classes than u8 labels"),
            (spec([usize::MAX, 2, 2], 2, 1, 1), "image size overflows"),
            (spec([1, 2, 2], 2, usize::MAX, 1), "image count overflows"),
        ];
        for (sp, msg) in cases {
            let err = generate(&sp, 0).expect_err(msg);
            assert!(
                matches!(err, DataError::InvalidSynthetic { .. }),
                "{msg}: {err:?}"
            );
        }
    }

    #[test]
    fn tiny_shapes_do_not_panic() {
        for shape in [[1, 1, 1], [2, 1, 5], [1, 0, 3]] {
            let s = generate(&spec(shape, 2, 3, 2), 0).expect("generates");
            assert_eq!(
                s.train.images.len(),
                3 * shape.iter().product::<usize>(),
                "{shape:?}"
            );
        }
    }
}
