//! Averages of the weights over training, kept beside the trained model and evaluated and saved
//! next to it: [`WeightAverage`], with the exponential moving average (`[train.ema]`) as its
//! first implementation. Another average (SWA's running mean, a Lookahead-style slow copy) is
//! another implementation of the same trait: the training loop, the evaluation, the checkpoints
//! and the saved file go through the trait alone.

use candle_core::{DType, Device, Result, Var};

use crate::experiment::{EmaSpec, LookaheadSpec, TrainSpec};
use crate::graph::Graph;
use crate::model::Model;

/// An average of the model's weights, updated after optimizer steps.
pub trait WeightAverage: Send {
    /// Its name: the prefix of its tensors in a checkpoint (`ema.<state_dict name>`) and of its
    /// columns in `metrics.csv` (`ema_test_loss`).
    fn name(&self) -> &'static str;

    /// Takes `model`'s weights into the average after optimizer step `step`, counted from 1
    /// over the whole run (a resumed run goes on counting). Called after every optimizer step;
    /// the average decides which ones it uses.
    fn update(&mut self, model: &Model, step: usize) -> Result<()>;

    /// A model holding the averaged weights: what is evaluated and saved. Its tensor names are
    /// the trained model's, so that a file of it opens wherever the model's does.
    fn model(&self) -> &Model;

    /// The variables that hold the average's whole state, with names unique within it: a
    /// checkpoint copies them, and restoring sets them, after which the next
    /// [`WeightAverage::update`] is the one that would have followed.
    fn state(&self) -> Vec<(String, Var)>;
}

