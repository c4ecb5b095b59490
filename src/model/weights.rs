//! Weights from a file, checked against a model tensor by tensor: a `model.safetensors` runner
//! wrote, or a PyTorch `state_dict` saved with `safetensors.torch.save_file`.
//!
//! [`check`] names every tensor that does not fit, by layer (`layer conv1: weight is [6, 3, 5, 5]
//! in the file, the model needs [6, 1, 5, 5]`). `runner check` reports these against the
//! `train.init_from` value before a run starts ([`crate::check`]), and [`super::Model::load`]
//! refuses a file that does not fit with the same messages.

use std::path::Path;

use safetensors::Dtype;
use sha2::{Digest, Sha256};

use crate::bounded::{ReadError, WEIGHTS_LIMIT};
use crate::experiment::format::OpKind;
use crate::experiment::{assign_groups, ParamGroup};
use crate::graph::{Graph, Op};

/// What a tensor of a model's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A trainable parameter (floating point).
    Parameter,
    /// A floating-point buffer (BatchNorm running statistics).
    Buffer,
    /// An integer count (`num_batches_tracked`, `i64`). A file may lack it: runner did not save
    /// it before, and it changes no result (every BatchNorm has a momentum).
    Count,
}

/// One tensor of a model's `state_dict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// `<layer name>.<tensor>`, as in `conv1.weight`.
    pub name: String,
    /// Its shape (`[]` for a count).
    pub dims: Vec<usize>,
    /// What it is.
    pub kind: SlotKind,
}

impl Slot {
    /// A slot named `name`.
    pub fn new(name: &str, dims: &[usize], kind: SlotKind) -> Slot {
        Slot {
            name: name.to_string(),
            dims: dims.to_vec(),
            kind,
        }
    }

    /// The layer's name and the tensor's name within it (`("features.conv1", "weight")`):
    /// tensor names have no dot, layer names may.
    pub fn parts(&self) -> (&str, &str) {
        split(&self.name)
    }
}

fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('.').unwrap_or(("", name))
}

/// The tensors [`super::Model::new`] makes for `graph`, in [`super::Model::state_dict`] order
/// (parameters in layer order, weight before bias, then the buffers in layer order), without
/// making them.
pub fn state_layout(graph: &Graph) -> Vec<Slot> {
    let mut params = Vec::new();
    let mut buffers = Vec::new();
    for layer in &graph.layers {
        let mut param = |suffix: &str, dims: &[usize]| {
            params.push(Slot::new(
                &format!("{}.{suffix}", layer.name),
                dims,
                SlotKind::Parameter,
            ));
        };
        match layer.op {
            Op::Conv2d {
                in_channels,
                out_channels,
                kernel,
                bias,
                ..
            } => {
                param("weight", &[out_channels, in_channels, kernel, kernel]);
                if bias {
                    param("bias", &[out_channels]);
                }
            }
            Op::Linear {
                in_features,
                out_features,
                bias,
                ..
            } => {
                param("weight", &[out_features, in_features]);
                if bias {
                    param("bias", &[out_features]);
                }
            }
            Op::BatchNorm2d { features, .. } => {
                param("weight", &[features]);
                param("bias", &[features]);
                for (suffix, dims, kind) in [
                    ("running_mean", &[features][..], SlotKind::Buffer),
                    ("running_var", &[features][..], SlotKind::Buffer),
                    ("num_batches_tracked", &[][..], SlotKind::Count),
                ] {
                    buffers.push(Slot::new(&format!("{}.{suffix}", layer.name), dims, kind));
                }
            }
            Op::Relu
            | Op::Tanh
            | Op::Sigmoid
            | Op::Gelu { .. }
            | Op::Scale { .. }
            | Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Dropout { .. }
            | Op::LogSoftmax
            | Op::Add
            | Op::Concat
            | Op::Identity => {}
        }
    }
    params.extend(buffers);
    params
}

/// A parameter of the model with what a `[[train.param_groups]]` selects it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSlot {
    /// Its `state_dict` name and shape.
    pub slot: Slot,
    /// The op of its layer.
    pub op: OpKind,
}

/// The parameters of [`state_layout`] (in [`super::Model::named_parameters`] order), each with
/// its layer's op.
pub fn parameter_layout(graph: &Graph) -> Vec<ParamSlot> {
    state_layout(graph)
        .into_iter()
        .filter(|s| s.kind == SlotKind::Parameter)
        .filter_map(|slot| {
            let layer = slot.parts().0;
            let op = graph.layers.iter().find(|l| l.name == layer)?.op.kind();
            Some(ParamSlot { slot, op })
        })
        .collect()
}

/// Each parameter's group in `groups` (see [`crate::experiment::assign_groups`]), in
/// [`parameter_layout`] order.
pub fn parameter_groups(graph: &Graph, groups: &[ParamGroup]) -> Vec<(ParamSlot, Option<usize>)> {
    let layout = parameter_layout(graph);
    let assigned = assign_groups(groups, layout.iter().map(|p| (p.op, p.slot.name.as_str())));
    layout.into_iter().zip(assigned).collect()
}

/// A weights file read whole (at most [`WEIGHTS_LIMIT`] bytes), with its SHA-256.
#[derive(Debug, Clone)]
pub struct WeightsFile {
    bytes: Vec<u8>,
    /// The SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
}

