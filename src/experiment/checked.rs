//! The checked experiment: what the rest of the program accepts.
//!
//! Every value here has been validated (ranges, names, references). Nothing downstream
//! re-validates. An [`Experiment`] has private fields and is built only by
//! [`super::validate`]: every override (`--set`, `--epochs`, a sweep variant) is applied to the
//! file before it is checked, so values derived from others (a cosine schedule's `t_max` from
//! the epochs) always follow them.

use serde::Serialize;

pub use super::format::GeluApprox;
use super::format::{
    Cifar100Labels, DatasetName, OnCorrupt, OpKind, ParamRole, StopMetric, Tta, TtaWhen,
};
pub use super::format::{Interpolation, PaddingMode};

/// A fully validated experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    name: String,
    seed: u64,
    device: DeviceSpec,
    data: DataSpec,
    model: ModelSpec,
    train: TrainSpec,
}

impl Experiment {
    /// Only validation builds experiments.
    pub(super) fn new(
        name: String,
        seed: u64,
        device: DeviceSpec,
        data: DataSpec,
        model: ModelSpec,
        train: TrainSpec,
    ) -> Self {
        Experiment {
            name,
            seed,
            device,
            data,
            model,
            train,
        }
    }

    /// Experiment name, used for the results folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Seed for weight initialisation, shuffling and augmentation.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Where to run.
    pub fn device(&self) -> DeviceSpec {
        self.device
    }

    /// Data set, batching and transforms.
    pub fn data(&self) -> &DataSpec {
        &self.data
    }

    /// The network: layers in file order, blocks and shorthands expanded, inputs resolved.
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// Loss, optimizer, schedule and epochs.
    pub fn train(&self) -> &TrainSpec {
        &self.train
    }

    /// The run's length in batches and steps with `n_train` training images per epoch.
    pub fn plan(&self, n_train: usize) -> Plan {
        let batches_per_epoch = self.data.batches_per_epoch(n_train);
        let accumulate = self.train.accumulate.max(1);
        let steps_per_epoch = batches_per_epoch.div_ceil(accumulate);
        let length = self.train.length;
        Plan {
            batches_per_epoch,
            steps_per_epoch,
            total_steps: length.total_steps(steps_per_epoch),
            epochs: length.epochs(steps_per_epoch),
            accumulate,
        }
    }

    /// Records the SHA-256 of the `init_from` file as the check of the weights found it
    /// ([`crate::check`] reads the file; the front end reads no file but the experiment), so
    /// that the resolved `config.toml` names the exact weights a run starts from. An experiment
    /// that pins a SHA-256 of its own keeps it (the check compares the two).
    pub(crate) fn pin_init_sha256(&mut self, sha256: &str) {
        if let Some(init) = &mut self.train.init_from {
            init.sha256.get_or_insert_with(|| sha256.to_string());
        }
    }
}

/// Which device the experiment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// A CUDA device by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    /// CUDA when available, else CPU.
    Auto,
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda`, `cuda:N` (N < 1024), `auto`.
    pub fn parse(s: &str) -> Option<DeviceSpec> {
        match s {
            "cpu" => Some(DeviceSpec::Cpu),
            "cuda" => Some(DeviceSpec::Cuda(0)),
            "auto" => Some(DeviceSpec::Auto),
            _ => s
                .strip_prefix("cuda:")
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .filter(|n| *n < 1024)
                .map(DeviceSpec::Cuda),
        }
    }

    /// The name as written in experiment files.
    pub fn name(self) -> String {
        match self {
            DeviceSpec::Cpu => "cpu".into(),
            DeviceSpec::Cuda(n) => format!("cuda:{n}"),
            DeviceSpec::Auto => "auto".into(),
        }
    }
}

/// Which data set to read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum DatasetKind {
    /// MNIST handwritten digits, 1x28x28, 10 classes.
    Mnist,
    /// Fashion-MNIST, 1x28x28, 10 classes.
    FashionMnist,
    /// CIFAR-10, 3x32x32, 10 classes.
    Cifar10,
    /// CIFAR-100, 3x32x32, with its fine (100) or coarse (20) labels.
    Cifar100(Cifar100Labels),
    /// STL-10's labelled images, 3x96x96, 10 classes.
    Stl10,
    /// SVHN's cropped digits, 3x32x32, 10 classes.
    Svhn {
        /// Whether `extra_32x32.mat` is appended to the training set.
        extra: bool,
    },
    /// Generated data for tests and demos: learnable, deterministic given the experiment seed.
    Synthetic(SyntheticSpec),
    /// The user's images, one folder per class.
    ImageFolder(FolderSpec),
    /// The user's images, listed in a CSV file of `path,label` rows.
    Csv(FolderSpec),
}

/// Where the user's images are (`[data.image_folder]` or `[data.csv]`) and how they are
/// decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderSpec {
    /// The training folder (or CSV file), as written: relative to the data directory.
    pub path: String,
    /// Where the test images come from.
    pub test: TestSource,
    /// `[channels, height, width]` every image is made.
    pub shape: [usize; 3],
    /// The declared number of classes, if any.
    pub classes: Option<usize>,
    /// What to do with an image that cannot be decoded.
    pub on_corrupt: OnCorrupt,
}

/// Where the test images of a [`FolderSpec`] come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TestSource {
    /// A folder (or CSV file) of their own, relative to the data directory.
    Path(String),
    /// A stratified fraction of the training images.
    Split {
        /// The fraction, in `(0, 1)`.
        fraction: f64,
        /// The seed of the draw; `None`: the experiment's seed.
        seed: Option<u64>,
    },
}

/// Parameters of the synthetic data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyntheticSpec {
    /// Image shape `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Number of training images.
    pub train_size: usize,
    /// Number of test images.
    pub test_size: usize,
}

