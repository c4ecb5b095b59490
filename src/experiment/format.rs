//! The experiment format: every table of an experiment file, declared once.
//!
//! Each declaration below gives the raw, spanned Rust type, the keys the reader accepts, the
//! JSON Schema (`runner schema`, with these doc comments as its descriptions) and the TOML the
//! printer writes (see [`super::decl`]). Validation into the checked
//! [`super::Experiment`] happens later, in [`super::validate`].

use serde_json::json;
use toml::de::DeValue;

use super::checked::{DeviceSpec, ValidationSize};
use super::decl::{
    choice, read_tagged, table, tagged, tagged_schema, with_description, Field, FormatValue, Json,
    SchemaCx, Section, Tagged,
};
use super::read::{Cx, Seed, Sp, TableReader, Value};
use crate::diagnostic::{did_you_mean, Diagnostic};

table! {
    /// An experiment file.
    pub struct RawExperiment<'a> as "the experiment" {
        /// Experiment name, used for the results folder. Default: the file name without `.toml`.
        name: Option<Sp<String>>,
        /// Seed for weight initialisation, shuffling and augmentation. Default: 0.
        seed: Option<Sp<Seed>>,
        /// `cpu` (default), `cuda`, `cuda:N` or `auto` (CUDA when available).
        device: Option<Sp<DeviceSpec>>,
        /// Data set, batching and transforms. Required.
        data: Section<Sp<RawData>>,
        /// The network. Required.
        model: Section<Sp<RawModel<'a>>>,
        /// Loss, optimizer, schedule and epochs. Default: 1 epoch of SGD (lr 0.01) on cross-entropy.
        train: Option<Sp<RawTrain>>,
        /// Variants to run: key paths mapped to lists of values, crossed; `[[sweep.zip]]` groups
        /// vary their keys together (with an optional `label` list naming the values). Read and
        /// removed by the sweep expansion before the rest of the file is read.
        sweep: Option<Sp<SweepTable>>,
    }
}

choice! {
    /// Which labels of CIFAR-100 to learn.
    pub enum Cifar100Labels as "labels" {
        /// The 100 fine classes (`apple`, `aquarium_fish`, ...).
        Fine = "fine",
        /// The 20 coarse superclasses (`aquatic_mammals`, `fish`, ...).
        Coarse = "coarse",
    }
}

choice! {
    /// The data sets runner knows.
    pub enum DatasetName as "dataset" {
        /// MNIST handwritten digits, 1x28x28, 10 classes.
        Mnist = "mnist",
        /// Fashion-MNIST, 1x28x28, 10 classes.
        FashionMnist = "fashion-mnist",
        /// CIFAR-10, 3x32x32, 10 classes.
        Cifar10 = "cifar10",
        /// CIFAR-100, 3x32x32, 100 fine classes or 20 coarse ones (see `labels`).
        Cifar100 = "cifar100",
        /// STL-10's labelled images, 3x96x96, 10 classes (5,000 training, 8,000 test).
        Stl10 = "stl10",
        /// SVHN's cropped digits, 3x32x32, 10 classes (73,257 training, 26,032 test), from the
        /// official `.mat` files; label 10 of the files is the digit 0.
        Svhn = "svhn",
        /// Generated, learnable data for tests and demos (see `[data.synthetic]`).
        Synthetic = "synthetic",
        /// Your own images, one folder per class (see `[data.image_folder]`).
        ImageFolder = "image_folder",
        /// Your own images, listed in a CSV file of `path,label` rows (see `[data.csv]`).
        Csv = "csv",
    }
}

choice! {
    /// Test-time augmentation: the views of each test image whose logits are averaged.
    pub enum Tta as "tta" {
        /// The image alone.
        None = "none",
        /// The mean of the logits of the image and its mirror image (left-right flip).
        Flip = "flip",
        /// airbench's multi-crop TTA: half the `flip` logits of the image, plus half the mean
        /// of the `flip` logits of two copies translated by one pixel (reflect-padded by 1, then
        /// cropped at the top left and at the bottom right).
        FlipTranslate = "flip_translate",
    }
}

choice! {
    /// Which evaluations `tta` applies to.
    pub enum TtaWhen as "tta_when" {
        /// Every evaluation: each epoch's test and validation numbers, and `runner eval`.
        EveryEpoch = "every_epoch",
        /// Only the final one: the last epoch's row (and so the summary), a final evaluation
        /// after an early stop, and `runner eval`; the epochs before evaluate the plain image.
        /// airbench's choice: `tta_level = 0` after every epoch, its TTA once at the end.
        End = "end",
    }
}

choice! {
    /// What to do with an image file that cannot be decoded.
    pub enum OnCorrupt as "on_corrupt" {
        /// Stop with an error that names the file.
        Error = "error",
        /// Leave the image out; each one is named in the log, and the count is reported.
        Skip = "skip",
    }
}

table! {
    /// `[data]`: the data set and how batches are made.
    pub struct RawData as "`[data]`" {
        /// `mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `stl10`, `svhn`, `synthetic`, `image_folder` or `csv`. Required.
        dataset: Sp<DatasetName>,
        /// CIFAR-100's labels: `fine` (100 classes) or `coarse` (20). Only for
        /// `dataset = "cifar100"`. Default: `fine`.
        labels: Option<Sp<Cifar100Labels>>,
        /// SVHN's `extra_32x32.mat` (531,131 more digits, 1.3 GB to download) appended to the
        /// training set, as in the papers' "train+extra". Only for `dataset = "svhn"`. Default:
        /// false.
        extra: Option<Sp<bool>>,
        /// Shape and size of the `synthetic` data set (only for `dataset = "synthetic"`).
        synthetic: Option<Sp<RawSynthetic>>,
        /// Where the `image_folder` data set is and how its images are decoded (only for
        /// `dataset = "image_folder"`).
        image_folder: Option<Sp<RawImageFolder>>,
        /// Where the `csv` data set is and how its images are decoded (only for
        /// `dataset = "csv"`).
        csv: Option<Sp<RawCsv>>,
        /// Training batch size. Default: 64.
        batch_size: Option<Sp<u64>>,
        /// Evaluation batch size. Default: 1000.
        test_batch_size: Option<Sp<u64>>,
        /// Reshuffle the training set every epoch. Default: true.
        shuffle: Option<Sp<bool>>,
        /// Drop the last, partial training batch of every epoch (PyTorch's `drop_last`; the
        /// images it would hold are trained on in other epochs when `shuffle` is on). With
        /// `train.accumulate`, the optimizer steps group the full batches that remain.
        /// Evaluation batches are never dropped. Default: false.
        drop_last: Option<Sp<bool>>,
        /// Train on the first N training images only (quick runs). Default: all.
        train_limit: Option<Sp<u64>>,
        /// A validation split carved from the training set before `train_limit` applies: a
        /// number of images (`5000`) or a fraction (`0.1`). Stratified by class and drawn from
        /// the seed. With it, the best epoch (and early stopping) use the validation split,
        /// never the test set. Default: none.
        validation: Option<Sp<ValidationSize>>,
        /// Transforms applied to training images, in order (after scaling pixels to [0, 1]). Default: none.
        train_transforms: Option<Sp<Vec<Sp<RawTransform>>>>,
        /// Transforms applied to test images, in order. Default: none.
        test_transforms: Option<Sp<Vec<Sp<RawTransform>>>>,
        /// Test-time augmentation of every evaluation (test, validation, `runner eval`): `none`,
        /// `flip` or `flip_translate`; the loss and accuracy are those of the averaged logits.
        /// Default: `none`.
        tta: Option<Sp<Tta>>,
        /// `every_epoch` or `end`: whether `tta` applies to every evaluation or only to the
        /// final one (see the choices). Default: `every_epoch`.
        tta_when: Option<Sp<TtaWhen>>,
    }
}

table! {
    /// `[data.synthetic]`: a generated, learnable data set for tests and demos.
    pub struct RawSynthetic as "`[data.synthetic]`" {
        /// Image shape `[channels, height, width]`. Default: `[1, 8, 8]`.
        shape: Option<Sp<Vec<Sp<u64>>>>,
        /// Number of classes. Default: 4.
        classes: Option<Sp<u64>>,
        /// Training images. Default: 512.
        train_size: Option<Sp<u64>>,
        /// Test images. Default: 256.
        test_size: Option<Sp<u64>>,
    }
}