impl WeightsFile {
    /// Reads `path` through [`crate::bounded::read`]: a regular file of at most
    /// [`WEIGHTS_LIMIT`] bytes.
    pub fn read(path: &Path) -> Result<WeightsFile, ReadError> {
        let bytes = crate::bounded::read(path, WEIGHTS_LIMIT)?;
        let sha256 = sha256_hex(&bytes);
        Ok(WeightsFile { bytes, sha256 })
    }

    /// The file's contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every way the safetensors file `bytes` does not fit `layout`, one message per tensor: the
/// model's tensors in layout order (missing, wrong shape, wrong type), then the file's tensors
/// the model does not have, by name. Empty when the file fits. `Err` (the reason) when the bytes
/// are not a safetensors file.
pub fn check(bytes: &[u8], layout: &[Slot]) -> Result<Vec<String>, String> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a safetensors file ({e})"))?;
    let mut problems = Vec::new();
    for slot in layout {
        let (layer, tensor) = slot.parts();
        let Ok(view) = file.tensor(&slot.name) else {
            if slot.kind != SlotKind::Count {
                problems.push(format!("layer {layer}: {tensor} is not in the file"));
            }
            continue;
        };
        if view.shape() != slot.dims {
            problems.push(format!(
                "layer {layer}: {tensor} is {:?} in the file, the model needs {:?}",
                view.shape(),
                slot.dims
            ));
        }
        let fits = match slot.kind {
            SlotKind::Parameter | SlotKind::Buffer => matches!(
                view.dtype(),
                Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64
            ),
            SlotKind::Count => view.dtype() == Dtype::I64,
        };
        if !fits {
            let needs = match slot.kind {
                SlotKind::Count => "I64",
                _ => "floating point (F32, F64, F16 or BF16)",
            };
            problems.push(format!(
                "layer {layer}: {tensor} is {:?} in the file, the model needs {needs}",
                view.dtype()
            ));
        }
    }
    let mut extra: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !layout.iter().any(|s| s.name == *n))
        .collect();
    extra.sort_unstable();
    for name in extra {
        let (layer, _) = split(name);
        if !layer.is_empty() && layout.iter().any(|s| s.parts().0 == layer) {
            problems.push(format!(
                "layer {layer}: the file has `{name}`, which the layer does not have"
            ));
        } else {
            problems.push(format!(
                "the file has `{name}`, but the model has no layer `{layer}`"
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn file(tensors: &[(&str, Tensor)]) -> Vec<u8> {
        safetensors::serialize(tensors.iter().map(|(n, t)| (*n, t)), None).expect("serialise")
    }

    fn zeros(dims: &[usize]) -> Tensor {
        Tensor::zeros(dims, candle_core::DType::F32, &Device::Cpu).expect("zeros")
    }

    fn layout() -> Vec<Slot> {
        vec![
            Slot::new("conv1.weight", &[6, 1, 5, 5], SlotKind::Parameter),
            Slot::new("conv1.bias", &[6], SlotKind::Parameter),
            Slot::new("bn.weight", &[6], SlotKind::Parameter),
            Slot::new("bn.running_mean", &[6], SlotKind::Buffer),
            Slot::new("bn.num_batches_tracked", &[], SlotKind::Count),
        ]
    }

    #[test]
    fn every_mismatch_is_named_by_layer() {
        let count = Tensor::new(3f32, &Device::Cpu).expect("scalar");
        let bytes = file(&[
            ("conv1.weight", zeros(&[6, 3, 5, 5])),
            ("bn.weight", zeros(&[6])),
            ("bn.running_mean", zeros(&[6])),
            ("bn.num_batches_tracked", count),
            ("bn.extra", zeros(&[1])),
            ("fc9.weight", zeros(&[2, 2])),
        ]);
        let problems = check(&bytes, &layout()).expect("a safetensors file");
        assert_eq!(
            problems,
            [
                "layer conv1: weight is [6, 3, 5, 5] in the file, the model needs [6, 1, 5, 5]",
                "layer conv1: bias is not in the file",
                "layer bn: num_batches_tracked is F32 in the file, the model needs I64",
                "layer bn: the file has `bn.extra`, which the layer does not have",
                "the file has `fc9.weight`, but the model has no layer `fc9`",
            ]
        );
    }

    #[test]
    fn a_fitting_file_without_counts_has_no_problems() {
        let bytes = file(&[
            ("conv1.weight", zeros(&[6, 1, 5, 5])),
            ("conv1.bias", zeros(&[6])),
            ("bn.weight", zeros(&[6])),
            ("bn.running_mean", zeros(&[6])),
        ]);
        assert_eq!(check(&bytes, &layout()), Ok(vec![]));
    }

    #[test]
    fn bytes_that_are_not_safetensors_are_refused() {
        for bytes in [&b""[..], b"GIF89a", &[255; 16][..]] {
            let err = check(bytes, &layout()).expect_err("not safetensors");
            assert!(err.starts_with("not a safetensors file"), "{err}");
        }
    }

    #[test]
    fn sha256_of_known_input() {
        // printf abc | sha256sum
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
