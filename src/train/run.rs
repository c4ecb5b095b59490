//! The training run: data -> model -> epochs of train + evaluate -> files in the run directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::checkpoint;
use super::eval::{evaluate, evaluate_with_average, Stop};
use super::mix;
use super::schedule::build_schedule;
use super::select;
use super::step::{GradientSteps, StepOutcome, Targets};
use super::{average, optim};
use crate::data::{self, epoch_batches_upto, Pipeline};
use crate::experiment::{DeviceSpec, Experiment};
use crate::graph::Graph;
use crate::interrupt::Signal;
use crate::model::{InitImages, Model};
use crate::report::tensorboard::{EventLog, StepScalars};
use crate::report::{EpochMetrics, Progress, ReportError, RunDir, RunState, RunStatus, Summary};

/// How to run, beyond what the experiment file says.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Root holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`.
    pub data_dir: PathBuf,
    /// Write plain progress lines even on a terminal.
    pub plain_progress: bool,
    /// Plain progress: one line every this many steps (0: none).
    pub log_every: usize,
    /// Behave as if SIGTERM arrived once this many optimizer steps (counted from the start of
    /// the run) have been taken: for tests of interruption and resume.
    pub stop_after_steps: Option<usize>,
    /// Write TensorBoard event files into the run folder ([`EventLog`]).
    pub tensorboard: bool,
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
    #[error("the training loss became {loss} at epoch {epoch}, step {step}: stopping (try a lower learning rate); {}", finished_note(*finished, dir))]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss value.
        loss: f32,
        /// Epochs finished before it.
        finished: usize,
        /// The run directory.
        dir: String,
    },
    /// A signal stopped the run; the checkpoint of the last finished epoch is written.
    #[error("interrupted by {}: {}", signal.name(), interrupted_note(*checkpoint, dir, resume))]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// The epoch of the newest checkpoint on disk, if any.
        checkpoint: Option<usize>,
        /// The run directory.
        dir: String,
        /// The command that resumes it.
        resume: String,
    },
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// The model is too large to train here.
    #[error("the model needs about {gib:.1} GiB for weights, gradients and optimizer state; refusing to start")]
    TooLarge {
        /// Estimated GiB.
        gib: f64,
    },
}

fn finished_note(finished: usize, dir: &str) -> String {
    match finished {
        0 => format!("no epoch finished; {dir} keeps the resolved config.toml"),
        1 => format!("the metrics of the finished epoch are in {dir}/metrics.csv"),
        n => format!("the metrics of the {n} finished epochs are in {dir}/metrics.csv"),
    }
}

fn interrupted_note(checkpoint: Option<usize>, dir: &str, resume: &str) -> String {
    match checkpoint {
        Some(e) => {
            format!("the checkpoint of epoch {e} is in {dir}/checkpoints; resume with `{resume}`")
        }
        None => format!(
            "no epoch finished, so no checkpoint exists yet; `{resume}` starts the run again"
        ),
    }
}

/// The command that resumes the run in `dir` with the same data folder.
pub fn resume_command(dir: &std::path::Path, data_dir: &std::path::Path) -> String {
    format!(
        "runner resume {} --data-dir {}",
        shell_word(&dir.display().to_string()),
        shell_word(&data_dir.display().to_string())
    )
}

/// `s` as one shell word: as it is when it holds only safe characters, else single-quoted.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
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

/// Trains and evaluates `exp`, writing every result file into `run`. `config_text` is the
/// resolved experiment written as `config.toml`. With `resume`, the run continues from the
/// newest checkpoint in `run` (or from the start when there is none) and `config.toml` is left
/// as it is (the caller checked that it says the same).
///
/// The folder's `status.json` follows the run: `running`, then `finished`, `interrupted` (a
/// signal, see [`crate::interrupt`]: the checkpoint of the last finished epoch is written first)
/// or `failed`.
#[tracing::instrument(skip_all, fields(experiment = %exp.name()))]
pub fn run(
    exp: &Experiment,
    graph: &Graph,
    config_text: &str,
    run: &RunDir,
    opts: &RunOptions,
    resume: bool,
) -> Result<Summary, TrainError> {
    // Filled in once the data tell how many epochs `train.steps` make.
    let mut epochs = exp.train().length.known_epochs().unwrap_or(0);
    let result = train_and_report(exp, graph, config_text, run, opts, resume, &mut epochs);
    let status = match &result {
        Ok(summary) => RunStatus::new(RunState::Finished, summary.epochs, epochs),
        Err(TrainError::Interrupted {
            signal,
            checkpoint,
            resume,
            ..
        }) => RunStatus {
            reason: signal.name().into(),
            resume: resume.clone(),
            ..RunStatus::new(RunState::Interrupted, checkpoint.unwrap_or(0), epochs)
        },
        Err(e) => RunStatus {
            reason: e.to_string().replace(['\n', '\r'], " "),
            ..RunStatus::new(RunState::Failed, finished_epochs(run), epochs)
        },
    };
    if let Err(e) = status.write(&run.path) {
        // The run's own outcome matters more; the status error is reported beside it.
        crate::ewriteln!("warning: {e}");
    }
    result
}

/// Epochs recorded in the folder's `metrics.csv` (0 without one).
fn finished_epochs(run: &RunDir) -> usize {
    crate::report::read_metrics(&run.file(crate::report::METRICS_FILE)).map_or(0, |m| m.len())
}

