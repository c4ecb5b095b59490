//! Geometric kernels with torchvision v2's tensor semantics: `F.affine` and `F.rotate` (without
//! `expand`) on a float CHW image.
//!
//! torchvision builds the inverse affine matrix in double precision
//! (`_get_inverse_affine_matrix`), turns it into a `float32` sampling grid (`_affine_grid`) and
//! samples with `grid_sample(mode, padding_mode="zeros", align_corners=False)`, sampling a plane
//! of ones alongside to blend in the fill value. The arithmetic below follows it step by step in
//! the same precision and order (no fused multiply-adds), so that nearest sampling picks the same
//! pixels even where a coordinate falls exactly half-way, and bilinear agrees to float rounding.

/// How a transformed image samples its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interpolation {
    /// The nearest pixel, coordinates rounded half to even (`grid_sample`'s `nearbyint`).
    Nearest,
    /// Bilinear between the four neighbours, pixels outside the image counting as zero.
    Bilinear,
}

/// The parameters of torchvision's `F.affine`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    /// Rotation in degrees, as `F.affine`'s `angle`: positive turns the picture clockwise on
    /// screen (y points down). `F.rotate(img, a)` is `angle = -a` (see [`rotate`]).
    pub angle: f32,
    /// Shift `[x, y]` in pixels, after rotation, scale and shear. `RandomAffine` draws whole
    /// pixels; `F.affine` itself uses the values as given.
    pub translate: [f32; 2],
    /// Scale factor, `> 0`.
    pub scale: f32,
    /// Shear angles `[x, y]` in degrees.
    pub shear: [f32; 2],
    /// Centre of rotation, scale and shear in pixel coordinates (`[x, y]`, the top-left corner of
    /// the image at `(0, 0)`); `None` is the centre of the image, `(w / 2, h / 2)`.
    pub center: Option<[f32; 2]>,
}

impl Affine {
    /// A rotation by `angle` (`F.affine`'s sign) about the centre, nothing else.
    pub(crate) fn rotation(angle: f32) -> Affine {
        Affine {
            angle,
            translate: [0.0, 0.0],
            scale: 1.0,
            shear: [0.0, 0.0],
            center: None,
        }
    }

    /// torchvision's `_get_inverse_affine_matrix(center_f, angle, translate, scale, shear)`,
    /// with `center_f` relative to the image centre as `affine_image` passes it: the map from
    /// output to input pixel coordinates (both centred), as `[a, b, c, d, e, f]` for
    /// `x' = a x + b y + c`, `y' = d x + e y + f`.
    fn inverse_matrix(&self, w: usize, h: usize) -> [f64; 6] {
        let (cx, cy) = match self.center {
            Some([x, y]) => (f64::from(x) - w as f64 * 0.5, f64::from(y) - h as f64 * 0.5),
            None => (0.0, 0.0),
        };
        let rot = f64::from(self.angle).to_radians();
        let sx = f64::from(self.shear[0]).to_radians();
        let sy = f64::from(self.shear[1]).to_radians();
        let (tx, ty) = (f64::from(self.translate[0]), f64::from(self.translate[1]));
        let scale = f64::from(self.scale);

        let cos_sy = sy.cos();
        let tan_sx = sx.tan();
        let a = (rot - sy).cos() / cos_sy;
        let b = -(a * tan_sx + rot.sin());
        let c = (rot - sy).sin() / cos_sy;
        let d = rot.cos() - c * tan_sx;

        let mut m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0];
        let (cx_tx, cy_ty) = (cx + tx, cy + ty);
        m[2] += cx - m[0] * cx_tx - m[1] * cy_ty;
        m[5] += cy - m[3] * cx_tx - m[4] * cy_ty;
        m
    }
}

/// torchvision v2 `F.affine(img, angle, translate, scale, shear, interpolation, fill, center)`
/// on a float CHW image, fill on the [0,1] scale (one value for all channels).
///
/// The fill is blended as torchvision does when `fill` is given (as `RandomAffine` and
/// `RandomRotation` always give it, `0` by default): a sampled plane of ones is the weight `m`
/// of the image at each output pixel, and the output is `(v - fill) * m + fill`. With bilinear
/// sampling that darkens (or tints) the edge pixels that straddle the border even for
/// `fill = 0`; with nearest sampling `m` is 0 or 1.
pub(crate) fn affine(
    src: &[f32],
    shape: [usize; 3],
    dst: &mut Vec<f32>,
    a: &Affine,
    interp: Interpolation,
    fill: f32,
) {
    let m = a.inverse_matrix(shape[2], shape[1]);
    sample(src, shape, dst, m, interp, fill);
}