impl DatasetKind {
    /// Shape `[C, H, W]` of one raw image.
    pub fn image_shape(&self) -> [usize; 3] {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => [1, 28, 28],
            DatasetKind::Cifar10 | DatasetKind::Cifar100(_) | DatasetKind::Svhn { .. } => {
                [3, 32, 32]
            }
            DatasetKind::Stl10 => [3, 96, 96],
            DatasetKind::Synthetic(s) => s.shape,
            DatasetKind::ImageFolder(f) | DatasetKind::Csv(f) => f.shape,
        }
    }

    /// Number of classes, where it is known without the data: always, but for an image folder
    /// or CSV file that does not declare `classes`.
    pub fn known_classes(&self) -> Option<usize> {
        match self {
            DatasetKind::Synthetic(s) => Some(s.classes),
            DatasetKind::ImageFolder(f) | DatasetKind::Csv(f) => f.classes,
            DatasetKind::Cifar100(Cifar100Labels::Fine) => Some(100),
            DatasetKind::Cifar100(Cifar100Labels::Coarse) => Some(20),
            _ => Some(10),
        }
    }

    /// Number of classes; 0 for an image folder or CSV file that does not declare it (the
    /// loaded [`crate::data::Dataset::classes`] then tells).
    pub fn classes(&self) -> usize {
        self.known_classes().unwrap_or(0)
    }

    /// The user's images: the folder or CSV spec.
    pub fn folder(&self) -> Option<&FolderSpec> {
        match self {
            DatasetKind::ImageFolder(f) | DatasetKind::Csv(f) => Some(f),
            _ => None,
        }
    }

    /// Images in the training set, where the data set fixes it (the official files' count).
    pub fn train_images(&self) -> Option<usize> {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => Some(60_000),
            DatasetKind::Cifar10 | DatasetKind::Cifar100(_) => Some(50_000),
            DatasetKind::Stl10 => Some(5_000),
            DatasetKind::Svhn { extra: false } => Some(73_257),
            DatasetKind::Svhn { extra: true } => Some(73_257 + 531_131),
            DatasetKind::Synthetic(s) => Some(s.train_size),
            DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => None,
        }
    }

    /// The data set's entry in the format's table of names.
    pub fn id(&self) -> DatasetName {
        match self {
            DatasetKind::Mnist => DatasetName::Mnist,
            DatasetKind::FashionMnist => DatasetName::FashionMnist,
            DatasetKind::Cifar10 => DatasetName::Cifar10,
            DatasetKind::Cifar100(_) => DatasetName::Cifar100,
            DatasetKind::Stl10 => DatasetName::Stl10,
            DatasetKind::Svhn { .. } => DatasetName::Svhn,
            DatasetKind::Synthetic(_) => DatasetName::Synthetic,
            DatasetKind::ImageFolder(_) => DatasetName::ImageFolder,
            DatasetKind::Csv(_) => DatasetName::Csv,
        }
    }

    /// Name as written in experiment files.
    pub fn name(&self) -> &'static str {
        self.id().name()
    }
}

/// Data set, batching and transforms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSpec {
    /// The data set.
    pub dataset: DatasetKind,
    /// Training batch size.
    pub batch_size: usize,
    /// Evaluation batch size.
    pub test_batch_size: usize,
    /// Reshuffle the training set every epoch.
    pub shuffle: bool,
    /// Drop each epoch's last training batch when it is partial.
    pub drop_last: bool,
    /// Train on the first N training images only.
    pub train_limit: Option<usize>,
    /// The validation split carved from the training set, if any.
    pub validation: Option<ValidationSize>,
    /// Transforms applied to training batches, in order.
    pub train_transforms: Vec<Transform>,
    /// Transforms applied to test batches, in order.
    pub test_transforms: Vec<Transform>,
    /// Test-time augmentation of every evaluation.
    pub tta: Tta,
    /// Whether `tta` applies to every evaluation or only the final one.
    pub tta_when: TtaWhen,
}