/// The body of [`run`], without the status bookkeeping.
fn train_and_report(
    exp: &Experiment,
    graph: &Graph,
    config_text: &str,
    run: &RunDir,
    opts: &RunOptions,
    resume: bool,
    epochs_out: &mut usize,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let device = select_device(exp.device())?;
    let epochs = *epochs_out;
    if !resume {
        run.write_config(config_text)?;
    }
    let checkpoint_spec = exp.train().checkpoint;
    let resume_from = if resume {
        checkpoint::last(&run.path)?
    } else {
        None
    };
    RunStatus::new(
        RunState::Running,
        resume_from.as_ref().map_or(0, |m| m.epoch),
        epochs,
    )
    .write(&run.path)?;
    let stop_requested = |steps: usize| {
        crate::interrupt::requested().or_else(|| {
            opts.stop_after_steps
                .filter(|&n| steps >= n)
                .map(|_| Signal::Term)
        })
    };
    let splits = {
        let _span = tracing::info_span!("load_data", dataset = exp.data().dataset.name()).entered();
        data::load_experiment(exp.data(), &opts.data_dir, exp.seed())?
    };
    // An image folder without a declared `classes` is checked against the model only now.
    if let Some(spec) = exp.data().dataset.folder() {
        let found = splits.train.classes.len();
        if graph.output_shape() != [found] {
            return Err(TrainError::Data(data::DataError::Folder {
                path: opts.data_dir.join(&spec.path),
                reason: format!(
                    "{found} classes found, but the model outputs {:?} per image",
                    graph.output_shape()
                ),
            }));
        }
    }
    let shape = exp.data().dataset.image_shape();
    let train = Arc::new(splits.train);
    let val = splits.val.map(Arc::new);
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
        // A whitening init reads training images; weights from `init_from` or a checkpoint
        // replace it, so then it is not computed.
        let first_images = |n: usize| first_images(&train, &test_pipe, n);
        let fresh = exp.train().init_from.is_none() && resume_from.is_none();
        let images: Option<&InitImages<'_>> = fresh.then_some(&first_images);
        let model = Model::with_images(graph, exp.seed(), &device, images)?;
        // A checkpoint, when there is one, holds the weights instead.
        if let (Some(init), None) = (&exp.train().init_from, &resume_from) {
            model.load_init(&init.path, init.sha256.as_deref())?;
        }
        model
    };
    let param_groups = optim::ParamGroups::new(exp.train(), graph, &model);
    let mut optimizer = optim::build_grouped(&exp.train().optimizer, param_groups.vars())?;
    let mut gradient_steps = GradientSteps::new(exp.train(), &model);
    let mut average = average::build(exp.train(), graph, exp.seed(), &device, &model)?;
    let n_train = exp
        .data()
        .train_limit
        .map_or(train.len(), |l| l.min(train.len()));
    let batch_size = exp.data().batch_size;
    let plan = exp.plan(n_train);
    if plan.batches_per_epoch == 0 {
        return Err(TrainError::Data(data::DataError::TooFewForDropLast {
            images: n_train,
            batch_size,
        }));
    }
    let batches_per_epoch = plan.batches_per_epoch;
    // Optimizer steps: what the schedule and the step count of a checkpoint count.
    let steps_per_epoch = plan.steps_per_epoch;
    debug_assert_eq!(
        steps_per_epoch,
        gradient_steps.steps_per_epoch(batches_per_epoch)
    );
    let epochs = plan.epochs;
    *epochs_out = epochs;
    if exp.train().length.known_epochs().is_none() {
        // `steps`: the status written before the data were read could not count the epochs.
        RunStatus::new(
            RunState::Running,
            resume_from.as_ref().map_or(0, |m| m.epoch),
            epochs,
        )
        .write(&run.path)?;
    }
    let schedule = build_schedule(
        &exp.train().schedule,
        exp.train().optimizer.lr(),
        plan.total_steps,
        steps_per_epoch,
    );

    let mut rows: Vec<EpochMetrics> = Vec::with_capacity(epochs);
    let mut train_seconds_total = 0f64;
    // Wall-clock seconds of the earlier sessions of a resumed run.
    let mut earlier_seconds = 0f64;
    let mut first_epoch = 1;
    // The epoch the newest checkpoint on disk holds.
    let mut checkpointed: Option<usize> = None;
    if let Some(manifest) = resume_from {
        let restored = checkpoint::restore(
            &run.path,
            manifest,
            &model,
            optimizer.as_mut(),
            average.as_deref(),
        )?;
        let m = restored.manifest;
        crate::ewriteln!(
            "runner: resuming after epoch {} of {epochs} from {}",
            m.epoch,
            run.path
                .join(checkpoint::CHECKPOINT_DIR)
                .join(&m.tensors)
                .display()
        );
        first_epoch = m.epoch + 1;
        checkpointed = Some(m.epoch);
        train_seconds_total = m.train_seconds;
        earlier_seconds = m.seconds;
        rows = restored.metrics;
        // A later metrics.csv (from epochs after the checkpoint) is replaced by the
        // checkpoint's: those epochs run again.
        run.write_metrics(&rows)?;
    }
    // A run resumed after its early stop has nothing left to train.
    let mut early_stopped = exp
        .train()
        .early_stopping
        .and_then(|rule| select::early_stop(&rule, &rows));
    // The state after the last finished epoch, when it is not on disk yet (`every` > 1).
    let mut pending: Option<checkpoint::Snapshot> = None;
    let mut last_eval = None;
    let mut global_step = (first_epoch - 1) * steps_per_epoch;
    let mut events = if opts.tensorboard {
        EventLog::open(
            &run.path,
            global_step,
            opts.log_every,
            Box::new(|w| crate::ewriteln!("{w}")),
        )
    } else {
        EventLog::disabled()
    };
    let mut stopped: Option<Signal> = None;
    'epochs: for epoch in first_epoch..=epochs {
        if early_stopped.is_some() {
            break;
        }
        let _span = tracing::info_span!("epoch", epoch).entered();
        if let Some(signal) = stop_requested(global_step) {
            stopped = Some(signal);
            break;
        }
        let epoch_started = Instant::now();
        model.freeze(&param_groups.frozen_in(epoch));
        // All batches but in a partial last epoch (`train.steps`, fractional `epochs`), and
        // without the partial one with `drop_last`.
        let epoch_batch_count = plan.batches_in(epoch);
        let epoch_images = n_train.min(epoch_batch_count * batch_size);
        let mut progress = Progress::new(
            epoch_images,
            epoch,
            epochs,
            opts.log_every,
            opts.plain_progress,
        );
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = exp.train().optimizer.lr();
        {
            let _train_span = tracing::info_span!("train", epoch).entered();
            let batches = epoch_batches_upto(
                train.clone(),
                train_pipe.clone(),
                batch_size,
                exp.data().shuffle,
                exp.seed(),
                epoch,
                exp.data().train_limit,
                epoch_batch_count,
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
                let Some((step, mut batch)) = next else {
                    break;
                };
                let stepped = Instant::now();
                let _step_span = tracing::debug_span!("step", step).entered();
                lr = schedule.lr((epoch - 1) * steps_per_epoch + gradient_steps.step_of(step));
                // Mixup / cutmix draw from their own stream per (epoch, batch), so a resumed
                // run mixes as the uninterrupted one.
                let mixed = exp.train().mixup.as_ref().and_then(|spec| {
                    let mut rng =
                        data::derived_rng(exp.seed(), data::Stream::Mix, epoch as u64, step as u64);
                    mix::mix_batch(spec, &mut batch, &mut rng)
                });
                let b = batch.labels.len();
                let x = Tensor::from_vec(batch.images, batch.shape.to_vec(), &device)?;
                let y = Tensor::from_vec(batch.labels.clone(), b, &device)?;
                let partner = mixed
                    .as_ref()
                    .map(|m| Tensor::from_vec(m.partner.clone(), b, &device))
                    .transpose()?;
                let targets = match (&mixed, &partner) {
                    (Some(m), Some(p)) => Targets::Mixed {
                        labels: &y,
                        partner: p,
                        lam: m.lam,
                    },
                    _ => Targets::Labels(&y),
                };
                let last = step + 1 == epoch_batch_count;
                let (opt, loss) = (optimizer.as_mut(), exp.train().loss);
                let outcome = gradient_steps.batch(&model, opt, loss, &x, targets, lr, last)?;
                let out = match outcome {
                    StepOutcome::Updated(out) => out,
                    StepOutcome::NonFinite(loss) => {
                        progress.finish();
                        return Err(TrainError::NonFinite {
                            epoch,
                            step: step + 1,
                            loss,
                            finished: rows.len(),
                            dir: run.path.display().to_string(),
                        });
                    }
                };
                if out.stepped {
                    global_step += 1;
                    if let Some(average) = average.as_mut() {
                        average.update(&model, global_step)?;
                    }
                }
                let lv = out.loss;
                let batch_correct = out
                    .predictions
                    .iter()
                    .zip(
                        mixed
                            .as_ref()
                            .map_or(&batch.labels[..], |m| m.dominant(&batch.labels)),
                    )
                    .filter(|(p, t)| p == t)
                    .count();
                correct += batch_correct;
                loss_sum += lv as f64 * b as f64;
                seen += b;
                progress.step(seen, lv as f64);
                if out.stepped {
                    // Scalars every `--log-every` optimizer steps (of the epoch), at the step;
                    // with accumulation, of the batch that completed it.
                    events.step(
                        global_step,
                        global_step - (epoch - 1) * steps_per_epoch,
                        &StepScalars {
                            running_loss: loss_sum / seen.max(1) as f64,
                            batch_loss: lv as f64,
                            batch_acc: 100.0 * batch_correct as f64 / b.max(1) as f64,
                            lr,
                        },
                    );
                }
                step_seconds += stepped.elapsed().as_secs_f64();
                if let Some(signal) = stop_requested(global_step) {
                    progress.finish();
                    stopped = Some(signal);
                    break 'epochs;
                }
            }
            tracing::info!(
                epoch,
                data_wait_seconds = wait_seconds,
                step_seconds,
                "training time: waiting for batches vs in steps"
            );
        }
        let train_seconds = epoch_started.elapsed().as_secs_f64();
        let stop = || stop_requested(global_step);
        let val_eval = match &val {
            None => None,
            Some(val) => match evaluate(&model, exp, val, &test_pipe, &device, epoch, &stop) {
                Ok(eval) => Some(eval),
                Err(Stop::Signal(signal)) => {
                    progress.finish();
                    stopped = Some(signal);
                    break 'epochs;
                }
                Err(Stop::Error(e)) => return Err(e),
            },
        };
        let avg = average.as_deref();
        let evals =
            evaluate_with_average(&model, avg, exp, &test, &test_pipe, &device, epoch, &stop);
        let (eval, averaged) = match evals {
            Ok(evals) => evals,
            Err(Stop::Signal(signal)) => {
                progress.finish();
                stopped = Some(signal);
                break 'epochs;
            }
            Err(Stop::Error(e)) => return Err(e),
        };
        train_seconds_total += train_seconds;
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
            val_loss: val_eval.as_ref().map(|e| e.loss),
            val_acc: val_eval.as_ref().map(|e| e.acc),
            ema_test_loss: averaged.as_ref().map(|e| e.loss),
            ema_test_acc: averaged.as_ref().map(|e| e.acc),
        };
        progress.epoch_done(&m, epochs);
        events.epoch(&m, global_step);
        rows.push(m);
        let is_best = select::best(&rows).is_some_and(|b| b.epoch == epoch);
        early_stopped = exp
            .train()
            .early_stopping
            .and_then(|rule| select::early_stop(&rule, &rows));
        run.write_metrics(&rows)?;
        last_eval = Some(eval);
        {
            let _span = tracing::info_span!("checkpoint", epoch).entered();
            let snapshot = checkpoint::Snapshot::take(
                &model,
                optimizer.as_ref(),
                average.as_deref(),
                epoch,
                epochs,
                global_step,
                &rows,
                train_seconds_total,
                earlier_seconds + started.elapsed().as_secs_f64(),
            )?;
            let every = checkpoint_spec.every;
            let last = epoch == epochs || early_stopped.is_some();
            let due = every > 0 && (epoch.is_multiple_of(every) || last);
            let best = is_best && checkpoint_spec.best;
            if due || best {
                snapshot.write(&run.path, due, best)?;
            }
            if due {
                checkpointed = Some(epoch);
                pending = None;
            } else {
                pending = Some(snapshot);
            }
        }
        RunStatus::new(RunState::Running, epoch, epochs).write(&run.path)?;
    }
    if let Some(signal) = stopped {
        if let Some(snapshot) = pending.take() {
            snapshot.write(&run.path, true, false)?;
            checkpointed = Some(snapshot.epoch());
        }
        return Err(TrainError::Interrupted {
            signal,
            checkpoint: checkpointed,
            dir: run.path.display().to_string(),
            resume: resume_command(&run.path, &opts.data_dir),
        });
    }
    if let Some(stop) = &early_stopped {
        crate::ewriteln!("runner: {stop}");
    }
    let trained = rows.len();
    let trained_images: usize = (1..=trained)
        .map(|e| n_train.min(plan.batches_in(e) * batch_size))
        .sum();
    // A run resumed from the checkpoint of its last epoch has every row but not the last
    // evaluation's details; evaluating again gives the same numbers.
    let eval = match last_eval {
        Some(eval) => eval,
        None => match evaluate(&model, exp, &test, &test_pipe, &device, trained, &|| {
            stop_requested(global_step)
        }) {
            Ok(eval) => eval,
            Err(Stop::Error(e)) => return Err(e),
            Err(Stop::Signal(signal)) => {
                return Err(TrainError::Interrupted {
                    signal,
                    checkpoint: checkpointed,
                    dir: run.path.display().to_string(),
                    resume: resume_command(&run.path, &opts.data_dir),
                })
            }
        },
    };
    run.write_per_class(&eval.per_class)?;
    let confusion = eval.confusion(exp, &test);
    run.write_confusion(&confusion)?;
    {
        let _span = tracing::info_span!("save_model").entered();
        let bytes = model.to_safetensors()?;
        crate::report::write_atomic(&run.file(crate::report::MODEL_FILE), &bytes)?;
        if let Some(average) = &average {
            let file = crate::report::average_model_file(average.name());
            crate::report::write_atomic(&run.file(&file), &average.model().to_safetensors()?)?;
        }
    }
    let last = rows
        .last()
        .cloned()
        .ok_or_else(|| TrainError::Device("no epoch ran".into()))?;
    let best = select::best(&rows).unwrap_or(&last);
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
        epochs: trained,
        train_images: n_train as u64,
        test_acc: last.test_acc,
        best_test_acc: best.test_acc,
        best_epoch: best.epoch,
        final_train_loss: last.train_loss,
        final_test_loss: last.test_loss,
        seconds: earlier_seconds + started.elapsed().as_secs_f64(),
        train_images_per_sec: trained_images as f64 / train_seconds_total.max(1e-9),
        flags: flags.cell(),
        selected_on: select::Selection::of(&rows).name().into(),
        best_val_acc: best.val_acc,
        stop_reason: early_stopped.map_or_else(String::new, |s| s.to_string()),
    };
    run.write_summary(&summary)?;
    // The pictures come last: if drawing fails, every CSV and the weights are already written,
    // and the run still counts as finished.
    if let Err(e) =
        crate::plot::write_run_plots(&run.path, exp, &rows, &test, &eval.predictions, &confusion)
    {
        crate::ewriteln!(
            "warning: the run finished but its plots could not all be drawn: {e} (the CSVs and \
             weights in {} are complete)",
            run.path.display()
        );
    }
    Ok(summary)
}

