//! Image transforms, compiled once into a [`Pipeline`] and applied per image.
//!
//! Pixels enter as `u8` and are scaled to `[0, 1]` first (PyTorch's `ToTensor`); the transforms
//! then run in order on a CHW `f32` buffer. Random choices follow torchvision: `RandomCrop` pads
//! (v2's `padding_mode`s, with `pad_if_needed` adding to `padding` in one pass) and draws the top
//! then left offset uniformly; `RandomHorizontalFlip` flips when a
//! uniform draw in `[0, 1)` is `< p`; `CenterCrop` rounds the offset like Python's `round`.

use std::cell::RefCell;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::experiment::{Interpolation, PaddingMode, Transform};

use geometric::Affine;

mod augment;
mod color;
mod erase;
pub(crate) mod geometric;
mod pad;
pub(crate) mod resize;
mod resized_crop;

/// One compiled transform, with the shape of its input.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Normalize {
        mean: Vec<f32>,
        std: Vec<f32>,
    },
    /// Pad by `pad` (height, width) on each side, then crop a `size` window.
    RandomCrop {
        size: usize,
        pad: [usize; 2],
        mode: PaddingMode,
        /// Constant padding, on the `[0, 1]` scale.
        fill: f32,
    },
    Flip {
        p: f32,
        /// airbench's alternating flip: a flip drawn once per image and run, inverted in even
        /// epochs.
        alternate: bool,
    },
    /// torchvision's `ColorJitter`: brightness, contrast, saturation and hue factor ranges.
    ColorJitter {
        ranges: [Option<[f32; 2]>; 4],
    },
    /// `trivial_augment_wide` or `rand_augment`.
    Augment(augment::Augment),
    /// `out[i] = in[perm[i]]` within every channel plane.
    Permute {
        perm: Vec<u32>,
    },
    CenterCrop {
        size: usize,
    },
    /// torchvision v2's `F.resize` to `size` (`[h, w]`), antialiased when bilinear.
    Resize {
        size: [usize; 2],
        interp: geometric::Interpolation,
    },
    /// torchvision v2's `RandomResizedCrop` to `size` (`[h, w]`).
    ResizedCrop {
        size: [usize; 2],
        scale: [f32; 2],
        ratio: [f32; 2],
        interp: geometric::Interpolation,
    },
    Grayscale,
    /// torchvision's `RandomRotation` (no expand); `fill` on the `[0, 1]` scale.
    Rotate {
        degrees: [f32; 2],
        interp: geometric::Interpolation,
        fill: f32,
    },
    /// torchvision's `RandomAffine`; `fill` on the `[0, 1]` scale.
    Affine {
        degrees: [f32; 2],
        translate: [f32; 2],
        scale: [f32; 2],
        shear: [f32; 4],
        interp: geometric::Interpolation,
        fill: f32,
    },
    /// torchvision's `RandomErasing`.
    Erase {
        p: f32,
        scale: [f32; 2],
        ratio: [f32; 2],
        value: f32,
    },
}

/// Which training image a pipeline is applied to, and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// The experiment's seed.
    pub seed: u64,
    /// The image's index in the training set.
    pub index: u64,
    /// The epoch, from 1 (0: none, treated as 1).
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Stage {
    op: Op,
    input: [usize; 3],
}

/// A compiled list of transforms for images of one shape.
///
/// Anything fixed (such as the pixel permutation) is drawn once here, so two pipelines built from
/// the same transforms and shape behave identically; per-image randomness comes from the `rng`
/// given to [`Pipeline::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    stages: Vec<Stage>,
    input: [usize; 3],
    output: [usize; 3],
}