table! {
    /// `[data.image_folder]`: one sub-folder per class, as torchvision's `ImageFolder`. Class
    /// ids come from the sorted folder names (byte order); images are found in each class
    /// folder and its sub-folders by extension (`.png`, `.jpg`, `.jpeg`, `.webp`, `.bmp`, any
    /// case), other files are ignored. Decoded images are cached under
    /// `<data dir>/.runner-cache/`.
    pub struct RawImageFolder as "`[data.image_folder]`" {
        /// The training folder, holding one folder per class; a relative path is relative to
        /// the data directory (`--data-dir`). Required.
        path: Sp<String>,
        /// The test folder, with class folders named as in `path` (a class may be absent).
        /// Give this or `test_split`.
        test_path: Option<Sp<String>>,
        /// Hold out this fraction (0 < f < 1) of `path`'s images as the test set, stratified by
        /// class and drawn from `split_seed`. Give this or `test_path`.
        test_split: Option<Sp<f64>>,
        /// Seed of the `test_split` draw. Default: the experiment's seed.
        split_seed: Option<Sp<Seed>>,
        /// `[height, width]` every image is made: resized, keeping its aspect ratio, so that it
        /// covers the size (the relatively shorter side becomes exactly the target's; bilinear,
        /// antialiased), then the central window is cut (torchvision's `Resize` then
        /// `CenterCrop`). An image of that size is used as it is. Required.
        image_size: Sp<Vec<Sp<u64>>>,
        /// 1 (grey, ITU-R 601 luma as PIL's `convert("L")`) or 3 (RGB). Alpha is composited
        /// over black. Default: 3.
        channels: Option<Sp<u64>>,
        /// The number of classes you expect: checked against the class folders found, and
        /// against the model's output without the data. Default: as many as there are
        /// class folders.
        classes: Option<Sp<u64>>,
        /// `error` (default) or `skip`: what to do with an image that cannot be decoded.
        on_corrupt: Option<Sp<OnCorrupt>>,
    }
}

table! {
    /// `[data.csv]`: images listed in a CSV file of `path,label` rows (a `path,label` header
    /// line is optional). A label is a class name or an integer class id: when every label is
    /// an integer they are the ids, otherwise the sorted distinct names are the classes.
    /// Decoded images are cached as for `image_folder`.
    pub struct RawCsv as "`[data.csv]`" {
        /// The training CSV; a relative path is relative to the data directory. Image paths in
        /// the file are relative to the file's folder. Required.
        path: Sp<String>,
        /// A test CSV of the same form, whose labels must be classes of `path`. Give this or
        /// `test_split`.
        test_path: Option<Sp<String>>,
        /// Hold out this fraction (0 < f < 1) of the images as the test set, stratified by
        /// class and drawn from `split_seed`. Give this or `test_path`.
        test_split: Option<Sp<f64>>,
        /// Seed of the `test_split` draw. Default: the experiment's seed.
        split_seed: Option<Sp<Seed>>,
        /// `[height, width]` every image is made, as `image_folder`'s `image_size`. Required.
        image_size: Sp<Vec<Sp<u64>>>,
        /// 1 (grey) or 3 (RGB). Default: 3.
        channels: Option<Sp<u64>>,
        /// The number of classes you expect: checked against the labels found. Default: the
        /// number of distinct names, or the largest integer label plus one.
        classes: Option<Sp<u64>>,
        /// `error` (default) or `skip`: what to do with an image that cannot be decoded.
        on_corrupt: Option<Sp<OnCorrupt>>,
    }
}

choice! {
    /// How `random_crop` fills its padding (torchvision's `padding_mode`).
    pub enum PaddingMode as "padding mode" {
        /// The `fill` value.
        Constant = "constant",
        /// The value at the edge of the image repeated.
        Edge = "edge",
        /// Mirror without repeating the edge pixel: `[1, 2, 3, 4]` padded by 2 is
        /// `[3, 2, 1, 2, 3, 4, 3, 2]`. Padding must be smaller than the image.
        Reflect = "reflect",
        /// Mirror repeating the edge pixel: `[1, 2, 3, 4]` padded by 2 is
        /// `[2, 1, 1, 2, 3, 4, 4, 3]`. Padding must be at most the image size.
        Symmetric = "symmetric",
    }
}

choice! {
    /// How a transform that moves pixels by a fraction samples the image (torchvision's
    /// `interpolation`).
    pub enum Interpolation as "interpolation" {
        /// The nearest pixel (torchvision's default for rotations, affine maps and the
        /// augmentation policies).
        Nearest = "nearest",
        /// Bilinear between the four neighbouring pixels.
        Bilinear = "bilinear",
    }
}

/// A number, or an array of numbers: `random_affine`'s `shear = 8`, `[-5, 20]` or
/// `[xmin, xmax, ymin, ymax]` (torchvision's 1, 2 or 4 shear angles). A spread or one `[min,
/// max]` range alone is a [`JitterRange`].
#[derive(Debug, Clone, PartialEq)]
pub struct Numbers(pub Vec<f64>);

impl<'a> FormatValue<'a> for Numbers {
    fn expected() -> &'static str {
        "a number or an array of numbers"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::Array(_) => {
                let xs = Vec::<Sp<f64>>::from_toml(v, cx)?;
                Some(Numbers(xs.into_iter().map(|x| x.value).collect()))
            }
            DeValue::Float(_) | DeValue::Integer(_) => Some(Numbers(vec![f64::from_toml(v, cx)?])),
            _ => super::read::type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "anyOf": [
            { "type": "number" },
            { "type": "array", "items": { "type": "number" } },
        ] })
    }
    fn to_toml(&self) -> toml::Value {
        match self.0.as_slice() {
            [x] => toml::Value::Float(*x),
            xs => toml::Value::Array(xs.iter().map(|x| toml::Value::Float(*x)).collect()),
        }
    }
}

