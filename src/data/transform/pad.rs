//! `random_crop`'s padding with torchvision's `padding_mode`s, read through index maps: the
//! padded image is never built, each output pixel looks up where it comes from.

use crate::experiment::PaddingMode;

/// Where coordinate `i` of a dimension of length `n > 0` reads from once padded, or `None` where
/// `constant` padding puts the fill value. Coordinates in `0..n` are the image itself.
///
/// Mirror modes reflect once, as torchvision does for the paddings it accepts (reflect: fewer
/// than `n`, symmetric: at most `n`); validation keeps paddings in those limits, and anything
/// further out is clamped to the edge rather than read out of bounds.
pub(crate) fn source_index(i: isize, n: usize, mode: PaddingMode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    let j = match mode {
        PaddingMode::Constant => return None,
        PaddingMode::Edge => i,
        PaddingMode::Reflect if i < 0 => -i,
        PaddingMode::Reflect => 2 * (n - 1) - i,
        PaddingMode::Symmetric if i < 0 => -i - 1,
        PaddingMode::Symmetric => 2 * n - 1 - i,
    };
    Some(j.clamp(0, n - 1) as usize)
}

/// Copies the `[oh, ow]` window at (`top`, `left`) of every channel of `src`, padded with `mode`,
/// into `dst`; `top` and `left` are in the coordinates of the unpadded image (negative inside the
/// padding). `fill` is the value of `constant` padding.
#[allow(clippy::too_many_arguments)]
pub(crate) fn padded_crop(
    src: &[f32],
    [c, h, w]: [usize; 3],
    dst: &mut Vec<f32>,
    [oh, ow]: [usize; 2],
    top: isize,
    left: isize,
    mode: PaddingMode,
    fill: f32,
) {
    dst.resize(c * oh * ow, 0.0);
    if h == 0 || w == 0 {
        dst.fill(fill);
        return;
    }
    let cols: Vec<Option<usize>> = (0..ow)
        .map(|x| source_index(left + x as isize, w, mode))
        .collect();
    for ch in 0..c {
        let plane = &src[ch * h * w..][..h * w];
        for (y, row) in dst[ch * oh * ow..][..oh * ow]
            .chunks_exact_mut(ow.max(1))
            .enumerate()
        {
            let Some(sy) = source_index(top + y as isize, h, mode) else {
                row.fill(fill);
                continue;
            };
            let src_row = &plane[sy * w..][..w];
            for (o, col) in row.iter_mut().zip(&cols) {
                *o = col.map_or(fill, |sx| src_row[sx]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_index_per_mode() {
        // torchvision v2 `F.pad` of [1, 2, 3, 4] by (padding) on both sides, as source indices
        // (0-based), from `F.pad(torch.arange(1, 5, dtype=torch.uint8).reshape(1, 1, 4),
        // [p, 0, p, 0], padding_mode=m)`.
        let cases: [(PaddingMode, isize, Vec<Option<usize>>); 5] = [
            (
                PaddingMode::Reflect,
                2,
                [2, 1, 0, 1, 2, 3, 2, 1].map(Some).to_vec(),
            ),
            (
                PaddingMode::Reflect,
                3,
                [3, 2, 1, 0, 1, 2, 3, 2, 1, 0].map(Some).to_vec(),
            ),
            (
                PaddingMode::Symmetric,
                4,
                [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0].map(Some).to_vec(),
            ),
            (
                PaddingMode::Edge,
                3,
                [0, 0, 0, 0, 1, 2, 3, 3, 3, 3].map(Some).to_vec(),
            ),
            (
                PaddingMode::Constant,
                1,
                vec![None, Some(0), Some(1), Some(2), Some(3), None],
            ),
        ];
        for (mode, pad, want) in cases {
            let got: Vec<Option<usize>> =
                (-pad..4 + pad).map(|i| source_index(i, 4, mode)).collect();
            assert_eq!(got, want, "{mode:?} padding {pad}");
        }
    }

    #[test]
    fn out_of_range_coordinates_clamp_instead_of_panicking() {
        for mode in PaddingMode::ALL {
            for i in -20..20 {
                if let Some(j) = source_index(i, 3, *mode) {
                    assert!(j < 3, "{mode:?} {i} -> {j}");
                }
            }
        }
    }
}
