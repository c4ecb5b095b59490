//! One training step, the same for the training loop ([`super::run`]) and `runner bench`:
//! forward pass in training mode, loss, the loss read back, backward pass, optimizer update,
//! and the predictions read back. [`GradientSteps`] puts gradient accumulation
//! (`train.accumulate`) and clipping (`train.clip_grad`) between the backward pass and the
//! update; without either it is [`train_step`] itself.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var, D};

use super::optim::Optimizer;
use super::TrainError;
use crate::experiment::{ClipGrad, LossSpec, TrainSpec};
use crate::model::Model;

/// What a step that updated the parameters reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The batch's mean loss, before the update, read back to the host.
    pub loss: f32,
    /// The predicted class of every image in the batch (argmax of the logits before the update).
    pub predictions: Vec<u32>,
    /// Whether the optimizer stepped: always for [`train_step`]; with accumulation, on the
    /// last batch of each group only (the others add their gradients to the group's).
    pub stepped: bool,
}

/// How a training step ended.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum StepOutcome {
    /// The loss was finite: its gradients were taken and, when [`StepOutput::stepped`], the
    /// optimizer updated the parameters.
    Updated(StepOutput),
    /// The loss was this non-finite value. The forward pass ran (BatchNorm running statistics
    /// and the dropout generator moved on), but no backward pass: the parameters and the
    /// optimizer state are as they were.
    NonFinite(f32),
}

/// One optimizer step on a batch: sets the learning rate to `lr`, runs `model` forward in
/// training mode (BatchNorm normalises with the batch statistics and updates its running ones;
/// dropout draws its masks from the model's generator), computes the `loss` of `images`
/// against `labels`, reads it back to the host, and, if it is finite, back-propagates it, lets
/// `optimizer` update the parameters and reads back the predictions.
///
/// Two host syncs per step, the loss and then the predictions, and nothing is copied beyond
/// what the forward and backward passes and the optimizer do. The step runs on a worker of
/// rayon's pool ([`crate::runtime::in_pool`]).
#[tracing::instrument(level = "debug", skip_all)]
pub fn train_step(
    model: &Model,
    optimizer: &mut dyn Optimizer,
    loss_spec: LossSpec,
    images: &Tensor,
    labels: Targets<'_>,
    lr: f64,
) -> Result<StepOutcome, TrainError> {
    crate::runtime::in_pool(move || {
        optimizer.set_learning_rate(lr);
        let logits = model.forward(images, true)?;
        let l = labels.loss(loss_spec, &logits)?;
        let value = l.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Ok(StepOutcome::NonFinite(value));
        }
        let grads = l.backward()?;
        optimizer.step(&grads)?;
        let predictions = predictions(&logits.detach())?;
        Ok(StepOutcome::Updated(StepOutput {
            loss: value,
            predictions,
            stepped: true,
        }))
    })
}

/// Batches to optimizer steps: `train.accumulate` batches per step, their gradients summed
/// (each batch's loss divided by `accumulate`, as `(loss / N).backward()` in PyTorch's usual
/// loop) and clipped by `train.clip_grad` before the update.
///
/// An epoch whose batch count is not a multiple of `accumulate` ends with a shorter group: its
/// step takes the batches there are, their losses still divided by `accumulate` (the usual
/// `if (i + 1) % N == 0 or last: step` loop, and HF accelerate's; timm divides that group by
/// its own size instead). Every batch runs its forward pass in training mode, so BatchNorm's
/// running statistics move with each batch, as in PyTorch.
pub struct GradientSteps {
    accumulate: usize,
    clip: Option<ClipGrad>,
    /// The parameters whose gradients are accumulated and clipped (the optimizer's).
    vars: Vec<Var>,
    /// The summed gradients of the group's batches so far.
    sum: GradStore,
    /// Batches in `sum`.
    pending: usize,
}

impl GradientSteps {
    /// Steps as `train` says, over `model`'s trainable parameters.
    pub fn new(train: &TrainSpec, model: &Model) -> Self {
        GradientSteps {
            accumulate: train.accumulate.max(1),
            clip: train.clip_grad,
            vars: model.trainable_vars(),
            sum: GradStore::default(),
            pending: 0,
        }
    }

    /// Optimizer steps in an epoch of `batches` batches (what the schedule counts).
    pub fn steps_per_epoch(&self, batches: usize) -> usize {
        batches.div_ceil(self.accumulate)
    }

    /// The optimizer step (from 0, within its epoch) that batch `batch` of the epoch belongs to.
    pub fn step_of(&self, batch: usize) -> usize {
        batch / self.accumulate
    }

