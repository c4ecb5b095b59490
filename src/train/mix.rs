//! Batch-level mixup and cutmix (`[train.mixup]`), as timm's `Mixup` in batch mode
//! (`timm/data/mixup.py`): every image of a batch is mixed with the image at the mirrored
//! position (`x.flip(0)`), with one weight `lam` for the whole batch, and the targets are mixed
//! with the same weight. The loss against the mixed, label-smoothed targets is linear in them, so
//! [`super::step::Targets::Mixed`] computes it as `lam * loss(labels) + (1 - lam) *
//! loss(partner labels)`, which equals timm's `SoftTargetCrossEntropy` of `mixup_target`.

use rand::Rng;
use rand_distr::{Beta, Distribution};

use crate::data::Batch;
use crate::experiment::MixupSpec;

/// How a batch was mixed: the weight of its own images, and the labels of the images mixed in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mixed {
    /// The weight of each image's own content and label, in `[0, 1]`.
    pub(crate) lam: f64,
    /// The label of the image mixed into each position (the batch's labels reversed).
    pub(crate) partner: Vec<u32>,
}

impl Mixed {
    /// The label a prediction is counted against for the training accuracy: the one with the
    /// larger weight (the image's own on a tie).
    pub(crate) fn dominant<'a>(&'a self, labels: &'a [u32]) -> &'a [u32] {
        if self.lam >= 0.5 {
            labels
        } else {
            &self.partner
        }
    }
}

/// timm's `_params_per_batch`: `(lam, use_cutmix)`; `lam == 1` when the batch is not mixed.
fn params(spec: &MixupSpec, rng: &mut impl Rng) -> (f64, bool) {
    if rng.random::<f64>() >= spec.prob {
        return (1.0, false);
    }
    let beta = |alpha: f64, rng: &mut dyn rand::RngCore| -> f64 {
        Beta::new(alpha, alpha).map_or(1.0, |b| b.sample(rng))
    };
    let use_cutmix = match (spec.mixup_alpha > 0.0, spec.cutmix_alpha > 0.0) {
        (true, true) => rng.random::<f64>() < spec.switch_prob,
        (true, false) => false,
        _ => true,
    };
    let alpha = if use_cutmix {
        spec.cutmix_alpha
    } else {
        spec.mixup_alpha
    };
    (beta(alpha, rng), use_cutmix)
}

/// timm's `rand_bbox` (no margin): the box `(yl, yh, xl, xh)` cut for weight `lam` in an
/// `h x w` image, its centre drawn uniformly, then clipped to the image.
fn cut_box(lam: f64, h: usize, w: usize, rng: &mut impl Rng) -> (usize, usize, usize, usize) {
    let ratio = (1.0 - lam).max(0.0).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as i64, (w as f64 * ratio) as i64);
    let cy = rng.random_range(0..h as i64);
    let cx = rng.random_range(0..w as i64);
    let clip = |v: i64, n: usize| v.clamp(0, n as i64) as usize;
    (
        clip(cy - cut_h / 2, h),
        clip(cy + cut_h / 2, h),
        clip(cx - cut_w / 2, w),
        clip(cx + cut_w / 2, w),
    )
}

