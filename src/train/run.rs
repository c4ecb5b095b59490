//! The training run: data -> model -> epochs of train + evaluate -> files in the run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::optim;
use super::schedule::build_schedule;
use super::step::{loss, predictions, train_step, StepOutcome};
use crate::data::{self, epoch_batches, Dataset, Pipeline};
use crate::experiment::{DeviceSpec, Experiment};
use crate::graph::Graph;
use crate::model::Model;
use crate::report::{ClassAccuracy, EpochMetrics, Progress, ReportError, RunDir, Summary};

/// How to run, beyond what the experiment file says.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Root holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`.
    pub data_dir: PathBuf,
    /// Write plain progress lines even on a terminal.
    pub plain_progress: bool,
    /// Plain progress: one line every this many steps (0: none).
    pub log_every: usize,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading the data set failed.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// Writing results failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The requested device cannot be used.
    #[error("{0}")]
    Device(String),
    /// The loss stopped being a finite number.
    #[error("the training loss became {loss} at epoch {epoch}, step {step}: stopping (try a lower learning rate); metrics of the finished epochs are in {dir}")]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss value.
        loss: f32,
        /// The run directory.
        dir: String,
    },
    /// Writing the weights failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The model is too large to train here.
    #[error("the model needs about {gib:.1} GiB for weights, gradients and optimizer state; refusing to start")]
    TooLarge {
        /// Estimated GiB.
        gib: f64,
    },
}

/// Picks the candle device; `auto` prefers CUDA.
pub fn select_device(spec: DeviceSpec) -> Result<Device, TrainError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            if !candle_core::utils::cuda_is_available() {
                return Err(TrainError::Device(format!(
                    "device `cuda:{n}` was requested, but this runner was built without CUDA support (build with `--features cuda`), or use `device = \"cpu\"`"
                )));
            }
            Device::new_cuda(n)
                .map_err(|e| TrainError::Device(format!("cannot open CUDA device {n}: {e}")))
        }
        DeviceSpec::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// A short device name for files and messages: `cpu` or `cuda:N`.
pub fn device_name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

struct Eval {
    loss: f64,
    acc: f64,
    images_per_sec: f64,
    per_class: Vec<ClassAccuracy>,
    /// The predicted class of every test image, in data set order.
    predictions: Vec<u32>,
}

#[tracing::instrument(skip_all, fields(epoch))]
fn evaluate(
    model: &Model,
    exp: &Experiment,
    test: &Arc<Dataset>,
    pipe: &Arc<Pipeline>,
    device: &Device,
    epoch: usize,
) -> Result<Eval, TrainError> {
    let started = Instant::now();
    let classes = test.classes.len().max(exp.data().dataset.classes());
    let (mut correct, mut total) = (vec![0usize; classes], vec![0usize; classes]);
    let mut loss_sum = 0f64;
    let mut n = 0usize;
    let mut all_predictions = Vec::with_capacity(test.len());
    for batch in epoch_batches(
        test.clone(),
        pipe.clone(),
        exp.data().test_batch_size,
        false,
        exp.seed(),
        epoch,
        None,
    ) {
        let b = batch.labels.len();
        let x = Tensor::from_vec(batch.images, batch.shape.to_vec(), device)?;
        let y = Tensor::from_vec(batch.labels.clone(), b, device)?;
        let loss_spec = exp.train().loss;
        let (batch_loss, preds) = crate::runtime::in_pool(|| -> candle_core::Result<_> {
            let out = model.infer(&x)?;
            let l = loss(loss_spec, &out, &y)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            Ok((l, predictions(&out)?))
        })?;
        loss_sum += batch_loss * b as f64;
        for (&p, t) in preds.iter().zip(&batch.labels) {
            let t = *t as usize;
            if t < classes {
                total[t] += 1;
                correct[t] += usize::from(p as usize == t);
            }
        }
        all_predictions.extend(preds);
        n += b;
    }
    let seconds = started.elapsed().as_secs_f64();
    let all_correct: usize = correct.iter().sum();
    let per_class = (0..classes)
        .map(|c| ClassAccuracy {
            class: test
                .classes
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.to_string()),
            correct: correct[c],
            total: total[c],
            accuracy: if total[c] == 0 {
                0.0
            } else {
                100.0 * correct[c] as f64 / total[c] as f64
            },
        })
        .collect();
    Ok(Eval {
        loss: loss_sum / n.max(1) as f64,
        acc: 100.0 * all_correct as f64 / n.max(1) as f64,
        images_per_sec: n as f64 / seconds.max(1e-9),
        per_class,
        predictions: all_predictions,
    })
}