impl DataSpec {
    /// The test-time augmentation of an evaluation: the final one (the last epoch's, one after
    /// an early stop, `runner eval`) or one after an earlier epoch.
    pub fn tta_for(&self, final_eval: bool) -> Tta {
        match self.tta_when {
            TtaWhen::EveryEpoch => self.tta,
            TtaWhen::End if final_eval => self.tta,
            TtaWhen::End => Tta::None,
        }
    }

    /// Training batches in an epoch over `n` images: the last one partial, or dropped with
    /// `drop_last`.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        let batch_size = self.batch_size.max(1);
        if self.drop_last {
            n / batch_size
        } else {
            n.div_ceil(batch_size)
        }
    }

    /// Training images per epoch where the data set fixes their number: after the
    /// validation split and `train_limit`, before `drop_last`.
    pub fn known_train_images(&self) -> Option<usize> {
        let n = self.dataset.train_images()?;
        let n = n - self.validation.map_or(0, |v| v.images(n)).min(n);
        Some(self.train_limit.map_or(n, |l| l.min(n)))
    }
}

/// The size of the validation split (`data.validation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum ValidationSize {
    /// This many images.
    Count(usize),
    /// This fraction of the training set, in `(0, 1)`, rounded to the nearest image.
    Fraction(f64),
}

impl ValidationSize {
    /// Images in the split of a training set of `n` images (not checked against `n`).
    pub fn images(self, n: usize) -> usize {
        match self {
            ValidationSize::Count(c) => c,
            ValidationSize::Fraction(f) => (f * n as f64).round() as usize,
        }
    }
}

/// One image transform. Pixels enter as `u8`, are scaled to `[0, 1]` (PyTorch's `ToTensor`),
/// then the transforms run in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Transform {
    /// `(x - mean[c]) / std[c]`; `mean`/`std` have one value per channel.
    Normalize {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation (all > 0).
        std: Vec<f32>,
    },
    /// Pad by `padding` on each side (then, with `pad_if_needed`, each side of a dimension still
    /// smaller than `size` by the difference), then crop a random `size` x `size` window.
    RandomCrop {
        /// Output height and width.
        size: usize,
        /// Padding added on every side first.
        padding: usize,
        /// How the padding is filled.
        padding_mode: PaddingMode,
        /// Value of `constant` padding, in uint8 pixel units (0 to 255).
        fill: f32,
        /// torchvision's `pad_if_needed`.
        pad_if_needed: bool,
    },
    /// Mirror left-right with probability `p`.
    RandomHorizontalFlip {
        /// Probability of flipping.
        p: f32,
        /// Draw the flip once per image and run, then alternate it every epoch.
        alternate: bool,
    },
    /// torchvision's `RandomErasing`: with probability `p`, a box of `scale` of the area and
    /// `ratio` aspect filled with `value`.
    RandomErasing {
        /// Probability of erasing.
        p: f32,
        /// `[min, max]` fraction of the area.
        scale: [f32; 2],
        /// `[min, max]` aspect ratio.
        ratio: [f32; 2],
        /// The fill value.
        value: f32,
    },
    /// torchvision's `RandomRotation` (no expand): an angle uniform in `degrees`,
    /// counter-clockwise.
    RandomRotation {
        /// `[min, max]` angle in degrees.
        degrees: [f32; 2],
        /// How pixels are sampled.
        interpolation: Interpolation,
        /// Value outside the image, in uint8 pixel units (0 to 255).
        fill: f32,
    },
    /// torchvision's `RandomAffine`: angle, translation, scale and shear drawn per image.
    RandomAffine {
        /// `[min, max]` angle in degrees (`F.affine`'s sign).
        degrees: [f32; 2],
        /// `[fx, fy]` largest shifts as fractions of the width and height (0 for none).
        translate: [f32; 2],
        /// `[min, max]` scale factor.
        scale: [f32; 2],
        /// `[xmin, xmax, ymin, ymax]` shear in degrees.
        shear: [f32; 4],
        /// How pixels are sampled.
        interpolation: Interpolation,
        /// Value outside the image, in uint8 pixel units (0 to 255).
        fill: f32,
    },
    /// torchvision's `ColorJitter`: per image, the four adjustments in a random order, each
    /// factor uniform in its `[min, max]`; `None` is not applied.
    ColorJitter {
        /// Brightness factors.
        brightness: Option<[f32; 2]>,
        /// Contrast factors.
        contrast: Option<[f32; 2]>,
        /// Saturation factors.
        saturation: Option<[f32; 2]>,
        /// Hue shifts, within `[-0.5, 0.5]`.
        hue: Option<[f32; 2]>,
    },
    /// torchvision v2's `TrivialAugmentWide`: one op per image at a random bin.
    TrivialAugmentWide {
        /// Bins of each magnitude table, at least 2.
        num_magnitude_bins: usize,
        /// How the geometric ops sample.
        interpolation: Interpolation,
        /// Value outside the image, in uint8 pixel units (0 to 255).
        fill: f32,
    },
    /// torchvision v2's `RandAugment`: `num_ops` ops per image, all at bin `magnitude`.
    RandAugment {
        /// Ops per image.
        num_ops: usize,
        /// The bin, `< num_magnitude_bins`.
        magnitude: usize,
        /// Bins of each magnitude table, at least 2.
        num_magnitude_bins: usize,
        /// How the geometric ops sample.
        interpolation: Interpolation,
        /// Value outside the image, in uint8 pixel units (0 to 255).
        fill: f32,
    },
    /// A fixed permutation of the `H*W` pixel positions (same for every channel and image),
    /// drawn from its own seed.
    PixelPermutation {
        /// Seed of the permutation.
        seed: u64,
    },
    /// torchvision v2's `Resize` (antialiased when bilinear).
    Resize {
        /// The output size.
        size: ResizeSize,
        /// How pixels are sampled.
        interpolation: Interpolation,
    },
    /// torchvision v2's `RandomResizedCrop`: a box of `scale` of the area and aspect ratio
    /// (width / height) in `ratio` is cut, then resized to `size` (antialiased when bilinear).
    RandomResizedCrop {
        /// Output `[height, width]`.
        size: [usize; 2],
        /// `[min, max]` fraction of the image's area.
        scale: [f32; 2],
        /// `[min, max]` aspect ratio, width / height.
        ratio: [f32; 2],
        /// How pixels are sampled.
        interpolation: Interpolation,
    },
    /// Crop the central `size` x `size` window.
    CenterCrop {
        /// Output height and width.
        size: usize,
    },
    /// RGB to one luminance channel, `0.2989 R + 0.587 G + 0.114 B` (torchvision `Grayscale`).
    Grayscale,
}