/// torchvision v2 `F.rotate(img, angle, interpolation, expand=False, center=None, fill)`:
/// counter-clockwise by `angle` degrees about the image centre. Like torchvision, multiples of
/// 180 degrees (and of 90 on square images) are exact pixel moves, and any other angle is
/// [`affine`] with `-angle`.
pub(crate) fn rotate(
    src: &[f32],
    shape: [usize; 3],
    dst: &mut Vec<f32>,
    angle: f32,
    interp: Interpolation,
    fill: f32,
) {
    let [c, h, w] = shape;
    // Python's `angle % 360` (result in [0, 360)), on the double torchvision sees.
    let turn = f64::from(angle).rem_euclid(360.0);
    let quarter = if turn == 0.0 {
        Some(0)
    } else if turn == 180.0 {
        Some(2)
    } else if h == w && turn == 90.0 {
        Some(1)
    } else if h == w && turn == 270.0 {
        Some(3)
    } else {
        None
    };
    let Some(k) = quarter else {
        affine(src, shape, dst, &Affine::rotation(-angle), interp, fill);
        return;
    };
    // `torch.rot90(img, k, dims=(-2, -1))`, counter-clockwise; h == w unless k is even.
    dst.clear();
    dst.reserve(c * h * w);
    for plane in src.chunks_exact(h * w).take(c) {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = match k {
                    0 => (y, x),
                    1 => (x, w - 1 - y),
                    2 => (h - 1 - y, w - 1 - x),
                    _ => (h - 1 - x, y),
                };
                dst.push(plane[sy * w + sx]);
            }
        }
    }
}

