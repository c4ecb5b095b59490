//! `resize`'s kernel with torchvision v2's tensor semantics: `F.resize` of a float CHW image,
//! bilinear with `antialias=True` (torchvision's default) or nearest.
//!
//! Antialiased bilinear is ATen's `_upsample_bilinear2d_aa` (PIL's filter): each output pixel
//! of a dimension averages the inputs under a triangle stretched by the scale when shrinking,
//! with weights normalised to sum to one; the width is resampled first, then the height, in
//! `f32` as torch does for float images. Nearest is `interpolate(mode="nearest")`: the source
//! index `floor(i * in / out)` in `f32`, which is not `nearest-exact`.

use super::geometric::Interpolation;

/// One dimension's taps: for every output index, the first input index and its weights.
struct Taps {
    start: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

/// `_compute_indices_min_size_weights_aa` with the bilinear filter (`interp_size = 2`).
fn aa_taps(input: usize, output: usize) -> Taps {
    let scale = input as f32 / output as f32;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let filter = |x: f32| {
        let x = x.abs();
        if x < 1.0 {
            1.0 - x
        } else {
            0.0
        }
    };
    let mut taps = Taps {
        start: Vec::with_capacity(output),
        weights: Vec::with_capacity(output),
    };
    for i in 0..output {
        let center = scale * (i as f32 + 0.5);
        // C++ `int64_t(x)` truncates toward zero; a negative start is clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).clamp(0, input as i64) as usize;
        let mut w: Vec<f32> = (xmin..xmax.max(xmin))
            .map(|j| filter((j as f32 - center + 0.5) * invscale))
            .collect();
        let total: f32 = w.iter().sum();
        if total != 0.0 {
            w.iter_mut().for_each(|x| *x /= total);
        }
        taps.start.push(xmin);
        taps.weights.push(w);
    }
    taps
}

/// `interpolate(mode="nearest")`'s source index of every output index (`nearest_idx`).
fn nearest_taps(input: usize, output: usize) -> Taps {
    let scale = input as f32 / output as f32;
    let start = (0..output)
        .map(|i| {
            if output == input {
                i
            } else if output == 2 * input {
                i >> 1
            } else {
                ((i as f32 * scale).floor() as usize).min(input.saturating_sub(1))
            }
        })
        .collect();
    Taps {
        start,
        weights: vec![vec![1.0]; output],
    }
}

fn taps(input: usize, output: usize, interp: Interpolation) -> Taps {
    match interp {
        Interpolation::Nearest => nearest_taps(input, output),
        Interpolation::Bilinear => aa_taps(input, output),
    }
}

/// torchvision v2 `F.resize(img, [oh, ow], interpolation, antialias=True)` of a float CHW
/// image into `dst` (`c * oh * ow` values). An empty input gives zeros.
pub(crate) fn resize(
    src: &[f32],
    [c, h, w]: [usize; 3],
    dst: &mut Vec<f32>,
    [oh, ow]: [usize; 2],
    interp: Interpolation,
) {
    dst.clear();
    dst.resize(c * oh * ow, 0.0);
    if h == 0 || w == 0 || oh == 0 || ow == 0 {
        return;
    }
    let (tx, ty) = (taps(w, ow, interp), taps(h, oh, interp));
    // torchvision returns the image itself when the size does not change.
    let (same_w, same_h) = (w == ow, h == oh);
    let mut rows = vec![0.0f32; h * ow];
    for (plane, out) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(oh * ow)) {
        // Width first, as ATen's separable kernel does.
        for (row, orow) in plane.chunks_exact(w).zip(rows.chunks_exact_mut(ow)) {
            if same_w {
                orow.copy_from_slice(row);
                continue;
            }
            for (o, (&s, ws)) in orow.iter_mut().zip(tx.start.iter().zip(&tx.weights)) {
                *o = ws
                    .iter()
                    .zip(&row[s..])
                    .fold(0.0, |acc, (wt, x)| acc + wt * x);
            }
        }
        for (y, orow) in out.chunks_exact_mut(ow).enumerate() {
            if same_h {
                orow.copy_from_slice(&rows[y * ow..][..ow]);
                continue;
            }
            let (s, ws) = (ty.start[y], &ty.weights[y]);
            for (x, o) in orow.iter_mut().enumerate() {
                *o = ws
                    .iter()
                    .enumerate()
                    .fold(0.0, |acc, (k, wt)| acc + wt * rows[(s + k) * ow + x]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::ResizeSize;

    /// Every `resize` case of `tests/fixtures/transform_goldens.json`: torchvision v2's
    /// `F.resize(x / 255, size, interpolation, antialias=True)` (`scripts/golden_transforms.py`,
    /// whose header names the versions), output shape included. Nearest exactly (the same
    /// source pixels); antialiased bilinear to within 1e-6 (f32 weights summed in another
    /// order; pixels are in [0, 1], so that is far below one uint8 level, 1/255).
    #[test]
    fn resize_matches_torchvision() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let cases = doc["resize"].as_array().expect("resize cases");
        assert!(cases.len() > 40, "the fixture has its cases");
        for case in cases {
            let im = &doc["images"][case["image"].as_str().unwrap()];
            let shape: [usize; 3] = serde_json::from_value(im["shape"].clone()).unwrap();
            let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
            let img: Vec<f32> = data.iter().map(|&b| f32::from(b) / 255.0).collect();
            let size = match &case["size"] {
                serde_json::Value::Array(_) => {
                    serde_json::from_value(case["size"].clone()).unwrap()
                }
                s => ResizeSize::Shorter(s.as_u64().unwrap() as usize).output([shape[1], shape[2]]),
            };
            let want_shape: [usize; 3] = serde_json::from_value(case["out_shape"].clone()).unwrap();
            assert_eq!([shape[0], size[0], size[1]], want_shape, "{}", case["size"]);
            let (interp, tol) = match case["interpolation"].as_str().unwrap() {
                "nearest" => (Interpolation::Nearest, 0.0),
                _ => (Interpolation::Bilinear, 1e-6),
            };
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            let mut out = Vec::new();
            resize(&img, shape, &mut out, size, interp);
            assert_eq!(out.len(), want.len());
            for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "{} to {size:?} {interp:?}: value {i}: runner {g}, torchvision {w}",
                    case["image"]
                );
            }
        }
    }

    #[test]
    fn the_shorter_side_takes_the_size() {
        // torchvision: int(size * long / short), truncated.
        let cases = [
            ([8, 8], 4, [4, 4], "square"),
            ([7, 9], 5, [5, 6], "wide: 5 * 9 / 7 = 6.43"),
            ([11, 6], 4, [7, 4], "tall: 4 * 11 / 6 = 7.33"),
            ([11, 6], 13, [23, 13], "tall, enlarged: 13 * 11 / 6 = 23.8"),
            ([0, 6], 4, [0, 6], "empty: unchanged"),
        ];
        for (hw, size, want, msg) in cases {
            assert_eq!(ResizeSize::Shorter(size).output(hw), want, "{msg}");
        }
    }

    #[test]
    fn weights_sum_to_one_and_same_size_is_the_identity() {
        for (i, o) in [(8, 3), (7, 7), (3, 10), (1, 5), (10, 1)] {
            let t = aa_taps(i, o);
            for (s, w) in t.start.iter().zip(&t.weights) {
                assert!(s + w.len() <= i, "{i} -> {o}: taps inside the input");
                let sum: f32 = w.iter().sum();
                assert!((sum - 1.0).abs() < 1e-6, "{i} -> {o}: weights {w:?}");
            }
        }
        let img: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32 / 24.0).collect();
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            let mut out = Vec::new();
            resize(&img, [2, 3, 4], &mut out, [3, 4], interp);
            assert_eq!(out, img, "{interp:?}");
        }
    }
}