/// Mixes `batch` in place as timm's `Mixup._mix_batch` does, drawing from `rng`; `None` when
/// the draw leaves the batch as it is (`lam == 1`).
pub(crate) fn mix_batch(spec: &MixupSpec, batch: &mut Batch, rng: &mut impl Rng) -> Option<Mixed> {
    let (lam, use_cutmix) = params(spec, rng);
    if lam == 1.0 {
        return None;
    }
    let [b, c, h, w] = batch.shape;
    let per = c * h * w;
    let lam = if use_cutmix {
        let (yl, yh, xl, xh) = cut_box(lam, h, w, rng);
        // x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]: the boxes of each mirrored
        // pair swap (the middle image of an odd batch keeps its own)
        for i in 0..b / 2 {
            let (head, tail) = batch.images.split_at_mut((b - 1 - i) * per);
            let (a, c_img) = (&mut head[i * per..(i + 1) * per], &mut tail[..per]);
            for ch in 0..c {
                for y in yl..yh {
                    let row = ch * h * w + y * w;
                    a[row + xl..row + xh].swap_with_slice(&mut c_img[row + xl..row + xh]);
                }
            }
        }
        if spec.correct_lam {
            1.0 - ((yh - yl) * (xh - xl)) as f64 / (h * w) as f64
        } else {
            lam
        }
    } else {
        // x = x * lam + x.flip(0) * (1 - lam), in f32 as timm's tensors, a mirrored pair at a
        // time (the middle image of an odd batch is mixed with itself)
        let (l, k) = (lam as f32, (1.0 - lam) as f32);
        for i in 0..b.div_ceil(2) {
            let j = b - 1 - i;
            if i == j {
                let own = &mut batch.images[i * per..(i + 1) * per];
                own.iter_mut().for_each(|v| *v = *v * l + *v * k);
                continue;
            }
            let (head, tail) = batch.images.split_at_mut(j * per);
            let (a, c_img) = (&mut head[i * per..(i + 1) * per], &mut tail[..per]);
            for (x, y) in a.iter_mut().zip(c_img.iter_mut()) {
                (*x, *y) = (*x * l + *y * k, *y * l + *x * k);
            }
        }
        lam
    };
    let partner = batch.labels.iter().rev().copied().collect();
    Some(Mixed { lam, partner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec(mixup_alpha: f64, cutmix_alpha: f64) -> MixupSpec {
        MixupSpec {
            mixup_alpha,
            cutmix_alpha,
            prob: 1.0,
            switch_prob: 0.5,
            correct_lam: true,
        }
    }

    /// Three 1x4x4 images filled with 1, 2 and 3, labels 0, 1, 2.
    fn batch() -> Batch {
        Batch {
            images: (0..48).map(|i| (i / 16 + 1) as f32).collect(),
            labels: vec![0, 1, 2],
            shape: [3, 1, 4, 4],
        }
    }

    #[test]
    fn mixup_blends_each_image_with_its_mirror_in_the_batch() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut b = batch();
        let m = mix_batch(&spec(0.8, 0.0), &mut b, &mut rng).expect("mixed");
        assert!(m.lam > 0.0 && m.lam < 1.0);
        assert_eq!(m.partner, vec![2, 1, 0]);
        let (l, k) = (m.lam as f32, (1.0 - m.lam) as f32);
        for (i, own, other) in [(0usize, 1.0f32, 3.0f32), (1, 2.0, 2.0), (2, 3.0, 1.0)] {
            for &v in &b.images[i * 16..(i + 1) * 16] {
                assert_eq!(v, own * l + other * k, "image {i}");
            }
        }
    }

    #[test]
    fn cutmix_pastes_one_box_and_weighs_by_its_area() {
        let mut boxes = 0;
        for seed in 0..20 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut b = batch();
            let Some(m) = mix_batch(&spec(0.0, 1.0), &mut b, &mut rng) else {
                continue;
            };
            // image 0 (ones) holds threes inside the box, ones outside
            let pasted = b.images[..16].iter().filter(|&&v| v == 3.0).count();
            let kept = b.images[..16].iter().filter(|&&v| v == 1.0).count();
            assert_eq!(pasted + kept, 16, "seed {seed}");
            assert_eq!(
                m.lam,
                1.0 - pasted as f64 / 16.0,
                "seed {seed}: lam from the area"
            );
            // the middle image is mixed with itself
            assert!(b.images[16..32].iter().all(|&v| v == 2.0));
            boxes += usize::from(pasted > 0);
        }
        assert!(boxes >= 10, "only {boxes} of 20 draws cut a box");
    }

    #[test]
    fn prob_zero_mixes_nothing_and_draws_are_reproducible() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut b = batch();
        let never = MixupSpec {
            prob: 0.0,
            ..spec(0.8, 1.0)
        };
        assert_eq!(mix_batch(&never, &mut b, &mut rng), None);
        assert_eq!(b, batch());
        let draw = |seed| {
            let mut b = batch();
            let m = mix_batch(
                &spec(0.8, 1.0),
                &mut b,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            );
            (m, b)
        };
        assert_eq!(draw(7), draw(7));
    }

    #[test]
    fn the_dominant_label_counts_for_accuracy() {
        let labels = [0, 1, 2];
        let m = |lam| Mixed {
            lam,
            partner: vec![2, 1, 0],
        };
        assert_eq!(m(0.7).dominant(&labels), &labels);
        assert_eq!(m(0.3).dominant(&labels), &[2, 1, 0]);
    }
}