/// `_affine_grid` and `_apply_grid_transform`: for every output pixel, the source position the
/// inverse matrix `m` (centred pixel coordinates) gives, sampled as `grid_sample` does.
fn sample(
    src: &[f32],
    [c, h, w]: [usize; 3],
    dst: &mut Vec<f32>,
    m: [f64; 6],
    interp: Interpolation,
    fill: f32,
) {
    let hw = h * w;
    dst.resize(c * hw, 0.0);
    if hw == 0 {
        return;
    }
    // theta = tensor(matrix, float32), divided by [0.5 w, 0.5 h] (float32) row by row.
    let (half_w, half_h) = (0.5 * w as f32, 0.5 * h as f32);
    let rx = [
        m[0] as f32 / half_w,
        m[1] as f32 / half_w,
        m[2] as f32 / half_w,
    ];
    let ry = [
        m[3] as f32 / half_h,
        m[4] as f32 / half_h,
        m[5] as f32 / half_h,
    ];
    // grid_sample's unnormalisation for align_corners=False: ((g + 1) * size / 2) - 0.5.
    let (scale_w, scale_h) = (w as f32 / 2.0, h as f32 / 2.0);
    let (wi, hi) = (w as i64, h as i64);
    for oy in 0..h {
        // torch.linspace((1 - n) / 2, (n - 1) / 2, n): exact half-integers.
        let by = oy as f32 - (h as f32 - 1.0) * 0.5;
        for ox in 0..w {
            let bx = ox as f32 - (w as f32 - 1.0) * 0.5;
            let gx = (bx * rx[0] + by * rx[1]) + rx[2];
            let gy = (bx * ry[0] + by * ry[1]) + ry[2];
            let ix = (gx + 1.0) * scale_w - 0.5;
            let iy = (gy + 1.0) * scale_h - 0.5;
            let o = oy * w + ox;
            match interp {
                Interpolation::Nearest => {
                    let (nx, ny) = (ix.round_ties_even(), iy.round_ties_even());
                    let inside = nx > -1.0 && nx < w as f32 && ny > -1.0 && ny < h as f32;
                    for ch in 0..c {
                        dst[ch * hw + o] = if inside {
                            src[ch * hw + ny as usize * w + nx as usize]
                        } else {
                            fill
                        };
                    }
                }
                Interpolation::Bilinear => {
                    let (x0, y0) = (ix.floor(), iy.floor());
                    let (fx, fy) = (ix - x0, iy - y0);
                    let (ex, sy) = (1.0 - fx, 1.0 - fy);
                    let weights = [sy * ex, sy * fx, fy * ex, fy * fx];
                    let (x0, y0) = (x0 as i64, y0 as i64);
                    let corners = [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)];
                    let index = corners.map(|(x, y)| {
                        ((0..wi).contains(&x) && (0..hi).contains(&y))
                            .then(|| y as usize * w + x as usize)
                    });
                    // The plane of ones torchvision samples beside the image.
                    let mut mask = 0.0f32;
                    for (i, wt) in index.iter().zip(weights) {
                        mask += if i.is_some() { wt } else { 0.0 };
                    }
                    for ch in 0..c {
                        let plane = &src[ch * hw..][..hw];
                        let mut v = 0.0f32;
                        for (i, wt) in index.iter().zip(weights) {
                            v += i.map_or(0.0, |i| plane[i]) * wt;
                        }
                        dst[ch * hw + o] = (v - fill) * mask + fill;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        serde_json::from_str(&text).expect("valid JSON")
    }

    /// A pinned input of the fixture as the float image `x / 255`, with its shape.
    fn image(doc: &serde_json::Value, name: &str) -> ([usize; 3], Vec<f32>) {
        let im = &doc["images"][name];
        let shape: Vec<usize> = serde_json::from_value(im["shape"].clone()).unwrap();
        let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
        (
            [shape[0], shape[1], shape[2]],
            data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        )
    }

    fn pair(v: &serde_json::Value) -> [f32; 2] {
        serde_json::from_value(v.clone()).unwrap()
    }

    fn interpolation(v: &serde_json::Value) -> Interpolation {
        match v.as_str().unwrap() {
            "nearest" => Interpolation::Nearest,
            "bilinear" => Interpolation::Bilinear,
            other => panic!("unknown interpolation {other}"),
        }
    }

    /// Compares with torchvision: nearest exactly (the same float32 grid picks the same
    /// pixels), bilinear to within 1e-6 (the four products summed in another order, or fused by
    /// torch's vectorised kernel; pixels are in [0, 1], so that is far below 1/255).
    fn check(got: &[f32], want: &[f32], interp: Interpolation, msg: &str) {
        assert_eq!(got.len(), want.len(), "{msg}");
        let tol = match interp {
            Interpolation::Nearest => 0.0,
            Interpolation::Bilinear => 1e-6,
        };
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol,
                "{msg}: value {i}: runner {g}, torchvision {w}"
            );
        }
    }

    /// Every `affine` case of `tests/fixtures/transform_goldens.json`: torchvision v2's
    /// `F.affine` on the float image with explicit parameters (`scripts/golden_transforms.py`).
    #[test]
    fn affine_matches_torchvision() {
        let doc = fixture();
        let cases = doc["affine"].as_array().expect("affine cases");
        assert!(cases.len() > 50, "the fixture has its cases");
        for case in cases {
            let (shape, img) = image(&doc, case["image"].as_str().unwrap());
            let a = Affine {
                angle: case["angle"].as_f64().unwrap() as f32,
                translate: pair(&case["translate"]),
                scale: case["scale"].as_f64().unwrap() as f32,
                shear: pair(&case["shear"]),
                center: (!case["center"].is_null()).then(|| pair(&case["center"])),
            };
            let interp = interpolation(&case["interpolation"]);
            let fill = case["fill"].as_f64().unwrap() as f32;
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            let mut out = Vec::new();
            affine(&img, shape, &mut out, &a, interp, fill);
            let msg = format!("{} {a:?} {interp:?} fill {fill}", case["image"]);
            check(&out, &want, interp, &msg);
        }
    }

    /// Every `rotate` case of the fixture: torchvision v2's `F.rotate` (no expand), including
    /// its exact `rot90` paths.
    #[test]
    fn rotate_matches_torchvision() {
        let doc = fixture();
        let cases = doc["rotate"].as_array().expect("rotate cases");
        assert!(cases.len() > 20, "the fixture has its cases");
        for case in cases {
            let (shape, img) = image(&doc, case["image"].as_str().unwrap());
            let angle = case["angle"].as_f64().unwrap() as f32;
            let interp = interpolation(&case["interpolation"]);
            let fill = case["fill"].as_f64().unwrap() as f32;
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            let mut out = Vec::new();
            rotate(&img, shape, &mut out, angle, interp, fill);
            let msg = format!("{} rotate {angle} {interp:?} fill {fill}", case["image"]);
            check(&out, &want, interp, &msg);
        }
    }

    #[test]
    fn identity_and_empty_images() {
        let img: Vec<f32> = (0..2 * 3 * 5).map(|i| i as f32 / 30.0).collect();
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            let mut out = Vec::new();
            affine(
                &img,
                [2, 3, 5],
                &mut out,
                &Affine::rotation(0.0),
                interp,
                0.0,
            );
            assert_eq!(out, img, "{interp:?}: the identity moves nothing");
            // torchvision's `(v - fill) * 1 + fill` rounds once more with another fill.
            affine(
                &img,
                [2, 3, 5],
                &mut out,
                &Affine::rotation(0.0),
                interp,
                0.5,
            );
            for (g, w) in out.iter().zip(&img) {
                assert!((g - w).abs() <= 1e-7, "{interp:?} fill 0.5: {g} vs {w}");
            }
            let mut empty = vec![1.0];
            affine(
                &[],
                [3, 0, 4],
                &mut empty,
                &Affine::rotation(30.0),
                interp,
                0.0,
            );
            assert!(empty.is_empty(), "{interp:?}: no pixels, no output");
        }
    }

    #[test]
    fn a_far_translation_leaves_only_the_fill() {
        let img = vec![0.25f32; 3 * 4 * 4];
        let a = Affine {
            translate: [100.0, -3.0],
            ..Affine::rotation(0.0)
        };
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            let mut out = Vec::new();
            affine(&img, [3, 4, 4], &mut out, &a, interp, 0.75);
            assert!(out.iter().all(|&v| v == 0.75), "{interp:?}: {out:?}");
        }
    }
}
