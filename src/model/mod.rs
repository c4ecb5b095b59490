//! The checked layer graph turned into a candle network.
//!
//! [`crate::graph::Graph`] is the description; [`Model`] is the built thing: its parameters
//! (trainable [`Var`]s), its buffers (BatchNorm running statistics, not trainable), and a
//! forward pass that walks the layers in their topological order. Tensor names follow
//! PyTorch's `state_dict` keys: `<layer name>.weight`, `.bias`, `.running_mean`, `.running_var`,
//! `.num_batches_tracked`, so that a `model.safetensors` loads into the equivalent PyTorch module
//! with `load_state_dict(strict=True)` and a PyTorch `state_dict` loads here ([`weights`]).

pub mod device_check;
mod init;
pub(crate) mod kernels;
mod ops;
pub mod weights;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{bail, Device, Result, Tensor, TensorId, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::graph::{Fusion, Graph};
use crate::graph::{GeluApprox, Init, Layer, NodeRef, Op};

/// A network built from a checked [`Graph`]: parameters, buffers and a forward pass.
///
/// The output of the network is the output of the last layer.
pub struct Model {
    input: [usize; 3],
    nodes: Vec<Node>,
    /// Trainable parameters in layer order, each layer's weight before its bias.
    params: Vec<(String, Var)>,
    /// BatchNorm buffers in layer order: running mean, running variance, and the count of
    /// training-mode forward passes (`num_batches_tracked`, an `i64` scalar kept on the CPU).
    buffers: Vec<(String, Var)>,
    /// Dropout masks; seeded from the model seed so that runs repeat exactly.
    dropout_rng: Mutex<ChaCha8Rng>,
    /// The parameters [`Model::freeze`] froze: they enter the forward pass detached.
    frozen: Mutex<HashSet<TensorId>>,
}

/// The position of the model's dropout generator (ChaCha8: seed, stream, word position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngState {
    /// The 32-byte seed.
    pub seed: [u8; 32],
    /// The stream.
    pub stream: u64,
    /// The position in the stream, in 32-bit words.
    pub word_pos: u128,
}

/// One built layer.
struct Node {
    module: Module,
    inputs: Vec<NodeRef>,
    /// Values no later layer reads once this one has run (its inputs' last use, or its own
    /// output if nothing reads it and it is not the network output).
    frees: Vec<NodeRef>,
}