tagged! {
    /// One image transform, selected by `op`.
    pub enum RawTransformOp by "op" as "transform", kinds TransformKind {
        /// `(x - mean) / std` per channel; one value per channel (or one for all).
        Normalize = "normalize" {
            /// Per-channel means.
            mean: Sp<Vec<Sp<f64>>>,
            /// Per-channel standard deviations, all > 0.
            std: Sp<Vec<Sp<f64>>>,
        },
        /// Pad, then crop a random `size` x `size` window (torchvision `RandomCrop`).
        RandomCrop = "random_crop" {
            /// Output size.
            size: Sp<u64>,
            /// Padding on every side first. Default: 0.
            padding: Option<Sp<u64>>,
            /// How the padding is filled. Default: `constant`.
            padding_mode: Option<Sp<PaddingMode>>,
            /// The pixel value (0 to 255, as in the uint8 image) of `constant` padding. Default: 0.
            fill: Option<Sp<f64>>,
            /// After `padding`, pad each side of a dimension smaller than `size` by the
            /// difference, as torchvision does. Default: false.
            pad_if_needed: Option<Sp<bool>>,
        },
        /// Mirror left-right with probability `p` (default 0.5).
        RandomHorizontalFlip = "random_horizontal_flip" {
            /// Probability. Default: 0.5.
            p: Option<Sp<f64>>,
            /// airbench's alternating (derandomised) flip: each training image draws one flip
            /// with probability `p`, once per run (from the seed and its index), and is
            /// mirrored that way in odd epochs (1, 3, ...) and the other way in even ones, so
            /// over two epochs it is seen both ways. Only in `train_transforms`. Default: false.
            alternate: Option<Sp<bool>>,
        },
        /// With probability `p`, fill a random rectangle with `value` (torchvision
        /// `RandomErasing`, "cutout"): its area a uniform fraction in `scale` of the image, its
        /// aspect ratio log-uniform in `ratio`, its position uniform; up to 10 draws, and the
        /// image is left as it is when no box fits. `value` is in the units the image has at
        /// that point of the list (after a `normalize`, normalised units).
        RandomErasing = "random_erasing" {
            /// Probability. Default: 0.5.
            p: Option<Sp<f64>>,
            /// `[min, max]` fraction of the image's area, 0 < min <= max <= 1. Default:
            /// `[0.02, 0.33]`.
            scale: Option<Sp<Vec<Sp<f64>>>>,
            /// `[min, max]` aspect ratio (height / width), 0 < min <= max. Default: `[0.3, 3.3]`.
            ratio: Option<Sp<Vec<Sp<f64>>>>,
            /// The fill value. Default: 0.
            value: Option<Sp<f64>>,
        },
        /// Rotate by an angle drawn uniformly from `degrees`, counter-clockwise, about the centre,
        /// keeping the size (torchvision `RandomRotation`, `expand=False`); corners outside the
        /// image take `fill`.
        RandomRotation = "random_rotation" {
            /// `d` (the range `[-d, d]`, d >= 0) or `[min, max]`, in degrees. Required.
            degrees: Sp<JitterRange>,
            /// `nearest` or `bilinear`. Default: `nearest`.
            interpolation: Option<Sp<Interpolation>>,
            /// The pixel value (0 to 255, as in the uint8 image) outside the image. Default: 0.
            fill: Option<Sp<f64>>,
        },
        /// A random affine map about the centre, keeping the size (torchvision `RandomAffine`):
        /// rotation angle, whole-pixel translation, scale and shear drawn uniformly from their
        /// ranges; corners outside the image take `fill`.
        RandomAffine = "random_affine" {
            /// `d` (the range `[-d, d]`, d >= 0) or `[min, max]`, in degrees (torchvision
            /// `F.affine`'s angle: positive turns the picture clockwise). Required.
            degrees: Sp<JitterRange>,
            /// `[fx, fy]`: the largest shifts, as fractions (0 to 1) of the width and height;
            /// each shift is drawn in `[-fx * w, fx * w]` and rounded to whole pixels. Default:
            /// none.
            translate: Option<Sp<Vec<Sp<f64>>>>,
            /// `[min, max]` scale factor, 0 < min <= max. Default: 1.
            scale: Option<Sp<Vec<Sp<f64>>>>,
            /// Shear in degrees: `s` (x shear in `[-s, s]`), `[min, max]` (x shear), or
            /// `[xmin, xmax, ymin, ymax]`. Default: none.
            shear: Option<Sp<Numbers>>,
            /// `nearest` or `bilinear`. Default: `nearest`.
            interpolation: Option<Sp<Interpolation>>,
            /// The pixel value (0 to 255, as in the uint8 image) outside the image. Default: 0.
            fill: Option<Sp<f64>>,
        },
        /// Random brightness, contrast, saturation and hue (torchvision `ColorJitter`): per
        /// image, the four in a random order, each with a factor drawn uniformly from its
        /// range; a key left out (or a range of only its neutral value) is not applied. For
        /// `[0, 1]` images of 1 or 3 channels (put it before `normalize`); saturation and hue
        /// leave 1-channel images alone.
        ColorJitter = "color_jitter" {
            /// A number `b` >= 0 for `[max(0, 1 - b), 1 + b]`, or a `[min, max]` factor range,
            /// 0 <= min <= max. Default: none.
            brightness: Option<Sp<JitterRange>>,
            /// Contrast factors, as `brightness` (a blend with the mean grey value). Default:
            /// none.
            contrast: Option<Sp<JitterRange>>,
            /// Saturation factors, as `brightness` (a blend with each pixel's grey value).
            /// Default: none.
            saturation: Option<Sp<JitterRange>>,
            /// A number `h` in `[0, 0.5]` for `[-h, h]`, or a `[min, max]` range with
            /// -0.5 <= min <= max <= 0.5: the hue shift, a fraction of the colour circle.
            /// Default: none.
            hue: Option<Sp<JitterRange>>,
        },
        /// TrivialAugment Wide (torchvision v2 `TrivialAugmentWide`): per image, one of 14 ops
        /// (identity, shear x/y, translate x/y, rotate, brightness, colour, contrast,
        /// sharpness, posterize, solarize, autocontrast, equalize) uniformly, at a uniform bin
        /// of its magnitude table, with a random sign where the op has one. For `[0, 1]` images
        /// of 1 or 3 channels (put it before `normalize`); colour leaves grey images alone.
        TrivialAugmentWide = "trivial_augment_wide" {
            /// The number of bins of each magnitude table, at least 2. Default: 31.
            num_magnitude_bins: Option<Sp<u64>>,
            /// How the shears, translations and rotations sample: `nearest` or `bilinear`.
            /// Default: `nearest`.
            interpolation: Option<Sp<Interpolation>>,
            /// The pixel value (0 to 255, as in the uint8 image) where a shear, translation or
            /// rotation leaves the image. Default: 0.
            fill: Option<Sp<f64>>,
        },
        /// RandAugment (torchvision v2 `RandAugment`): per image, `num_ops` ops drawn uniformly
        /// (with repetition) from `trivial_augment_wide`'s 14, all at bin `magnitude` of
        /// RandAugment's own tables (milder, translations relative to the image size), each
        /// with a random sign where the op has one.
        RandAugment = "rand_augment" {
            /// Ops per image, 0 to 64. Default: 2.
            num_ops: Option<Sp<u64>>,
            /// The bin of every table, 0 to `num_magnitude_bins - 1`. Default: 9.
            magnitude: Option<Sp<u64>>,
            /// The number of bins of each magnitude table, at least 2. Default: 31.
            num_magnitude_bins: Option<Sp<u64>>,
            /// As `trivial_augment_wide`'s. Default: `nearest`.
            interpolation: Option<Sp<Interpolation>>,
            /// As `trivial_augment_wide`'s. Default: 0.
            fill: Option<Sp<f64>>,
        },
        /// A fixed random permutation of the pixel positions, drawn from its own `seed`. Put the
        /// same transform in `train_transforms` and `test_transforms`.
        PixelPermutation = "pixel_permutation" {
            /// Seed of the permutation. Default: 0.
            seed: Option<Sp<Seed>>,
        },
        /// Resize (torchvision v2 `Resize`): bilinear with antialiasing (torchvision's default
        /// for tensors) or nearest.
        Resize = "resize" {
            /// `s`: the shorter side becomes `s` and the longer one `int(s * long / short)`
            /// (torchvision's aspect-preserving size); or `[h, w]`. Each 1 to 4096. Required.
            size: Sp<Numbers>,
            /// `bilinear` or `nearest`. Default: `bilinear`.
            interpolation: Option<Sp<Interpolation>>,
        },
        /// Cut a random box and resize it (torchvision v2 `RandomResizedCrop`): up to 10 tries of
        /// an area uniform in `scale` times the image's and an aspect ratio (width / height)
        /// log-uniform in `ratio`, else the central box of the whole image with its ratio
        /// clamped into `ratio`; then resized as `resize`.
        RandomResizedCrop = "random_resized_crop" {
            /// `s` for `[s, s]`, or `[h, w]`, each 1 to 4096. Required.
            size: Sp<Numbers>,
            /// `[min, max]` fraction of the area, 0 < min <= max. Default: `[0.08, 1.0]`.
            scale: Option<Sp<Vec<Sp<f64>>>>,
            /// `[min, max]` aspect ratio, width / height, 0 < min <= max. Default: `[3/4, 4/3]`.
            ratio: Option<Sp<Vec<Sp<f64>>>>,
            /// `bilinear` (antialiased) or `nearest`. Default: `bilinear`.
            interpolation: Option<Sp<Interpolation>>,
        },
        /// Crop the central `size` x `size` window.
        CenterCrop = "center_crop" {
            /// Output size.
            size: Sp<u64>,
        },
        /// RGB to one luminance channel (torchvision `Grayscale`); needs 3-channel images.
        Grayscale = "grayscale" {},
    }
}

/// A range as written: one number (a spread around the neutral value) or a `[min, max]` pair,
/// as torchvision accepts them: `color_jitter`'s factors and the `degrees` of
/// `random_rotation` and `random_affine` (`d` for `[-d, d]`). Checked against each key's bounds
/// in validation.
#[derive(Debug, Clone, PartialEq)]
pub enum JitterRange {
    /// A spread `x`: `[center - x, center + x]`.
    Spread(f64),
    /// An explicit `[min, max]`, with the span of the pair.
    Range(Vec<Sp<f64>>),
}

impl<'a> FormatValue<'a> for JitterRange {
    fn expected() -> &'static str {
        "a number or a [min, max] pair"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::Integer(_) | DeValue::Float(_) => {
                f64::from_toml(v, cx).map(JitterRange::Spread)
            }
            DeValue::Array(_) => {
                let pair = Vec::<Sp<f64>>::from_toml(v, cx)?;
                if pair.len() != 2 {
                    cx.push(
                        Diagnostic::error(
                            v.span(),
                            format!("a range has 2 numbers, found {}", pair.len()),
                        )
                        .label("expected [min, max]"),
                    );
                    return None;
                }
                Some(JitterRange::Range(pair))
            }
            _ => super::read::type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "anyOf": [
            { "type": "number" },
            { "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 },
        ] })
    }
    fn to_toml(&self) -> toml::Value {
        match self {
            JitterRange::Spread(x) => toml::Value::Float(*x),
            JitterRange::Range(p) => {
                toml::Value::Array(p.iter().map(|x| toml::Value::Float(x.value)).collect())
            }
        }
    }
}

/// One entry of `train_transforms` / `test_transforms`.
#[derive(Debug, Clone)]
pub struct RawTransform {
    /// The transform.
    pub op: RawTransformOp,
    /// Keys whose values were wrong (already reported).
    pub failed: Vec<&'static str>,
}

impl<'a> FormatValue<'a> for RawTransform {
    fn expected() -> &'static str {
        "a transform table like { op = \"normalize\", mean = [0.5], std = [0.5] }"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let (op, _, failed) =
            read_tagged::<RawTransformOp, _>(v, cx, "transform", "transform", &[])?;
        Some(RawTransform { op: op?, failed })
    }
    fn schema(s: &mut SchemaCx) -> Json {
        s.define("transform", |s| {
            tagged_schema::<RawTransformOp>(s, "One image transform, selected by `op`.", &[])
        })
    }
    fn to_toml(&self) -> toml::Value {
        tagged_toml(&self.op, &[], &[])
    }
}

/// A tagged table as TOML: the `lead` keys, the tag, the variant's keys, the `tail` keys.
fn tagged_toml<'a, T: Tagged<'a>>(
    x: &T,
    lead: &[(&str, Option<toml::Value>)],
    tail: &[(&str, Option<toml::Value>)],
) -> toml::Value {
    let mut t = toml::Table::new();
    let put = |t: &mut toml::Table, keys: &[(&str, Option<toml::Value>)]| {
        for (k, v) in keys {
            if let Some(v) = v {
                t.insert((*k).to_string(), v.clone());
            }
        }
    };
    put(&mut t, lead);
    t.insert(
        T::TAG.to_string(),
        toml::Value::String(T::kind_name(x.kind()).to_string()),
    );
    x.variant_toml(&mut t);
    put(&mut t, tail);
    toml::Value::Table(t)
}

