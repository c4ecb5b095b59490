//! `random_resized_crop`: torchvision v2's `RandomResizedCrop` (`make_params`, then
//! `F.resized_crop`, a crop followed by `F.resize` with `antialias=True`).

use rand::Rng;

use super::geometric::Interpolation;
use super::resize::resize;

/// A crop box `(top, left, height, width)` inside the image.
pub(super) type CropBox = (usize, usize, usize, usize);

/// The box torchvision v2's `RandomResizedCrop.make_params` draws for an `h x w` image: up to 10
/// tries of an area uniform in `scale` times `h * w` and an aspect ratio (width / height)
/// log-uniform in `ratio`, each side `round`ed half to even (Python's `round`), kept when
/// `0 < side <= image side` and placed uniformly (top first). When no try fits, the central
/// fallback: the whole image, its aspect ratio clamped into `ratio`.
pub(super) fn draw_box(
    [h, w]: [usize; 2],
    scale: [f32; 2],
    ratio: [f32; 2],
    rng: &mut impl Rng,
) -> CropBox {
    let area = (h * w) as f64;
    let (lo, hi) = (f64::from(ratio[0]).ln(), f64::from(ratio[1]).ln());
    let uniform = |rng: &mut dyn rand::RngCore, a: f64, b: f64| a + (b - a) * rng.random::<f64>();
    for _ in 0..10 {
        let target = area * uniform(rng, f64::from(scale[0]), f64::from(scale[1]));
        let aspect = uniform(rng, lo, hi).exp();
        let cw = (target * aspect).sqrt().round_ties_even() as usize;
        let ch = (target / aspect).sqrt().round_ties_even() as usize;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = rng.random_range(0..=h - ch);
            let left = rng.random_range(0..=w - cw);
            return (top, left, ch, cw);
        }
    }
    central_box([h, w], ratio)
}

/// `make_params`'s fallback: the whole image when its aspect ratio (width / height) is within
/// `ratio`, else the widest or tallest central box at the nearest bound of `ratio`.
fn central_box([h, w]: [usize; 2], ratio: [f32; 2]) -> CropBox {
    let in_ratio = w as f64 / h as f64;
    let (lo, hi) = (f64::from(ratio[0]), f64::from(ratio[1]));
    let (ch, cw) = if in_ratio < lo {
        // At least one pixel: torchvision's box would be empty there (and its resize fail).
        (((w as f64 / lo).round_ties_even() as usize).max(1), w)
    } else if in_ratio > hi {
        (h, ((h as f64 * hi).round_ties_even() as usize).max(1))
    } else {
        (h, w)
    };
    (h.saturating_sub(ch) / 2, w.saturating_sub(cw) / 2, ch, cw)
}

