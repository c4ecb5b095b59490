//! The layer vocabulary after validation: every width resolved, every input a known node.

use serde::Serialize;

use crate::experiment::format::OpKind;
pub use crate::experiment::NodeRef;
pub use crate::experiment::{GeluApprox, Init};

/// One checked layer of the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Unique name; parameters are stored as `<name>.weight`, `<name>.bias`, ...
    pub name: String,
    /// The operation with every size resolved.
    pub op: Op,
    /// Inputs, in order (indices into the graph's layers, always earlier ones). One for every
    /// op except `Add` and `Concat` (two or more).
    pub inputs: Vec<NodeRef>,
    /// Inferred per-sample output shape (`[C, H, W]` or `[F]`), batch dimension excluded.
    pub shape: Vec<usize>,
    /// Trainable parameters (PyTorch's count; BatchNorm running statistics excluded).
    pub params: usize,
    /// Multiply-accumulates per sample in the forward pass (conv and linear; BatchNorm counts
    /// one per element; other ops count zero).
    pub macs: u64,
}

/// A layer operation with resolved sizes. Kernels, strides and padding are square.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// `nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias)`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
        /// Whether a bias is added.
        bias: bool,
        /// How the parameters start.
        init: Init,
    },
    /// `nn.BatchNorm2d(features, eps, momentum)` with affine weight and bias.
    BatchNorm2d {
        /// Channels.
        features: usize,
        /// Added to the variance.
        eps: f64,
        /// Running-statistics momentum (PyTorch convention: new = (1-m)*old + m*batch).
        momentum: f64,
    },
    /// Elementwise `max(x, 0)`.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Multiplication by a constant; no parameters.
    Scale {
        /// The factor.
        factor: f64,
    },
    /// `nn.GELU(approximate)`.
    Gelu {
        /// Exact (`erf`) or the tanh approximation.
        approximate: GeluApprox,
    },
    /// `nn.MaxPool2d(kernel, stride, padding)`; padding counts as -inf.
    MaxPool2d {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on every side.
        padding: usize,
    },
    /// `nn.AvgPool2d(kernel, stride, padding)` with `count_include_pad=True`.
    AvgPool2d {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// Mean over height and width: `[C, H, W] -> [C]`.
    GlobalAvgPool,
    /// Flatten everything but the batch dimension.
    Flatten,
    /// `nn.Linear(in_features, out_features, bias)`.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether a bias is added.
        bias: bool,
        /// How the parameters start.
        init: Init,
    },
    /// Inverted dropout with probability `p`, active in training only.
    Dropout {
        /// Drop probability in `[0, 1)`.
        p: f64,
    },
    /// `log_softmax` over features (`[F]` inputs only).
    LogSoftmax,
    /// Elementwise sum of two or more same-shaped inputs.
    Add,
    /// Concatenation along the first per-sample dimension (channels, or features).
    Concat,
    /// Passes its input through.
    Identity,
}

impl Op {
    /// The op's entry in the format's table of names.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Conv2d { .. } => OpKind::Conv2d,
            Op::BatchNorm2d { .. } => OpKind::BatchNorm2d,
            Op::Relu => OpKind::Relu,
            Op::Tanh => OpKind::Tanh,
            Op::Sigmoid => OpKind::Sigmoid,
            Op::Gelu { .. } => OpKind::Gelu,
            Op::Scale { .. } => OpKind::Scale,
            Op::MaxPool2d { .. } => OpKind::MaxPool2d,
            Op::AvgPool2d { .. } => OpKind::AvgPool2d,
            Op::GlobalAvgPool => OpKind::GlobalAvgPool,
            Op::Flatten => OpKind::Flatten,
            Op::Linear { .. } => OpKind::Linear,
            Op::Dropout { .. } => OpKind::Dropout,
            Op::LogSoftmax => OpKind::LogSoftmax,
            Op::Add => OpKind::Add,
            Op::Concat => OpKind::Concat,
            Op::Identity => OpKind::Identity,
        }
    }
}