impl Transform {
    /// Shape of an image after this transform.
    pub fn output_shape(&self, input: [usize; 3]) -> [usize; 3] {
        match self {
            Transform::RandomCrop { size, .. } | Transform::CenterCrop { size } => {
                [input[0], *size, *size]
            }
            Transform::Grayscale => [1, input[1], input[2]],
            Transform::Resize { size, .. } => {
                let [h, w] = size.output([input[1], input[2]]);
                [input[0], h, w]
            }
            Transform::RandomResizedCrop { size, .. } => [input[0], size[0], size[1]],
            _ => input,
        }
    }
}

/// `resize`'s size: a shorter side, or the height and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResizeSize {
    /// The shorter side becomes this; the longer one keeps the aspect ratio.
    Shorter(usize),
    /// `[height, width]`.
    Exact([usize; 2]),
}

impl ResizeSize {
    /// The `[h, w]` an `h x w` image is resized to. For a shorter side this is torchvision's
    /// `_compute_resized_output_size`: the longer side becomes `int(size * long / short)`,
    /// truncated; an empty image keeps its size.
    pub fn output(self, [h, w]: [usize; 2]) -> [usize; 2] {
        let size = match self {
            ResizeSize::Exact(hw) => return hw,
            ResizeSize::Shorter(s) => s,
        };
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        if short == 0 {
            return [h, w];
        }
        let new_long = (size as f64 * long as f64 / short as f64) as usize;
        if w <= h {
            [new_long, size]
        } else {
            [size, new_long]
        }
    }
}

/// The network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    /// Per-sample input shape `[C, H, W]`.
    pub input: [usize; 3],
    /// Layers in file order, blocks and shorthands expanded; the last one is the output.
    pub layers: Vec<LayerSpec>,
}

/// Where a layer takes an input from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum NodeRef {
    /// The model input (a batch of transformed images).
    Input,
    /// The output of `layers[i]`.
    Layer(usize),
}

/// One checked layer: its settings are in range and its inputs exist, but its shapes are not
/// yet known (that is the graph's work, [`crate::graph`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSpec {
    /// Unique name; block layers are prefixed by their instance (`stage2.conv1`).
    pub name: String,
    /// The operation and its settings.
    pub op: LayerOp,
    /// Inputs, in order.
    pub inputs: Vec<NodeRef>,
}

