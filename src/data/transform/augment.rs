//! The augmentation policies of torchvision v2: `TrivialAugmentWide` and `RandAugment`. Their
//! op lists and magnitude tables (`_AUGMENTATION_SPACE`), their draws, and their `_apply_op`
//! (`_apply_image_or_video_transform`) on a float CHW image, through [`super::color`] and
//! [`super::geometric`].
//!
//! torchvision documents the policies for uint8 images, but runs them on float ones too, and
//! that is what this matches: runner's pipeline holds f32 images in `[0, 1]` before
//! `normalize` (as for `color_jitter`), so every op is torchvision's float kernel (`solarize`'s
//! threshold is the table entry times the float bound 1, `posterize` is the float branch), and
//! nothing is rounded to uint8 levels between ops. On a uint8 image torchvision's results
//! differ from these by that rounding (up to half a level per op).
//!
//! One difference is kept: the shears' angle `degrees(atan(m))` is a double in torchvision
//! and an f32 in [`Affine`], which moves bilinear outputs by about 1e-6 (nearest sampling
//! agrees exactly on the goldens).

use rand::Rng;

use super::color;
use super::geometric::{self, Affine, Interpolation};

/// Which policy's magnitude tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// `TrivialAugmentWide`: one op per image, a random bin of its table.
    TrivialAugmentWide,
    /// `RandAugment`: `num_ops` ops per image, all at one bin.
    RandAugment,
}

/// The ops, in the order of torchvision's `_AUGMENTATION_SPACE` (which the op draw indexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AugOp {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
}

/// Every op, in torchvision's order.
pub(crate) const OPS: [AugOp; 14] = [
    AugOp::Identity,
    AugOp::ShearX,
    AugOp::ShearY,
    AugOp::TranslateX,
    AugOp::TranslateY,
    AugOp::Rotate,
    AugOp::Brightness,
    AugOp::Color,
    AugOp::Contrast,
    AugOp::Sharpness,
    AugOp::Posterize,
    AugOp::Solarize,
    AugOp::AutoContrast,
    AugOp::Equalize,
];

/// `torch.linspace(start, end, steps)[i]` in float32, as ATen's CPU kernel computes it: a float
/// step, the first half counted up from `start`, the second back from `end`, each as one fused
/// multiply-add (GCC contracts `end - step * k` in that kernel; checked against
/// `torch.linspace` for many ranges and sizes, and by the table goldens below).
fn linspace_at(start: f64, end: f64, steps: usize, i: usize) -> f64 {
    let (s, e) = (start as f32, end as f32);
    if steps == 1 {
        return f64::from(s);
    }
    let step = (e - s) / (steps - 1) as f32;
    f64::from(if i < steps / 2 {
        step.mul_add(i as f32, s)
    } else {
        (-step).mul_add((steps - i - 1) as f32, e)
    })
}

impl AugOp {
    /// Whether the magnitude gets a random sign.
    pub(crate) fn signed(self) -> bool {
        use AugOp::*;
        matches!(
            self,
            ShearX
                | ShearY
                | TranslateX
                | TranslateY
                | Rotate
                | Brightness
                | Color
                | Contrast
                | Sharpness
        )
    }
}

/// One policy's magnitude tables (`_AUGMENTATION_SPACE`) for one image size: what a pipeline
/// holds, built once. Entries are computed when drawn, so a large `num_magnitude_bins` costs
/// nothing up front.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Space {
    policy: Policy,
    bins: usize,
    h: usize,
    w: usize,
}

impl Space {
    /// The tables of `policy` with `bins` entries (at least 2: posterize's table divides by
    /// `bins - 1`) for `h x w` images.
    pub(crate) fn new(policy: Policy, bins: usize, h: usize, w: usize) -> Space {
        Space { policy, bins, h, w }
    }

    /// Entry `bin` (`< bins`) of `op`'s table, or `None` for the ops without one (their
    /// magnitude is 0).
    pub(crate) fn magnitude(&self, op: AugOp, bin: usize) -> Option<f64> {
        use AugOp::*;
        let (bins, h, w) = (self.bins, self.h as f64, self.w as f64);
        let (shear, translate_x, translate_y, rotate, enhance, bits) = match self.policy {
            Policy::TrivialAugmentWide => (0.99, 32.0, 32.0, 135.0, 0.99, 6.0),
            Policy::RandAugment => (0.3, 150.0 / 331.0 * w, 150.0 / 331.0 * h, 30.0, 0.9, 4.0),
        };
        let up_to = |end: f64| linspace_at(0.0, end, bins, bin);
        Some(match op {
            Identity | AutoContrast | Equalize => return None,
            ShearX | ShearY => up_to(shear),
            TranslateX => up_to(translate_x),
            TranslateY => up_to(translate_y),
            Rotate => up_to(rotate),
            Brightness | Color | Contrast | Sharpness => up_to(enhance),
            // (8 - (arange(bins) / ((bins - 1) / bits))).round().int(): the divisor a double
            // made float32, the rest in float32, rounded half to even
            Posterize => {
                let d = ((bins - 1) as f64 / bits) as f32;
                f64::from((8.0 - bin as f32 / d).round_ties_even())
            }
            Solarize => linspace_at(1.0, 0.0, bins, bin),
        })
    }