table! {
    /// `[model]`: the network as an ordered list of layers.
    pub struct RawModel<'a> as "`[model]`" {
        /// Per-sample input shape `[C, H, W]`. Default: the data set's image shape after the
        /// training transforms.
        input: Option<Sp<Vec<Sp<u64>>>>,
        /// Layers, in order. Each takes the previous layer's output unless it names `inputs`.
        layers: Sp<Vec<Sp<RawLayer<'a>>>>,
        /// Reusable blocks, instantiated with `{ op = "block", block = "<name>", args = { ... } }`.
        blocks: Option<Sp<Blocks<'a>>>,
    }
}

/// `[model.blocks]`: block definitions by name.
#[derive(Debug)]
pub struct Blocks<'a>(pub Vec<(Sp<String>, RawBlock<'a>)>);

impl<'a> FormatValue<'a> for Blocks<'a> {
    fn expected() -> &'static str {
        "a table of blocks"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let Some(table) = v.get_ref().as_table() else {
            cx.push(
                Diagnostic::error(
                    v.span(),
                    format!(
                        "expected a table of blocks, found {}",
                        v.get_ref().type_str()
                    ),
                )
                .label("expected `[model.blocks.<name>]` tables"),
            );
            return None;
        };
        let mut out = Vec::new();
        for (name, body) in table.iter() {
            let name = Sp::new(name.get_ref().to_string(), name.span());
            let what = format!("block `{}`", name.value);
            let Some(b) = TableReader::new(body, cx, what, RawBlock::KEYS) else {
                continue;
            };
            let mut failed = Vec::new();
            let params =
                <Option<Sp<ParamNames>> as Field>::read_field(&b, cx, "params", &mut failed)
                    .flatten()
                    .map(|p| Sp::new(p.value.0, p.span));
            let layers = <Sp<BlockBody<'a>> as Field>::read_field(&b, cx, "layers", &mut failed);
            if let Some(layers) = layers {
                out.push((
                    name,
                    RawBlock {
                        params,
                        layers,
                        failed,
                    },
                ));
            }
        }
        Some(Blocks(out))
    }
    fn schema(s: &mut SchemaCx) -> Json {
        let block = RawBlock::schema(s);
        json!({ "type": "object", "additionalProperties": block })
    }
    fn to_toml(&self) -> toml::Value {
        let mut t = toml::Table::new();
        for (name, b) in &self.0 {
            t.insert(name.value.clone(), b.to_toml());
        }
        toml::Value::Table(t)
    }
}

/// `[model.blocks.<name>]`: a block defined once and instantiated many times.
#[derive(Debug)]
pub struct RawBlock<'a> {
    /// Parameter names; the body refers to them as `"$name"`.
    pub params: Option<Sp<Vec<Sp<String>>>>,
    /// The block's layers, read per instance with its arguments substituted.
    pub layers: Sp<BlockBody<'a>>,
    /// Keys whose values were wrong (already reported).
    pub failed: Vec<&'static str>,
}

impl RawBlock<'_> {
    /// The keys of a block definition.
    pub const KEYS: &'static [&'static str] = &["params", "layers"];

    fn schema(s: &mut SchemaCx) -> Json {
        let params = with_description(
            json!({ "type": "array", "items": { "type": "string", "pattern": PARAM_NAME } }),
            "Parameter names; the body refers to them as `\"$name\"`.",
        );
        let layers = with_description(
            BlockBody::schema(s),
            "The block's layers. Inside, `inputs = [\"input\"]` names the block's input and layer names are local.",
        );
        json!({
            "type": "object",
            "description": "A block defined once and instantiated many times.",
            "properties": { "params": params, "layers": layers },
            "required": ["layers"],
            "additionalProperties": false,
        })
    }

    fn to_toml(&self) -> toml::Value {
        let mut t = toml::Table::new();
        if let Some(p) = &self.params {
            t.insert("params".into(), p.to_toml());
        }
        t.insert("layers".into(), self.layers.to_toml());
        toml::Value::Table(t)
    }
}

/// A block's `params`: names, read as written (a `"$name"` here is a mistake in the name, not
/// a reference to resolve).
#[derive(Debug)]
pub struct ParamNames(pub Vec<Sp<String>>);

impl<'a> FormatValue<'a> for ParamNames {
    fn expected() -> &'static str {
        "an array"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let Some(items) = v.get_ref().as_array() else {
            cx.push(
                Diagnostic::error(
                    v.span(),
                    format!(
                        "expected an array of names, found {}",
                        v.get_ref().type_str()
                    ),
                )
                .label("expected `params = [\"name\", ...]`"),
            );
            return None;
        };
        let before = cx.error_count();
        let names: Vec<Sp<String>> = items
            .iter()
            .filter_map(|item| Some(Sp::new(String::from_toml(item, cx)?, item.span())))
            .collect();
        (cx.error_count() == before).then_some(ParamNames(names))
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "array", "items": { "type": "string", "pattern": PARAM_NAME } })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Array(
            self.0
                .iter()
                .map(|s| toml::Value::String(s.value.clone()))
                .collect(),
        )
    }
}

/// What a block parameter's name looks like (without its `$`).
pub const PARAM_NAME: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// A block's layer list, kept unread: it is read once per instance, with that instance's
/// arguments in place of its `"$param"` references.
#[derive(Debug, Clone, Copy)]
pub struct BlockBody<'a>(pub &'a Value<'a>);

impl<'a> FormatValue<'a> for BlockBody<'a> {
    fn expected() -> &'static str {
        "an array of layers"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        if v.get_ref().as_array().is_none() {
            cx.push(
                Diagnostic::error(
                    v.span(),
                    format!(
                        "expected an array of layers, found {}",
                        v.get_ref().type_str()
                    ),
                )
                .label("expected `layers = [ { op = \"...\" }, ... ]`"),
            );
            return None;
        }
        Some(BlockBody(v))
    }
    fn schema(s: &mut SchemaCx) -> Json {
        let saved = std::mem::replace(&mut s.params, true);
        let layer = s.define("block_layer", RawLayer::layer_schema);
        s.params = saved;
        json!({ "type": "array", "items": layer })
    }
    fn to_toml(&self) -> toml::Value {
        de_to_toml(self.0.get_ref())
    }
}

/// An unread TOML value as an owned one (block bodies and arguments, which stay unread).
fn de_to_toml(v: &DeValue<'_>) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_or(
            toml::Value::String(i.as_str().to_string()),
            toml::Value::Integer,
        ),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().map_or(
            toml::Value::String(f.as_str().to_string()),
            toml::Value::Float,
        ),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(a) => {
            toml::Value::Array(a.iter().map(|x| de_to_toml(x.get_ref())).collect())
        }
        DeValue::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, x)| (k.get_ref().to_string(), de_to_toml(x.get_ref())))
                .collect(),
        ),
    }
}

/// One entry of `layers`: the op and its keys, plus the keys every layer has.
#[derive(Debug, Clone)]
pub struct RawLayer<'a> {
    /// Unique name (letters, digits, `_`). Default: op-based, e.g. `conv1`, `fc2`.
    pub name: Option<Sp<String>>,
    /// Names of the layers this one reads (`"input"` is the model or block input). Default:
    /// the previous layer.
    pub inputs: Option<Sp<Vec<Sp<String>>>>,
    /// The operation and its settings.
    pub op: RawOp<'a>,
    /// Keys whose values were wrong (already reported).
    pub failed: Vec<&'static str>,
}

impl RawLayer<'_> {
    /// The keys every layer may have besides its op's own.
    pub const COMMON: &'static [&'static str] = &["name", "inputs"];

    fn layer_schema(s: &mut SchemaCx) -> Json {
        let name = with_description(
            <Option<Sp<String>> as Field>::field_schema(s),
            "Unique name (letters, digits, `_`). Default: op-based, e.g. `conv1`, `fc2`.",
        );
        let inputs = with_description(
            <Option<Sp<Vec<Sp<String>>>> as Field>::field_schema(s),
            "Names of the layers this one reads (`\"input\"` is the model or block input). Default: the previous layer.",
        );
        tagged_schema::<RawOp>(
            s,
            "One layer: `op` selects the kind, `name` and `inputs` are common to all.",
            &[("name", name), ("inputs", inputs)],
        )
    }
}