/// State a checkpoint carries beside the model and the optimizer: a tensor-name prefix and the
/// variables, which restoring sets.
pub type Carried = (&'static str, Vec<(String, Var)>);

/// The state of the weight average and of Lookahead, whichever the run keeps.
pub fn carried(average: Option<&dyn WeightAverage>, lookahead: Option<&Lookahead>) -> Vec<Carried> {
    let mut out = Vec::new();
    if let Some(a) = average {
        out.push((a.name(), a.state()));
    }
    if let Some(l) = lookahead {
        out.push(("lookahead", l.state()));
    }
    out
}

/// airbench94's `LookaheadState` (`legacy/airbench94.py`, KellerJordan/cifar10-airbench at
/// f1c599c4af24) as its training loop drives it: a slow copy of every floating-point tensor of
/// the `state_dict` (parameters and BatchNorm running statistics), and after optimizer step `t`
/// (counted from 1 over the run) of `total`:
///
/// ```text
/// every `every`-th step:  decay = alpha * (t / total)^power      (float32, as torch computes
///                                                                 airbench's alpha_schedule)
///                         slow = lerp(slow, w, 1 - decay); w = slow   for every tensor
/// at step total:          slow = lerp(slow, w, 0); w = slow       (airbench's final
///                                                                 `update(decay=1.0)`)
/// ```
///
/// Unlike [`WeightAverage`] it writes into the trained model, so it is not one: it is neither
/// evaluated nor saved apart from the model, and it runs after the optimizer step, before the
/// averages read the weights. Its slow copy starts as the model's weights when the run starts.
pub struct Lookahead {
    spec: LookaheadSpec,
    total_steps: usize,
    /// The model's float tensors beside their slow copies.
    slow: Vec<(String, Var, Var)>,
}

impl Lookahead {
    /// Lookahead with `spec` over `model`, for a run of `total_steps` optimizer steps.
    pub fn new(spec: LookaheadSpec, model: &Model, total_steps: usize) -> Result<Lookahead> {
        let all = model.named_parameters().iter().chain(model.named_buffers());
        let slow = all
            .filter(|(_, v)| v.dtype().is_float())
            .map(|(n, v)| {
                Ok((
                    n.clone(),
                    v.clone(),
                    Var::from_tensor(&v.as_tensor().copy()?)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Lookahead {
            spec,
            total_steps,
            slow,
        })
    }

    /// airbench's `alpha_schedule[t]`, `alpha * (torch.arange(total+1) / total)**power`, in
    /// float32 as torch computes it (its `pow` by a scalar 2, 3 or 0.5 is `x * x`, `x * x * x`,
    /// `sqrt(x)`), read back with `.item()`.
    pub fn decay_at(spec: &LookaheadSpec, step: usize, total_steps: usize) -> f64 {
        let frac = step as f32 / total_steps.max(1) as f32;
        let p = match spec.power {
            2.0 => frac * frac,
            3.0 => frac * frac * frac,
            0.5 => frac.sqrt(),
            power => frac.powf(power as f32),
        };
        f64::from(spec.alpha as f32 * p)
    }

    /// After optimizer step `step` (from 1 over the run): the update, when one is due.
    pub fn after_step(&mut self, step: usize) -> Result<()> {
        if step > 0 && step.is_multiple_of(self.spec.every) {
            self.update(Self::decay_at(&self.spec, step, self.total_steps))?;
        }
        if step == self.total_steps {
            self.update(1.0)?;
        }
        Ok(())
    }

    /// `LookaheadState.update(net, decay)`.
    fn update(&mut self, decay: f64) -> Result<()> {
        for (_, w, slow) in &self.slow {
            lerp(slow, w, 1.0 - decay)?;
            w.set(slow.as_tensor())?;
        }
        Ok(())
    }

    /// The slow copies, named by their tensors' `state_dict` names.
    pub fn state(&self) -> Vec<(String, Var)> {
        self.slow
            .iter()
            .map(|(n, _, s)| (n.clone(), s.clone()))
            .collect()
    }
}

/// The average `train` asks for over `model` (built from `graph` with `seed` on `device`), if
/// any. It starts as a copy of `model`'s current weights.
pub fn build(
    train: &TrainSpec,
    graph: &Graph,
    seed: u64,
    device: &Device,
    model: &Model,
) -> Result<Option<Box<dyn WeightAverage>>> {
    Ok(match train.ema {
        None => None,
        Some(spec) => Some(Box::new(Ema::new(spec, graph, seed, device, model)?)),
    })
}

/// The exponential moving average of the parameters, as timm's `ModelEmaV3` with
/// `exclude_buffers=True` (`timm/utils/model_ema.py`, huggingface/pytorch-image-models at
/// aa4b5850c154), updated with `step=` the optimizer step count as timm's `train.py` does:
///
/// ```text
/// decay(t) = 0                                      for t = 1 (timm: step - update_after_step - 1 <= 0)
/// decay(t) = decay                                  without warm-up
/// decay(t) = min(decay, 1 - (1 + (t - 1) / gamma) ^ -power)   with warm-up
/// ema = lerp(ema, w, 1 - decay(t))                  every parameter, in its dtype (f32)
/// ema_buffer = buffer                               BatchNorm running statistics, copied
/// ```
///
/// `lerp` is PyTorch's formula (`weight < 0.5 ? e + weight * (w - e) : w - (w - e) * (1 - weight)`),
/// so the average of weights that do not change is those weights, bit for bit. With `every = k`
/// only the steps `k, 2k, ...` are taken in (the decay still follows the step count `t`).
/// timm's `min_decay` and `update_after_step` are 0. The average starts as a copy of the model.
pub struct Ema {
    spec: EmaSpec,
    average: Model,
}

impl Ema {
    /// An average with `spec`, starting as a copy of `model` (which `graph`, `seed` and `device`
    /// built).
    pub fn new(
        spec: EmaSpec,
        graph: &Graph,
        seed: u64,
        device: &Device,
        model: &Model,
    ) -> Result<Ema> {
        let average = Model::new(graph, seed, device)?;
        for ((_, a), (_, m)) in pairs(&average, model) {
            a.set(m.as_tensor())?;
        }
        Ok(Ema { spec, average })
    }

    /// timm's `ModelEmaV3.get_decay(step)` with `update_after_step = 0` and `min_decay = 0`.
    pub fn decay_at(spec: &EmaSpec, step: usize) -> f64 {
        let t = step.saturating_sub(1);
        if t == 0 {
            return 0.0;
        }
        match spec.warmup {
            None => spec.decay,
            Some(w) => (1.0 - (1.0 + t as f64 / w.gamma).powf(-w.power))
                .min(spec.decay)
                .max(0.0),
        }
    }
}

/// Every parameter then every buffer of `a` beside the same one of `b` (models of one graph).
fn pairs<'m>(
    a: &'m Model,
    b: &'m Model,
) -> impl Iterator<Item = (&'m (String, Var), &'m (String, Var))> {
    let a_all = a.named_parameters().iter().chain(a.named_buffers());
    let b_all = b.named_parameters().iter().chain(b.named_buffers());
    a_all.zip(b_all)
}

impl WeightAverage for Ema {
    fn name(&self) -> &'static str {
        "ema"
    }

    fn update(&mut self, model: &Model, step: usize) -> Result<()> {
        if step == 0 || !step.is_multiple_of(self.spec.every) {
            return Ok(());
        }
        let weight = 1.0 - Self::decay_at(&self.spec, step);
        let params = self.average.named_parameters();
        let params = params.iter().zip(model.named_parameters());
        for ((_, e), (_, w)) in params {
            lerp(e, w, weight)?;
        }
        let buffers = self.average.named_buffers().iter();
        for ((_, e), (_, b)) in buffers.zip(model.named_buffers()) {
            e.set(b.as_tensor())?;
        }
        Ok(())
    }

    fn model(&self) -> &Model {
        &self.average
    }

    fn state(&self) -> Vec<(String, Var)> {
        let all = self.average.named_parameters().iter();
        all.chain(self.average.named_buffers()).cloned().collect()
    }
}

/// `e.lerp_(w, weight)` in place, with PyTorch's formula: the weight and `1 - weight` are
/// rounded to the tensor's precision as PyTorch's `opmath` does for `f32`.
fn lerp(e: &Var, w: &Var, weight: f64) -> Result<()> {
    let (weight, one_minus) = match e.dtype() {
        DType::F64 => (weight, 1.0 - weight),
        _ => {
            let w32 = weight as f32;
            (f64::from(w32), f64::from(1.0 - w32))
        }
    };
    let start = e.as_tensor().detach();
    let end = w.as_tensor().detach();
    let diff = end.sub(&start)?;
    let value = if weight < 0.5 {
        start.add(&diff.affine(weight, 0.0)?)?
    } else {
        end.sub(&diff.affine(one_minus, 0.0)?)?
    };
    e.set(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::EmaWarmup;

    /// A net with every kind of tensor an average sees: conv and linear parameters and
    /// BatchNorm's parameters and running statistics.
    const EXPERIMENT: &str = r#"
name = "average_test"
seed = 2

[data]
dataset = "synthetic"
batch_size = 8
synthetic = { shape = [1, 4, 4], classes = 2, train_size = 16, test_size = 8 }

[model]
layers = [
  { op = "conv2d", out = 2, kernel = 3, padding = 1 },
  { op = "batch_norm2d" },
  { op = "relu" },
  { op = "flatten" },
  { op = "linear", out = 2 },
]
"#;

    fn graph() -> Graph {
        let checked = crate::check::check_str("average_test.toml", EXPERIMENT, "average_test");
        let rendered = checked.render();
        checked.result.unwrap_or_else(|| panic!("{rendered}")).1
    }

    fn values(m: &Model) -> Vec<Vec<f32>> {
        let all = m.named_parameters().iter().chain(m.named_buffers());
        // The float tensors: `num_batches_tracked` (an i64 count) is not averaged.
        all.filter(|(_, v)| v.dtype().is_float())
            .map(|(_, v)| {
                let t = v.as_tensor().flatten_all().expect("flatten");
                t.to_vec1::<f32>().expect("read")
            })
            .collect()
    }

    fn bits(m: &Model) -> Vec<Vec<u32>> {
        let v = values(m);
        v.into_iter()
            .map(|x| x.into_iter().map(f32::to_bits).collect())
            .collect()
    }

    /// Sets every parameter and buffer of `m` to `f(tensor index, element index)`.
    fn fill(m: &Model, f: impl Fn(usize, usize) -> f32) {
        let all = m.named_parameters().iter().chain(m.named_buffers());
        for (i, (_, v)) in all.filter(|(_, v)| v.dtype().is_float()).enumerate() {
            let x: Vec<f32> = (0..v.elem_count()).map(|j| f(i, j)).collect();
            let t = candle_core::Tensor::from_vec(x, v.shape(), &Device::Cpu).expect("tensor");
            v.set(&t).expect("set");
        }
    }

    fn spec(decay: f64, every: usize, warmup: Option<EmaWarmup>) -> EmaSpec {
        EmaSpec {
            decay,
            every,
            warmup,
        }
    }

    #[test]
    fn the_average_of_constant_weights_is_those_weights_exactly() {
        let g = graph();
        let model = Model::new(&g, 2, &Device::Cpu).expect("model");
        // Awkward values, so that a formula like `decay * e + (1 - decay) * w` would round.
        fill(&model, |i, j| 0.1 + (i * 7 + j) as f32 * 0.3337);
        let warm = Some(EmaWarmup {
            power: 2.0 / 3.0,
            gamma: 1.0,
        });
        for s in [
            spec(0.999, 1, None),
            spec(0.3, 2, None),
            spec(0.9999, 1, warm),
        ] {
            let mut ema = Ema::new(s, &g, 2, &Device::Cpu, &model).expect("ema");
            for step in 1..=25 {
                ema.update(&model, step).expect("update");
                assert!(bits(ema.model()) == bits(&model), "{s:?}: step {step}");
            }
        }
    }

    #[test]
    fn decays_follow_timms_get_decay() {
        // timm ModelEmaV3.get_decay(step), update_after_step = 0: step 1 gives 0; then the
        // decay, or with use_warmup 1 - (1 + (step - 1) / gamma) ** -power capped at it.
        // Values by hand: 1 - 2^-1 = 0.5; 1 - 3^-1 = 2/3; 1 - (1 + 1/2)^-2 = 5/9.
        let plain = spec(0.99, 1, None);
        assert_eq!(Ema::decay_at(&plain, 1), 0.0);
        assert_eq!(Ema::decay_at(&plain, 2), 0.99);
        assert_eq!(Ema::decay_at(&plain, 1000), 0.99);
        let linear = spec(
            0.6,
            1,
            Some(EmaWarmup {
                power: 1.0,
                gamma: 1.0,
            }),
        );
        assert_eq!(Ema::decay_at(&linear, 1), 0.0);
        assert!((Ema::decay_at(&linear, 2) - 0.5).abs() < 1e-15);
        assert_eq!(Ema::decay_at(&linear, 3), 0.6, "2/3 capped at the decay");
        let squared = spec(
            0.9,
            1,
            Some(EmaWarmup {
                power: 2.0,
                gamma: 2.0,
            }),
        );
        assert!((Ema::decay_at(&squared, 2) - 5.0 / 9.0).abs() < 1e-15);
        // timm's documented reference point: gamma 1, power 2/3 reaches 0.999 at ~31.6K steps.
        let timm = spec(
            0.9999,
            1,
            Some(EmaWarmup {
                power: 2.0 / 3.0,
                gamma: 1.0,
            }),
        );
        assert!((Ema::decay_at(&timm, 31_624) - 0.999).abs() < 1e-6);
    }

    #[test]
    fn a_sequence_of_weights_gives_timms_average() {
        // One scalar per tensor element, the model's weights w_1 = 1, w_2 = 3, w_3 = -2, w_4 = 5
        // (times a per-element factor), the average after each update worked out by hand:
        // decay 0.5 without warm-up: step 1 copies (e = 1), then e = 0.5 e + 0.5 w: 2, 0, 2.5.
        // With `every = 2` only steps 2 and 4 count: e starts as w_0 = 4, step 2: 0.5*4 + 0.5*3
        // = 3.5, step 4: 0.5*3.5 + 0.5*5 = 4.25. With warm-up (power 1, gamma 1, decay 0.9):
        // decays 0, 1/2, 2/3, 3/4: e = 1, 2, 2/3, 7/4.
        let g = graph();
        let model = Model::new(&g, 2, &Device::Cpu).expect("model");
        let factor = |i: usize, j: usize| 1.0 + ((i + j) % 5) as f32 * 0.25;
        let ws = [1.0f32, 3.0, -2.0, 5.0];
        let warm = Some(EmaWarmup {
            power: 1.0,
            gamma: 1.0,
        });
        // Buffers are copied at each update taken in: 1, 3, -2, 5, and with `every = 2` 4
        // (the start), 3, 3, 5.
        let cases: [(EmaSpec, [f32; 4], [f32; 4]); 3] = [
            (spec(0.5, 1, None), [1.0, 2.0, 0.0, 2.5], ws),
            (
                spec(0.5, 2, None),
                [4.0, 3.5, 3.5, 4.25],
                [4.0, 3.0, 3.0, 5.0],
            ),
            (spec(0.9, 1, warm), [1.0, 2.0, 2.0 / 3.0, 1.75], ws),
        ];
        let params = model.named_parameters().len();
        for (s, want, want_buffers) in cases {
            fill(&model, |i, j| 4.0 * factor(i, j));
            let mut ema = Ema::new(s, &g, 2, &Device::Cpu, &model).expect("ema");
            for (step, w) in ws.iter().enumerate() {
                fill(&model, |i, j| w * factor(i, j));
                ema.update(&model, step + 1).expect("update");
                for (i, t) in values(ema.model()).iter().enumerate() {
                    let want = if i < params { want } else { want_buffers }[step];
                    for (j, &x) in t.iter().enumerate() {
                        let expect = want * factor(i, j);
                        assert!(
                            (x - expect).abs() <= 1e-6 * expect.abs().max(1.0),
                            "{s:?} step {}: tensor {i} element {j}: {x} vs {expect}",
                            step + 1
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lookahead_decay_is_airbench_alpha_schedule() {
        // airbench94's own expression, torch 2.15.0:
        // a = 0.95**5 * (torch.arange(476 + 1) / 476)**3
        // [a[t].item() for t in (5, 240, 475, 476)]
        let spec = LookaheadSpec {
            every: 5,
            alpha: 0.95f64.powi(5),
            power: 3.0,
        };
        let want = [
            (5, 8.968240194917598e-07),
            (240, 0.09918157011270523),
            (475, 0.7689144611358643),
            (476, 0.7737809419631958),
        ];
        for (t, d) in want {
            assert_eq!(Lookahead::decay_at(&spec, t, 476), d, "step {t}");
        }
    }

    #[test]
    fn lookahead_pulls_the_model_to_its_slow_copy() {
        // By hand, every = 1, alpha = 0.5, power = 1, 2 steps; a tensor starts at 0 (the slow
        // copy too), and the "optimizer" moves it by +1 before each update:
        //   step 1: w = 1,    decay = 0.5 * 1/2 = 0.25: slow = 0 + 0.75 * (1 - 0) = 0.75, w = 0.75
        //   step 2: w = 1.75, decay = 0.5 * 2/2 = 0.5:  slow = 1.75 - (1.75 - 0.75) * 0.5 = 1.25
        //   last step, decay 1: slow = 1.25 + 0 * (1.25 - 1.25); w = 1.25
        let model = Model::new(&graph(), 0, &Device::Cpu).expect("model");
        let floats: Vec<&Var> = model
            .named_parameters()
            .iter()
            .chain(model.named_buffers())
            .map(|(_, v)| v)
            .filter(|v| v.dtype().is_float())
            .collect();
        for v in &floats {
            v.set(&v.zeros_like().expect("zeros")).expect("set");
        }
        let spec = LookaheadSpec {
            every: 1,
            alpha: 0.5,
            power: 1.0,
        };
        let mut la = Lookahead::new(spec, &model, 2).expect("lookahead");
        let mut seen = Vec::new();
        for step in 1..=2 {
            for v in &floats {
                v.set(&v.affine(1.0, 1.0).expect("+1")).expect("set");
            }
            la.after_step(step).expect("update");
            seen.push(values(&model));
        }
        for (step, want) in [(1, 0.75f32), (2, 1.25)] {
            for (i, t) in seen[step - 1].iter().enumerate() {
                assert!(
                    t.iter().all(|&x| x == want),
                    "step {step}, tensor {i}: {t:?}"
                );
            }
        }
        let state = la.state();
        assert_eq!(
            state.len(),
            floats.len(),
            "every float tensor has a slow copy"
        );
        for (name, slow) in state {
            let slow = slow
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect(&name);
            assert!(slow.iter().all(|&x| x == 1.25), "{name}: {slow:?}");
        }
    }
}