    /// `op`'s whole table, as torchvision's lambda returns it.
    #[cfg(test)]
    fn table(&self, op: AugOp) -> Option<Vec<f64>> {
        (0..self.bins).map(|i| self.magnitude(op, i)).collect()
    }

    /// `TrivialAugmentWide.forward`'s draws with runner's generator, in torchvision's order: an
    /// op uniformly, then (where the op has a table) a bin uniformly and, for signed ops, a
    /// minus sign when a uniform draw is `<= 0.5`.
    pub(crate) fn draw_trivial(&self, rng: &mut impl Rng) -> (AugOp, f64) {
        let op = OPS[rng.random_range(0..OPS.len())];
        let m = match self.magnitude(op, 0) {
            Some(_) => {
                let bin = rng.random_range(0..self.bins);
                let m = self.magnitude(op, bin).unwrap_or(0.0);
                sign(op, m, rng)
            }
            None => 0.0,
        };
        (op, m)
    }

    /// One of `RandAugment.forward`'s `num_ops` draws: an op uniformly, its table's entry at
    /// `bin` (the policy's `magnitude`, `< bins`), and a sign as [`Space::draw_trivial`].
    pub(crate) fn draw_rand(&self, bin: usize, rng: &mut impl Rng) -> (AugOp, f64) {
        let op = OPS[rng.random_range(0..OPS.len())];
        let m = match self.magnitude(op, bin) {
            Some(m) => sign(op, m, rng),
            None => 0.0,
        };
        (op, m)
    }
}

fn sign(op: AugOp, m: f64, rng: &mut impl Rng) -> f64 {
    if op.signed() && rng.random::<f32>() <= 0.5 {
        -m
    } else {
        m
    }
}

/// How many ops a policy draws per image, and at which bins.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Draws {
    /// One op at a random bin.
    Trivial,
    /// `num_ops` ops, each at bin `magnitude`.
    Rand { num_ops: usize, magnitude: usize },
}

/// A compiled `trivial_augment_wide` or `rand_augment` for images of one shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Augment {
    space: Space,
    draws: Draws,
    interp: Interpolation,
    /// Outside the image after a geometric op, on the `[0, 1]` scale.
    fill: f32,
}

impl Augment {
    /// `TrivialAugmentWide(num_magnitude_bins=bins, interpolation, fill)` for `[c, h, w]` images.
    pub(crate) fn trivial(
        bins: usize,
        [_, h, w]: [usize; 3],
        interp: Interpolation,
        fill: f32,
    ) -> Augment {
        Augment {
            space: Space::new(Policy::TrivialAugmentWide, bins, h, w),
            draws: Draws::Trivial,
            interp,
            fill,
        }
    }

    /// `RandAugment(num_ops, magnitude, num_magnitude_bins=bins, interpolation, fill)`, with
    /// `magnitude < bins`.
    pub(crate) fn rand(
        num_ops: usize,
        magnitude: usize,
        bins: usize,
        [_, h, w]: [usize; 3],
        interp: Interpolation,
        fill: f32,
    ) -> Augment {
        Augment {
            space: Space::new(Policy::RandAugment, bins, h, w),
            draws: Draws::Rand { num_ops, magnitude },
            interp,
            fill,
        }
    }

    /// The policy's `forward` on one image: its draws from `rng`, each op applied in turn. The
    /// result is in `image`; `scratch` is working space.
    pub(crate) fn apply(
        &self,
        image: &mut Vec<f32>,
        shape: [usize; 3],
        scratch: &mut Vec<f32>,
        rng: &mut impl Rng,
    ) {
        let (n, bin) = match self.draws {
            Draws::Trivial => (1, None),
            Draws::Rand { num_ops, magnitude } => (num_ops, Some(magnitude)),
        };
        for _ in 0..n {
            let (op, m) = match bin {
                None => self.space.draw_trivial(rng),
                Some(b) => self.space.draw_rand(b, rng),
            };
            apply_op(image, shape, op, m, self.interp, self.fill, scratch);
        }
    }
}