impl<'a> FormatValue<'a> for RawLayer<'a> {
    fn expected() -> &'static str {
        "a layer table like { op = \"relu\" }"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let (op, t, mut failed) =
            read_tagged::<RawOp, _>(v, cx, "layer op", "layer", RawLayer::COMMON)?;
        let name = Option::<Sp<String>>::read_field(&t, cx, "name", &mut failed)?;
        let inputs = Option::<Sp<Vec<Sp<String>>>>::read_field(&t, cx, "inputs", &mut failed)?;
        Some(RawLayer {
            name,
            inputs,
            op: op?,
            failed,
        })
    }
    fn schema(s: &mut SchemaCx) -> Json {
        if s.params {
            s.define("block_layer", RawLayer::layer_schema)
        } else {
            s.define("layer", RawLayer::layer_schema)
        }
    }
    fn to_toml(&self) -> toml::Value {
        tagged_toml(
            &self.op,
            &[("name", self.name.field_toml())],
            &[("inputs", self.inputs.field_toml())],
        )
    }
}

tagged! {
    /// Layer operations as written; sizes that can be inferred are optional.
    pub enum RawOp<'a> by "op" as "layer op", kinds OpKind {
        /// `nn.Conv2d`.
        Conv2d = "conv2d" / "conv" {
            /// Input channels. Default: inferred; if given, must match.
            in_channels as "in": Option<Sp<u64>>,
            /// Output channels.
            out: Sp<u64>,
            /// Kernel size.
            kernel: Sp<u64>,
            /// Stride. Default: 1.
            stride: Option<Sp<u64>>,
            /// Zero padding on every side, or `"same"` (PyTorch's string: output as large as
            /// the input; stride 1 and an odd kernel only, padding `(kernel - 1) / 2`).
            /// Default: 0.
            padding: Option<Sp<ConvPadding>>,
            /// Add a bias. Default: true.
            bias: Option<Sp<bool>>,
            /// Weight initialisation: `"default"` (PyTorch's), `"dirac"` (airbench's partial
            /// identity) or `{ kind = "whitening", images = 5000, eps = 5e-4 }` (from the
            /// patch covariance of training images). Default: `"default"`.
            init: Option<Sp<RawInit>>,
        },
        /// `nn.BatchNorm2d`.
        BatchNorm2d = "batch_norm2d" / "bn" {
            /// Channels. Default: inferred; if given, must match.
            features: Option<Sp<u64>>,
            /// Added to the variance. Default: 1e-5.
            eps: Option<Sp<f64>>,
            /// Running-statistics momentum. Default: 0.1.
            momentum: Option<Sp<f64>>,
        },
        /// ReLU.
        Relu = "relu" {},
        /// Hyperbolic tangent (LeNet-5's activation).
        Tanh = "tanh" {},
        /// Logistic sigmoid.
        Sigmoid = "sigmoid" {},
        /// Multiply by a constant (airbench's `Mul`); no parameters.
        Scale = "scale" {
            /// The factor (finite).
            factor: Sp<f64>,
        },
        /// `nn.GELU(approximate)`: `x * Phi(x)`, `Phi` the standard normal CDF.
        Gelu = "gelu" {
            /// `"none"` (exact, with `erf`) or `"tanh"` (PyTorch's tanh approximation).
            /// Default: `"none"`.
            approximate: Option<Sp<GeluApprox>>,
        },
        /// `nn.MaxPool2d`.
        MaxPool2d = "max_pool2d" / "pool" {
            /// Window size.
            kernel: Sp<u64>,
            /// Stride. Default: `kernel`.
            stride: Option<Sp<u64>>,
            /// Padding. Default: 0.
            padding: Option<Sp<u64>>,
        },
        /// `nn.AvgPool2d`.
        AvgPool2d = "avg_pool2d" / "avgpool" {
            /// Window size.
            kernel: Sp<u64>,
            /// Stride. Default: `kernel`.
            stride: Option<Sp<u64>>,
            /// Padding. Default: 0.
            padding: Option<Sp<u64>>,
        },
        /// Mean over height and width: `[C, H, W] -> [C]`.
        GlobalAvgPool = "global_avg_pool" / "gap" {},
        /// Flatten to `[features]`.
        Flatten = "flatten" {},
        /// `nn.Linear`.
        Linear = "linear" / "fc" {
            /// Input features. Default: inferred; if given, must match.
            in_features as "in": Option<Sp<u64>>,
            /// Output features.
            out: Sp<u64>,
            /// Add a bias. Default: true.
            bias: Option<Sp<bool>>,
            /// Weight initialisation: `"default"` (PyTorch's) or `"dirac"` (identity on the
            /// first `in` outputs, bias zero). Default: `"default"`.
            init: Option<Sp<RawInit>>,
        },
        /// Dropout (training only).
        Dropout = "dropout" {
            /// Drop probability. Default: 0.5.
            p: Option<Sp<f64>>,
        },
        /// `log_softmax` over features (pair with `loss = "nll"`).
        LogSoftmax = "log_softmax" {},
        /// Sum of two or more same-shaped `inputs`.
        Add = "add" {},
        /// Concatenation of `inputs` along channels (or features).
        Concat = "concat" {},
        /// No-op.
        Identity = "identity" {},
        /// VGG shorthand: `cfg = [64, "M", 128, "M", ...]`.
        Vgg = "vgg" / "features" {
            /// Widths and `"M"` pools.
            cfg: Sp<Vec<Sp<VggItem>>>,
            /// Insert BatchNorm after every conv. Default: false.
            batch_norm: Option<Sp<bool>>,
        },
        /// An instance of a block from `[model.blocks]`.
        Block = "block" {
            /// Block name.
            block: Sp<String>,
            /// Values for the block's `params`.
            args: Option<Sp<BlockArgs<'a>>>,
        },
    }
}

choice! {
    /// How `gelu` computes the normal CDF, as PyTorch's `approximate` argument.
    pub enum GeluApprox as "GELU approximation" {
        /// Exact: `0.5 * (1 + erf(x / sqrt(2)))` (PyTorch's default).
        None = "none",
        /// `0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`.
        Tanh = "tanh",
    }
}

/// A conv's `padding`: a size, or `"same"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConvPadding {
    /// Zeros on every side.
    Size(u64),
    /// PyTorch's `padding="same"`.
    Same,
}

impl<'a> FormatValue<'a> for ConvPadding {
    fn expected() -> &'static str {
        "a size or \"same\""
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::String(s) if s == "same" => Some(ConvPadding::Same),
            DeValue::Integer(_) => Some(ConvPadding::Size(u64::from_toml(v, cx)?)),
            _ => {
                cx.push(
                    Diagnostic::error(v.span(), "`padding` must be a size or \"same\"")
                        .label("expected an integer or \"same\""),
                );
                None
            }
        }
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "anyOf": [u64::schema(s), { "const": "same" }] })
    }
    fn to_toml(&self) -> toml::Value {
        match self {
            ConvPadding::Size(n) => toml::Value::Integer(*n as i64),
            ConvPadding::Same => toml::Value::String("same".into()),
        }
    }
}

choice! {
    /// Weight initialisations of `conv2d` and `linear`.
    pub enum InitName as "init" {
        /// PyTorch's default: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and bias.
        Default = "default",
        /// airbench's `Conv.reset_parameters`: the default init, the bias zeroed, then
        /// `torch.nn.init.dirac_(w[:in])`: the first `in` filters are the identity, the others
        /// keep their default init.
        Dirac = "dirac",
        /// airbench's `init_whitening_conv`: the eigenvectors of the patch covariance of the
        /// first `images` training images, scaled by `1 / sqrt(eigenvalue + eps)`, and their
        /// negatives; the bias zeroed.
        Whitening = "whitening",
    }
}

table! {
    /// `init` as a table.
    pub struct RawInitTable as "`init`" {
        /// `default`, `dirac` or `whitening`. Required.
        kind: Sp<InitName>,
        /// Whitening: how many training images (the first ones, in file order, after the
        /// test-time transforms) give the patches. Default: 5000.
        images: Option<Sp<u64>>,
        /// Whitening: added to every eigenvalue before the square root (> 0). Default: 5e-4.
        eps: Option<Sp<f64>>,
    }
}

/// `init` as written: a name, or a table with the whitening settings.
#[derive(Debug, Clone)]
pub struct RawInit {
    /// Which initialisation.
    pub kind: Sp<InitName>,
    /// Whitening's image count.
    pub images: Option<Sp<u64>>,
    /// Whitening's eps.
    pub eps: Option<Sp<f64>>,
}

impl<'a> FormatValue<'a> for RawInit {
    fn expected() -> &'static str {
        "an init name or table"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        if v.get_ref().is_str() {
            let kind = Sp::new(InitName::from_toml(v, cx)?, v.span());
            return Some(RawInit {
                kind,
                images: None,
                eps: None,
            });
        }
        let t = RawInitTable::from_toml(v, cx)?;
        Some(RawInit {
            kind: t.kind,
            images: t.images,
            eps: t.eps,
        })
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "anyOf": [InitName::schema(s), RawInitTable::schema(s)] })
    }
    fn to_toml(&self) -> toml::Value {
        if self.images.is_none() && self.eps.is_none() {
            return self.kind.to_toml();
        }
        RawInitTable {
            kind: self.kind.clone(),
            images: self.images.clone(),
            eps: self.eps.clone(),
            failed: Vec::new(),
        }
        .to_toml()
    }
}