/// A layer operation with its checked settings. Sizes the graph infers (input channels and
/// features) are here only when the file declares them, to be checked against the inference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LayerOp {
    /// `nn.Conv2d`.
    Conv2d {
        /// Declared input channels.
        in_channels: Option<usize>,
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side (`"same"` is resolved to `(kernel - 1) / 2`).
        padding: usize,
        /// Whether a bias is added.
        bias: bool,
        /// How the weight (and bias) start.
        init: Init,
    },
    /// `nn.BatchNorm2d`.
    BatchNorm2d {
        /// Declared channels.
        features: Option<usize>,
        /// Added to the variance.
        eps: f64,
        /// Running-statistics momentum.
        momentum: f64,
    },
    /// Elementwise `max(x, 0)`.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Multiplication by a constant (airbench's `Mul`).
    Scale {
        /// The factor, finite.
        factor: f64,
    },
    /// `nn.GELU(approximate)`.
    Gelu {
        /// Exact (`erf`) or the tanh approximation.
        approximate: GeluApprox,
    },
    /// `nn.MaxPool2d`.
    MaxPool2d {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on every side.
        padding: usize,
    },
    /// `nn.AvgPool2d` with `count_include_pad=True`.
    AvgPool2d {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// Mean over height and width.
    GlobalAvgPool,
    /// Flatten everything but the batch dimension.
    Flatten,
    /// `nn.Linear`.
    Linear {
        /// Declared input features.
        in_features: Option<usize>,
        /// Output features.
        out_features: usize,
        /// Whether a bias is added.
        bias: bool,
        /// How the weight (and bias) start.
        init: Init,
    },
    /// Inverted dropout, training only.
    Dropout {
        /// Drop probability in `[0, 1)`.
        p: f64,
    },
    /// `log_softmax` over features.
    LogSoftmax,
    /// Elementwise sum of two or more same-shaped inputs.
    Add,
    /// Concatenation along the first per-sample dimension.
    Concat,
    /// Passes its input through.
    Identity,
}

impl LayerOp {
    /// The op's entry in the format's table of names.
    pub fn kind(&self) -> OpKind {
        match self {
            LayerOp::Conv2d { .. } => OpKind::Conv2d,
            LayerOp::BatchNorm2d { .. } => OpKind::BatchNorm2d,
            LayerOp::Relu => OpKind::Relu,
            LayerOp::Tanh => OpKind::Tanh,
            LayerOp::Sigmoid => OpKind::Sigmoid,
            LayerOp::Gelu { .. } => OpKind::Gelu,
            LayerOp::Scale { .. } => OpKind::Scale,
            LayerOp::MaxPool2d { .. } => OpKind::MaxPool2d,
            LayerOp::AvgPool2d { .. } => OpKind::AvgPool2d,
            LayerOp::GlobalAvgPool => OpKind::GlobalAvgPool,
            LayerOp::Flatten => OpKind::Flatten,
            LayerOp::Linear { .. } => OpKind::Linear,
            LayerOp::Dropout { .. } => OpKind::Dropout,
            LayerOp::LogSoftmax => OpKind::LogSoftmax,
            LayerOp::Add => OpKind::Add,
            LayerOp::Concat => OpKind::Concat,
            LayerOp::Identity => OpKind::Identity,
        }
    }

    /// Whether the op combines two or more inputs.
    pub fn is_multi_input(&self) -> bool {
        matches!(self, LayerOp::Add | LayerOp::Concat)
    }
}

/// How a conv or linear layer's parameters start. Every kind first draws PyTorch's default
/// init, so the layers after it draw the same numbers whatever the kind; `train.init_from`
/// weights replace all of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Init {
    /// PyTorch's default: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and bias.
    Default,
    /// airbench's `Conv.reset_parameters`: the default init, the bias zeroed, then
    /// `torch.nn.init.dirac_(w[:in])`. The first `in` filters become the identity (filter `i`
    /// is 1 at channel `i`'s kernel centre, 0 elsewhere); the other `out - in` filters keep
    /// their default init. This is airbench's partial Dirac, not `dirac_` on the whole weight
    /// (which would zero the other filters). Needs `out >= in` and an odd kernel. On a linear
    /// layer the same with `eye_`: the first `in` rows are the identity.
    Dirac,
    /// airbench's `init_whitening_conv` (see [`crate::model`]'s whitening): the weight is
    /// `cat(V / sqrt(lambda + eps), -V / sqrt(lambda + eps))` for the eigenvalues `lambda`
    /// (descending) and eigenvectors `V` of the patch covariance of the first `images`
    /// training images; the bias zeroed. Only on a conv that reads the network input, with
    /// `out == 2 * in * kernel * kernel`.
    Whitening {
        /// Images whose patches give the covariance.
        images: usize,
        /// Added to every eigenvalue.
        eps: f64,
    },
}

impl Init {
    /// Whether the weights depend on the training images.
    pub fn needs_images(&self) -> bool {
        matches!(self, Init::Whitening { .. })
    }
}