thread_local! {
    /// Two ping-pong buffers per thread, so applying a pipeline allocates nothing per image.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Pipeline {
    /// Compiles `transforms` for images of shape `input` (`[C, H, W]`).
    ///
    /// `PixelPermutation { seed }` draws its permutation of the `H * W` positions (at the shape it
    /// sees) with a Fisher-Yates shuffle driven by `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn new(transforms: &[Transform], input: [usize; 3]) -> Pipeline {
        let mut shape = input;
        let mut stages = Vec::with_capacity(transforms.len());
        for t in transforms {
            let op = match t {
                Transform::Normalize { mean, std } => Op::Normalize {
                    mean: per_channel(mean, shape[0], 0.0),
                    std: per_channel(std, shape[0], 1.0),
                },
                Transform::RandomCrop {
                    size,
                    padding,
                    padding_mode,
                    fill,
                    pad_if_needed,
                } => {
                    // torchvision v2 adds what `pad_if_needed` needs to `padding`, in one pad.
                    let pad = |len: usize| {
                        let extra = if *pad_if_needed {
                            size.saturating_sub(len + 2 * padding)
                        } else {
                            0
                        };
                        padding + extra
                    };
                    Op::RandomCrop {
                        size: *size,
                        pad: [pad(shape[1]), pad(shape[2])],
                        mode: *padding_mode,
                        fill: fill / 255.0,
                    }
                }
                Transform::RandomHorizontalFlip { p, alternate } => Op::Flip {
                    p: *p,
                    alternate: *alternate,
                },
                Transform::ColorJitter {
                    brightness,
                    contrast,
                    saturation,
                    hue,
                } => Op::ColorJitter {
                    ranges: [*brightness, *contrast, *saturation, *hue],
                },
                Transform::TrivialAugmentWide {
                    num_magnitude_bins,
                    interpolation,
                    fill,
                } => Op::Augment(augment::Augment::trivial(
                    *num_magnitude_bins,
                    shape,
                    kernel_interpolation(*interpolation),
                    fill / 255.0,
                )),
                Transform::RandAugment {
                    num_ops,
                    magnitude,
                    num_magnitude_bins,
                    interpolation,
                    fill,
                } => Op::Augment(augment::Augment::rand(
                    *num_ops,
                    *magnitude,
                    *num_magnitude_bins,
                    shape,
                    kernel_interpolation(*interpolation),
                    fill / 255.0,
                )),
                Transform::PixelPermutation { seed } => Op::Permute {
                    perm: pixel_permutation(shape[1] * shape[2], *seed),
                },
                Transform::CenterCrop { size } => Op::CenterCrop { size: *size },
                Transform::Grayscale => Op::Grayscale,
                Transform::Resize {
                    size,
                    interpolation,
                } => Op::Resize {
                    size: size.output([shape[1], shape[2]]),
                    interp: kernel_interpolation(*interpolation),
                },
                Transform::RandomResizedCrop {
                    size,
                    scale,
                    ratio,
                    interpolation,
                } => Op::ResizedCrop {
                    size: *size,
                    scale: *scale,
                    ratio: *ratio,
                    interp: kernel_interpolation(*interpolation),
                },
                Transform::RandomRotation {
                    degrees,
                    interpolation,
                    fill,
                } => Op::Rotate {
                    degrees: *degrees,
                    interp: kernel_interpolation(*interpolation),
                    fill: fill / 255.0,
                },
                Transform::RandomAffine {
                    degrees,
                    translate,
                    scale,
                    shear,
                    interpolation,
                    fill,
                } => Op::Affine {
                    degrees: *degrees,
                    translate: *translate,
                    scale: *scale,
                    shear: *shear,
                    interp: kernel_interpolation(*interpolation),
                    fill: fill / 255.0,
                },
                Transform::RandomErasing {
                    p,
                    scale,
                    ratio,
                    value,
                } => Op::Erase {
                    p: *p,
                    scale: *scale,
                    ratio: *ratio,
                    value: *value,
                },
            };
            stages.push(Stage { op, input: shape });
            shape = t.output_shape(shape);
        }
        Pipeline {
            stages,
            input,
            output: shape,
        }
    }

    /// Shape `[C, H, W]` of the images the pipeline accepts.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    /// Shape `[C, H, W]` of the images it produces.
    pub fn output_shape(&self) -> [usize; 3] {
        self.output
    }

    /// Number of `f32` values per output image.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// Undoes every `normalize` of the pipeline on one output image (CHW), in place, so that it
    /// can be shown: `x * std + mean` per channel, last normalisation first. The other transforms
    /// move pixels without changing their values (and keep the channel count), so this restores
    /// the `[0, 1]` scale; zero padding added after a normalisation comes back as the mean.
    ///
    /// # Panics
    /// If `image.len()` is not [`Pipeline::output_len`].
    pub fn denormalize(&self, image: &mut [f32]) {
        assert_eq!(
            image.len(),
            self.output_len(),
            "image size does not match output_shape"
        );
        let hw = self.output[1] * self.output[2];
        if hw == 0 {
            return;
        }
        for stage in self.stages.iter().rev() {
            if let Op::Normalize { mean, std } = &stage.op {
                for ((plane, &m), &s) in image.chunks_exact_mut(hw).zip(mean).zip(std) {
                    plane.iter_mut().for_each(|x| *x = *x * s + m);
                }
            }
        }
    }

    /// Scales `image` (CHW bytes) to `[0, 1]`, runs the transforms in order, and writes the
    /// result into `out`.
    ///
    /// # Panics
    /// If `image.len()` is not the input size or `out.len()` not [`Pipeline::output_len`]; both
    /// are fixed by the data set and the pipeline, never by file contents.
    pub fn apply(&self, image: &[u8], rng: &mut impl Rng, out: &mut [f32]) {
        self.apply_sample(image, None, rng, out);
    }

    /// [`Pipeline::apply`] for training image `sample.index` in epoch `sample.epoch`: what an
    /// alternating flip needs. Without a sample (outside training) every image flips as
    /// `Sample::default()`: image 0 of seed 0 in epoch 1.
    pub fn apply_sample(
        &self,
        image: &[u8],
        sample: Option<Sample>,
        rng: &mut impl Rng,
        out: &mut [f32],
    ) {
        let in_len: usize = self.input.iter().product();
        assert_eq!(
            image.len(),
            in_len,
            "image size does not match the pipeline's input shape"
        );
        assert_eq!(
            out.len(),
            self.output_len(),
            "output buffer size does not match output_shape"
        );
        if self.stages.is_empty() {
            to_unit(image, out);
            return;
        }
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (cur, next) = &mut *guard;
            cur.resize(in_len, 0.0);
            to_unit(image, cur);
            for stage in &self.stages {
                if stage.run(cur, next, rng, sample) {
                    std::mem::swap(cur, next);
                }
            }
            out.copy_from_slice(cur);
        });
    }
}

impl Stage {
    /// `random_crop`'s deterministic part: the window at (`top`, `left`) of the padded image, as
    /// torchvision v2's `F.crop(F.pad(img, padding, fill, padding_mode), top, left, size, size)`.
    /// Other stages are left alone (returns `false`).
    fn crop_at(&self, cur: &[f32], next: &mut Vec<f32>, top: usize, left: usize) -> bool {
        let Op::RandomCrop {
            size,
            pad,
            mode,
            fill,
        } = &self.op
        else {
            return false;
        };
        let top = top as isize - pad[0] as isize;
        let left = left as isize - pad[1] as isize;
        if *mode == PaddingMode::Constant {
            crop(cur, self.input, next, [*size, *size], top, left, *fill);
        } else {
            pad::padded_crop(
                cur,
                self.input,
                next,
                [*size, *size],
                top,
                left,
                *mode,
                *fill,
            );
        }
        true
    }