/// One `cfg` entry of the VGG shorthand: a width, or `"M"` for max-pooling.
#[derive(Debug, Clone, PartialEq)]
pub enum VggItem {
    /// A 3x3 conv (+ BatchNorm) + ReLU with this many output channels.
    Conv(u64),
    /// `"M"`: 2x2 max-pooling with stride 2.
    Pool,
}

impl<'a> FormatValue<'a> for VggItem {
    fn expected() -> &'static str {
        "a width or \"M\""
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::String(s) if s == "M" => Some(VggItem::Pool),
            DeValue::Integer(_) => Some(VggItem::Conv(u64::from_toml(v, cx)?)),
            _ => {
                cx.push(
                    Diagnostic::error(v.span(), "a VGG `cfg` entry must be a width or \"M\"")
                        .label("expected an integer or \"M\""),
                );
                None
            }
        }
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "anyOf": [u64::schema(s), { "const": "M" }] })
    }
    fn to_toml(&self) -> toml::Value {
        match self {
            VggItem::Conv(n) => toml::Value::Integer(*n as i64),
            VggItem::Pool => toml::Value::String("M".into()),
        }
    }
}

/// A block instance's `args`: values by parameter name, unread until substituted.
#[derive(Debug, Clone)]
pub struct BlockArgs<'a>(pub Vec<(Sp<String>, &'a Value<'a>)>);

impl<'a> FormatValue<'a> for BlockArgs<'a> {
    fn expected() -> &'static str {
        "a table"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref().as_table() {
            Some(table) => Some(BlockArgs(
                table
                    .iter()
                    .map(|(k, val)| (Sp::new(k.get_ref().to_string(), k.span()), val))
                    .collect(),
            )),
            None => {
                cx.push(
                    Diagnostic::error(v.span(), "`args` must be a table")
                        .label("expected `args = { name = value, ... }`"),
                );
                None
            }
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "object", "propertyNames": { "pattern": PARAM_NAME } })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Table(
            self.0
                .iter()
                .map(|(k, v)| (k.value.clone(), de_to_toml(v.get_ref())))
                .collect(),
        )
    }
}

table! {
    /// `[train]`: loss, optimizer, schedule and epochs.
    pub struct RawTrain as "`[train]`" {
        /// Number of epochs, > 0; a fraction (`9.9`) ends training inside the last epoch,
        /// after `ceil(steps_per_epoch * epochs)` optimizer steps in all (airbench's count).
        /// Give this or `steps`. Default: 1.
        epochs: Option<Sp<Epochs>>,
        /// Train for this many optimizer steps instead of a number of epochs: the epochs run
        /// whole until the one in which the count is reached, which ends after that step.
        /// Give this or `epochs`.
        steps: Option<Sp<u64>>,
        /// `"cross_entropy"` (default), `"nll"`, or a table `{ kind = "cross_entropy", label_smoothing = 0.1 }`.
        loss: Option<Sp<RawLoss>>,
        /// The optimizer. Default: `{ kind = "sgd", lr = 0.01 }`.
        optimizer: Option<Sp<RawOptimizer>>,
        /// Learning-rate schedule. Default: constant.
        schedule: Option<Sp<RawSchedule>>,
        /// Gradient accumulation: one optimizer step (and one schedule and `ema` step) per N
        /// batches, each batch's loss divided by N. The last step of an epoch takes the batches
        /// left over, still divided by N. Default: 1.
        accumulate: Option<Sp<u64>>,
        /// Gradient clipping before each optimizer step: `{ max_norm = 1.0 }` (with
        /// `norm_type`, default 2) like `torch.nn.utils.clip_grad_norm_`, or `{ value = 0.5 }`
        /// like `clip_grad_value_`. Default: none.
        clip_grad: Option<Sp<RawClipGrad>>,
        /// An exponential moving average of the weights, evaluated after every epoch and saved
        /// as `model_ema.safetensors`. Default: none.
        ema: Option<Sp<RawEma>>,
        /// Batch-level mixup and cutmix with timm's semantics (`timm.data.Mixup`, batch mode):
        /// each training batch is mixed with itself reversed, and the loss is the cross-entropy
        /// against the mixed (soft) targets. Default: none.
        mixup: Option<Sp<RawMixup>>,
        /// Checkpoints in the run folder, for `runner resume`. Default: after every epoch,
        /// keeping the last and the best.
        checkpoint: Option<Sp<RawCheckpoint>>,
        /// Start from these weights instead of the seeded initialisation: a safetensors file
        /// keyed by `state_dict` names (a run's `model.safetensors`, or a PyTorch `state_dict`
        /// saved with `safetensors.torch.save_file`), its path relative to the experiment
        /// file's folder; or `{ path = "...", sha256 = "..." }` to insist on its contents.
        /// The optimizer starts fresh. Default: none.
        init_from: Option<Sp<RawInitFrom>>,
        /// Stop when a metric has not improved for `patience` epochs. Default: train every
        /// epoch.
        early_stopping: Option<Sp<RawEarlyStopping>>,
        /// Optimizer settings for chosen parameters, PyTorch's parameter groups: each
        /// `[[train.param_groups]]` selects parameters with `match` and scales the optimizer's
        /// `lr` and `weight_decay` for them, or freezes them. The first group that matches a
        /// parameter is its group; the others keep the optimizer's own settings. Default: none.
        param_groups: Option<Sp<Vec<Sp<RawParamGroup>>>>,
        /// airbench94's Lookahead: a slow copy of the weights that the model is pulled back to
        /// every few optimizer steps. It changes the trained model itself. Default: none.
        lookahead: Option<Sp<RawLookahead>>,
    }
}

table! {
    /// `[train.lookahead]`: airbench94's `LookaheadState`. After every `every`-th optimizer
    /// step t of the run's `total`, with `decay = alpha * (t / total)^power`, every
    /// floating-point tensor of the `state_dict` (parameters and BatchNorm running statistics)
    /// becomes `slow = lerp(slow, w, 1 - decay)` and the model takes `w = slow`; after the
    /// last step the model takes `slow` once more (decay 1). `slow` starts as the initial
    /// weights.
    pub struct RawLookahead as "`[train.lookahead]`" {
        /// Update after every N-th optimizer step (>= 1). Default: 5 (airbench's).
        every: Option<Sp<u64>>,
        /// The decay at the last step, in [0, 1]. Default: 0.7737809375 (0.95^5, airbench's).
        alpha: Option<Sp<f64>>,
        /// The power of `t / total` in the decay, >= 0. Default: 3 (airbench's).
        power: Option<Sp<f64>>,
    }
}

choice! {
    /// What a parameter is within its layer.
    pub enum ParamRole as "role" {
        /// The `weight`: a conv kernel, a linear matrix, a BatchNorm scale.
        Weight = "weight",
        /// The `bias`.
        Bias = "bias",
    }
}

table! {
    /// The `match` of a `[[train.param_groups]]`: every key given must hold, at least one key.
    pub struct RawParamMatch as "`match`" {
        /// The parameter's layer op, e.g. `batch_norm2d`.
        op: Option<Sp<OpKind>>,
        /// `weight` or `bias`.
        role: Option<Sp<ParamRole>>,
        /// The parameter's `state_dict` name, or a pattern of it where `*` stands for any
        /// characters (`?` for one, `[ab]` for one of a set): `layers.0.bias`, `*.bias`.
        name: Option<Sp<String>>,
    }
}

table! {
    /// `[[train.param_groups]]`: the parameters `match` selects and their settings.
    pub struct RawParamGroup as "`[[train.param_groups]]`" {
        /// Which parameters, e.g. `{ op = "batch_norm2d", role = "bias" }` or
        /// `{ name = "*.bias" }`. Required.
        selector as "match": Sp<RawParamMatch>,
        /// Multiplies the optimizer's `lr` for these parameters (the schedule scales it like
        /// every group's), >= 0. Default: 1.
        lr_scale: Option<Sp<f64>>,
        /// Multiplies the optimizer's `weight_decay` for these parameters, >= 0. Default: 1.
        weight_decay_scale: Option<Sp<f64>>,
        /// Never update these parameters (PyTorch's `requires_grad = False`): no gradient, no
        /// weight decay, no optimizer state. They still count as parameters. Default: false.
        frozen: Option<Sp<bool>>,
        /// Train these parameters in epochs 1 to N only, then freeze them (>= 1). Default:
        /// never frozen.
        freeze_after_epochs: Option<Sp<u64>>,
    }
}

choice! {
    /// The metrics early stopping can watch. The test set is not among them: choosing when to
    /// stop on it would make its accuracy a validation score.
    pub enum StopMetric as "metric" {
        /// Validation loss, lower is better (needs `data.validation`).
        ValLoss = "val_loss",
        /// Validation accuracy, higher is better (needs `data.validation`).
        ValAcc = "val_acc",
        /// Mean training loss of the epoch, lower is better.
        TrainLoss = "train_loss",
        /// Training accuracy of the epoch, higher is better.
        TrainAcc = "train_acc",
    }
}