    /// One batch, with the learning rate `lr` for the step it belongs to: as [`train_step`]
    /// when there is neither accumulation nor clipping. Otherwise the forward pass, the loss
    /// read back and, if it is finite, the backward pass of `loss / accumulate`, its gradients
    /// added to the group's; on the group's last batch (every `accumulate`-th, or `last`, the
    /// epoch's last) the sum is clipped and the optimizer steps. A non-finite loss adds
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn batch(
        &mut self,
        model: &Model,
        optimizer: &mut dyn Optimizer,
        loss_spec: LossSpec,
        images: &Tensor,
        labels: Targets<'_>,
        lr: f64,
        last: bool,
    ) -> Result<StepOutcome, TrainError> {
        if self.accumulate == 1 && self.clip.is_none() {
            // The fast path, unchanged: no copy of the gradients, the optimizer reads them
            // straight from the backward pass.
            return train_step(model, optimizer, loss_spec, images, labels, lr);
        }
        crate::runtime::in_pool(move || {
            let logits = model.forward(images, true)?;
            let l = labels.loss(loss_spec, &logits)?;
            let value = l.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Ok(StepOutcome::NonFinite(value));
            }
            let scaled = if self.accumulate > 1 {
                (l / self.accumulate as f64)?
            } else {
                l
            };
            let mut grads = scaled.backward()?;
            for var in &self.vars {
                if let Some(g) = grads.remove(var) {
                    let g = match self.sum.remove(var) {
                        Some(sum) => sum.add(&g)?,
                        None => g,
                    };
                    self.sum.insert(var, g);
                }
            }
            drop(grads);
            self.pending += 1;
            let stepped = self.pending == self.accumulate || last;
            if stepped {
                let mut sum = std::mem::take(&mut self.sum);
                self.pending = 0;
                if let Some(clip) = self.clip {
                    clip_grads(&mut sum, &self.vars, clip)?;
                }
                optimizer.set_learning_rate(lr);
                optimizer.step(&sum)?;
            }
            let predictions = predictions(&logits.detach())?;
            Ok(StepOutcome::Updated(StepOutput {
                loss: value,
                predictions,
                stepped,
            }))
        })
    }
}

/// Clips the gradients of `vars` in `grads` in place, as PyTorch does:
///
/// - `clip_grad_norm_`: the norm of each gradient, the `norm_type` norm of those norms as the
///   total, `coef = max_norm / (total + 1e-6)` clamped to at most 1, every gradient times
///   `coef`. All of it on the gradients' device in `f32`, with no read-back (a non-finite
///   total makes the gradients non-finite, as PyTorch's default `error_if_nonfinite=False`).
/// - `clip_grad_value_`: every element clamped to `[-value, value]`.
pub fn clip_grads(grads: &mut GradStore, vars: &[Var], clip: ClipGrad) -> candle_core::Result<()> {
    match clip {
        ClipGrad::Value { value } => {
            for var in vars {
                if let Some(g) = grads.remove(var) {
                    grads.insert(var, g.clamp(-value, value)?);
                }
            }
        }
        ClipGrad::Norm {
            max_norm,
            norm_type,
        } => {
            let present: Vec<&Var> = vars.iter().filter(|v| grads.get(v).is_some()).collect();
            let mut norms = Vec::with_capacity(present.len());
            for var in &present {
                if let Some(g) = grads.get(var) {
                    norms.push(vector_norm(&g.to_dtype(DType::F32)?, norm_type)?);
                }
            }
            if norms.is_empty() {
                return Ok(());
            }
            let total = vector_norm(&Tensor::stack(&norms, 0)?, norm_type)?;
            // PyTorch's `max_norm / t` is `t.reciprocal() * max_norm`.
            let coef = ((total + 1e-6)?.recip()? * max_norm)?.minimum(1f32)?;
            for var in present {
                if let Some(g) = grads.remove(var) {
                    let scaled = g.broadcast_mul(&coef.to_dtype(g.dtype())?)?;
                    grads.insert(var, scaled);
                }
            }
        }
    }
    Ok(())
}

/// `torch.linalg.vector_norm(t, p)` of all of `t`'s elements, as a 0-dimensional tensor.
fn vector_norm(t: &Tensor, p: f64) -> candle_core::Result<Tensor> {
    let t = t.flatten_all()?;
    if p == 2.0 {
        t.sqr()?.sum_all()?.sqrt()
    } else if p == 1.0 {
        t.abs()?.sum_all()
    } else if p.is_infinite() {
        t.abs()?.max(0)
    } else {
        t.abs()?.powf(p)?.sum_all()?.powf(1.0 / p)
    }
}

/// The loss of a batch, averaged over its images (of the training step and of evaluation).
pub(crate) fn loss(
    spec: LossSpec,
    logits: &Tensor,
    labels: &Tensor,
) -> candle_core::Result<Tensor> {
    match spec {
        LossSpec::Nll => candle_nn::loss::nll(logits, labels),
        LossSpec::CrossEntropy { label_smoothing } => {
            let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
            let nll = candle_nn::loss::nll(&logp, labels)?;
            if label_smoothing == 0.0 {
                return Ok(nll);
            }
            // PyTorch: target = (1 - e) * onehot + e / K, so loss = (1 - e) * nll + e * mean_k(-logp).
            let smooth = logp.mean(D::Minus1)?.mean_all()?.neg()?;
            (nll * (1.0 - label_smoothing))? + (smooth * label_smoothing)?
        }
    }
}

