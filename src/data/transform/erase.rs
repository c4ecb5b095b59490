//! `random_erasing`: torchvision's `RandomErasing` (`get_params`, then `F.erase`).

use rand::Rng;

/// The box `(top, left, height, width)` torchvision's `RandomErasing.get_params` draws for an
/// `h x w` image: up to 10 tries of an area uniform in `scale` times `h * w` and an aspect
/// ratio log-uniform in `ratio`, `round`ed to whole pixels, kept when it is smaller than the
/// image on both sides, then placed uniformly. `None` when no try fits.
pub(super) fn draw_box(
    h: usize,
    w: usize,
    scale: [f32; 2],
    ratio: [f32; 2],
    rng: &mut impl Rng,
) -> Option<(usize, usize, usize, usize)> {
    let area = (h * w) as f64;
    let (lo, hi) = (f64::from(ratio[0]).ln(), f64::from(ratio[1]).ln());
    let uniform = |rng: &mut dyn rand::RngCore, a: f64, b: f64| a + (b - a) * rng.random::<f64>();
    for _ in 0..10 {
        let erase = area * uniform(rng, f64::from(scale[0]), f64::from(scale[1]));
        let aspect = uniform(rng, lo, hi).exp();
        let eh = (erase * aspect).sqrt().round_ties_even() as usize;
        let ew = (erase / aspect).sqrt().round_ties_even() as usize;
        if !(eh < h && ew < w) {
            continue;
        }
        let top = rng.random_range(0..=h - eh);
        let left = rng.random_range(0..=w - ew);
        return Some((top, left, eh, ew));
    }
    None
}

/// `F.erase(img, i, j, h, w, v)`: every channel of the box set to `value`.
pub(super) fn erase(
    image: &mut [f32],
    [c, h, w]: [usize; 3],
    (top, left, eh, ew): (usize, usize, usize, usize),
    value: f32,
) {
    for ch in 0..c {
        for y in top..(top + eh).min(h) {
            let row = ch * h * w + y * w;
            image[row + left..row + (left + ew).min(w)].fill(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn boxes_respect_scale_ratio_and_the_border() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut seen, mut none) = (0, 0);
        for _ in 0..2000 {
            match draw_box(32, 32, [0.02, 0.33], [0.3, 3.3], &mut rng) {
                Some((t, l, eh, ew)) => {
                    seen += 1;
                    assert!(eh < 32 && ew < 32 && t + eh <= 32 && l + ew <= 32);
                    let frac = (eh * ew) as f64 / 1024.0;
                    // rounding each side moves the area a little past the range
                    assert!((0.005..=0.45).contains(&frac), "{frac}");
                }
                None => none += 1,
            }
        }
        assert!(seen > 1900, "{seen} boxes, {none} misses");
        // a scale the image cannot hold never fits
        assert_eq!(draw_box(4, 4, [1.0, 1.0], [1.0, 1.0], &mut rng), None);
    }

    #[test]
    fn erase_fills_exactly_the_box_in_every_channel() {
        let mut img: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32).collect();
        erase(&mut img, [2, 3, 4], (1, 2, 2, 1), -1.0);
        let erased: Vec<usize> = (0..img.len()).filter(|&i| img[i] == -1.0).collect();
        // channel 0: rows 1-2, column 2 -> 6, 10; channel 1: 18, 22
        assert_eq!(erased, vec![6, 10, 18, 22]);
    }
}