/// Loss, optimizer, schedule and epochs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSpec {
    /// How long to train: epochs (perhaps fractional) or optimizer steps.
    pub length: TrainLength,
    /// Loss function.
    pub loss: LossSpec,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// Learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// When checkpoints are written.
    pub checkpoint: CheckpointSpec,
    /// The weights the run starts from instead of the seeded initialisation.
    pub init_from: Option<InitFrom>,
    /// When training stops before `epochs`, if ever.
    pub early_stopping: Option<EarlyStopping>,
    /// Batches per optimizer step (gradient accumulation); 1: a step per batch.
    pub accumulate: usize,
    /// Gradient clipping before each optimizer step, if any.
    pub clip_grad: Option<ClipGrad>,
    /// The moving average of the weights, if any.
    pub ema: Option<EmaSpec>,
    /// Batch-level mixup / cutmix, if any.
    pub mixup: Option<MixupSpec>,
    /// Optimizer settings for chosen parameters, in file order (the first match wins).
    pub param_groups: Vec<ParamGroup>,
    /// airbench's Lookahead, if any.
    pub lookahead: Option<LookaheadSpec>,
}

/// `[train.lookahead]`: airbench94's `LookaheadState`, driven as its training loop does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LookaheadSpec {
    /// Update after every this many optimizer steps (>= 1).
    pub every: usize,
    /// The decay at the last step, in [0, 1].
    pub alpha: f64,
    /// The decay at step t is `alpha * (t / total)^power`; >= 0.
    pub power: f64,
}

/// One `[[train.param_groups]]`: PyTorch's per-group `lr` and `weight_decay` as multiples of the
/// optimizer's, and freezing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamGroup {
    /// The parameters it takes (those no earlier group took).
    pub selector: ParamSelector,
    /// Multiplies the learning rate (after the schedule), >= 0.
    pub lr_scale: f64,
    /// Multiplies the weight decay, >= 0.
    pub weight_decay_scale: f64,
    /// When the parameters stop being trained.
    pub freeze: Freeze,
}

/// When a group's parameters stop being trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Freeze {
    /// Trained throughout.
    Never,
    /// Never trained (`frozen = true`).
    Always,
    /// Trained in epochs `1..=n`, frozen after (`freeze_after_epochs = n`, n >= 1).
    AfterEpochs(usize),
}

impl Freeze {
    /// Whether the parameters are frozen during epoch `epoch` (1-based).
    pub fn frozen_in(self, epoch: usize) -> bool {
        match self {
            Freeze::Never => false,
            Freeze::Always => true,
            Freeze::AfterEpochs(n) => epoch > n,
        }
    }
}

/// Which parameters a group takes: every part given must hold (at least one is given).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSelector {
    /// The op of the parameter's layer.
    pub op: Option<OpKind>,
    /// `weight` or `bias`.
    pub role: Option<ParamRole>,
    /// A `state_dict` name or a glob pattern of one (checked to compile).
    pub name: Option<String>,
}

impl ParamSelector {
    /// Whether the parameter `name` (`<layer>.<weight|bias>`) of a layer with op `op` is
    /// selected.
    pub fn matches(&self, op: OpKind, name: &str) -> bool {
        let role = name.rsplit_once('.').map_or(name, |(_, r)| r);
        self.op.is_none_or(|o| o == op)
            && self.role.is_none_or(|r| r.name() == role)
            && self
                .name
                .as_deref()
                .is_none_or(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches(name)))
    }
}

/// The group of each parameter, `(layer op, state_dict name)`, as an index into `groups`:
/// the first group that matches, or `None` for the optimizer's own settings.
pub fn assign_groups<'n>(
    groups: &[ParamGroup],
    params: impl IntoIterator<Item = (OpKind, &'n str)>,
) -> Vec<Option<usize>> {
    params
        .into_iter()
        .map(|(op, name)| groups.iter().position(|g| g.selector.matches(op, name)))
        .collect()
}

/// How long training runs (`train.epochs` or `train.steps`), as airbench counts it: a run of
/// `epochs` epochs takes `ceil(steps_per_epoch * epochs)` optimizer steps in `ceil(epochs)`
/// epochs, the last one stopping after the step that completes the count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum TrainLength {
    /// A number of epochs, > 0, possibly fractional (`9.9`).
    Epochs(f64),
    /// A number of optimizer steps, >= 1.
    Steps(usize),
}

impl TrainLength {
    /// Optimizer steps of the whole run, with `steps_per_epoch` steps in a full epoch.
    pub fn total_steps(self, steps_per_epoch: usize) -> usize {
        match self {
            // A whole number of epochs multiplies exactly, whatever the float rounding.
            TrainLength::Epochs(e) if e.fract() == 0.0 => steps_per_epoch * e as usize,
            TrainLength::Epochs(e) => (steps_per_epoch as f64 * e).ceil() as usize,
            TrainLength::Steps(n) => n,
        }
    }