/// The first `n` images of `train` (fewer if it is smaller), in file order, through the
/// test-time transforms (deterministic), as one `[n, C, H, W]` CPU tensor: what a whitening
/// init reads (airbench: `normalize(images[:5000])`).
fn first_images(train: &data::Dataset, pipe: &Pipeline, n: usize) -> candle_core::Result<Tensor> {
    use rand::SeedableRng;
    let n = n.min(train.len());
    let len = pipe.output_len();
    let mut out = vec![0f32; n * len];
    // Test-time transforms draw nothing; the generator is only what `apply` asks for.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (i, o) in out.chunks_exact_mut(len).enumerate() {
        pipe.apply(train.image(i), &mut rng, o);
    }
    let [c, h, w] = pipe.output_shape();
    Tensor::from_vec(out, (n, c, h, w), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    //! Interrupt and resume, in process: [`RunOptions::stop_after_steps`] stands in for the
    //! signal (the binary's own signal handling is tested in `tests/resume.rs`).

    use super::*;
    use crate::experiment::print::to_toml;
    use crate::report::tensorboard::What;
    use crate::report::{read_metrics, METRICS_FILE, MODEL_FILE};

    /// A small real net through every op that keeps state across steps (BatchNorm buffers,
    /// dropout's generator, the optimizer's moments), with a schedule, augmentation and
    /// shuffling. 64 training images in batches of 16: 4 steps per epoch.
    fn experiment(optimizer: &str, schedule: &str, checkpoint: &str) -> (Experiment, Graph) {
        experiment_of_width(4, optimizer, schedule, checkpoint)
    }

    /// [`experiment`] with `width` channels in the convolution.
    fn experiment_of_width(
        width: usize,
        optimizer: &str,
        schedule: &str,
        checkpoint: &str,
    ) -> (Experiment, Graph) {
        experiment_with(width, "", optimizer, schedule, checkpoint)
    }

    /// [`experiment_of_width`] with `data` added to `[data]` and `train` (any further keys) to
    /// `[train]`.
    fn experiment_with(
        width: usize,
        data: &str,
        optimizer: &str,
        schedule: &str,
        train: &str,
    ) -> (Experiment, Graph) {
        let checkpoint = train;
        // `train` may set the length itself (`epochs = 3.5`, `steps = 10`).
        let sets_length = train
            .lines()
            .any(|l| l.starts_with("epochs =") || l.starts_with("steps ="));
        let epochs = if sets_length { "" } else { "epochs = 4" };
        let synthetic = if data.contains("synthetic") {
            ""
        } else {
            "synthetic = { shape = [3, 8, 8], classes = 3, train_size = 64, test_size = 32 }"
        };
        let text = format!(
            r#"
name = "resume_test"
seed = 3

[data]
dataset = "synthetic"
batch_size = 16
shuffle = true
{synthetic}
{data}
train_transforms = [
  {{ op = "random_crop", size = 8, padding = 1 }},
  {{ op = "random_horizontal_flip" }},
]

[model]
layers = [
  {{ op = "conv2d", out = {width}, kernel = 3, padding = 1 }},
  {{ op = "batch_norm2d" }},
  {{ op = "relu" }},
  {{ op = "max_pool2d", kernel = 2 }},
  {{ op = "flatten" }},
  {{ op = "dropout", p = 0.2 }},
  {{ op = "linear", out = 3 }},
]

[train]
{epochs}
optimizer = {optimizer}
schedule = {schedule}
{checkpoint}
"#
        );
        let checked = crate::check::check_str("resume_test.toml", &text, "resume_test");
        let rendered = checked.render();
        checked.result.unwrap_or_else(|| panic!("{rendered}"))
    }

    fn options(stop_after_steps: Option<usize>) -> RunOptions {
        RunOptions {
            data_dir: PathBuf::from("unused-for-synthetic-data"),
            plain_progress: true,
            log_every: 2,
            stop_after_steps,
            tensorboard: true,
        }
    }

    /// metrics.csv without its three timing columns (`seconds`, `train_images_per_sec`,
    /// `eval_images_per_sec`).
    fn metrics_without_timing(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(METRICS_FILE))
            .expect("metrics.csv")
            .lines()
            .map(|l| {
                let cells = l.split(',').enumerate();
                let kept = cells.filter(|(i, _)| !(6..9).contains(i)).map(|(_, c)| c);
                kept.collect::<Vec<_>>().join(",")
            })
            .collect()
    }

    /// Every file under `dir` whose name marks a temporary file.
    fn temporaries(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains(".tmp-") {
                    found.push(p);
                }
            }
        }
        found
    }

    /// The uninterrupted run, and the same run stopped after `stop` steps and resumed: the
    /// same metrics (timing aside) and byte-identical weights.
    fn assert_resume_is_exact(
        exp: &Experiment,
        graph: &Graph,
        stop: usize,
        want_checkpoint: Option<usize>,
    ) {
        let root = tempfile::tempdir().expect("tempdir");
        let config = to_toml(exp);
        let whole = RunDir::create(&root.path().join("whole"), exp.name()).expect("run dir");
        run(exp, graph, &config, &whole, &options(None), false).expect("uninterrupted run");

        let parted = RunDir::create(&root.path().join("parted"), exp.name()).expect("run dir");
        match run(exp, graph, &config, &parted, &options(Some(stop)), false) {
            Err(TrainError::Interrupted { checkpoint, .. }) => {
                assert_eq!(
                    checkpoint, want_checkpoint,
                    "the checkpoint written on the stop"
                )
            }
            other => panic!("expected an interruption after {stop} steps, got {other:?}"),
        }
        assert!(
            temporaries(&parted.path).is_empty(),
            "{:?}",
            temporaries(&parted.path)
        );
        let status = RunStatus::read(&parted.path)
            .expect("status")
            .expect("a status");
        assert_eq!(status.state, RunState::Interrupted);
        assert_eq!(status.epochs_done, want_checkpoint.unwrap_or(0));
        assert!(status.resume.starts_with("runner resume "), "{status:?}");
        assert!(!parted.file(MODEL_FILE).exists(), "no final weights yet");

        run(exp, graph, &config, &parted, &options(None), true).expect("resumed run");
        assert_eq!(
            metrics_without_timing(&whole.path),
            metrics_without_timing(&parted.path)
        );
        // 4 batches an epoch, an optimizer step every `accumulate` of them (or on the last).
        let per_epoch = 4usize.div_ceil(exp.train().accumulate) as i64;
        let plan = exp.plan(64);
        assert_eq!(plan.steps_per_epoch as i64, per_epoch);
        let resumed_at = per_epoch * want_checkpoint.unwrap_or(0) as i64 + 1;
        // Plain progress lines (and `batch/*` scalars) every 2 steps: the first session logged
        // a step after its checkpoint when it stopped at an even one.
        let orphans = (resumed_at..=stop as i64).any(|s| s % 2 == 0);
        // An early stop ends the run before `epochs`: the rows say how many epochs ran.
        let trained = read_metrics(&parted.file(METRICS_FILE))
            .expect("metrics")
            .len();
        // The last step: of the last epoch that ran (an early stop), or of the run.
        let last_step = (per_epoch * trained as i64).min(plan.total_steps as i64);
        assert_events_match_metrics(&parted.path, last_step, per_epoch, resumed_at, orphans);
        let comparable = |d: &RunDir| {
            let mut s = crate::report::tensorboard::read_scalars(&d.path).expect("scalars");
            s.retain(|tag, _| !tag.contains("seconds") && !tag.contains("per_sec"));
            s
        };
        assert_eq!(
            comparable(&whole),
            comparable(&parted),
            "the scalars but timing"
        );
        let weights = |d: &RunDir| std::fs::read(d.file(MODEL_FILE)).expect("weights");
        assert!(
            weights(&whole) == weights(&parted),
            "the final weights differ"
        );
        let ema = crate::report::average_model_file("ema");
        let averaged = |d: &RunDir| std::fs::read(d.file(&ema)).ok();
        assert_eq!(
            averaged(&whole).is_some(),
            exp.train().ema.is_some(),
            "{ema}"
        );
        assert!(
            averaged(&whole) == averaged(&parted),
            "the final averaged weights differ"
        );
        let status = RunStatus::read(&parted.path)
            .expect("status")
            .expect("a status");
        assert_eq!(status.state, RunState::Finished);
        if exp.train().early_stopping.is_none() {
            assert_eq!(trained, plan.epochs);
            assert_eq!(status.epochs, plan.epochs);
        }
        assert!(temporaries(&parted.path).is_empty());
    }

    /// The run in `dir` was interrupted once and resumed, its second session starting at
    /// global step `resumed_at`: two event files, the second with a `session_log` START at
    /// that step, and the scalars TensorBoard shows are metrics.csv's, once per epoch, at the
    /// step that ended it (`per_epoch` optimizer steps a full epoch, `last_step` in all),
    /// though the first session wrote steps and maybe epochs past its checkpoint.
    fn assert_events_match_metrics(
        dir: &std::path::Path,
        last_step: i64,
        per_epoch: i64,
        resumed_at: i64,
        orphans: bool,
    ) {
        use crate::report::tensorboard::{
            epoch_tag, event_files, read_event_file, read_scalars, BATCH_LOSS,
        };
        use crate::report::{metrics_cells, METRICS_HEADER};
        let files = event_files(dir).expect("event files");
        assert_eq!(files.len(), 2, "one file per session: {files:?}");
        let second = read_event_file(&files[1]).expect("second file");
        assert_eq!(second.events[1].what, What::SessionStart);
        assert_eq!(second.events[1].step, resumed_at);
        let scalars = read_scalars(dir).expect("scalars");
        // `--log-every 2`: each even step once, though the first session logged some of the
        // steps after its checkpoint too.
        let steps: Vec<i64> = scalars[BATCH_LOSS].iter().map(|p| p.step).collect();
        assert_eq!(
            steps,
            (1..=last_step).filter(|s| s % 2 == 0).collect::<Vec<_>>()
        );
        assert!(
            read_event_file(&files[0])
                .expect("first file")
                .events
                .iter()
                .any(|e| e.step >= resumed_at && e.what != What::SessionStart)
                == orphans,
            "the first session wrote points after its checkpoint: expected {orphans}"
        );
        let rows = read_metrics(&dir.join(METRICS_FILE)).expect("metrics");
        for (column, i) in METRICS_HEADER.split(',').zip(0..) {
            // An empty column (`val_*` without a validation split) is not written.
            if rows.iter().all(|m| metrics_cells(m)[i].is_empty()) {
                assert!(!scalars.contains_key(&epoch_tag(column)), "{column}");
                continue;
            }
            let want: Vec<(i64, f32)> = rows
                .iter()
                .map(|m| {
                    let cell: f64 = metrics_cells(m)[i].parse().expect("a number");
                    ((per_epoch * m.epoch as i64).min(last_step), cell as f32)
                })
                .collect();
            let got: Vec<(i64, f32)> = scalars[&epoch_tag(column)]
                .iter()
                .map(|p| (p.step, p.value))
                .collect();
            assert_eq!(got, want, "{column}");
        }
    }

    /// airbench-style parameter groups: BatchNorm biases at 64 times the rate and 1/64 the
    /// decay, the conv weight frozen, the conv bias frozen after epoch 1.
    const PARAM_GROUPS: &str = r#"