/// Trains and evaluates `exp`, writing every result file into `run`. `config_text` is the
/// resolved experiment written as `config.toml`.
#[tracing::instrument(skip_all, fields(experiment = %exp.name()))]
pub fn run(
    exp: &Experiment,
    graph: &Graph,
    config_text: &str,
    run: &RunDir,
    opts: &RunOptions,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let device = select_device(exp.device())?;
    run.write_config(config_text)?;
    let splits = {
        let _span = tracing::info_span!("load_data", dataset = exp.data().dataset.name()).entered();
        data::load(&exp.data().dataset, &opts.data_dir, exp.seed())?
    };
    let shape = exp.data().dataset.image_shape();
    let train = Arc::new(splits.train);
    let test = Arc::new(splits.test);
    let train_pipe = Arc::new(Pipeline::new(&exp.data().train_transforms, shape));
    let test_pipe = Arc::new(Pipeline::new(&exp.data().test_transforms, shape));

    let params = graph.params();
    // Weights, gradients and up to two optimizer moments, in f32.
    let gib = params as f64 * 4.0 * 4.0 / (1u64 << 30) as f64;
    if gib > 8.0 {
        return Err(TrainError::TooLarge { gib });
    }
    let model = {
        let _span = tracing::info_span!("build_model", params).entered();
        Model::new(graph, exp.seed(), &device)?
    };
    let mut optimizer = optim::build(&exp.train().optimizer, model.trainable_vars())?;
    let n_train = exp
        .data()
        .train_limit
        .map_or(train.len(), |l| l.min(train.len()));
    let batch_size = exp.data().batch_size;
    let steps_per_epoch = n_train.div_ceil(batch_size);
    let epochs = exp.train().epochs;
    let schedule = build_schedule(
        &exp.train().schedule,
        exp.train().optimizer.lr(),
        epochs,
        steps_per_epoch,
    );

    let mut rows: Vec<EpochMetrics> = Vec::with_capacity(epochs);
    let mut last_eval = None;
    let mut train_seconds_total = 0f64;
    for epoch in 1..=epochs {
        let _span = tracing::info_span!("epoch", epoch).entered();
        let epoch_started = Instant::now();
        let mut progress =
            Progress::new(n_train, epoch, epochs, opts.log_every, opts.plain_progress);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = exp.train().optimizer.lr();
        {
            let _train_span = tracing::info_span!("train", epoch).entered();
            let batches = epoch_batches(
                train.clone(),
                train_pipe.clone(),
                batch_size,
                exp.data().shuffle,
                exp.seed(),
                epoch,
                exp.data().train_limit,
            );
            // Time blocked on the input pipeline against time in the step (which ends with the
            // loss read back, so on a GPU it includes the device's work): the trace shows
            // whether the device waits for data.
            let mut batches = batches.enumerate();
            let (mut wait_seconds, mut step_seconds) = (0f64, 0f64);
            loop {
                let waited = Instant::now();
                let next = {
                    let _wait = tracing::debug_span!("data_wait").entered();
                    batches.next()
                };
                wait_seconds += waited.elapsed().as_secs_f64();
                let Some((step, batch)) = next else {
                    break;
                };
                let stepped = Instant::now();
                let _step_span = tracing::debug_span!("step", step).entered();
                lr = schedule.lr((epoch - 1) * steps_per_epoch + step);
                let b = batch.labels.len();
                let x = Tensor::from_vec(batch.images, batch.shape.to_vec(), &device)?;
                let y = Tensor::from_vec(batch.labels.clone(), b, &device)?;
                let outcome = train_step(&model, optimizer.as_mut(), exp.train().loss, &x, &y, lr)?;
                let out = match outcome {
                    StepOutcome::Updated(out) => out,
                    StepOutcome::NonFinite(loss) => {
                        progress.finish();
                        return Err(TrainError::NonFinite {
                            epoch,
                            step: step + 1,
                            loss,
                            dir: run.path.display().to_string(),
                        });
                    }
                };
                let lv = out.loss;
                correct += out
                    .predictions
                    .iter()
                    .zip(&batch.labels)
                    .filter(|(p, t)| p == t)
                    .count();
                loss_sum += lv as f64 * b as f64;
                seen += b;
                progress.step(seen, lv as f64);
                step_seconds += stepped.elapsed().as_secs_f64();
            }
            tracing::info!(
                epoch,
                data_wait_seconds = wait_seconds,
                step_seconds,
                "training time: waiting for batches vs in steps"
            );
        }
        let train_seconds = epoch_started.elapsed().as_secs_f64();
        train_seconds_total += train_seconds;
        let eval = evaluate(&model, exp, &test, &test_pipe, &device, epoch)?;
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            test_loss: eval.loss,
            test_acc: eval.acc,
            lr,
            seconds: epoch_started.elapsed().as_secs_f64(),
            train_images_per_sec: seen as f64 / train_seconds.max(1e-9),
            eval_images_per_sec: eval.images_per_sec,
        };
        progress.epoch_done(&m, epochs);
        rows.push(m);
        run.write_metrics(&rows)?;
        last_eval = Some(eval);
    }
    let Some(eval) = last_eval else {
        return Err(TrainError::Device("no epoch ran".into()));
    };
    run.write_per_class(&eval.per_class)?;
    {
        let _span = tracing::info_span!("save_model").entered();
        let path = run.file(crate::report::MODEL_FILE);
        save_model_atomically(&model, &path)?;
    }
    let last = rows
        .last()
        .cloned()
        .ok_or_else(|| TrainError::Device("no epoch ran".into()))?;
    let best = rows
        .iter()
        .fold(&rows[0], |b, r| if r.test_acc > b.test_acc { r } else { b });
    let flags = crate::report::ResultFlags::of(&last);
    if let Some(warning) = flags.warning() {
        crate::ewriteln!("{warning}");
    }
    let summary = Summary {
        experiment: exp.name().to_string(),
        run_id: run.run_id.clone(),
        seed: exp.seed(),
        device: device_name(&device),
        params: params as u64,
        epochs,
        train_images: n_train as u64,
        test_acc: last.test_acc,
        best_test_acc: best.test_acc,
        best_epoch: best.epoch,
        final_train_loss: last.train_loss,
        final_test_loss: last.test_loss,
        seconds: started.elapsed().as_secs_f64(),
        train_images_per_sec: (n_train * epochs) as f64 / train_seconds_total.max(1e-9),
        flags: flags.cell(),
    };
    run.write_summary(&summary)?;
    // The pictures come last: if drawing fails, every CSV and the weights are already written,
    // and the run still counts as finished.
    if let Err(e) = crate::plot::write_run_plots(&run.path, exp, &rows, &test, &eval.predictions) {
        crate::ewriteln!(
            "warning: the run finished but its plots could not all be drawn: {e} (the CSVs and \
             weights in {} are complete)",
            run.path.display()
        );
    }
    Ok(summary)
}

/// safetensors through a temporary file and a rename, like every other result file.
fn save_model_atomically(model: &Model, path: &Path) -> Result<(), TrainError> {
    let tmp = path.with_extension("safetensors.tmp");
    model.save(&tmp)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| TrainError::Device(format!("cannot write {}: {e}", path.display())))
}