    /// Epochs the run starts (the last one perhaps partial), with `steps_per_epoch` steps in a
    /// full epoch. An empty epoch (no step) is counted as one step, so the count stays finite.
    pub fn epochs(self, steps_per_epoch: usize) -> usize {
        match self {
            TrainLength::Epochs(e) => e.ceil() as usize,
            TrainLength::Steps(n) => n.div_ceil(steps_per_epoch.max(1)),
        }
    }

    /// The number of epochs when it does not depend on the data: `None` for `steps`.
    pub fn known_epochs(self) -> Option<usize> {
        match self {
            TrainLength::Epochs(e) => Some(e.ceil() as usize),
            TrainLength::Steps(_) => None,
        }
    }
}

impl std::fmt::Display for TrainLength {
    /// `10 epochs`, `9.9 epochs`, `1 epoch`, `500 steps`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TrainLength::Epochs(1.0) => write!(f, "1 epoch"),
            TrainLength::Epochs(e) => write!(f, "{e} epochs"),
            TrainLength::Steps(1) => write!(f, "1 step"),
            TrainLength::Steps(n) => write!(f, "{n} steps"),
        }
    }
}

/// A run's length in batches and optimizer steps, for a training set of known size: what the
/// training loop, the schedules, the checkpoints and `runner check` all count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Batches in a full epoch (`data.drop_last` applied).
    pub batches_per_epoch: usize,
    /// Optimizer steps in a full epoch (`train.accumulate` batches each, the last one taking
    /// what is left).
    pub steps_per_epoch: usize,
    /// Optimizer steps of the run.
    pub total_steps: usize,
    /// Epochs the run starts; only the last may be partial.
    pub epochs: usize,
    accumulate: usize,
}

impl Plan {
    /// Batches epoch `epoch` (1-based) trains on: all of them but in a partial last epoch,
    /// which stops after the batch that completes the run's last optimizer step.
    pub fn batches_in(&self, epoch: usize) -> usize {
        if epoch < self.epochs {
            return self.batches_per_epoch;
        }
        let earlier = (epoch.max(1) - 1) * self.steps_per_epoch;
        let steps = self.total_steps.saturating_sub(earlier);
        self.batches_per_epoch
            .min(steps.saturating_mul(self.accumulate))
    }
}

/// Batch-level mixup and cutmix (`[train.mixup]`), as timm's `Mixup` in batch mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MixupSpec {
    /// Mixup's Beta parameter; 0: no mixup.
    pub mixup_alpha: f64,
    /// Cutmix's Beta parameter; 0: no cutmix.
    pub cutmix_alpha: f64,
    /// Probability that a batch is mixed.
    pub prob: f64,
    /// Probability of cutmix when both alphas are above 0.
    pub switch_prob: f64,
    /// Cutmix's weight from the clipped box.
    pub correct_lam: bool,
}

/// Gradient clipping (`[train.clip_grad]`), with PyTorch's semantics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum ClipGrad {
    /// `torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)`: every gradient times
    /// `min(1, max_norm / (total_norm + 1e-6))`, the total norm taken over all gradients.
    Norm {
        /// Largest total norm, > 0.
        max_norm: f64,
        /// The norm's `p`, >= 1 or infinite.
        norm_type: f64,
    },
    /// `torch.nn.utils.clip_grad_value_(params, value)`: every element clamped to
    /// `[-value, value]`.
    Value {
        /// The bound, > 0.
        value: f64,
    },
}

/// The exponential moving average of the weights (`[train.ema]`), as timm's `ModelEmaV3`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmaSpec {
    /// The decay, in (0, 1).
    pub decay: f64,
    /// Update after every this many optimizer steps (>= 1).
    pub every: usize,
    /// timm's decay warm-up, if on.
    pub warmup: Option<EmaWarmup>,
}

/// timm's EMA decay warm-up: `1 - (1 + t / gamma) ^ -power`, capped at the decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmaWarmup {
    /// `warmup_power`, > 0.
    pub power: f64,
    /// `warmup_gamma`, > 0.
    pub gamma: f64,
}

/// `[train.early_stopping]`: stop once `metric` has not improved by more than `min_delta` for
/// `patience` epochs in a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EarlyStopping {
    /// The metric watched.
    #[serde(serialize_with = "metric_name")]
    pub metric: StopMetric,
    /// Epochs without improvement before stopping (>= 1).
    pub patience: usize,
    /// The smallest change that counts as an improvement (>= 0).
    pub min_delta: f64,
}