/// `F.resized_crop(img, top, left, height, width, size, interpolation, antialias=True)` of a
/// float CHW image, in place: the box is cut into `scratch`, then resized back into `image`.
pub(super) fn resized_crop(
    image: &mut Vec<f32>,
    shape: [usize; 3],
    scratch: &mut Vec<f32>,
    (top, left, ch, cw): CropBox,
    size: [usize; 2],
    interp: Interpolation,
) {
    super::crop(
        image,
        shape,
        scratch,
        [ch, cw],
        top as isize,
        left as isize,
        0.0,
    );
    resize(scratch, [shape[0], ch, cw], image, size, interp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `F.resized_crop` on explicit boxes of the pinned images, against
    /// `scripts/golden_transforms.py`'s `resized_crop_cases` (key `resized_crop` of
    /// `tests/fixtures/transform_goldens.json`): nearest exact, bilinear within 1e-6.
    #[test]
    fn resized_crop_matches_torchvision() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let cases = doc["resized_crop"].as_array().expect("resized_crop cases");
        assert!(cases.len() >= 16, "the fixture has its cases");
        for case in cases {
            let im = &doc["images"][case["image"].as_str().unwrap()];
            let shape: [usize; 3] = serde_json::from_value(im["shape"].clone()).unwrap();
            let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
            let img: Vec<f32> = data.iter().map(|&b| f32::from(b) / 255.0).collect();
            let b: [usize; 4] = serde_json::from_value(case["box"].clone()).unwrap();
            let size: [usize; 2] = serde_json::from_value(case["size"].clone()).unwrap();
            let want_shape: [usize; 3] = serde_json::from_value(case["out_shape"].clone()).unwrap();
            assert_eq!([shape[0], size[0], size[1]], want_shape, "{}", case["size"]);
            let (interp, tol) = match case["interpolation"].as_str().unwrap() {
                "nearest" => (Interpolation::Nearest, 0.0),
                _ => (Interpolation::Bilinear, 1e-6),
            };
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            let (mut out, mut scratch) = (img, Vec::new());
            let cbox = (b[0], b[1], b[2], b[3]);
            resized_crop(&mut out, shape, &mut scratch, cbox, size, interp);
            assert_eq!(out.len(), want.len());
            for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "{} box {b:?} to {size:?} {interp:?}: value {i}: runner {g}, torchvision {w}",
                    case["image"]
                );
            }
        }
    }

    #[test]
    fn boxes_are_inside_and_within_scale_and_ratio_unless_the_fallback() {
        let cases = [
            ([32, 32], [0.08, 1.0], [0.75, 4.0 / 3.0], "defaults, square"),
            ([11, 40], [0.08, 1.0], [0.75, 4.0 / 3.0], "defaults, wide"),
            ([50, 30], [0.5, 1.0], [0.5, 2.0], "tall, large boxes"),
            (
                [8, 8],
                [0.9, 1.0],
                [0.2, 5.0],
                "small image, rounding matters",
            ),
        ];
        for (hw @ [h, w], scale, ratio, msg) in cases {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let fallback = central_box(hw, ratio);
            let mut drawn = 0;
            for _ in 0..2000 {
                let b @ (top, left, ch, cw) = draw_box(hw, scale, ratio, &mut rng);
                assert!(ch > 0 && cw > 0, "{msg}: empty box {b:?}");
                assert!(
                    top + ch <= h && left + cw <= w,
                    "{msg}: {b:?} leaves {hw:?}"
                );
                if b == fallback {
                    continue;
                }
                drawn += 1;
                // The box's sides are rounded from the drawn area and ratio: allow half a pixel
                // on each side.
                let area = (h * w) as f64;
                let (chf, cwf) = (ch as f64, cw as f64);
                let max_area = (chf + 0.5) * (cwf + 0.5) / area;
                let min_area = (chf - 0.5) * (cwf - 0.5) / area;
                assert!(
                    max_area >= f64::from(scale[0]) && min_area <= f64::from(scale[1]),
                    "{msg}: {b:?} area outside {scale:?}"
                );
                let (rmin, rmax) = ((cwf - 0.5) / (chf + 0.5), (cwf + 0.5) / (chf - 0.5));
                assert!(
                    rmax >= f64::from(ratio[0]) && rmin <= f64::from(ratio[1]),
                    "{msg}: {b:?} ratio outside {ratio:?}"
                );
            }
            // A drawn box of the whole image counts as the fallback here, so the bar is low.
            assert!(drawn > 500, "{msg}: draws fit ({drawn})");
        }
    }

    #[test]
    fn boxes_that_never_fit_give_torchvisions_central_fallback() {
        // torchvision: in_ratio = w / h; below min(ratio): w = W, h = round(w / min(ratio));
        // above max(ratio): h = H, w = round(h * max(ratio)); else the whole image;
        // top = (H - h) // 2, left = (W - w) // 2.
        let cases = [
            (
                [8, 8],
                [0.5, 1.0],
                [10.0, 10.0],
                (3, 0, 1, 8),
                "square, ratio 10: h = round(0.8)",
            ),
            (
                [20, 20],
                [0.5, 1.0],
                [0.1, 0.1],
                (0, 9, 20, 2),
                "square, ratio 0.1: w = 2",
            ),
            (
                [9, 30],
                [2.0, 3.0],
                [0.5, 2.0],
                (0, 6, 9, 18),
                "wide, scale > 1: w = 18",
            ),
            (
                [30, 9],
                [2.0, 3.0],
                [0.5, 2.0],
                (6, 0, 18, 9),
                "tall, scale > 1: h = 18",
            ),
            (
                [10, 12],
                [2.0, 3.0],
                [0.75, 4.0 / 3.0],
                (0, 0, 10, 12),
                "ratio inside: all",
            ),
        ];
        for (hw, scale, ratio, want, msg) in cases {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
            for _ in 0..50 {
                assert_eq!(draw_box(hw, scale, ratio, &mut rng), want, "{msg}");
            }
        }
    }
}
