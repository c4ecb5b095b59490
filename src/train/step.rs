//! One training step, the same for the training loop ([`super::run`]) and `runner bench`:
//! forward pass in training mode, loss, the loss read back, backward pass, optimizer update,
//! and the predictions read back.

use candle_core::{DType, Tensor, D};

use super::optim::Optimizer;
use super::TrainError;
use crate::experiment::LossSpec;
use crate::model::Model;

/// What a step that updated the parameters reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The batch's mean loss, before the update, read back to the host.
    pub loss: f32,
    /// The predicted class of every image in the batch (argmax of the logits before the update).
    pub predictions: Vec<u32>,
}

/// How a training step ended.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum StepOutcome {
    /// The loss was finite and the optimizer updated the parameters.
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
    labels: &Tensor,
    lr: f64,
) -> Result<StepOutcome, TrainError> {
    crate::runtime::in_pool(move || {
        optimizer.set_learning_rate(lr);
        let logits = model.forward(images, true)?;
        let l = loss(loss_spec, &logits, labels)?;
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
        }))
    })
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
            .map(|_| train_step(&model, opt.as_mut(), exp.train().loss, &x, &y, lr).expect("step"))
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
        let out = train_step(&model, opt.as_mut(), exp.train().loss, &x, &y, 0.0).expect("step");
        assert!(matches!(out, StepOutcome::Updated(_)), "{out:?}");
        assert_eq!(opt.learning_rate(), 0.0);
        assert!(params(&model) == before, "a zero rate moved the parameters");
        let out = train_step(&model, opt.as_mut(), exp.train().loss, &x, &y, 0.05).expect("step");
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
        let out = train_step(&model, opt.as_mut(), exp.train().loss, &poisoned, &y, 0.01);
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
        let out = train_step(&model, opt.as_mut(), exp.train().loss, &x, &y, 0.01).expect("step");
        let (first, after_first, _) = trajectory(&exp, 1, 0.01);
        assert_eq!(loss_of(&out).to_bits(), loss_of(&first[0]).to_bits());
        assert!(
            state(&model)[..params] == after_first[..params],
            "the update after a NaN loss is not a first update"
        );
    }
}