fn metric_name<S: serde::Serializer>(m: &StopMetric, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.name())
}

impl StopMetric {
    /// Whether a lower value is better (losses) rather than a higher one (accuracies).
    pub fn lower_is_better(self) -> bool {
        matches!(self, StopMetric::ValLoss | StopMetric::TrainLoss)
    }

    /// Whether the metric is measured on the validation split.
    pub fn needs_validation(self) -> bool {
        matches!(self, StopMetric::ValLoss | StopMetric::ValAcc)
    }
}

/// `train.init_from`: a safetensors file of weights keyed by `state_dict` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitFrom {
    /// The file, absolute (a relative path was resolved against the experiment file's folder,
    /// or the current directory for a `--set`), so that the run's `config.toml` finds it from
    /// anywhere.
    pub path: std::path::PathBuf,
    /// Its SHA-256, 64 lowercase hex digits: as the file pins it, or as the check found it.
    pub sha256: Option<String>,
}

/// When checkpoints are written (`[train.checkpoint]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckpointSpec {
    /// After every this many epochs (and after the last); 0: only when interrupted.
    pub every: usize,
    /// Also keep the best epoch's checkpoint.
    pub best: bool,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        CheckpointSpec {
            every: 1,
            best: true,
        }
    }
}

/// Loss function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum LossSpec {
    /// Negative log-likelihood of log-probabilities (pair with a `log_softmax` layer).
    Nll,
    /// Cross-entropy of logits, with optional label smoothing in `[0, 1)`.
    CrossEntropy {
        /// PyTorch's `label_smoothing`.
        label_smoothing: f64,
    },
}

/// Optimizer with PyTorch's update rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum OptimizerSpec {
    /// `torch.optim.SGD`.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor.
        momentum: f64,
        /// Dampening for momentum.
        dampening: f64,
        /// Nesterov momentum (requires momentum > 0 and dampening = 0).
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// `torch.optim.Adam` (L2 weight decay added to the gradient).
    Adam {
        /// Learning rate.
        lr: f64,
        /// `(beta1, beta2)`.
        betas: (f64, f64),
        /// Added to the denominator after the square root.
        eps: f64,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// `torch.optim.AdamW` (decoupled weight decay).
    AdamW {
        /// Learning rate.
        lr: f64,
        /// `(beta1, beta2)`.
        betas: (f64, f64),
        /// Added to the denominator after the square root.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

impl OptimizerSpec {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd { lr, .. }
            | OptimizerSpec::Adam { lr, .. }
            | OptimizerSpec::AdamW { lr, .. } => *lr,
        }
    }
}

/// Learning-rate schedule: an optional linear warm-up in front of a base schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleSpec {
    /// The base schedule.
    pub kind: ScheduleKind,
    /// Number of optimizer steps of linear warm-up (0 = none). The warm-up factor rises from
    /// `warmup_start_factor` to 1 and multiplies the base schedule's rate.
    pub warmup_steps: usize,
    /// Factor at step 0 of the warm-up.
    pub warmup_start_factor: f64,
}

/// Base learning-rate schedules. Epoch-based ones change the rate at epoch boundaries, like a
/// PyTorch scheduler stepped once per epoch; `OneCycle` changes it every optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ScheduleKind {
    /// The optimizer's `lr` throughout.
    Constant,
    /// `StepLR`: multiply by `gamma` every `step_size` epochs.
    Step {
        /// Epochs between decays.
        step_size: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// `MultiStepLR`: multiply by `gamma` at each milestone epoch.
    MultiStep {
        /// Increasing epoch numbers.
        milestones: Vec<usize>,
        /// Decay factor.
        gamma: f64,
    },
    /// `CosineAnnealingLR` over `t_max` epochs down to `eta_min`.
    Cosine {
        /// Period in epochs; `None` (with `train.steps` only): the epochs the run starts.
        t_max: Option<usize>,
        /// Minimum learning rate.
        eta_min: f64,
    },
    /// `OneCycleLR` (cosine annealing, three-phase off) over all optimizer steps.
    OneCycle {
        /// Peak learning rate.
        max_lr: f64,
        /// Fraction of steps spent increasing.
        pct_start: f64,
        /// `initial_lr = max_lr / div_factor`.
        div_factor: f64,
        /// `min_lr = initial_lr / final_div_factor`.
        final_div_factor: f64,
    },
    /// The optimizer's `lr` times a factor linear between knots over all optimizer steps
    /// (airbench's `get_lr`): knot `(fraction, factor)` sits at step
    /// `floor(fraction * total_steps)`.
    PiecewiseLinear {
        /// `(fraction, factor)` knots: at least two, fractions increasing from 0 to 1,
        /// factors >= 0.
        points: Vec<(f64, f64)>,
    },
}