/// A layer's operation with its tensors.
enum Module {
    Conv2d {
        weight: Var,
        bias: Option<Var>,
        stride: usize,
        padding: usize,
        /// A ReLU fused into the same pass ([`Fusion`]).
        relu: bool,
    },
    BatchNorm2d {
        weight: Var,
        bias: Var,
        running_mean: Var,
        running_var: Var,
        num_batches_tracked: Var,
        eps: f64,
        momentum: f64,
        /// A ReLU fused into the same pass ([`Fusion`]).
        relu: bool,
    },
    Relu,
    Tanh,
    Sigmoid,
    Gelu {
        approximate: GeluApprox,
    },
    Scale {
        factor: f64,
    },
    MaxPool2d {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    AvgPool2d {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    GlobalAvgPool,
    Flatten,
    Linear {
        weight: Var,
        bias: Option<Var>,
    },
    Dropout {
        p: f64,
    },
    LogSoftmax,
    Add,
    Concat,
    Identity,
}

/// The source of the training images a whitening init reads (see [`Model::with_images`]).
pub type InitImages<'a> = dyn Fn(usize) -> Result<Tensor> + 'a;

/// The starting values of a conv's or linear layer's weight (`shape`, `[out, in, k, k]` or
/// `[out, in]`) and bias (`bias` outputs): PyTorch's default init drawn from `rng` (always, so
/// the next layers draw the same numbers whatever `init` is), then `init` applied.
fn start(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    bias: Option<usize>,
    fan_in: usize,
    init: Init,
    images: Option<&InitImages<'_>>,
    name: &str,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let mut w = init::fan_in_values(rng, shape, fan_in);
    let mut b = bias.map(|n| init::fan_in_values(rng, &[n], fan_in));
    let (out, inp) = (shape[0], shape[1]);
    let k = shape.get(2).copied().unwrap_or(1);
    match init {
        Init::Default => {}
        Init::Dirac => {
            if let Some(b) = &mut b {
                b.fill(0.0);
            }
            init::partial_dirac(&mut w, out, inp, k);
        }
        Init::Whitening { images: n, eps } => {
            let Some(source) = images else {
                return Ok((w, b));
            };
            let x = source(n)?.to_dtype(candle_core::DType::F32)?;
            let dims = match x.dims() {
                &[got, c, h, wd] if c == inp => {
                    if got < n {
                        bail!(
                            "layer {name}: the whitening init reads {n} training images, but the training set has {got}; lower `images`"
                        );
                    }
                    [n, c, h, wd]
                }
                d => bail!("layer {name}: the whitening init got images of shape {d:?}"),
            };
            let values = x.flatten_all()?.to_vec1::<f32>()?;
            w = init::whitening_weight(&values, dims, k, eps)
                .map_err(|e| candle_core::Error::Msg(format!("layer {name}: {e}")))?;
            if let Some(b) = &mut b {
                b.fill(0.0);
            }
        }
    }
    Ok((w, b))
}

/// Dropout draws from this ChaCha stream of the model seed; initialisation uses stream 0.
const DROPOUT_STREAM: u64 = 1;

impl Model {
    /// Builds the network described by `spec` on `device`.
    ///
    /// Creates parameters (trainable) and buffers (BatchNorm `running_mean`, `running_var` and
    /// `num_batches_tracked`, not trainable) named like PyTorch `state_dict` keys; the names and
    /// shapes are [`state_layout`]'s. Initialisation follows PyTorch's defaults, drawn on the CPU
    /// in layer order from a ChaCha8 generator seeded with `seed`: conv and linear weights and
    /// biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (`kaiming_uniform_(a=sqrt(5))` for weights);
    /// BatchNorm weight 1, bias 0, running mean 0, running variance 1, count 0.
    ///
    /// A conv's or linear layer's `init` spec then applies ([`crate::graph::Init`]). A
    /// whitening conv needs training images, which only [`Model::with_images`] gives: here it
    /// keeps the default init, for a model whose weights are loaded next.
    pub fn new(spec: &Graph, seed: u64, device: &Device) -> Result<Model> {
        Model::with_images(spec, seed, device, None)
    }

    /// [`Model::new`] with the training images a whitening conv reads: `images(n)` yields the
    /// first `n` training images (fewer if the set is smaller), in file order after the
    /// test-time transforms, as one `f32` `[n, C, H, W]` tensor.
    #[tracing::instrument(skip_all, fields(layers = spec.layers.len()))]
    pub fn with_images(
        spec: &Graph,
        seed: u64,
        device: &Device,
        images: Option<&InitImages<'_>>,
    ) -> Result<Model> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let frees = frees(&spec.layers);
        let fusion = Fusion::of(spec);
        let mut nodes = Vec::with_capacity(spec.layers.len());
        for (i, (layer, frees)) in spec.layers.iter().zip(frees).enumerate() {
            let relu = fusion.has_relu(i);
            let mut param = |suffix: &str, var: Var| {
                params.push((format!("{}.{suffix}", layer.name), var.clone()));
                var
            };
            let module = match layer.op {
                Op::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    bias,
                    init,
                } => {
                    let fan_in = in_channels * kernel * kernel;
                    let shape = [out_channels, in_channels, kernel, kernel];
                    let (w, b) = start(
                        &mut rng,
                        &shape,
                        bias.then_some(out_channels),
                        fan_in,
                        init,
                        images,
                        &layer.name,
                    )?;
                    let weight = param("weight", init::var(w, &shape, device)?);
                    let bias = match b {
                        Some(b) => Some(param("bias", init::var(b, &[out_channels], device)?)),
                        None => None,
                    };
                    Module::Conv2d {
                        weight,
                        bias,
                        stride,
                        padding,
                        relu,
                    }
                }
                Op::BatchNorm2d {
                    features,
                    eps,
                    momentum,
                } => {
                    let weight = param("weight", init::constant(1.0, features, device)?);
                    let bias = param("bias", init::constant(0.0, features, device)?);
                    let running_mean = init::constant(0.0, features, device)?;
                    let running_var = init::constant(1.0, features, device)?;
                    // On the CPU whatever the device: one scalar add per step, no kernel launch.
                    let num_batches_tracked = Var::from_tensor(&Tensor::new(0i64, &Device::Cpu)?)?;
                    for (suffix, var) in [
                        ("running_mean", &running_mean),
                        ("running_var", &running_var),
                        ("num_batches_tracked", &num_batches_tracked),
                    ] {
                        buffers.push((format!("{}.{suffix}", layer.name), var.clone()));
                    }
                    Module::BatchNorm2d {
                        weight,
                        bias,
                        running_mean,
                        running_var,
                        num_batches_tracked,
                        eps,
                        momentum,
                        relu,
                    }
                }
                Op::Linear {
                    in_features,
                    out_features,
                    bias,
                    init,
                } => {
                    let shape = [out_features, in_features];
                    let (w, b) = start(
                        &mut rng,
                        &shape,
                        bias.then_some(out_features),
                        in_features,
                        init,
                        images,
                        &layer.name,
                    )?;
                    let weight = param("weight", init::var(w, &shape, device)?);
                    let bias = match b {
                        Some(b) => Some(param("bias", init::var(b, &[out_features], device)?)),
                        None => None,
                    };
                    Module::Linear { weight, bias }
                }
                // Computed by the layer it reads, which already returns the ReLU's output.
                Op::Relu if fusion.host(i).is_some() => Module::Identity,
                Op::Relu => Module::Relu,
                Op::Tanh => Module::Tanh,
                Op::Sigmoid => Module::Sigmoid,
                Op::Gelu { approximate } => Module::Gelu { approximate },
                Op::Scale { factor } => Module::Scale { factor },
                Op::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                } => Module::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                },
                Op::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                } => Module::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                },
                Op::GlobalAvgPool => Module::GlobalAvgPool,
                Op::Flatten => Module::Flatten,
                Op::Dropout { p } => Module::Dropout { p },
                Op::LogSoftmax => Module::LogSoftmax,
                Op::Add => Module::Add,
                Op::Concat => Module::Concat,
                Op::Identity => Module::Identity,
            };
            nodes.push(Node {
                module,
                inputs: layer.inputs.clone(),
                frees,
            });
        }
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(seed);
        dropout_rng.set_stream(DROPOUT_STREAM);
        Ok(Model {
            input: spec.input,
            nodes,
            params,
            buffers,
            dropout_rng: Mutex::new(dropout_rng),
            frozen: Mutex::new(HashSet::new()),
        })
    }

    /// Runs the network on `x`, a `[B, C, H, W]` float batch with the spec's `[C, H, W]`.
    ///
    /// With `train = true`, BatchNorm normalises with batch statistics (biased variance),
    /// updates its running statistics with the unbiased variance and its momentum and counts the
    /// pass in `num_batches_tracked` (PyTorch semantics), and dropout is active. With `train = false`, BatchNorm uses the running
    /// statistics and dropout is the identity.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.output(x, train, true)
    }

    /// Evaluation without gradients: [`Model::forward`] with `train = false`, but the
    /// parameters enter detached, so no op records a backward graph and every intermediate
    /// output is freed as soon as its last reader has run. Same values as `forward(x, false)`.
    pub fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.output(x, false, false)
    }

    fn output(&self, x: &Tensor, train: bool, grad: bool) -> Result<Tensor> {
        let mut outs = self.run(x, train, grad, false)?;
        match outs.pop() {
            Some(Some(y)) => Ok(y),
            Some(None) => bail!("internal error: the network output was freed"),
            None => Ok(x.clone()),
        }
    }

    /// Every trainable parameter, in a fixed order (layer order, weight before bias).
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.params.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Freezes the parameters whose entry in `frozen` ([`Model::named_parameters`] order) is
    /// true and unfreezes the others. A frozen parameter enters the forward pass detached, so
    /// the backward pass gives it no gradient (and computes none for it where candle can skip
    /// it): the optimizer leaves it, its weight decay and its state alone, as PyTorch does for
    /// `requires_grad = False`.
    pub fn freeze(&self, frozen: &[bool]) {
        let mut set = self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        set.clear();
        let params = self.params.iter().zip(frozen);
        set.extend(params.filter(|(_, &f)| f).map(|((_, v), _)| v.id()));
    }

    /// Trainable parameters with their `state_dict` names, in [`Model::trainable_vars`] order.
    pub fn named_parameters(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Non-trainable buffers (BatchNorm running statistics and pass counts) with their
    /// `state_dict` names.
    pub fn named_buffers(&self) -> &[(String, Var)] {
        &self.buffers
    }

    /// Number of trainable scalars; equals the sum of the layers' `params`.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Parameters then buffers, keyed by their `state_dict` names (the tensors themselves, not
    /// copies: they change with the next step).
    pub fn state_dict(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.params
            .iter()
            .chain(&self.buffers)
            .map(|(name, v)| (name.as_str(), v.as_tensor()))
    }

    /// The parameters and buffers as a safetensors file's bytes, keyed by `state_dict` names.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        safetensors::serialize(self.state_dict(), None)
            .map_err(|e| candle_core::Error::Msg(format!("cannot serialise the weights: {e}")))
    }

    /// Writes parameters and buffers to a safetensors file, keyed by `state_dict` names.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<&str, Tensor> = self
            .state_dict()
            .map(|(name, t)| (name, t.clone()))
            .collect();
        candle_core::safetensors::save(&tensors, path)
    }

    /// Where the dropout generator stands, so a resumed run draws the masks the uninterrupted
    /// run would have drawn.
    pub fn rng_state(&self) -> RngState {
        let rng = self.dropout_rng.lock().unwrap_or_else(|e| e.into_inner());
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// Puts the dropout generator where [`Model::rng_state`] found it.
    pub fn set_rng_state(&self, state: &RngState) {
        let mut rng = ChaCha8Rng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        *self.dropout_rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
    }

    /// Overwrites parameters and buffers with the tensors of a safetensors file keyed by
    /// `state_dict` names: one written by [`Model::save`] or exported from PyTorch
    /// (`safetensors.torch.save_file(net.state_dict(), path)`). Every tensor of the model must
    /// be there with the same shape and a compatible type (see [`weights::check`]); extra tensors
    /// are errors. The message names every mismatch by layer.
    pub fn load(&self, path: &Path) -> Result<()> {
        self.load_checked(path, None)
    }

    /// [`Model::load`] of the `train.init_from` weights a run starts from: with `sha256`, the
    /// file must still be the one the experiment was checked with.
    pub fn load_init(&self, path: &Path, sha256: Option<&str>) -> Result<()> {
        self.load_checked(path, sha256)
    }

    fn load_checked(&self, path: &Path, sha256: Option<&str>) -> Result<()> {
        // Plain messages, not `bail!`: they are for the user, and `bail!` appends the stack
        // whenever `RUST_BACKTRACE` is set.
        let fail = |m: String| candle_core::Error::Msg(format!("{}: {m}", path.display()));
        let file = weights::WeightsFile::read(path).map_err(|e| fail(e.to_string()))?;
        if let Some(want) = sha256 {
            if file.sha256 != want {
                return Err(fail(format!(
                    "its SHA-256 is {}, not {want} as when the experiment was checked: the file changed",
                    file.sha256
                )));
            }
        }
        let problems = weights::check(file.bytes(), &self.layout()).map_err(fail)?;
        if !problems.is_empty() {
            return Err(fail(problems.join("; ")));
        }
        let mut stored = candle_core::safetensors::load_buffer(file.bytes(), &Device::Cpu)?;
        for (name, var) in self.params.iter().chain(&self.buffers) {
            // Only a pass count may be absent (files written before runner saved it): it keeps
            // its value.
            if let Some(t) = stored.remove(name) {
                var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
            }
        }
        Ok(())
    }

    /// The names, shapes and kinds of [`Model::state_dict`]'s tensors, in its order.
    pub fn layout(&self) -> Vec<weights::Slot> {
        self.params
            .iter()
            .map(|(n, v)| weights::Slot::new(n, v.dims(), weights::SlotKind::Parameter))
            .chain(self.buffers.iter().map(|(n, v)| {
                let kind = if v.dtype().is_int() {
                    weights::SlotKind::Count
                } else {
                    weights::SlotKind::Buffer
                };
                weights::Slot::new(n, v.dims(), kind)
            }))
            .collect()
    }

    /// Runs the layers; returns every layer's output (`None` for the freed ones unless
    /// `keep_all`).
    fn run(
        &self,
        x: &Tensor,
        train: bool,
        grad: bool,
        keep_all: bool,
    ) -> Result<Vec<Option<Tensor>>> {
        ops::check_float(x)?;
        let [c, h, w] = self.input;
        match x.dims() {
            [_, xc, xh, xw] if [*xc, *xh, *xw] == [c, h, w] => {}
            dims => bail!("model input must be [batch, {c}, {h}, {w}], got {dims:?}"),
        }
        let mut input = Some(x.clone());
        let mut outs: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let ins = node
                .inputs
                .iter()
                .map(|r| {
                    let v = match *r {
                        NodeRef::Input => input.as_ref(),
                        NodeRef::Layer(j) => outs[j].as_ref(),
                    };
                    v.cloned().ok_or_else(|| {
                        candle_core::Error::Msg(format!("internal error: {r:?} freed too early"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            outs[i] = Some(self.apply(&node.module, &ins, train, grad)?);
            if !keep_all {
                for r in &node.frees {
                    match *r {
                        NodeRef::Input => input = None,
                        NodeRef::Layer(j) => outs[j] = None,
                    }
                }
            }
        }
        Ok(outs)
    }

    /// One layer on its inputs. Without `grad`, parameters enter detached (see [`Model::infer`]).
    fn apply(&self, module: &Module, ins: &[Tensor], train: bool, grad: bool) -> Result<Tensor> {
        let x = &ins[0];
        let frozen = self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        let param = |v: &Var| {
            if grad && !frozen.contains(&v.id()) {
                v.as_tensor().clone()
            } else {
                v.as_tensor().detach()
            }
        };
        match module {
            Module::Conv2d {
                weight,
                bias,
                stride,
                padding,
                relu,
            } => {
                let weight = param(weight);
                let bias = bias.as_ref().map(param);
                if kernels::supported(x) && kernels::supported(&weight) {
                    let geometry = (*stride, *padding);
                    return kernels::conv::conv2d(x, &weight, bias.as_ref(), geometry, *relu);
                }
                let y = x.conv2d(&weight, *padding, *stride, 1, 1)?;
                let y = match bias {
                    Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?,
                    None => y,
                };
                if *relu {
                    y.relu()
                } else {
                    Ok(y)
                }
            }
            Module::BatchNorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                num_batches_tracked,
                eps,
                momentum,
                relu,
            } => {
                let (weight, bias) = (param(weight), param(bias));
                let vars = ops::BatchNormVars {
                    weight: &weight,
                    bias: &bias,
                    running_mean,
                    running_var,
                    num_batches_tracked,
                };
                ops::batch_norm2d(x, &vars, (*eps, *momentum), train, *relu)
            }
            Module::Relu if kernels::supported(x) => kernels::relu::relu(x),
            Module::Relu => x.relu(),
            Module::Tanh => x.tanh(),
            Module::Sigmoid => candle_nn::ops::sigmoid(x),
            Module::Scale { factor } => x.affine(*factor, 0.0),
            Module::Gelu { approximate } if kernels::supported(x) => {
                kernels::gelu::gelu(x, *approximate)
            }
            Module::Gelu {
                approximate: GeluApprox::None,
            } => x.gelu_erf(),
            Module::Gelu {
                approximate: GeluApprox::Tanh,
            } => x.gelu(),
            Module::MaxPool2d {
                kernel,
                stride,
                padding,
            } => ops::max_pool2d(x, *kernel, *stride, *padding),
            Module::AvgPool2d {
                kernel,
                stride,
                padding,
            } => ops::avg_pool2d(x, *kernel, *stride, *padding),
            Module::GlobalAvgPool => x.mean((2, 3)),
            Module::Flatten => x.flatten_from(1),
            Module::Linear { weight, bias } => {
                let y = x.matmul(&param(weight).t()?)?;
                match bias {
                    Some(b) => y.broadcast_add(&param(b)),
                    None => Ok(y),
                }
            }
            Module::Dropout { p } => {
                if !train {
                    return Ok(x.clone());
                }
                // A poisoned lock only means another forward panicked; the generator is fine.
                let mut rng = self.dropout_rng.lock().unwrap_or_else(|e| e.into_inner());
                ops::dropout(x, *p, &mut rng)
            }
            Module::LogSoftmax => candle_nn::ops::log_softmax(x, candle_core::D::Minus1),
            Module::Add => {
                let mut sum = x.clone();
                for y in &ins[1..] {
                    sum = (sum + y)?;
                }
                Ok(sum)
            }
            Module::Concat => Tensor::cat(ins, 1),
            Module::Identity => Ok(x.clone()),
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("input", &self.input)
            .field("layers", &self.nodes.len())
            .field(
                "params",
                &self.params.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "buffers",
                &self.buffers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// For each layer, the values that can be dropped once it has run.
fn frees(layers: &[Layer]) -> Vec<Vec<NodeRef>> {
    let n = layers.len();
    let mut last_input = None;
    let mut last = vec![None; n];
    for (i, layer) in layers.iter().enumerate() {
        for r in &layer.inputs {
            match *r {
                NodeRef::Input => last_input = Some(i),
                NodeRef::Layer(j) => last[j] = Some(i),
            }
        }
    }
    let mut frees = vec![Vec::new(); n];
    if let Some(i) = last_input {
        frees[i].push(NodeRef::Input);
    }
    for (j, user) in last.into_iter().enumerate() {
        match user {
            Some(i) => frees[i].push(NodeRef::Layer(j)),
            // An output nobody reads: drop it at once, unless it is the network output.
            None if j + 1 < n => frees[j].push(NodeRef::Layer(j)),
            None => {}
        }
    }
    frees
}

#[cfg(test)]
mod tests;