/// `_apply_image_or_video_transform(image, op, magnitude, interpolation, fill)` on a float
/// image in `[0, 1]` (`fill` on that scale, always given). Writes the result back into `image`;
/// `scratch` is working space.
pub(crate) fn apply_op(
    image: &mut Vec<f32>,
    shape: [usize; 3],
    op: AugOp,
    magnitude: f64,
    interp: Interpolation,
    fill: f32,
    scratch: &mut Vec<f32>,
) {
    use AugOp::*;
    let geo = |a: Affine, image: &mut Vec<f32>, scratch: &mut Vec<f32>| {
        geometric::affine(image, shape, scratch, &a, interp, fill);
        std::mem::swap(image, scratch);
    };
    // Shears about the corner [0, 0] by degrees(atan(m)), as torchvision (not `m` degrees).
    let shear = (magnitude.atan().to_degrees()) as f32;
    let plain = Affine {
        angle: 0.0,
        translate: [0.0, 0.0],
        scale: 1.0,
        shear: [0.0, 0.0],
        center: None,
    };
    match op {
        Identity => {}
        ShearX => geo(
            Affine {
                shear: [shear, 0.0],
                center: Some([0.0, 0.0]),
                ..plain
            },
            image,
            scratch,
        ),
        ShearY => geo(
            Affine {
                shear: [0.0, shear],
                center: Some([0.0, 0.0]),
                ..plain
            },
            image,
            scratch,
        ),
        // translate=[int(magnitude), 0]: whole pixels, truncated toward zero
        TranslateX => geo(
            Affine {
                translate: [magnitude.trunc() as f32, 0.0],
                ..plain
            },
            image,
            scratch,
        ),
        TranslateY => geo(
            Affine {
                translate: [0.0, magnitude.trunc() as f32],
                ..plain
            },
            image,
            scratch,
        ),
        Rotate => {
            geometric::rotate(image, shape, scratch, magnitude as f32, interp, fill);
            std::mem::swap(image, scratch);
        }
        Brightness => color::adjust_brightness(image, 1.0 + magnitude),
        Color => color::adjust_saturation(image, shape, 1.0 + magnitude),
        Contrast => color::adjust_contrast(image, shape, 1.0 + magnitude),
        Sharpness => color::adjust_sharpness(image, shape, 1.0 + magnitude, scratch),
        Posterize => color::posterize(image, magnitude as u32),
        // bound * magnitude, the bound of a float image being 1
        Solarize => color::solarize(image, magnitude),
        AutoContrast => color::autocontrast(image, shape),
        Equalize => color::equalize(image, shape),
    }
}

#[cfg(test)]
mod tests {
    use super::super::color::tests::{golden_doc, golden_images};
    use super::*;
    use rand::SeedableRng;

    fn op_named(name: &str) -> AugOp {
        const NAMES: [&str; 14] = [
            "Identity",
            "ShearX",
            "ShearY",
            "TranslateX",
            "TranslateY",
            "Rotate",
            "Brightness",
            "Color",
            "Contrast",
            "Sharpness",
            "Posterize",
            "Solarize",
            "AutoContrast",
            "Equalize",
        ];
        OPS[NAMES.iter().position(|n| *n == name).expect("known op")]
    }

    /// Both policies' magnitude tables against torchvision's `_AUGMENTATION_SPACE`
    /// (`policy_tables` of the fixture, `scripts/golden_transforms.py`): exactly, as both are
    /// float32 `linspace`s (and posterize's rounded bits).
    #[test]
    fn magnitude_tables_match_torchvision() {
        let doc = golden_doc();
        let cases = doc["policy_tables"].as_array().expect("policy_tables");
        assert!(cases.len() > 300);
        for case in cases {
            let policy = match case["policy"].as_str().unwrap() {
                "trivial_augment_wide" => Policy::TrivialAugmentWide,
                _ => Policy::RandAugment,
            };
            let op = op_named(case["op"].as_str().unwrap());
            let get = |k: &str| case[k].as_u64().unwrap() as usize;
            let want: Option<Vec<f64>> = serde_json::from_value(case["values"].clone()).unwrap();
            let got = Space::new(policy, get("bins"), get("height"), get("width")).table(op);
            let what = format!(
                "{policy:?} {op:?} bins {} {}x{}",
                get("bins"),
                get("height"),
                get("width")
            );
            assert_eq!(got, want, "{what}");
            assert_eq!(op.signed(), case["signed"].as_bool().unwrap(), "{what}");
        }
    }