/// What a training batch's loss is computed against.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// One label per image.
    Labels(&'a Tensor),
    /// Mixup / cutmix ([`super::mix`]): the mixed targets `lam * onehot(labels) + (1 - lam) *
    /// onehot(partner)`, each label-smoothed as the loss says. The loss is linear in the target,
    /// so it is `lam * loss(labels) + (1 - lam) * loss(partner)`: timm's
    /// `SoftTargetCrossEntropy` of `mixup_target`, and PyTorch's `cross_entropy` with
    /// probability targets.
    Mixed {
        /// The images' own labels.
        labels: &'a Tensor,
        /// The labels of the images mixed in.
        partner: &'a Tensor,
        /// The weight of `labels`.
        lam: f64,
    },
}

impl<'a> From<&'a Tensor> for Targets<'a> {
    fn from(labels: &'a Tensor) -> Self {
        Targets::Labels(labels)
    }
}

impl Targets<'_> {
    /// The batch's mean loss under `spec`.
    pub(crate) fn loss(&self, spec: LossSpec, logits: &Tensor) -> candle_core::Result<Tensor> {
        match *self {
            Targets::Labels(labels) => loss(spec, logits, labels),
            Targets::Mixed {
                labels,
                partner,
                lam,
            } => {
                (loss(spec, logits, labels)? * lam)? + (loss(spec, logits, partner)? * (1.0 - lam))?
            }
        }
    }
}