table! {
    /// `[train.early_stopping]`: stop when `metric` has not improved by more than `min_delta`
    /// for `patience` epochs in a row (Keras' and Lightning's `EarlyStopping`).
    pub struct RawEarlyStopping as "`[train.early_stopping]`" {
        /// `val_loss`, `val_acc`, `train_loss` or `train_acc`. Default: `val_loss`.
        metric: Option<Sp<StopMetric>>,
        /// Epochs without improvement before training stops, at least 1. Default: 5.
        patience: Option<Sp<u64>>,
        /// The smallest change that counts as an improvement, >= 0 (in the metric's units:
        /// percentage points for accuracies). Default: 0.
        min_delta: Option<Sp<f64>>,
    }
}

table! {
    /// `[train.clip_grad]`: `max_norm` (with `norm_type`) or `value`, not both.
    pub struct RawClipGrad as "`[train.clip_grad]`" {
        /// Scale all gradients together so that their total norm is at most this (> 0):
        /// `torch.nn.utils.clip_grad_norm_`.
        max_norm: Option<Sp<f64>>,
        /// The norm of `max_norm`: a number >= 1, or `"inf"` (the largest magnitude). Default: 2.
        norm_type: Option<Sp<NormType>>,
        /// Clamp every gradient element to [-value, value] (> 0): `torch.nn.utils.clip_grad_value_`.
        value: Option<Sp<f64>>,
    }
}

/// `train.epochs`: a whole or fractional number of epochs, written back as it was read (a
/// whole number as an integer, so `epochs = 10` prints as it did before fractions existed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epochs(pub f64);

impl<'a> FormatValue<'a> for Epochs {
    fn expected() -> &'static str {
        "a number of epochs"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::Float(_) | DeValue::Integer(_) => f64::from_toml(v, cx).map(Epochs),
            _ => super::read::type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "type": "number", "exclusiveMinimum": 0, "maximum": super::validate::MAX_EPOCHS })
    }
    fn to_toml(&self) -> toml::Value {
        if self.0.fract() == 0.0 && self.0.abs() < 9e15 {
            toml::Value::Integer(self.0 as i64)
        } else {
            toml::Value::Float(self.0)
        }
    }
}

/// `clip_grad.norm_type`: the `p` of the norm, `inf` included (written `"inf"` or TOML's `inf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormType(pub f64);

impl<'a> FormatValue<'a> for NormType {
    fn expected() -> &'static str {
        "a number or \"inf\""
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let p = match v.get_ref() {
            DeValue::String(s) if s == "inf" => f64::INFINITY,
            DeValue::Float(f) if f.as_str().trim_start_matches('+') == "inf" => f64::INFINITY,
            DeValue::Float(_) | DeValue::Integer(_) => f64::from_toml(v, cx)?,
            _ => {
                cx.push(
                    Diagnostic::error(
                        v.span(),
                        format!(
                            "expected a number or \"inf\", found {}",
                            v.get_ref().type_str()
                        ),
                    )
                    .label("e.g. `norm_type = 2` or `norm_type = \"inf\"`"),
                );
                return None;
            }
        };
        Some(NormType(p))
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "anyOf": [{ "type": "number" }, { "const": "inf" }] })
    }
    fn to_toml(&self) -> toml::Value {
        if self.0.is_infinite() {
            toml::Value::String("inf".into())
        } else {
            toml::Value::Float(self.0)
        }
    }
}

table! {
    /// `[train.mixup]`: timm's `Mixup(mixup_alpha, cutmix_alpha, prob, switch_prob,
    /// mode="batch", correct_lam, label_smoothing)`, the smoothing being the loss's
    /// `label_smoothing`.
    pub struct RawMixup as "`[train.mixup]`" {
        /// Mixup's Beta(alpha, alpha) parameter (>= 0; 0 turns mixup off). Default: 0.
        mixup_alpha: Option<Sp<f64>>,
        /// Cutmix's Beta(alpha, alpha) parameter (>= 0; 0 turns cutmix off). Default: 0.
        cutmix_alpha: Option<Sp<f64>>,
        /// Probability that a batch is mixed at all, in [0, 1]. Default: 1.
        prob: Option<Sp<f64>>,
        /// With both alphas above 0: the probability of cutmix rather than mixup, in [0, 1].
        /// Default: 0.5.
        switch_prob: Option<Sp<f64>>,
        /// Cutmix: recompute the weight from the box as clipped by the image's border.
        /// Default: true.
        correct_lam: Option<Sp<bool>>,
    }
}

table! {
    /// `[train.ema]`: an exponential moving average of the weights, as timm's `ModelEmaV3`
    /// with `exclude_buffers=True`: after every `every`-th optimizer step, each parameter
    /// `ema = decay * ema + (1 - decay) * w` (`lerp`, in `f32`), BatchNorm running statistics
    /// copied. The average starts as a copy of the initial weights.
    pub struct RawEma as "`[train.ema]`" {
        /// The decay, 0 < decay < 1 (e.g. 0.999). Required. The first optimizer step copies the
        /// weights (timm's `get_decay` returns 0 for it).
        decay: Sp<f64>,
        /// Update the average after every N-th optimizer step. Default: 1.
        every: Option<Sp<u64>>,
        /// timm's decay warm-up: at optimizer step t the decay is
        /// `min(decay, 1 - (1 + (t - 1) / warmup_gamma) ^ -warmup_power)`. Default: false.
        warmup: Option<Sp<bool>>,
        /// Warm-up power (> 0). Default: 2/3 (timm's).
        warmup_power: Option<Sp<f64>>,
        /// Warm-up gamma (> 0), in optimizer steps. Default: 1 (timm's).
        warmup_gamma: Option<Sp<f64>>,
    }
}

table! {
    /// `[train.init_from]` as a table.
    pub struct RawInitFromTable as "`[train.init_from]`" {
        /// The safetensors file, relative to the experiment file's folder. Required.
        path: Sp<String>,
        /// The file's SHA-256 (64 hex digits); a file with other contents is an error. A run's
        /// `config.toml` records it. Default: any contents.
        sha256: Option<Sp<String>>,
    }
}

/// `init_from` as written: a path, or a table with the path and the file's SHA-256.
#[derive(Debug)]
pub struct RawInitFrom {
    /// The file.
    pub path: Sp<String>,
    /// Its expected SHA-256.
    pub sha256: Option<Sp<String>>,
}

impl<'a> FormatValue<'a> for RawInitFrom {
    fn expected() -> &'static str {
        "a path or a table { path = \"...\", sha256 = \"...\" }"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        if v.get_ref().is_str() {
            let path = Sp::new(String::from_toml(v, cx)?, v.span());
            return Some(RawInitFrom { path, sha256: None });
        }
        let t = RawInitFromTable::from_toml(v, cx)?;
        Some(RawInitFrom {
            path: t.path,
            sha256: t.sha256,
        })
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "anyOf": [String::schema(s), RawInitFromTable::schema(s)] })
    }
    fn to_toml(&self) -> toml::Value {
        match &self.sha256 {
            None => self.path.to_toml(),
            Some(_) => RawInitFromTable {
                path: self.path.clone(),
                sha256: self.sha256.clone(),
                failed: Vec::new(),
            }
            .to_toml(),
        }
    }
}

table! {
    /// `[train.checkpoint]`: when checkpoints are written. They never change the results.
    pub struct RawCheckpoint as "`[train.checkpoint]`" {
        /// Write a checkpoint after every N-th epoch (and after the last); 0 writes one only
        /// when the run is interrupted. Default: 1.
        every: Option<Sp<u64>>,
        /// Also keep the checkpoint of the best epoch (by accuracy on the validation split when
        /// there is one, else on the test set). Default: true.
        best: Option<Sp<bool>>,
    }
}

choice! {
    /// Loss functions.
    pub enum LossName as "loss" {
        /// Cross-entropy of logits, with optional label smoothing.
        CrossEntropy = "cross_entropy",
        /// Negative log-likelihood of log-probabilities (pair with a `log_softmax` layer).
        Nll = "nll",
    }
}

table! {
    /// `[train.loss]` as a table.
    pub struct RawLossTable as "`[train.loss]`" {
        /// `cross_entropy` or `nll`. Required.
        kind: Sp<LossName>,
        /// Cross-entropy label smoothing in [0, 1). Default: 0.
        label_smoothing: Option<Sp<f64>>,
    }
}

/// The loss as written: a name, or a table with settings.
#[derive(Debug)]
pub struct RawLoss {
    /// `nll` or `cross_entropy`.
    pub kind: Sp<LossName>,
    /// Cross-entropy label smoothing.
    pub label_smoothing: Option<Sp<f64>>,
}