    /// Applies the stage to `cur`, in place or into `next`; returns whether it wrote `next`.
    fn run(
        &self,
        cur: &mut Vec<f32>,
        next: &mut Vec<f32>,
        rng: &mut impl Rng,
        sample: Option<Sample>,
    ) -> bool {
        let [c, h, w] = self.input;
        match &self.op {
            Op::Normalize { mean, std } => {
                if h * w > 0 {
                    for ((plane, &m), &s) in cur.chunks_exact_mut(h * w).zip(mean).zip(std) {
                        // Subtract then divide, like torchvision, so results match bit for bit.
                        plane.iter_mut().for_each(|x| *x = (*x - m) / s);
                    }
                }
                false
            }
            Op::Flip { p, alternate } => {
                let flip = if *alternate {
                    // The per-batch stream is not drawn from, so other transforms' draws stay
                    // as they are without the flip.
                    let s = sample.unwrap_or_default();
                    let mut bit = super::derived_rng(s.seed, super::Stream::Flip, s.index, 0);
                    (bit.random::<f32>() < *p) != (s.epoch > 0 && s.epoch.is_multiple_of(2))
                } else {
                    rng.random::<f32>() < *p
                };
                if flip && w > 0 {
                    cur.chunks_exact_mut(w).for_each(|row| row.reverse());
                }
                false
            }
            Op::RandomCrop { size, pad, .. } => {
                let top = rng.random_range(0..=(h + 2 * pad[0]).saturating_sub(*size));
                let left = rng.random_range(0..=(w + 2 * pad[1]).saturating_sub(*size));
                self.crop_at(cur, next, top, left);
                true
            }
            Op::Resize { size, interp } => {
                resize::resize(cur, self.input, next, *size, *interp);
                true
            }
            Op::ResizedCrop {
                size,
                scale,
                ratio,
                interp,
            } => {
                let b = resized_crop::draw_box([h, w], *scale, *ratio, rng);
                // Cut into `next`, then resized back into `cur`: the result ends in `cur`.
                resized_crop::resized_crop(cur, self.input, next, b, *size, *interp);
                false
            }
            Op::CenterCrop { size } => {
                let top = center_offset(h, *size);
                let left = center_offset(w, *size);
                crop(cur, self.input, next, [*size, *size], top, left, 0.0);
                true
            }
            Op::Grayscale => {
                // torchvision's `rgb_to_grayscale` weights (ITU-R 601-2 luma as it rounds them).
                let hw = h * w;
                next.resize(hw, 0.0);
                let (r, rest) = cur.split_at(hw);
                let (g, b) = rest.split_at(hw);
                for (((o, &r), &g), &b) in next.iter_mut().zip(r).zip(g).zip(&b[..hw]) {
                    *o = 0.2989 * r + 0.587 * g + 0.114 * b;
                }
                true
            }
            Op::Rotate {
                degrees,
                interp,
                fill,
            } => {
                let angle = uniform(rng, *degrees);
                geometric::rotate(cur, self.input, next, angle, *interp, *fill);
                true
            }
            Op::Affine {
                degrees,
                translate,
                scale,
                shear,
                interp,
                fill,
            } => {
                let a = affine_params(*degrees, *translate, *scale, *shear, [h, w], rng);
                geometric::affine(cur, self.input, next, &a, *interp, *fill);
                true
            }
            Op::Erase {
                p,
                scale,
                ratio,
                value,
            } => {
                if rng.random::<f32>() < *p {
                    if let Some(b) = erase::draw_box(h, w, *scale, *ratio, rng) {
                        erase::erase(cur, self.input, b, *value);
                    }
                }
                false
            }
            Op::ColorJitter { ranges } => {
                // In place: nothing is written to `next`.
                let (order, factors) = color::draw_jitter(ranges, rng);
                color::jitter(cur, self.input, order, factors);
                false
            }
            Op::Augment(a) => {
                // The result ends in `cur`; `next` is the geometric ops' other buffer.
                a.apply(cur, self.input, next, rng);
                false
            }
            Op::Permute { perm } => {
                next.resize(cur.len(), 0.0);
                let hw = h * w;
                for ch in 0..c {
                    let (src, dst) = (&cur[ch * hw..][..hw], &mut next[ch * hw..][..hw]);
                    for (d, &i) in dst.iter_mut().zip(perm) {
                        *d = src[i as usize];
                    }
                }
                true
            }
        }
    }
}

/// The experiment's interpolation choice as the geometric kernels take it.
fn kernel_interpolation(i: Interpolation) -> geometric::Interpolation {
    match i {
        Interpolation::Nearest => geometric::Interpolation::Nearest,
        Interpolation::Bilinear => geometric::Interpolation::Bilinear,
    }
}

/// A float32 uniform in `[a, b)` (`a` when the range is empty), as torch's `uniform_(a, b)`.
fn uniform(rng: &mut impl Rng, [a, b]: [f32; 2]) -> f32 {
    a + (b - a) * rng.random::<f32>()
}

/// torchvision v2 `RandomAffine.make_params` for an `h x w` image: the angle uniform in
/// `degrees`; shifts uniform in `[-fx * w, fx * w]` and `[-fy * h, fy * h]`, rounded half to
/// even to whole pixels (Python's `round`); the scale uniform in `scale`; the x shear uniform in
/// `shear[0..2]` and the y shear in `shear[2..4]`. Every draw is made, even of an empty range, so
/// that the stream does not depend on the settings.
fn affine_params(
    degrees: [f32; 2],
    translate: [f32; 2],
    scale: [f32; 2],
    shear: [f32; 4],
    [h, w]: [usize; 2],
    rng: &mut impl Rng,
) -> Affine {
    let angle = uniform(rng, degrees);
    let (max_dx, max_dy) = (translate[0] * w as f32, translate[1] * h as f32);
    let tx = uniform(rng, [-max_dx, max_dx]).round_ties_even();
    let ty = uniform(rng, [-max_dy, max_dy]).round_ties_even();
    let scale = uniform(rng, scale);
    let shear_x = uniform(rng, [shear[0], shear[1]]);
    let shear_y = uniform(rng, [shear[2], shear[3]]);
    Affine {
        angle,
        translate: [tx, ty],
        scale,
        shear: [shear_x, shear_y],
        center: None,
    }
}

fn to_unit(image: &[u8], out: &mut [f32]) {
    for (o, &b) in out.iter_mut().zip(image) {
        *o = f32::from(b) / 255.0;
    }
}

/// One value per channel: `values[c]`, or the last value (or `default`) where it is too short.
fn per_channel(values: &[f32], channels: usize, default: f32) -> Vec<f32> {
    (0..channels)
        .map(|c| values.get(c).or(values.last()).copied().unwrap_or(default))
        .collect()
}

/// A permutation of `0..n`, from `ChaCha8Rng::seed_from_u64(seed)` and a Fisher-Yates shuffle.
pub fn pixel_permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    super::fisher_yates(&mut perm, &mut ChaCha8Rng::seed_from_u64(seed));
    perm
}