/// The predicted class of every image in a batch.
pub(crate) fn predictions(logits: &Tensor) -> candle_core::Result<Vec<u32>> {
    logits.argmax(D::Minus1)?.to_vec1::<u32>()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::experiment::Experiment;
    use crate::train::optim;

    /// The mixed-target loss against PyTorch's `cross_entropy` with probability targets
    /// (and timm's `SoftTargetCrossEntropy`), from `/work/main/.venv-torch/bin/python
    /// scripts/golden_mixup_loss.py` (torch 2.15.0): lam 0.3, label smoothing 0.1, the batch's
    /// labels mixed with their reverse, in f64.
    #[test]
    fn mixed_targets_match_torch_soft_target_cross_entropy() {
        let logits = Tensor::new(
            &[
                [0.5f64, -1.25, 2.0, 0.125],
                [-0.75, 1.5, 0.25, -2.0],
                [1.0, 0.0, -0.5, 0.75],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let y = Tensor::new(&[1u32, 3, 0], &Device::Cpu).unwrap();
        let partner = Tensor::new(&[0u32, 3, 1], &Device::Cpu).unwrap();
        let spec = LossSpec::CrossEntropy {
            label_smoothing: 0.1,
        };
        let mixed = Targets::Mixed {
            labels: &y,
            partner: &partner,
            lam: 0.3,
        };
        let got = mixed
            .loss(spec, &logits)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((got - 2.5247111251398526).abs() < 1e-12, "{got}");
        // lam = 1 is the plain loss
        let one = Targets::Mixed {
            labels: &y,
            partner: &partner,
            lam: 1.0,
        };
        let plain = Targets::Labels(&y).loss(spec, &logits).unwrap();
        assert_eq!(
            one.loss(spec, &logits).unwrap().to_scalar::<f64>().unwrap(),
            plain.to_scalar::<f64>().unwrap()
        );
    }

    /// A small net through every op that keeps training-mode state (BatchNorm, dropout), with
    /// label-smoothed cross-entropy and Adam (whose `f32` CPU update is the fused one).
    const EXPERIMENT: &str = r#"
name = "step_test"
seed = 5

[data]
dataset = "synthetic"
batch_size = 16
synthetic = { shape = [2, 6, 6], classes = 3, train_size = 64, test_size = 16 }

[model]
layers = [
  { op = "conv2d", out = 4, kernel = 3, padding = 1 },
  { op = "batch_norm2d" },
  { op = "relu" },
  { op = "flatten" },
  { op = "dropout", p = 0.25 },
  { op = "linear", out = 3 },
]

[train]
epochs = 1
loss = { kind = "cross_entropy", label_smoothing = 0.1 }
optimizer = { kind = "adam", lr = 0.01 }
"#;

    /// A checked experiment and its graph.
    struct Exp {
        e: Experiment,
        g: crate::graph::Graph,
    }

    impl std::ops::Deref for Exp {
        type Target = Experiment;
        fn deref(&self) -> &Experiment {
            &self.e
        }
    }

    fn experiment(text: &str) -> Exp {
        let checked = crate::check::check_str("step_test.toml", text, "step_test");
        let rendered = checked.render();
        let (e, g) = checked.result.unwrap_or_else(|| panic!("{rendered}"));
        Exp { e, g }
    }

    /// A fixed random batch of `exp`'s batch size: images in [-1, 1) and labels.
    fn batch(exp: &Experiment) -> (Tensor, Tensor) {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = exp.data().batch_size;
        let [c, h, w] = exp.model().input;
        let x: Vec<f32> = (0..n * c * h * w)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
        (
            Tensor::from_vec(x, (n, c, h, w), &Device::Cpu).expect("images"),
            Tensor::from_vec(y, n, &Device::Cpu).expect("labels"),
        )
    }

    /// The bits of every parameter and buffer.
    fn state(model: &Model) -> Vec<Vec<u32>> {
        let all = model.named_parameters().iter().chain(model.named_buffers());
        all.map(|(_, v): &(String, Var)| {
            // A BatchNorm count is an `i64`; small counts are exact in `f32`.
            let v = v.as_tensor().to_dtype(DType::F32).expect("f32");
            let v = v.flatten_all().expect("flatten");
            v.to_vec1::<f32>()
                .expect("read")
                .into_iter()
                .map(f32::to_bits)
                .collect()
        })
        .collect()
    }

    /// `steps` steps from a fresh model and optimizer: what each step returned, and the state
    /// afterwards.
    fn trajectory(exp: &Exp, steps: usize, lr: f64) -> (Vec<StepOutcome>, Vec<Vec<u32>>, Model) {
        let model = Model::new(&exp.g, exp.seed(), &Device::Cpu).expect("model");
        let mut opt = optim::build(&exp.train().optimizer, model.trainable_vars()).expect("opt");
        let (x, y) = batch(exp);
        let outcomes = (0..steps)
            .map(|_| {
                train_step(&model, opt.as_mut(), exp.train().loss, &x, (&y).into(), lr)
                    .expect("step")
            })
            .collect();
        let state = state(&model);
        (outcomes, state, model)
    }

    fn loss_of(outcome: &StepOutcome) -> f32 {
        match outcome {
            StepOutcome::Updated(out) => out.loss,
            StepOutcome::NonFinite(l) => panic!("non-finite loss {l}"),
        }
    }

    /// The net and data of `scripts/golden_clip_accum.py`: conv -> BatchNorm -> ReLU ->
    /// flatten -> linear on 12 fixed 1x3x3 images, SGD with lr 0.1 and momentum 0.9.
    const GOLDEN: &str = r#"
name = "golden_clip_accum"

[data]
dataset = "synthetic"
batch_size = 4
synthetic = { shape = [1, 3, 3], classes = 3, train_size = 12, test_size = 3 }

[model]
layers = [
  { op = "conv2d", out = 2, kernel = 2 },
  { op = "batch_norm2d" },
  { op = "relu" },
  { op = "flatten" },
  { op = "linear", out = 3 },
]

[train]
optimizer = { kind = "sgd", lr = 0.1, momentum = 0.9 }
"#;

    /// PyTorch's results: the parameters, then BatchNorm's running mean and variance, after
    /// the last step of each case. From `/work/main/.venv-torch/bin/python
    /// scripts/golden_clip_accum.py` with torch 2.15.0+cu132 (CPU, float32).
    #[rustfmt::skip]
    const PLAIN: [f64; 45] = [
        -5.089057088e-01, -4.380005896e-01, -5.128858238e-02, 1.094516069e-01,
        2.590233684e-01, 4.484877288e-01, -4.375845790e-01, -2.472239286e-01,
        1.562500000e-01, 3.437500000e-01, 8.731172681e-01, 9.875799417e-01,
        -1.055294946e-01, -8.223386481e-03, 2.065203153e-02, 3.084304035e-01,
        4.249156713e-01, -4.004813135e-01, -2.696282566e-01, -4.717748240e-02,
        1.213460192e-01, 3.219138682e-01, -4.069413245e-01, -3.440691233e-01,
        -7.833217084e-02, 6.231367961e-02, 2.768813372e-01, 4.727338850e-01,
        -4.130342901e-01, -1.898761243e-01, -1.449606866e-01, 6.688871980e-02,
        2.471665144e-01, 4.319176376e-01, -4.135031402e-01, -2.693063915e-01,
        -5.206171423e-02, 8.671225607e-02, -3.140211999e-01, -1.684591873e-03,
        3.445580229e-02, 3.795093298e-02, 9.064608812e-02, 7.944198847e-01,
        7.968245149e-01,
    ];
    #[rustfmt::skip]
    const CLIP_NORM: [f64; 45] = [
        -5.284970403e-01, -3.624637425e-01, -1.281544417e-01, 4.973988235e-02,
        2.235608697e-01, 4.106613100e-01, -4.663862288e-01, -2.774833441e-01,
        1.562500000e-01, 3.437500000e-01, 9.603220224e-01, 9.977694154e-01,
        -3.691532463e-02, -1.432991470e-03, 7.095409930e-02, 2.907033563e-01,
        4.603411555e-01, -3.950376213e-01, -2.353678793e-01, -2.895180695e-02,
        1.458076686e-01, 3.441322446e-01, -4.949888289e-01, -3.510517776e-01,
        -1.314707696e-01, 3.536368161e-02, 2.421559244e-01, 4.237564802e-01,
        -4.451870024e-01, -2.529363632e-01, -1.072152928e-01, 9.159846604e-02,
        2.648795843e-01, 4.534239173e-01, -4.130380452e-01, -2.385546863e-01,
        -4.437065870e-02, 1.275541335e-01, -2.900927663e-01, -5.829258636e-02,
        6.713534147e-02, 3.800242767e-02, 9.030289203e-02, 7.993955612e-01,
        7.967477441e-01,
    ];
    #[rustfmt::skip]
    const CLIP_NORM_INF: [f64; 45] = [
        -5.300841331e-01, -3.543081582e-01, -1.380316466e-01, 3.965439275e-02,
        2.189284712e-01, 4.056819677e-01, -4.696379006e-01, -2.814865112e-01,
        1.562500000e-01, 3.437500000e-01, 9.748992920e-01, 9.994814992e-01,
        -2.526501939e-02, -3.399440320e-04, 8.144681901e-02, 2.872725129e-01,
        4.650642276e-01, -3.972367942e-01, -2.284508646e-01, -2.793018520e-02,
        1.496280432e-01, 3.457018435e-01, -5.094279647e-01, -3.488573730e-01,
        -1.406638324e-01, 3.354281932e-02, 2.336923182e-01, 4.167697430e-01,
        -4.539179206e-01, -2.636530697e-01, -1.032688543e-01, 9.283488989e-02,
        2.693496048e-01, 4.574439824e-01, -4.114914536e-01, -2.325895578e-01,
        -3.946011886e-02, 1.367012411e-01, -2.855692208e-01, -7.152320445e-02,
        7.584244013e-02, 3.800598904e-02, 9.027513862e-02, 8.004513979e-01,
        7.967622876e-01,
    ];
    #[rustfmt::skip]
    const CLIP_VALUE: [f64; 45] = [
        -5.259341002e-01, -3.427999914e-01, -1.397118270e-01, 4.029999673e-02,
        2.277999967e-01, 4.153000116e-01, -4.596999884e-01, -2.721999884e-01,
        1.562500000e-01, 3.437500000e-01, 9.819499850e-01, 9.932094216e-01,
        -1.805000007e-02, -3.031691071e-03, 8.469999582e-02, 2.944391072e-01,
        4.596999884e-01, -4.153000116e-01, -2.336031497e-01, -4.029999673e-02,
        1.400292963e-01, 3.346999884e-01, -5.298089981e-01, -3.447000086e-01,
        -1.464549452e-01, 3.029999696e-02, 2.433237731e-01, 4.052999914e-01,
        -4.406999946e-01, -2.663602233e-01, -1.118000001e-01, 9.470000118e-02,
        2.632000148e-01, 4.507000148e-01, -4.005039930e-01, -2.367999852e-01,
        -4.968367517e-02, 1.382000148e-01, -2.903000116e-01, -6.769222021e-02,
        7.569999993e-02, 3.805875033e-02, 9.036006033e-02, 8.004688025e-01,
        7.965627909e-01,
    ];
    #[rustfmt::skip]
    const ACCUMULATE: [f64; 45] = [
        -4.603058398e-01, -5.023779869e-01, -5.260031298e-02, 1.670782417e-01,
        1.960029006e-01, 4.766897857e-01, -4.687509835e-01, -2.042619586e-01,
        1.562500000e-01, 3.437500000e-01, 8.564174175e-01, 9.977297783e-01,
        -1.083341390e-01, -2.496029623e-02, 1.309848763e-02, 2.984725833e-01,
        4.153501093e-01, -4.023512900e-01, -2.531990111e-01, -3.710772470e-02,
        1.346595734e-01, 3.400142789e-01, -4.009611905e-01, -3.410517275e-01,
        -5.292034522e-02, 5.537599698e-02, 2.634879053e-01, 4.687871337e-01,
        -4.235302806e-01, -2.059495151e-01, -1.433873326e-01, 7.382914424e-02,
        2.313202322e-01, 4.407252967e-01, -4.165389240e-01, -2.754293978e-01,
        -5.487927422e-02, 8.468520641e-02, -3.142007887e-01, -5.631714594e-04,
        3.351392969e-02, 6.666703522e-02, 1.614059955e-01, 6.423255801e-01,
        6.541808844e-01,
    ];
    #[rustfmt::skip]
    const ACCUMULATE_CLIP_NORM: [f64; 45] = [
        -4.963257611e-01, -4.107565284e-01, -1.090797707e-01, 8.851181716e-02,
        2.001923472e-01, 4.189958274e-01, -4.796352684e-01, -2.615078986e-01,
        1.562500000e-01, 3.437500000e-01, 9.599639773e-01, 1.003116250e+00,
        -2.750167437e-02, -4.711686168e-03, 6.999357790e-02, 2.856383324e-01,
        4.604872763e-01, -3.927539885e-01, -2.282519042e-01, -2.285919897e-02,
        1.487174332e-01, 3.549005091e-01, -4.986754358e-01, -3.527657390e-01,
        -1.293575913e-01, 3.177798912e-02, 2.343673855e-01, 4.184792340e-01,
        -4.520825148e-01, -2.660581172e-01, -1.025681421e-01, 9.837740660e-02,
        2.626203299e-01, 4.547260106e-01, -4.123654366e-01, -2.393700331e-01,
        -4.038496688e-02, 1.299076229e-01, -2.879353464e-01, -6.131502241e-02,
        6.800035387e-02, 6.689393520e-02, 1.605896950e-01, 6.497109532e-01,
        6.476507187e-01,
    ];
    #[rustfmt::skip]
    const ACCUMULATE_LEFTOVER: [f64; 45] = [
        -4.757736027e-01, -4.888844192e-01, -5.925570056e-02, 1.516104788e-01,
        1.861428469e-01, 4.659429491e-01, -4.779215157e-01, -2.141219974e-01,
        1.562500000e-01, 3.437500000e-01, 8.513512015e-01, 1.001396060e+00,
        -1.143390536e-01, -1.987221278e-02, 2.384839021e-02, 2.885424197e-01,
        4.258877039e-01, -4.023512900e-01, -2.545435727e-01, -3.126969934e-02,
        1.257878393e-01, 3.390111625e-01, -3.939774632e-01, -3.369830251e-01,
        -4.607455060e-02, 5.537599698e-02, 2.715027928e-01, 4.725798368e-01,
        -4.198952615e-01, -1.989883035e-01, -1.611209661e-01, 7.969063520e-02,
        2.139368504e-01, 4.407252967e-01, -4.232091904e-01, -2.850601375e-01,
        -4.964255542e-02, 7.872709632e-02, -3.184661269e-01, 1.259790361e-02,
        2.461820468e-02, 4.437373579e-02, 1.355036795e-01, 6.932622790e-01,
        6.851319671e-01,
    ];

    /// Runs the script's loop with `GradientSteps` on the script's net and data: `batches`
    /// batches of `batch` images under the `[train]` keys `extra`. Returns the state after the
    /// last batch and how many optimizer steps were taken.
    fn golden_run(extra: &str, batch: usize, batches: usize) -> (Vec<f32>, usize) {
        let exp = experiment(&format!("{GOLDEN}{extra}\n"));
        let dev = Device::Cpu;
        let model = Model::new(&exp.g, 0, &dev).expect("model");
        // The script's `value(t, k)`; BatchNorm's weight and bias (2 and 3) keep 1 and 0.
        for (t, (_, var)) in model.named_parameters().iter().enumerate() {
            if t == 2 || t == 3 {
                continue;
            }
            let v: Vec<f32> = (0..var.elem_count())
                .map(|k| ((((k * 37 + 11 * t) % 17) as f64 - 8.5) / 16.0) as f32)
                .collect();
            var.set(&Tensor::from_vec(v, var.shape(), &dev).expect("value"))
                .expect("set");
        }
        let pixels: Vec<f32> = (0..12 * 9)
            .map(|i| (((i * 7 % 23) as f64 - 11.0) / 8.0) as f32)
            .collect();
        let images = Tensor::from_vec(pixels, (12, 1, 3, 3), &dev).expect("images");
        let labels: Vec<u32> = (0..12).map(|n| (n * 5 + 1) % 3).collect();
        let labels = Tensor::from_vec(labels, 12, &dev).expect("labels");
        let mut opt = optim::build(&exp.train().optimizer, model.trainable_vars()).expect("opt");
        let mut steps = GradientSteps::new(exp.train(), &model);
        let mut stepped = 0;
        for i in 0..batches {
            let x = images.narrow(0, i * batch, batch).expect("x");
            let y = labels.narrow(0, i * batch, batch).expect("y");
            let last = i + 1 == batches;
            let out = steps.batch(
                &model,
                opt.as_mut(),
                exp.train().loss,
                &x,
                (&y).into(),
                0.1,
                last,
            );
            match out.expect("batch") {
                StepOutcome::Updated(out) => stepped += usize::from(out.stepped),
                other => panic!("batch {i}: {other:?}"),
            }
        }
        // The float tensors; the goldens leave out `num_batches_tracked` (an i64 count).
        let all = model.named_parameters().iter().chain(model.named_buffers());
        let state = all
            .filter(|(_, v)| v.dtype().is_float())
            .flat_map(|(_, v)| {
                let v = v.as_tensor().flatten_all().expect("flatten");
                v.to_vec1::<f32>().expect("read")
            })
            .collect();
        (state, stepped)
    }

    #[test]
    fn clipping_and_accumulation_match_pytorch() {
        // (case, `[train]` keys, images per batch, batches, optimizer steps, PyTorch's state)
        let cases = [
            ("plain", "", 4, 3, 3, &PLAIN),
            (
                "clip_norm",
                "clip_grad = { max_norm = 0.5 }",
                4,
                3,
                3,
                &CLIP_NORM,
            ),
            (
                "clip_norm_inf",
                "clip_grad = { max_norm = 0.1, norm_type = \"inf\" }",
                4,
                3,
                3,
                &CLIP_NORM_INF,
            ),
            (
                "clip_value",
                "clip_grad = { value = 0.05 }",
                4,
                3,
                3,
                &CLIP_VALUE,
            ),
            ("accumulate", "accumulate = 2", 2, 6, 3, &ACCUMULATE),
            (
                "accumulate_clip_norm",
                "accumulate = 2\nclip_grad = { max_norm = 0.5, norm_type = 2 }",
                2,
                6,
                3,
                &ACCUMULATE_CLIP_NORM,
            ),
            (
                "accumulate_leftover",
                "accumulate = 2",
                2,
                5,
                3,
                &ACCUMULATE_LEFTOVER,
            ),
        ];
        for (case, extra, batch, batches, want_steps, want) in cases {
            let (got, steps) = golden_run(extra, batch, batches);
            assert_eq!(steps, want_steps, "{case}: optimizer steps");
            assert_eq!(got.len(), want.len(), "{case}: values");
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                let g = f64::from(g);
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(0.1),
                    "{case}: value {i}: got {g:e}, PyTorch {w:e}"
                );
            }
        }
        // The cases differ from each other where they should: each setting moved the weights.
        let (plain, _) = golden_run("", 4, 3);
        for extra in [
            "clip_grad = { max_norm = 0.5 }",
            "clip_grad = { value = 0.05 }",
        ] {
            let (clipped, _) = golden_run(extra, 4, 3);
            assert!(clipped != plain, "{extra} changed nothing");
        }
    }

    #[test]
    fn a_bound_far_above_every_gradient_gives_the_bits_of_no_clipping() {
        // clip_grad_norm_ multiplies by min(1, coef) = 1 and clip_grad_value_ clamps nothing:
        // the path that collects and clips the gradients against the fast path.
        let (plain, _) = golden_run("", 4, 3);
        let to_bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for extra in [
            "clip_grad = { max_norm = 1e6 }",
            "clip_grad = { value = 1e6 }",
        ] {
            let (got, _) = golden_run(extra, 4, 3);
            assert_eq!(to_bits(&got), to_bits(&plain), "{extra}");
        }
    }

    #[test]
    fn steps_lower_the_loss_on_a_fixed_batch() {
        // Without dropout the loss a step reports is a function of the parameters alone, so
        // each step's report is the loss after the previous update.
        let exp = experiment(&EXPERIMENT.replace("  { op = \"dropout\", p = 0.25 },\n", ""));
        let (outcomes, _, _) = trajectory(&exp, 8, 0.01);
        let losses: Vec<f32> = outcomes.iter().map(loss_of).collect();
        assert!(losses[1] < losses[0], "one step: {losses:?}");
        assert!(losses[7] < 0.8 * losses[0], "eight steps: {losses:?}");
        for out in &outcomes {
            let StepOutcome::Updated(out) = out else {
                unreachable!()
            };
            assert_eq!(out.predictions.len(), exp.data().batch_size);
            assert!(out.predictions.iter().all(|&p| p < 3), "{out:?}");
        }
    }

    #[test]
    fn the_same_state_gives_the_same_bits() {
        let exp = experiment(EXPERIMENT);
        let (a_out, a_state, _) = trajectory(&exp, 3, 0.01);
        let (b_out, b_state, _) = trajectory(&exp, 3, 0.01);
        let bits = |o: &[StepOutcome]| o.iter().map(|o| loss_of(o).to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a_out), bits(&b_out), "losses");
        assert_eq!(a_out, b_out, "predictions");
        assert!(a_state == b_state, "parameters and buffers differ");
        // And the steps did something: dropout and the updates make every step differ.
        assert_ne!(a_out[0], a_out[1]);
        let (_, fresh, _) = trajectory(&exp, 0, 0.01);
        assert!(fresh != a_state, "three steps changed nothing");
    }

    #[test]
    fn the_step_is_the_loops_forward_loss_backward_update() {
        // The sequence the training loop and `runner bench` each spelled out before they shared
        // this function; the bits must not move (the run tests pin results of this sequence).
        let exp = experiment(EXPERIMENT);
        let (ours, our_state, _) = trajectory(&exp, 3, 0.004);
        let model = Model::new(&exp.g, exp.seed(), &Device::Cpu).expect("model");
        let mut opt = optim::build(&exp.train().optimizer, model.trainable_vars()).expect("opt");
        let (x, y) = batch(&exp);
        let mut theirs = Vec::new();
        for _ in 0..3 {
            opt.set_learning_rate(0.004);
            let out = model.forward(&x, true).expect("forward");
            let l = loss(exp.train().loss, &out, &y).expect("loss");
            let lv = l.to_dtype(DType::F32).and_then(|l| l.to_scalar::<f32>());
            let lv = lv.expect("loss value");
            let grads = l.backward().expect("backward");
            opt.step(&grads).expect("update");
            let preds = predictions(&out.detach()).expect("predictions");
            theirs.push(StepOutcome::Updated(StepOutput {
                loss: lv,
                predictions: preds,
                stepped: true,
            }));
        }
        let bits = |o: &[StepOutcome]| o.iter().map(|o| loss_of(o).to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours), bits(&theirs), "losses");
        assert_eq!(ours, theirs, "predictions");
        assert!(our_state == state(&model), "parameters and buffers differ");
    }

    #[test]
    fn the_given_rate_is_the_rate_used() {
        let exp = experiment(EXPERIMENT);
        let model = Model::new(&exp.g, exp.seed(), &Device::Cpu).expect("model");
        let mut opt = optim::build(&exp.train().optimizer, model.trainable_vars()).expect("opt");
        let (x, y) = batch(&exp);
        let params = |m: &Model| {
            let mut s = state(m);
            s.truncate(m.named_parameters().len());
            s
        };
        let before = params(&model);
        let out =
            train_step(&model, opt.as_mut(), exp.train().loss, &x, (&y).into(), 0.0).expect("step");
        assert!(matches!(out, StepOutcome::Updated(_)), "{out:?}");
        assert_eq!(opt.learning_rate(), 0.0);
        assert!(params(&model) == before, "a zero rate moved the parameters");
        let out = train_step(
            &model,
            opt.as_mut(),
            exp.train().loss,
            &x,
            (&y).into(),
            0.05,
        )
        .expect("step");
        assert!(matches!(out, StepOutcome::Updated(_)), "{out:?}");
        assert_eq!(opt.learning_rate(), 0.05);
        assert!(
            params(&model) != before,
            "a rate of 0.05 left the parameters alone"
        );
    }

    #[test]
    fn a_non_finite_loss_updates_nothing() {
        // Without dropout, so that the forward pass of the poisoned batch changes nothing the
        // next training-mode step reads (BatchNorm normalises with the batch's statistics).
        let exp = experiment(&EXPERIMENT.replace("  { op = \"dropout\", p = 0.25 },\n", ""));
        let model = Model::new(&exp.g, exp.seed(), &Device::Cpu).expect("model");
        let mut opt = optim::build(&exp.train().optimizer, model.trainable_vars()).expect("opt");
        let (x, y) = batch(&exp);
        let poisoned = x.affine(f64::NAN, 0.0).expect("NaN images");
        let params = model.named_parameters().len();
        let before = state(&model);
        let out = train_step(
            &model,
            opt.as_mut(),
            exp.train().loss,
            &poisoned,
            (&y).into(),
            0.01,
        );
        match out.expect("step") {
            StepOutcome::NonFinite(l) => assert!(l.is_nan(), "{l}"),
            other => panic!("NaN images gave {other:?}"),
        }
        assert!(
            state(&model)[..params] == before[..params],
            "a NaN loss moved the parameters"
        );
        // Nor did the optimizer state advance: the next step is a first step (Adam's bias
        // correction depends on the step count).
        let out = train_step(
            &model,
            opt.as_mut(),
            exp.train().loss,
            &x,
            (&y).into(),
            0.01,
        )
        .expect("step");
        let (first, after_first, _) = trajectory(&exp, 1, 0.01);
        assert_eq!(loss_of(&out).to_bits(), loss_of(&first[0]).to_bits());
        assert!(
            state(&model)[..params] == after_first[..params],
            "the update after a NaN loss is not a first update"
        );
    }

    /// A var of four zeros and a gradient store holding `grad` for it.
    fn store_with(grad: &[f32]) -> (Var, GradStore) {
        let var = Var::from_slice(&[0f32; 4], 4, &Device::Cpu).expect("var");
        let mut grads = GradStore::default();
        grads.insert(&var, Tensor::new(grad, &Device::Cpu).expect("grad"));
        (var, grads)
    }

    #[test]
    fn clipping_by_value_keeps_a_nan_gradient_nan_as_pytorch_does() {
        // torch.nn.utils.clip_grad_value_ is clamp_, and torch.clamp(nan) is nan: a NaN
        // element stays NaN (it does not become a bound), the others are clamped.
        let (var, mut grads) = store_with(&[f32::NAN, 5.0, -5.0, 0.5]);
        clip_grads(
            &mut grads,
            std::slice::from_ref(&var),
            ClipGrad::Value { value: 1.0 },
        )
        .expect("clip");
        let g = grads
            .get(&var)
            .expect("grad")
            .to_vec1::<f32>()
            .expect("read");
        assert!(g[0].is_nan(), "{g:?}");
        assert_eq!(g[1..], [1.0, -1.0, 0.5]);
    }

    #[test]
    fn clipping_by_norm_spreads_a_nan_gradient_as_pytorch_does() {
        // clip_grad_norm_(error_if_nonfinite=False): the total norm is NaN, so is the
        // coefficient, and every element times it.
        let (var, mut grads) = store_with(&[f32::NAN, 5.0, -5.0, 0.5]);
        let clip = ClipGrad::Norm {
            max_norm: 1.0,
            norm_type: 2.0,
        };
        clip_grads(&mut grads, std::slice::from_ref(&var), clip).expect("clip");
        let g = grads
            .get(&var)
            .expect("grad")
            .to_vec1::<f32>()
            .expect("read");
        assert!(g.iter().all(|v| v.is_nan()), "{g:?}");
    }
}