    /// `_apply_op` for every op name at several magnitudes and both signs (`policy_ops` of the
    /// fixture), nearest and bilinear: colour ops to within 5e-7 as in `color.rs`; geometric
    /// ones exactly with nearest sampling and to within 1e-6 with bilinear, as in
    /// `geometric.rs` (2e-6 for the shears, whose angle runner rounds to f32).
    #[test]
    fn apply_op_matches_torchvision() {
        let doc = golden_doc();
        let images = golden_images(&doc);
        let cases = doc["policy_ops"].as_array().expect("policy_ops");
        assert!(cases.len() > 300);
        let mut scratch = Vec::new();
        let mut bad = Vec::new();
        for case in cases {
            let name = case["image"].as_str().unwrap();
            let op = op_named(case["op"].as_str().unwrap());
            let (_, shape, img) = images.iter().find(|(n, ..)| n == name).unwrap();
            let m = case["magnitude"].as_f64().unwrap();
            let interp = match case["interpolation"].as_str().unwrap() {
                "nearest" => Interpolation::Nearest,
                _ => Interpolation::Bilinear,
            };
            let fill = case["fill"].as_f64().unwrap() as f32;
            let mut got = img.clone();
            apply_op(&mut got, *shape, op, m, interp, fill, &mut scratch);
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            assert_eq!(got.len(), want.len());
            let geometric = matches!(
                op,
                AugOp::ShearX
                    | AugOp::ShearY
                    | AugOp::TranslateX
                    | AugOp::TranslateY
                    | AugOp::Rotate
            );
            // The shears' angle `degrees(atan(m))` is a double in torchvision and an f32 in
            // runner's `Affine` (whose other callers draw f32 angles): a rounding of ~3e-8
            // relative, which moves bilinear outputs by up to ~1e-6 more.
            let shear = matches!(op, AugOp::ShearX | AugOp::ShearY);
            let tol = match (geometric, interp) {
                (true, Interpolation::Nearest) => 0.0,
                (true, Interpolation::Bilinear) if shear => 2e-6,
                (true, Interpolation::Bilinear) => 1e-6,
                (false, _) => 5e-7,
            };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if (g - w).abs() > tol {
                    bad.push(format!(
                        "{op:?}({m}) {interp:?} fill {fill} on {name}, value {i}: {g} vs torchvision {w}"
                    ));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "{} mismatches:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    /// The draws replayed by hand from a clone of the generator, in torchvision's order: an op
    /// index among the 14, then, for an op with a table, a bin (TrivialAugmentWide only) and,
    /// for a signed op, a uniform `<= 0.5` for minus; the magnitude is that table entry.
    #[test]
    fn draws_follow_the_tables() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let wide = Space::new(Policy::TrivialAugmentWide, 31, 32, 32);
        let rand = Space::new(Policy::RandAugment, 31, 7, 9);
        let mut per_op = [0usize; 14];
        let (mut neg, mut pos) = (0, 0);
        let mut bins_seen = std::collections::HashSet::new();
        for k in 0..28_000 {
            let mut replay = rng.clone();
            let (space, got) = if k % 2 == 0 {
                (&wide, wide.draw_trivial(&mut rng))
            } else {
                (&rand, rand.draw_rand(9, &mut rng))
            };
            let i = replay.random_range(0..14);
            let op = OPS[i];
            let want = match space.magnitude(op, 0) {
                None => 0.0,
                Some(_) => {
                    let bin = if k % 2 == 0 {
                        replay.random_range(0..31)
                    } else {
                        9
                    };
                    let m = space.magnitude(op, bin).unwrap();
                    if k % 2 == 0 {
                        bins_seen.insert((i, bin));
                    }
                    if op.signed() && replay.random::<f32>() <= 0.5 {
                        neg += 1;
                        -m
                    } else {
                        pos += usize::from(op.signed());
                        m
                    }
                }
            };
            per_op[i] += 1;
            assert_eq!(got, (op, want), "draw {k}");
            assert_eq!(rng, replay, "draw {k} used as many numbers as the replay");
        }
        // each op about 28000 / 14 = 2000 times; signs even; every bin of the 11 tabled ops
        assert!(
            per_op.iter().all(|&k| (1800..2200).contains(&k)),
            "{per_op:?}"
        );
        assert!(
            (neg as f64 / (neg + pos) as f64 - 0.5).abs() < 0.03,
            "{neg} vs {pos}"
        );
        assert_eq!(bins_seen.len(), 11 * 31);
    }
}