[[train.param_groups]]
match = { op = "batch_norm2d", role = "bias" }
lr_scale = 64.0
weight_decay_scale = 0.015625

[[train.param_groups]]
match = { name = "conv1.weight" }
frozen = true

[[train.param_groups]]
match = { name = "*1.bias", op = "conv2d" }
freeze_after_epochs = 1
"#;

    #[test]
    fn sgd_with_momentum_and_param_groups_resumes_bit_exactly_from_the_middle_of_an_epoch() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 }"#,
            r#"{ kind = "cosine" }"#,
            PARAM_GROUPS,
        );
        // Step 6 of 16 is in epoch 2: the run resumes from epoch 1's checkpoint, and the conv
        // bias, trained in epoch 1 only, is frozen in the resumed epochs as in the whole run.
        assert_resume_is_exact(&exp, &graph, 6, Some(1));
    }

    #[test]
    fn frozen_parameters_keep_their_values_and_freeze_after_their_epochs() {
        // (`[train]` keys, whether conv1.weight and conv1.bias end where they started)
        let cases = [
            ("", false, false),
            (PARAM_GROUPS, true, false),
            (
                "[[train.param_groups]]\nmatch = { op = \"conv2d\" }\nfrozen = true",
                true,
                true,
            ),
        ];
        for (keys, weight_fixed, bias_fixed) in cases {
            let (exp, graph) = experiment(
                r#"{ kind = "sgd", lr = 0.05, momentum = 0.9, weight_decay = 5e-4 }"#,
                r#"{ kind = "piecewise_linear", points = [[0, 0.2], [0.23, 1], [1, 0.07]] }"#,
                keys,
            );
            let root = tempfile::tempdir().expect("tempdir");
            let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
            run(&exp, &graph, &to_toml(&exp), &dir, &options(None), false).expect("run");
            let start = Model::new(&graph, exp.seed(), &Device::Cpu).expect("initial model");
            let trained = candle_core::safetensors::load(dir.file(MODEL_FILE), &Device::Cpu)
                .expect("model.safetensors");
            for (name, fixed) in [("conv1.weight", weight_fixed), ("conv1.bias", bias_fixed)] {
                let (_, init) = start
                    .named_parameters()
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect(name);
                let init = init.flatten_all().and_then(|t| t.to_vec1::<f32>());
                let end = trained[name].flatten_all().and_then(|t| t.to_vec1::<f32>());
                let same = init.expect("init") == end.expect("trained");
                assert_eq!(same, fixed, "{keys:?}: {name} unchanged");
            }
        }
    }

    #[test]
    fn adam_resumes_bit_exactly_with_a_stepped_schedule() {
        let (exp, graph) = experiment(
            r#"{ kind = "adam", lr = 0.01 }"#,
            r#"{ kind = "step", step_size = 1, gamma = 0.5 }"#,
            "",
        );
        assert_resume_is_exact(&exp, &graph, 9, Some(2));
    }

    #[test]
    fn with_sparse_checkpoints_the_stop_writes_the_last_finished_epoch() {
        // Checkpoints every 3 epochs: at step 10 (epoch 3) only epoch 2's state is at hand,
        // kept in memory, and the stop writes it.
        let (exp, graph) = experiment(
            r#"{ kind = "adamw", lr = 0.01 }"#,
            r#"{ kind = "one_cycle", max_lr = 0.05 }"#,
            "checkpoint = { every = 3, best = false }",
        );
        assert_resume_is_exact(&exp, &graph, 10, Some(2));
    }

    #[test]
    fn a_fractional_last_epoch_is_a_row_and_resumes_bit_exactly() {
        // 3.5 epochs of 4 steps: ceil(14) steps, epoch 4 stops after 2 batches (32 images).
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9 }"#,
            r#"{ kind = "one_cycle", max_lr = 0.1 }"#,
            "epochs = 3.5",
        );
        assert_eq!(exp.plan(64).total_steps, 14);
        assert_eq!(exp.plan(64).batches_in(4), 2);
        // Step 13 is in the partial epoch 4: the run resumes from epoch 3's checkpoint.
        assert_resume_is_exact(&exp, &graph, 13, Some(3));
    }

    #[test]
    fn a_run_of_steps_ends_inside_its_last_epoch_and_resumes_bit_exactly() {
        // 9 steps of 3-batch groups (2 steps an epoch, of 3 and 1 batches): 5 epochs, the last
        // one a single step.
        let (exp, graph) = experiment(
            r#"{ kind = "adam", lr = 0.01 }"#,
            r#"{ kind = "cosine" }"#,
            "steps = 9\naccumulate = 3",
        );
        let plan = exp.plan(64);
        assert_eq!((plan.epochs, plan.total_steps), (5, 9));
        // Epoch 5 takes one step: its first 3 batches.
        assert_eq!(plan.batches_in(5), 3);
        // Stopped on the run's last step, inside epoch 5: it resumes from epoch 4's checkpoint.
        assert_resume_is_exact(&exp, &graph, 9, Some(4));
    }

    #[test]
    fn drop_last_trains_on_whole_batches_only() {
        // 64 images in batches of 24: 2 whole batches (48 images) an epoch, 2 steps.
        let (exp, graph) = experiment_with(
            4,
            "drop_last = true",
            r#"{ kind = "sgd", lr = 0.05 }"#,
            r#"{ kind = "constant" }"#,
            "epochs = 2",
        );
        let text = to_toml(&exp).replace("batch_size = 16", "batch_size = 24");
        let checked = crate::check::check_str("x.toml", &text, "x");
        let (exp, _) = checked.result.expect("valid");
        assert_eq!(exp.plan(64).batches_per_epoch, 2);
        let root = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
        let mut opts = options(None);
        opts.tensorboard = false;
        let summary = run(&exp, &graph, &to_toml(&exp), &dir, &opts, false).expect("run");
        assert_eq!(summary.epochs, 2);
        let rows = read_metrics(&dir.file(METRICS_FILE)).expect("metrics");
        assert_eq!(rows.len(), 2);
        let manifest = checkpoint::last(&dir.path).expect("manifest").expect("one");
        assert_eq!(manifest.steps, 4, "2 steps an epoch");
    }

    /// The `[train]` keys of the accumulation, clipping and averaging tests: 4 batches an
    /// epoch in groups of 3, so 2 optimizer steps an epoch, the second on a single batch.
    const ACCUMULATE_CLIP_EMA: &str = "accumulate = 3\n\
        clip_grad = { max_norm = 0.5 }\n\
        ema = { decay = 0.8, warmup = true, warmup_power = 1.0 }";

    #[test]
    fn accumulation_clipping_and_the_average_resume_bit_exactly() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9 }"#,
            r#"{ kind = "one_cycle", max_lr = 0.1 }"#,
            ACCUMULATE_CLIP_EMA,
        );
        // Optimizer step 3 is the first of epoch 2: the run resumes from epoch 1's checkpoint.
        assert_resume_is_exact(&exp, &graph, 3, Some(1));
    }

    #[test]
    fn the_average_is_evaluated_every_epoch_and_saved_under_the_models_names() {
        let (exp, graph) = experiment(
            r#"{ kind = "adam", lr = 0.01 }"#,
            r#"{ kind = "cosine" }"#,
            ACCUMULATE_CLIP_EMA,
        );
        let root = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
        run(&exp, &graph, &to_toml(&exp), &dir, &options(None), false).expect("run");
        let rows = read_metrics(&dir.file(METRICS_FILE)).expect("metrics");
        assert_eq!(rows.len(), 4);
        for r in &rows {
            assert!(r.ema_test_loss.is_some_and(f64::is_finite), "{r:?}");
            assert!(r.ema_test_acc.is_some(), "{r:?}");
        }
        // The file opens as the model (same names and shapes), differs from the trained
        // weights, and evaluates to the last row's numbers.
        let ema = dir.file(&crate::report::average_model_file("ema"));
        let model = Model::new(&graph, exp.seed(), &Device::Cpu).expect("model");
        model
            .load(&ema)
            .expect("model_ema.safetensors loads as the model");
        let raw = std::fs::read(dir.file(MODEL_FILE)).expect("model.safetensors");
        assert!(
            std::fs::read(&ema).expect("ema") != raw,
            "the average is the model"
        );
        let splits = data::load(&exp.data().dataset, &options(None).data_dir, exp.seed());
        let test = Arc::new(splits.expect("data").test);
        let shape = exp.data().dataset.image_shape();
        let pipe = Arc::new(Pipeline::new(&exp.data().test_transforms, shape));
        let Ok(eval) = evaluate(&model, &exp, &test, &pipe, &Device::Cpu, 4, &|| None) else {
            panic!("evaluation failed")
        };
        let last = rows.last().expect("a row");
        assert_eq!(
            crate::report::accuracy_cell(eval.acc),
            crate::report::accuracy_cell(last.ema_test_acc.expect("ema acc"))
        );
        assert_eq!(
            crate::report::loss_cell(eval.loss),
            crate::report::loss_cell(last.ema_test_loss.expect("ema loss"))
        );
    }

    #[test]
    fn a_stop_before_the_first_epoch_ends_leaves_no_checkpoint_and_resume_starts_over() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        assert_resume_is_exact(&exp, &graph, 2, None);
    }

    /// 80 synthetic images less a validation split of 16: 64 to train on, 4 steps per epoch.
    const VALIDATION: &str = "validation = 16\nsynthetic = { shape = [3, 8, 8], classes = 3, train_size = 80, test_size = 32 }";

    #[test]
    fn a_run_with_a_validation_split_and_early_stopping_resumes_bit_exactly() {
        let (exp, graph) = experiment_with(
            4,
            VALIDATION,
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9 }"#,
            r#"{ kind = "cosine" }"#,
            "early_stopping = { metric = \"val_loss\", patience = 2 }",
        );
        assert_resume_is_exact(&exp, &graph, 7, Some(1));
    }

    /// The run's summary.
    fn summary_of(dir: &RunDir) -> Summary {
        crate::report::read_summary(&dir.file(crate::report::SUMMARY_FILE)).expect("summary")
    }

    #[test]
    fn early_stopping_ends_the_run_after_patience_epochs_without_improvement() {
        // No accuracy can rise by more than 100 points: epoch 1 stays the best, epochs 2 and 3
        // do not improve, and the run ends after epoch 3 of 4.
        let (exp, graph) = experiment_with(
            4,
            VALIDATION,
            r#"{ kind = "sgd", lr = 0.05 }"#,
            r#"{ kind = "constant" }"#,
            "early_stopping = { metric = \"val_acc\", patience = 2, min_delta = 100.0 }",
        );
        let root = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
        run(&exp, &graph, &to_toml(&exp), &dir, &options(None), false).expect("run");
        let rows = read_metrics(&dir.file(METRICS_FILE)).expect("metrics");
        assert_eq!(rows.len(), 3);
        let s = summary_of(&dir);
        assert_eq!(s.epochs, 3);
        assert!(
            s.stop_reason
                .starts_with("early stopping after epoch 3: val_acc has not improved by more than 100 for 2 epochs (best "),
            "{}",
            s.stop_reason
        );
        assert!(s.stop_reason.ends_with("at epoch 1)"), "{}", s.stop_reason);
        let status = RunStatus::read(&dir.path)
            .expect("status")
            .expect("a status");
        assert_eq!(status.state, RunState::Finished);
        assert_eq!(status.epochs_done, 3);
        // The checkpoint of the stop is the last one: resuming finds nothing left to train.
        let again = run(&exp, &graph, "", &dir, &options(None), true).expect("resume");
        assert_eq!(again.epochs, 3);
        assert_eq!(
            read_metrics(&dir.file(METRICS_FILE))
                .expect("metrics")
                .len(),
            3
        );
    }

    #[test]
    fn with_a_validation_split_the_best_epoch_is_chosen_on_it() {
        let (exp, graph) = experiment_with(
            4,
            VALIDATION,
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        let root = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
        run(&exp, &graph, &to_toml(&exp), &dir, &options(None), false).expect("run");
        let rows = read_metrics(&dir.file(METRICS_FILE)).expect("metrics");
        assert!(rows
            .iter()
            .all(|r| r.val_loss.is_some() && r.val_acc.is_some()));
        let s = summary_of(&dir);
        assert_eq!(s.selected_on, "val");
        assert_eq!(s.stop_reason, "");
        let top = rows
            .iter()
            .map(|r| r.val_acc.expect("val_acc"))
            .fold(f64::NEG_INFINITY, f64::max);
        let want = rows
            .iter()
            .find(|r| r.val_acc == Some(top))
            .expect("a best row");
        assert_eq!(s.best_epoch, want.epoch);
        assert_eq!(s.best_val_acc, want.val_acc);
        assert_eq!(s.best_test_acc, want.test_acc);
        // The best checkpoint is that epoch's.
        let best = checkpoint::read_manifest(
            &dir.path
                .join(checkpoint::CHECKPOINT_DIR)
                .join(checkpoint::BEST),
        )
        .expect("best manifest")
        .expect("a best checkpoint");
        assert_eq!(best.epoch, want.epoch);
        // Without a split, the choice is the test set's, as before.
        let (plain, plain_graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        let other = RunDir::create(&root.path().join("plain"), plain.name()).expect("run dir");
        run(
            &plain,
            &plain_graph,
            &to_toml(&plain),
            &other,
            &options(None),
            false,
        )
        .expect("run");
        let s = summary_of(&other);
        assert_eq!((s.selected_on.as_str(), s.best_val_acc), ("test", None));
        let rows = read_metrics(&other.file(METRICS_FILE)).expect("metrics");
        assert!(rows.iter().all(|r| r.val_loss.is_none()));
        let text = std::fs::read_to_string(other.file(METRICS_FILE)).expect("metrics");
        assert!(
            text.lines().nth(1).expect("a row").ends_with(",,"),
            "{text}"
        );
    }

    #[test]
    fn a_resumed_checkpoint_of_another_model_is_refused_by_name() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.5 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        let root = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::create(root.path(), exp.name()).expect("run dir");
        let stopped = run(&exp, &graph, &to_toml(&exp), &dir, &options(Some(5)), false);
        assert!(
            matches!(stopped, Err(TrainError::Interrupted { .. })),
            "{stopped:?}"
        );
        // The same file with a wider convolution: the weights do not fit.
        let (wider, wider_graph) = experiment_of_width(
            6,
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.5 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        let err = run(&wider, &wider_graph, "", &dir, &options(None), true).expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("epoch-0001.safetensors"), "{message}");
        assert!(message.contains("shape"), "{message}");
    }
}