/// Top (or left) offset of a centred window of `size` in `len`, as torchvision's `center_crop`:
/// `round((len - size) / 2)` with ties to even; negative (zero-padded) when the window is larger.
pub(crate) fn center_offset(len: usize, size: usize) -> isize {
    if size <= len {
        ((len - size) as f64 / 2.0).round_ties_even() as isize
    } else {
        -(((size - len) / 2) as isize)
    }
}

/// Copies the `[oh, ow]` window at (`top`, `left`) of every channel of `src` into `dst`; parts of
/// the window outside the image are `fill`.
fn crop(
    src: &[f32],
    [c, h, w]: [usize; 3],
    dst: &mut Vec<f32>,
    [oh, ow]: [usize; 2],
    top: isize,
    left: isize,
    fill: f32,
) {
    dst.resize(c * oh * ow, 0.0);
    // Columns of the window that fall inside the image: [x0, x1).
    let x0 = (-left).clamp(0, ow as isize) as usize;
    let x1 = (w as isize - left).clamp(x0 as isize, ow as isize) as usize;
    let sx0 = (left + x0 as isize).max(0) as usize;
    for ch in 0..c {
        let plane = &src[ch * h * w..][..h * w];
        for (y, row) in dst[ch * oh * ow..][..oh * ow]
            .chunks_exact_mut(ow.max(1))
            .enumerate()
        {
            let sy = top + y as isize;
            if sy < 0 || sy >= h as isize || x0 == x1 {
                row.fill(fill);
                continue;
            }
            let src_row = &plane[sy as usize * w..][..w];
            row[..x0].fill(fill);
            row[x0..x1].copy_from_slice(&src_row[sx0..sx0 + (x1 - x0)]);
            row[x1..].fill(fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::ResizeSize;

    /// A deterministic RNG for tests that do not care about the random draws.
    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    /// Image whose byte at (c, y, x) is `c * 100 + y * 10 + x`, so values name their position.
    fn positional(c: usize, h: usize, w: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    v.push((ch * 100 + y * 10 + x) as u8);
                }
            }
        }
        v
    }

    fn run(
        transforms: &[Transform],
        input: [usize; 3],
        image: &[u8],
        rng: &mut impl Rng,
    ) -> Vec<f32> {
        let p = Pipeline::new(transforms, input);
        let mut out = vec![f32::NAN; p.output_len()];
        p.apply(image, rng, &mut out);
        out
    }

    /// Back to the byte values (`x * 255`, rounded) for readable comparisons.
    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().map(|x| (x * 255.0).round() as u8).collect()
    }

    #[test]
    fn to_tensor_scaling_only() {
        let out = run(&[], [1, 1, 3], &[0, 51, 255], &mut rng());
        assert_eq!(out, [0.0, 0.2, 1.0]);
    }

    #[test]
    fn normalize_per_channel() {
        let t = Transform::Normalize {
            mean: vec![0.5, 0.1],
            std: vec![0.5, 0.2],
        };
        let out = run(&[t], [2, 1, 2], &[0, 255, 51, 102], &mut rng());
        // (x/255 - mean[c]) / std[c]: channel 0 (0, 1) -> (-1, 1); channel 1 (0.2, 0.4) -> (0.5, 1.5).
        let want = [-1.0, 1.0, 0.5, 1.5];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {out:?}, want {want:?}");
        }
    }

    #[test]
    fn center_crop_windows() {
        let img = positional(2, 5, 4);
        let cases: [(usize, [usize; 3], Vec<u8>, &str); 3] = [
            (
                3,
                [2, 3, 3],
                vec![10, 11, 12, 20, 21, 22, 30, 31, 32],
                "5x4 -> 3x3: top 1, left round(0.5) = 0",
            ),
            (
                2,
                [2, 2, 2],
                vec![21, 22, 31, 32],
                "5x4 -> 2x2: top round(1.5) = 2, left 1",
            ),
            (
                4,
                [2, 4, 4],
                vec![0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33],
                "5x4 -> 4x4: top round(0.5) = 0",
            ),
        ];
        for (size, shape, want_c0, msg) in cases {
            let p = Pipeline::new(&[Transform::CenterCrop { size }], [2, 5, 4]);
            assert_eq!(p.output_shape(), shape, "{msg}");
            let out = bytes(&run(
                &[Transform::CenterCrop { size }],
                [2, 5, 4],
                &img,
                &mut rng(),
            ));
            let n = want_c0.len();
            assert_eq!(out[..n], want_c0[..], "{msg}");
            let want_c1: Vec<u8> = want_c0.iter().map(|v| v + 100).collect();
            assert_eq!(out[n..], want_c1[..], "{msg} (channel 1)");
        }
    }

    #[test]
    fn center_offset_rounds_like_python() {
        // Python: int(round((len - size) / 2.0)) rounds half to even.
        let cases = [
            (5, 3, 1),
            (5, 4, 0),
            (8, 5, 2),
            (9, 4, 2),
            (10, 3, 4),
            (4, 4, 0),
            (3, 5, -1),
            (3, 6, -1),
        ];
        for (len, size, want) in cases {
            assert_eq!(center_offset(len, size), want, "len {len} size {size}");
        }
    }

    #[test]
    fn crop_with_forced_offsets_and_padding() {
        let img = positional(1, 3, 3);
        let to_f32 = |v: &[u8]| v.iter().map(|&b| f32::from(b)).collect::<Vec<_>>();
        let src = to_f32(&img);
        // (top, left, expected 3x3 window) in unpadded coordinates.
        let cases: [(isize, isize, [u8; 9], &str); 4] = [
            (0, 0, [0, 1, 2, 10, 11, 12, 20, 21, 22], "identity"),
            (-1, -1, [0, 0, 0, 0, 0, 1, 0, 10, 11], "padding top-left"),
            (2, 1, [21, 22, 0, 0, 0, 0, 0, 0, 0], "padding bottom-right"),
            (-4, 0, [0; 9], "entirely outside"),
        ];
        for (top, left, want, msg) in cases {
            let mut dst = Vec::new();
            crop(&src, [1, 3, 3], &mut dst, [3, 3], top, left, 0.0);
            assert_eq!(dst, to_f32(&want), "{msg}");
        }
    }

    #[test]
    fn random_crop_pads_with_zeros_and_keeps_the_image() {
        // Every byte non-zero and distinct, so a zero can only be padding.
        let img: Vec<u8> = positional(3, 4, 4).iter().map(|v| v + 1).collect();
        let t = Transform::RandomCrop {
            size: 4,
            padding: 2,
            padding_mode: PaddingMode::Constant,
            fill: 0.0,
            pad_if_needed: false,
        };
        let window = |top: isize, left: isize| -> Vec<u8> {
            let mut v = Vec::new();
            for ch in 0..3 {
                for y in 0..4 {
                    for x in 0..4 {
                        let (sy, sx) = (y + top, x + left);
                        let inside = (0..4).contains(&sy) && (0..4).contains(&sx);
                        v.push(if inside {
                            img[ch * 16 + sy as usize * 4 + sx as usize]
                        } else {
                            0
                        });
                    }
                }
            }
            v
        };
        let mut r = rng();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let out = bytes(&run(std::slice::from_ref(&t), [3, 4, 4], &img, &mut r));
            let offsets: Vec<(isize, isize)> = (-2..=2)
                .flat_map(|top| (-2..=2).map(move |left| (top, left)))
                .filter(|&(top, left)| window(top, left) == out)
                .collect();
            assert_eq!(
                offsets.len(),
                1,
                "output is exactly one padded window: {out:?}"
            );
            seen.insert(offsets[0]);
        }
        assert_eq!(seen.len(), 25, "all 5 x 5 offsets occur");
    }

    #[test]
    fn random_crop_without_padding_at_full_size_is_identity() {
        let img = positional(3, 4, 4);
        let out = run(
            &[Transform::RandomCrop {
                size: 4,
                padding: 0,
                padding_mode: PaddingMode::Constant,
                fill: 0.0,
                pad_if_needed: false,
            }],
            [3, 4, 4],
            &img,
            &mut rng(),
        );
        assert_eq!(bytes(&out), img);
    }

    #[test]
    fn an_alternating_flip_shows_every_image_both_ways_over_two_epochs() {
        let pipe = Pipeline::new(
            &[Transform::RandomHorizontalFlip {
                p: 0.5,
                alternate: true,
            }],
            [1, 1, 2],
        );
        // A 1x2 image [0, 1]: flipped iff its first pixel is 1.
        let flipped = |seed: u64, index: u64, epoch: u64| {
            let mut out = [0f32; 2];
            let sample = Sample { seed, index, epoch };
            // The per-batch stream does not decide an alternating flip: any generator will do.
            let mut any = ChaCha8Rng::seed_from_u64(index * 7 + epoch);
            pipe.apply_sample(&[0, 255], Some(sample), &mut any, &mut out);
            out[0] == 1.0
        };
        let n = 2000u64;
        for seed in [0, 3] {
            for epoch in 1..=4 {
                for i in 0..n {
                    assert_ne!(
                        flipped(seed, i, epoch),
                        flipped(seed, i, epoch + 1),
                        "seed {seed}: image {i} is flipped in exactly one of epochs {epoch}, {}",
                        epoch + 1
                    );
                    // A pure function of (seed, index, epoch): a resumed run flips the same.
                    assert_eq!(flipped(seed, i, epoch), flipped(seed, i, epoch + 2));
                }
            }
            let first = (0..n).filter(|&i| flipped(seed, i, 1)).count();
            // Binomial(2000, 0.5): 4.5 standard deviations is 100.
            assert!(
                (900..1100).contains(&first),
                "seed {seed}: {first} of {n} in epoch 1"
            );
        }
        // Without a sample (outside training) it flips as image 0 of seed 0 in epoch 1.
        let mut out = [0f32; 2];
        pipe.apply(&[0, 255], &mut rng(), &mut out);
        assert_eq!(out[0] == 1.0, flipped(0, 0, 1));
        // Seeds draw different bits.
        assert!((0..64).any(|i| flipped(0, i, 1) != flipped(3, i, 1)));
    }

    #[test]
    fn flip_probabilities() {
        let img = positional(2, 2, 3);
        let mirrored: Vec<u8> = vec![2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110];
        for (p, want, msg) in [
            (1.0, &mirrored, "p = 1 always flips"),
            (0.0, &img, "p = 0 never flips"),
        ] {
            let out = run(
                &[Transform::RandomHorizontalFlip {
                    p,
                    alternate: false,
                }],
                [2, 2, 3],
                &img,
                &mut rng(),
            );
            assert_eq!(&bytes(&out), want, "{msg}");
        }
        let mut r = rng();
        let flips = (0..1000)
            .filter(|_| {
                let out = run(
                    &[Transform::RandomHorizontalFlip {
                        p: 0.5,
                        alternate: false,
                    }],
                    [2, 2, 3],
                    &img,
                    &mut r,
                );
                bytes(&out) == mirrored
            })
            .count();
        assert!(
            (400..600).contains(&flips),
            "p = 0.5 flips about half the time: {flips}"
        );
    }

    #[test]
    fn permutation_is_a_shared_bijection() {
        let shape = [2, 4, 5];
        let spec = |seed| vec![Transform::PixelPermutation { seed }];
        let (a, b, c) = (
            Pipeline::new(&spec(7), shape),
            Pipeline::new(&spec(7), shape),
            Pipeline::new(&spec(8), shape),
        );
        assert_eq!(
            a, b,
            "same spec, same permutation (train and test pipelines agree)"
        );
        assert_ne!(a, c, "another seed, another permutation");
        let img: Vec<u8> = (0..40).collect();
        let out = bytes(&run(&spec(7), shape, &img, &mut rng()));
        let (c0, c1) = out.split_at(20);
        let mut sorted = c0.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..20).collect::<Vec<u8>>(),
            "a bijection of the 20 positions"
        );
        assert_ne!(c0, &img[..20], "actually permutes");
        let c1_minus: Vec<u8> = c1.iter().map(|v| v - 20).collect();
        assert_eq!(c0, c1_minus.as_slice(), "same permutation in every channel");
        assert_eq!(pixel_permutation(20, 7), pixel_permutation(20, 7));
    }

    #[test]
    fn denormalize_inverts_every_normalisation() {
        let shape = [2, 3, 3];
        let img = positional(2, 3, 3);
        let ts = [
            Transform::Normalize {
                mean: vec![0.5, 0.25],
                std: vec![0.5, 0.125],
            },
            Transform::CenterCrop { size: 2 },
            Transform::RandomHorizontalFlip {
                p: 1.0,
                alternate: false,
            },
            Transform::Normalize {
                mean: vec![0.1],
                std: vec![2.0],
            },
        ];
        let plain = [
            Transform::CenterCrop { size: 2 },
            Transform::RandomHorizontalFlip {
                p: 1.0,
                alternate: false,
            },
        ];
        let p = Pipeline::new(&ts, shape);
        let mut out = run(&ts, shape, &img, &mut rng());
        p.denormalize(&mut out);
        let want = run(&plain, shape, &img, &mut rng());
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "got {out:?}, want {want:?}");
        }
        // Without a normalisation nothing changes.
        let mut same = want.clone();
        Pipeline::new(&plain, shape).denormalize(&mut same);
        assert_eq!(same, want);
    }

    #[test]
    fn transforms_compose_in_order() {
        let shape = [1, 4, 4];
        let img = positional(1, 4, 4);
        let ts = [
            Transform::CenterCrop { size: 2 },
            Transform::RandomHorizontalFlip {
                p: 1.0,
                alternate: false,
            },
            Transform::Normalize {
                mean: vec![0.0],
                std: vec![1.0 / 255.0],
            },
        ];
        let p = Pipeline::new(&ts, shape);
        assert_eq!(p.output_shape(), [1, 2, 2]);
        let out = run(&ts, shape, &img, &mut rng());
        let want = [12.0, 11.0, 22.0, 21.0];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "got {out:?}, want {want:?}");
        }
    }

    /// Every `random_crop` case of `tests/fixtures/transform_goldens.json` (torchvision v2's
    /// `F.crop(F.pad(...))` on uint8 tensors, written by `scripts/golden_transforms.py` whose
    /// header names the versions), through runner's kernel with the same offsets: exact, as
    /// padding and cropping only move bytes (`fill` is an integer pixel value).
    #[test]
    fn torchvision_goldens() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let image = |name: &str| -> ([usize; 3], Vec<u8>) {
            let im = &doc["images"][name];
            let shape: Vec<usize> = serde_json::from_value(im["shape"].clone()).unwrap();
            let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
            ([shape[0], shape[1], shape[2]], data)
        };
        let cases = doc["random_crop"].as_array().expect("random_crop cases");
        assert!(cases.len() > 100, "the fixture has its cases");
        for case in cases {
            let (shape, img) = image(case["image"].as_str().unwrap());
            let mode = match case["padding_mode"].as_str().unwrap() {
                "constant" => PaddingMode::Constant,
                "edge" => PaddingMode::Edge,
                "reflect" => PaddingMode::Reflect,
                "symmetric" => PaddingMode::Symmetric,
                other => panic!("unknown mode {other}"),
            };
            let get = |k: &str| case[k].as_u64().unwrap() as usize;
            let t = Transform::RandomCrop {
                size: get("size"),
                padding: get("padding"),
                padding_mode: mode,
                fill: get("fill") as f32,
                pad_if_needed: case["pad_if_needed"].as_bool().unwrap(),
            };
            let p = Pipeline::new(std::slice::from_ref(&t), shape);
            let mut cur = vec![0.0; img.len()];
            to_unit(&img, &mut cur);
            let mut next = Vec::new();
            assert!(p.stages[0].crop_at(&cur, &mut next, get("top"), get("left")));
            let want: Vec<u8> = serde_json::from_value(case["out"].clone()).unwrap();
            assert_eq!(next.len(), p.output_len(), "{case}");
            let msg = format!(
                "{} {t:?} at ({}, {})",
                case["image"], case["top"], case["left"]
            );
            assert_eq!(bytes(&next), want, "{msg}");
        }
    }

    /// `grayscale` against torchvision's `F.rgb_to_grayscale` of the float image (fixture as in
    /// `torchvision_goldens`), to within 1e-6: torch sums in its own order.
    /// The policies in a pipeline are the draws of `augment.rs` from the pipeline's generator,
    /// applied in turn, with `fill` scaled from a uint8 value to `[0, 1]` and the interpolation
    /// passed on: replayed here by hand from a clone of the generator.
    #[test]
    fn augmentation_policies_draw_from_the_pipeline_rng() {
        let shape = [3, 8, 8];
        let image: Vec<u8> = (0..192u32).map(|i| (i * 37 % 256) as u8).collect();
        let p = Pipeline::new(
            &[
                Transform::TrivialAugmentWide {
                    num_magnitude_bins: 31,
                    interpolation: Interpolation::Nearest,
                    fill: 0.0,
                },
                Transform::RandAugment {
                    num_ops: 3,
                    magnitude: 20,
                    num_magnitude_bins: 31,
                    interpolation: Interpolation::Bilinear,
                    fill: 127.5,
                },
            ],
            shape,
        );
        let wide = augment::Space::new(augment::Policy::TrivialAugmentWide, 31, 8, 8);
        let rand = augment::Space::new(augment::Policy::RandAugment, 31, 8, 8);
        let unit: Vec<f32> = image.iter().map(|&b| f32::from(b) / 255.0).collect();
        let mut scratch = Vec::new();
        let mut changed = 0;
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = vec![0.0; 192];
            p.apply(&image, &mut rng.clone(), &mut out);
            let mut want = unit.clone();
            let (op, m) = wide.draw_trivial(&mut rng);
            let nearest = geometric::Interpolation::Nearest;
            augment::apply_op(&mut want, shape, op, m, nearest, 0.0, &mut scratch);
            for _ in 0..3 {
                let (op, m) = rand.draw_rand(20, &mut rng);
                let bilinear = geometric::Interpolation::Bilinear;
                augment::apply_op(&mut want, shape, op, m, bilinear, 0.5, &mut scratch);
            }
            assert_eq!(out, want, "seed {seed}");
            changed += usize::from(out != unit);
        }
        assert!(changed > 90, "almost every image changes: {changed}");
    }

    #[test]
    fn grayscale_matches_torchvision() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let img: Vec<u8> = serde_json::from_value(doc["images"]["rgb"]["data"].clone()).unwrap();
        let want: Vec<f32> = serde_json::from_value(doc["grayscale"]["out"].clone()).unwrap();
        let out = run(&[Transform::Grayscale], [3, 8, 8], &img, &mut rng());
        assert_eq!(out.len(), want.len());
        for (i, (g, w)) in out.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6, "pixel {i}: {g} vs torchvision {w}");
        }
    }

    #[test]
    fn affine_draws_stay_in_their_ranges() {
        let mut r = rng();
        let (mut neg_tx, mut pos_tx) = (false, false);
        for _ in 0..2000 {
            let a = affine_params(
                [-10.0, 20.0],
                [0.1, 0.25],
                [0.8, 1.2],
                [-5.0, 5.0, 2.0, 3.0],
                [12, 30],
                &mut r,
            );
            assert!((-10.0..20.0).contains(&a.angle), "{a:?}");
            // max shifts: 0.1 * 30 = 3 pixels in x, 0.25 * 12 = 3 in y, whole pixels
            for t in a.translate {
                assert!(t.fract() == 0.0 && t.abs() <= 3.0, "{a:?}");
            }
            neg_tx |= a.translate[0] == -3.0;
            pos_tx |= a.translate[0] == 3.0;
            assert!((0.8..1.2).contains(&a.scale), "{a:?}");
            assert!((-5.0..5.0).contains(&a.shear[0]), "{a:?}");
            assert!((2.0..3.0).contains(&a.shear[1]), "{a:?}");
            assert_eq!(a.center, None);
        }
        assert!(neg_tx && pos_tx, "the rounded shifts reach both ends");
        // Empty ranges are the identity.
        let a = affine_params([0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0; 4], [5, 5], &mut r);
        assert_eq!(a, Affine::rotation(0.0));
    }

    #[test]
    fn rotation_and_affine_stages_keep_the_shape_and_draw_per_image() {
        let img: Vec<u8> = positional(3, 6, 5);
        let ts = [
            Transform::RandomRotation {
                degrees: [-30.0, 30.0],
                interpolation: Interpolation::Bilinear,
                fill: 255.0,
            },
            Transform::RandomAffine {
                degrees: [-10.0, 10.0],
                translate: [0.2, 0.2],
                scale: [0.9, 1.1],
                shear: [-5.0, 5.0, 0.0, 0.0],
                interpolation: Interpolation::Nearest,
                fill: 0.0,
            },
        ];
        for t in ts {
            let p = Pipeline::new(std::slice::from_ref(&t), [3, 6, 5]);
            assert_eq!(p.output_shape(), [3, 6, 5], "{t:?}");
            let mut r = rng();
            let a = run(std::slice::from_ref(&t), [3, 6, 5], &img, &mut r);
            let b = run(std::slice::from_ref(&t), [3, 6, 5], &img, &mut r);
            assert_ne!(a, b, "{t:?}: another image, another draw");
            assert!(a.iter().all(|x| (0.0..=1.0).contains(x)), "{t:?}: {a:?}");
        }
        // A fixed quarter turn of a square image is torch.rot90: exact.
        let t = Transform::RandomRotation {
            degrees: [90.0, 90.0],
            interpolation: Interpolation::Nearest,
            fill: 0.0,
        };
        let img = positional(1, 2, 2);
        let out = bytes(&run(&[t], [1, 2, 2], &img, &mut rng()));
        // [[0, 1], [10, 11]] turned counter-clockwise is [[1, 11], [0, 10]].
        assert_eq!(out, [1, 11, 0, 10]);
    }

    /// The golden fixture of `scripts/golden_transforms.py` (its header names the versions).
    fn goldens() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transform_goldens.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture is committed");
        serde_json::from_str(&text).expect("valid JSON")
    }

    /// The ops `random_rotation` and `random_affine`, with every range pinned to one value,
    /// against the fixture's `F.rotate` and `F.affine` cases (every rotation; the affine cases
    /// about the centre without translation, which `RandomAffine` cannot pin): the whole stage,
    /// from the uint8 image through `x / 255`, with `fill` given in pixel units. Nearest exactly,
    /// bilinear to within 1e-6, as the kernel tests in `geometric.rs`.
    #[test]
    fn rotation_and_affine_ops_match_torchvision_at_pinned_parameters() {
        let doc = goldens();
        let image = |name: &str| -> ([usize; 3], Vec<u8>) {
            let im = &doc["images"][name];
            let shape: Vec<usize> = serde_json::from_value(im["shape"].clone()).unwrap();
            let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
            ([shape[0], shape[1], shape[2]], data)
        };
        let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
        let interp = |v: &serde_json::Value| match v.as_str().unwrap() {
            "nearest" => Interpolation::Nearest,
            "bilinear" => Interpolation::Bilinear,
            other => panic!("unknown interpolation {other}"),
        };
        let mut cases = Vec::new();
        for case in doc["rotate"].as_array().expect("rotate cases") {
            let a = f(&case["angle"]);
            let t = Transform::RandomRotation {
                degrees: [a, a],
                interpolation: interp(&case["interpolation"]),
                fill: f(&case["fill"]) * 255.0,
            };
            cases.push((case, t));
        }
        for case in doc["affine"].as_array().expect("affine cases") {
            let pinned = case["center"].is_null()
                && f(&case["translate"][0]) == 0.0
                && f(&case["translate"][1]) == 0.0;
            if !pinned {
                continue;
            }
            let (a, s) = (f(&case["angle"]), f(&case["scale"]));
            let (sx, sy) = (f(&case["shear"][0]), f(&case["shear"][1]));
            let t = Transform::RandomAffine {
                degrees: [a, a],
                translate: [0.0, 0.0],
                scale: [s, s],
                shear: [sx, sx, sy, sy],
                interpolation: interp(&case["interpolation"]),
                fill: f(&case["fill"]) * 255.0,
            };
            cases.push((case, t));
        }
        assert!(
            cases.len() > 80,
            "the fixture has its cases: {}",
            cases.len()
        );
        for (case, t) in cases {
            let (shape, img) = image(case["image"].as_str().unwrap());
            let want: Vec<f32> = serde_json::from_value(case["out"].clone()).unwrap();
            let got = run(std::slice::from_ref(&t), shape, &img, &mut rng());
            let tol = match interp(&case["interpolation"]) {
                Interpolation::Nearest => 0.0,
                Interpolation::Bilinear => 1e-6,
            };
            assert_eq!(got.len(), want.len(), "{t:?}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "{} {t:?}: value {i}: runner {g}, torchvision {w}",
                    case["image"]
                );
            }
        }
    }

    /// The stages apply what they draw, through the kernels the goldens check: the same stream
    /// replayed through `uniform`/`affine_params` and `geometric::rotate`/`affine` gives the
    /// stage's output bit for bit, and the stream advances by exactly those draws.
    #[test]
    fn rotation_and_affine_stages_apply_their_draws_through_the_kernels() {
        let shape = [3, 7, 9];
        let img: Vec<u8> = (0..3 * 7 * 9).map(|i| (i * 37 % 256) as u8).collect();
        let mut src = vec![0.0; img.len()];
        to_unit(&img, &mut src);
        let (degrees, translate, scale) = ([-40.0, 25.0], [0.3, 0.2], [0.7, 1.3]);
        let shear = [-10.0, 10.0, -5.0, 15.0];
        let (fill, kfill) = (51.0, 0.2);
        for interpolation in [Interpolation::Nearest, Interpolation::Bilinear] {
            let k = kernel_interpolation(interpolation);
            let rotation = Transform::RandomRotation {
                degrees,
                interpolation,
                fill,
            };
            let affine = Transform::RandomAffine {
                degrees,
                translate,
                scale,
                shear,
                interpolation,
                fill,
            };
            let mut r = rng();
            for _ in 0..20 {
                let mut replay = r.clone();
                let got = run(std::slice::from_ref(&rotation), shape, &img, &mut r);
                let mut want = Vec::new();
                let angle = uniform(&mut replay, degrees);
                geometric::rotate(&src, shape, &mut want, angle, k, kfill);
                assert_eq!(got, want, "rotation by {angle}, {interpolation:?}");

                let got = run(std::slice::from_ref(&affine), shape, &img, &mut r);
                let a = affine_params(degrees, translate, scale, shear, [7, 9], &mut replay);
                geometric::affine(&src, shape, &mut want, &a, k, kfill);
                assert_eq!(got, want, "{a:?}, {interpolation:?}");
                assert_eq!(
                    r.random::<u64>(),
                    replay.random::<u64>(),
                    "the stages draw exactly these numbers"
                );
            }
        }
    }

    /// The `resize` stage sizes its output as torchvision does and runs the kernel the goldens
    /// of `resize.rs` check.
    #[test]
    fn resize_stage_sizes_and_resamples() {
        let img = positional(2, 7, 9);
        let mut src = vec![0.0; img.len()];
        to_unit(&img, &mut src);
        let cases = [
            (ResizeSize::Shorter(5), [2, 5, 6], "int(5 * 9 / 7) = 6"),
            (ResizeSize::Exact([14, 3]), [2, 14, 3], "[h, w] as given"),
        ];
        for (size, shape, msg) in cases {
            for interpolation in [Interpolation::Nearest, Interpolation::Bilinear] {
                let t = Transform::Resize {
                    size,
                    interpolation,
                };
                let p = Pipeline::new(std::slice::from_ref(&t), [2, 7, 9]);
                assert_eq!(p.output_shape(), shape, "{msg}");
                let got = run(&[t], [2, 7, 9], &img, &mut rng());
                let mut want = Vec::new();
                let k = kernel_interpolation(interpolation);
                resize::resize(&src, [2, 7, 9], &mut want, [shape[1], shape[2]], k);
                assert_eq!(got, want, "{msg} {interpolation:?}");
            }
        }
    }

    /// The `random_resized_crop` stage's output is `size`, and it is the kernel (goldens of
    /// `resized_crop.rs`) on the box `draw_box` gives for the same generator state.
    #[test]
    fn random_resized_crop_stage_sizes_and_crops_the_drawn_box() {
        let img = positional(2, 7, 9);
        let mut src = vec![0.0; img.len()];
        to_unit(&img, &mut src);
        for interpolation in [Interpolation::Nearest, Interpolation::Bilinear] {
            let t = Transform::RandomResizedCrop {
                size: [5, 4],
                scale: [0.08, 1.0],
                ratio: [0.75, 4.0 / 3.0],
                interpolation,
            };
            let p = Pipeline::new(std::slice::from_ref(&t), [2, 7, 9]);
            assert_eq!(p.output_shape(), [2, 5, 4], "[h, w] as given");
            for seed in 0..20 {
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                let got = run(std::slice::from_ref(&t), [2, 7, 9], &img, &mut r);
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                let b = resized_crop::draw_box([7, 9], [0.08, 1.0], [0.75, 4.0 / 3.0], &mut r);
                let (mut want, mut scratch) = (src.clone(), Vec::new());
                let k = kernel_interpolation(interpolation);
                resized_crop::resized_crop(&mut want, [2, 7, 9], &mut scratch, b, [5, 4], k);
                assert_eq!(got, want, "seed {seed} {interpolation:?} box {b:?}");
            }
        }
    }

    #[test]
    fn pad_if_needed_pads_small_images_up_to_the_crop() {
        // 1x2x3 image, crop 4: height padded by 2 and width by 1 on each side, edge mode.
        let img = positional(1, 2, 3);
        let t = Transform::RandomCrop {
            size: 4,
            padding: 0,
            padding_mode: PaddingMode::Edge,
            fill: 0.0,
            pad_if_needed: true,
        };
        let p = Pipeline::new(std::slice::from_ref(&t), [1, 2, 3]);
        assert_eq!(p.output_shape(), [1, 4, 4]);
        let mut r = rng();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let out = bytes(&run(std::slice::from_ref(&t), [1, 2, 3], &img, &mut r));
            // Every pixel comes from the image (edge padding), never a zero from elsewhere
            // than pixel (0, 0).
            assert!(out.iter().all(|v| img.contains(v)), "{out:?}");
            seen.insert(out);
        }
        // Offsets: top in 0..=2 (6 - 4), left in 0..=1 (5 - 4).
        assert_eq!(seen.len(), 6, "every offset of the padded 6x5 image occurs");
    }
}