impl<'a> FormatValue<'a> for RawLoss {
    fn expected() -> &'static str {
        "a loss name or table"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        if v.get_ref().is_str() {
            let kind = Sp::new(LossName::from_toml(v, cx)?, v.span());
            return Some(RawLoss {
                kind,
                label_smoothing: None,
            });
        }
        let t = RawLossTable::from_toml(v, cx)?;
        Some(RawLoss {
            kind: t.kind,
            label_smoothing: t.label_smoothing,
        })
    }
    fn schema(s: &mut SchemaCx) -> Json {
        json!({ "anyOf": [LossName::schema(s), RawLossTable::schema(s)] })
    }
    fn to_toml(&self) -> toml::Value {
        match (self.kind.value, &self.label_smoothing) {
            (LossName::Nll, None) => self.kind.to_toml(),
            _ => RawLossTable {
                kind: self.kind.clone(),
                label_smoothing: self.label_smoothing.clone(),
                failed: Vec::new(),
            }
            .to_toml(),
        }
    }
}

choice! {
    /// Optimizers, with PyTorch's update rules.
    pub enum OptimizerName as "optimizer" {
        /// `torch.optim.SGD`.
        Sgd = "sgd",
        /// `torch.optim.Adam` (L2 weight decay added to the gradient).
        Adam = "adam",
        /// `torch.optim.AdamW` (decoupled weight decay).
        AdamW = "adamw",
    }
}

table! {
    /// `[train.optimizer]`.
    pub struct RawOptimizer as "`[train.optimizer]`" {
        /// `sgd`, `adam` or `adamw`. Required.
        kind: Sp<OptimizerName>,
        /// Learning rate. Default: 0.01 for SGD, 0.001 for Adam/AdamW.
        lr: Option<Sp<f64>>,
        /// SGD momentum. Default: 0.
        momentum: Option<Sp<f64>>,
        /// SGD dampening. Default: 0.
        dampening: Option<Sp<f64>>,
        /// SGD Nesterov momentum. Default: false.
        nesterov: Option<Sp<bool>>,
        /// Weight decay (L2 for SGD/Adam, decoupled for AdamW). Default: 0 (0.01 for AdamW).
        weight_decay: Option<Sp<f64>>,
        /// Adam `[beta1, beta2]`. Default: `[0.9, 0.999]`.
        betas: Option<Sp<Vec<Sp<f64>>>>,
        /// Adam epsilon. Default: 1e-8.
        eps: Option<Sp<f64>>,
    }
}

choice! {
    /// Learning-rate schedules.
    pub enum ScheduleName as "schedule" {
        /// The optimizer's `lr` throughout.
        Constant = "constant",
        /// `StepLR`: multiply by `gamma` every `step_size` epochs.
        Step = "step",
        /// `MultiStepLR`: multiply by `gamma` at each milestone epoch.
        MultiStep = "multistep",
        /// `CosineAnnealingLR` over `t_max` epochs down to `eta_min`.
        Cosine = "cosine",
        /// `OneCycleLR` (cosine annealing) over all optimizer steps.
        OneCycle = "one_cycle",
        /// The `lr` times a factor that is linear between `points`, over all optimizer steps
        /// (airbench's `get_lr`).
        PiecewiseLinear = "piecewise_linear",
    }
}

table! {
    /// `[train.schedule]`.
    pub struct RawSchedule as "`[train.schedule]`" {
        /// `constant` (default), `step`, `multistep`, `cosine`, `one_cycle` or
        /// `piecewise_linear`.
        kind: Option<Sp<ScheduleName>>,
        /// `step`: epochs between decays.
        step_size: Option<Sp<u64>>,
        /// `step`/`multistep`: decay factor. Default: 0.1.
        gamma: Option<Sp<f64>>,
        /// `multistep`: epochs at which to decay.
        milestones: Option<Sp<Vec<Sp<u64>>>>,
        /// `cosine`: period in epochs. Default: the number of epochs (rounded up when
        /// `epochs` is fractional; with `steps`, the epochs those steps start).
        t_max: Option<Sp<u64>>,
        /// `cosine`: minimum rate. Default: 0.
        eta_min: Option<Sp<f64>>,
        /// `one_cycle`: peak rate. Default: the optimizer's `lr`.
        max_lr: Option<Sp<f64>>,
        /// `one_cycle`: fraction of steps rising. Default: 0.3.
        pct_start: Option<Sp<f64>>,
        /// `one_cycle`: initial rate = max_lr / div_factor. Default: 25.
        div_factor: Option<Sp<f64>>,
        /// `one_cycle`: final rate = initial / final_div_factor. Default: 1e4.
        final_div_factor: Option<Sp<f64>>,
        /// `piecewise_linear`: `[fraction, factor]` knots, e.g. `[[0.0, 0.2], [0.23, 1.0],
        /// [1.0, 0.07]]`: fractions of the total optimizer steps, increasing from 0 to 1, and
        /// factors (>= 0) of `lr`, linear in between. A knot's step is
        /// `floor(fraction * total_steps)` (the last one's is `total_steps`). Required.
        points: Option<Sp<Vec<Sp<Vec<Sp<f64>>>>>>,
        /// Optimizer steps of linear warm-up in front of the schedule. Default: 0.
        warmup_steps: Option<Sp<u64>>,
        /// Warm-up factor at step 0. Default: 0.1.
        warmup_start_factor: Option<Sp<f64>>,
    }
}

impl<'a> FormatValue<'a> for ValidationSize {
    fn expected() -> &'static str {
        "a number of images or a fraction"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        match v.get_ref() {
            DeValue::Integer(_) => {
                let n = u64::from_toml(v, cx)?;
                if n == 0 {
                    cx.push(
                        Diagnostic::error(v.span(), "a validation split of 0 images")
                            .label("must be at least 1")
                            .help("leave `validation` out for no validation split"),
                    );
                    return None;
                }
                Some(ValidationSize::Count(n as usize))
            }
            DeValue::Float(_) => {
                let f = f64::from_toml(v, cx)?;
                if f > 0.0 && f < 1.0 {
                    Some(ValidationSize::Fraction(f))
                } else {
                    cx.push(
                        Diagnostic::error(
                            v.span(),
                            format!("a validation fraction must be between 0 and 1, found {f}"),
                        )
                        .label("expected 0 < fraction < 1")
                        .help("write a whole number (`5000`) for a number of images"),
                    );
                    None
                }
            }
            _ => super::read::type_error(v, cx, Self::expected()),
        }
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "anyOf": [
            { "type": "integer", "minimum": 1, "maximum": super::read::MAX_INT },
            { "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "not": { "type": "integer" } },
        ] })
    }
    fn to_toml(&self) -> toml::Value {
        match *self {
            ValidationSize::Count(n) => toml::Value::Integer(n as i64),
            ValidationSize::Fraction(f) => toml::Value::Float(f),
        }
    }
}

/// Device names as written: `cpu`, `cuda`, `cuda:N`, `auto`.
const DEVICES: &[&str] = &["cpu", "cuda", "auto"];

impl<'a> FormatValue<'a> for DeviceSpec {
    fn expected() -> &'static str {
        "a string"
    }
    fn from_toml(v: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<Self> {
        let s = String::from_toml(v, cx)?;
        DeviceSpec::parse(&s).or_else(|| {
            let mut d = Diagnostic::error(v.span(), format!("unknown device `{s}`"))
                .label("expected `cpu`, `cuda`, `cuda:N` or `auto`");
            if let Some(m) = did_you_mean(&s, DEVICES.iter().copied()) {
                d = d.help(format!("did you mean `{m}`?"));
            }
            cx.push(d);
            None
        })
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({ "anyOf": [
            { "type": "string", "enum": DEVICES },
            { "type": "string", "pattern": "^cuda:[0-9]{1,4}$" },
        ] })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.name())
    }
}

/// `[sweep]` is read by the sweep expansion ([`super::sweep`]) before the rest of the file;
/// this type only describes it in the schema.
#[derive(Debug)]
pub struct SweepTable;

impl<'a> FormatValue<'a> for SweepTable {
    fn expected() -> &'static str {
        "a table of key paths to lists"
    }
    fn from_toml(_: &'a Value<'a>, _: &mut Cx<'a>) -> Option<Self> {
        Some(SweepTable)
    }
    fn schema(_: &mut SchemaCx) -> Json {
        json!({
            "type": "object",
            "description": "Key paths (`\"train.optimizer.lr\"`) mapped to the values to try.",
            "properties": {
                "zip": {
                    "type": "array",
                    "description": "Groups of key paths varied together; lists of equal length.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "label": {
                                "type": "array",
                                "items": { "type": "string", "minLength": 1 },
                                "minItems": 1
                            }
                        },
                        "additionalProperties": { "type": "array", "minItems": 1 }
                    }
                }
            },
            "additionalProperties": { "type": "array", "minItems": 1 }
        })
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Table(toml::Table::new())
    }
}

/// The schema of a block parameter reference.
pub fn param_schema() -> Json {
    json!({
        "type": "string",
        "pattern": "^\\$[A-Za-z_][A-Za-z0-9_]*$",
        "description": "A block parameter, `\"$name\"`: replaced by the instance's argument of that name."
    })
}

/// Reads the whole document (after `[sweep]` was taken out of it).
pub fn read_experiment<'a>(doc: &'a Value<'a>, cx: &mut Cx<'a>) -> Option<RawExperiment<'a>> {
    RawExperiment::from_toml(doc, cx)
}
