//! The training run: data -> model -> epochs of train + evaluate -> files in the run directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::checkpoint;
use super::eval::{evaluate, Stop};
use super::optim;
use super::schedule::build_schedule;
use super::step::{train_step, StepOutcome};
use crate::data::{self, epoch_batches, Pipeline};
use crate::experiment::{DeviceSpec, Experiment};
use crate::graph::Graph;
use crate::interrupt::Signal;
use crate::model::Model;
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
    let epochs = exp.train().epochs;
    let result = train_and_report(exp, graph, config_text, run, opts, resume);
    let status = match &result {
        Ok(_) => RunStatus::new(RunState::Finished, epochs, epochs),
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
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let device = select_device(exp.device())?;
    let epochs = exp.train().epochs;
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
        let model = Model::new(graph, exp.seed(), &device)?;
        // A checkpoint, when there is one, holds the weights instead.
        if let (Some(init), None) = (&exp.train().init_from, &resume_from) {
            model.load_init(&init.path, init.sha256.as_deref())?;
        }
        model
    };
    let mut optimizer = optim::build(&exp.train().optimizer, model.trainable_vars())?;
    let n_train = exp
        .data()
        .train_limit
        .map_or(train.len(), |l| l.min(train.len()));
    let batch_size = exp.data().batch_size;
    let steps_per_epoch = n_train.div_ceil(batch_size);
    let schedule = build_schedule(
        &exp.train().schedule,
        exp.train().optimizer.lr(),
        epochs,
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
        let restored = checkpoint::restore(&run.path, manifest, &model, optimizer.as_mut())?;
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
    let mut best_acc = rows
        .iter()
        .map(|r| r.test_acc)
        .fold(f64::NEG_INFINITY, f64::max);
    // The state after the last finished epoch, when it is not on disk yet (`every` > 1).
    let mut pending: Option<checkpoint::Snapshot> = None;
    let mut last_eval = None;
    let mut global_step = (first_epoch - 1) * steps_per_epoch;
    let mut stopped: Option<Signal> = None;
    'epochs: for epoch in first_epoch..=epochs {
        let _span = tracing::info_span!("epoch", epoch).entered();
        if let Some(signal) = stop_requested(global_step) {
            stopped = Some(signal);
            break;
        }
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
                            finished: rows.len(),
                            dir: run.path.display().to_string(),
                        });
                    }
                };
                global_step += 1;
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
        let eval = match evaluate(&model, exp, &test, &test_pipe, &device, epoch, &|| {
            stop_requested(global_step)
        }) {
            Ok(eval) => eval,
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
        };
        progress.epoch_done(&m, epochs);
        let is_best = m.test_acc > best_acc;
        best_acc = best_acc.max(m.test_acc);
        rows.push(m);
        run.write_metrics(&rows)?;
        last_eval = Some(eval);
        {
            let _span = tracing::info_span!("checkpoint", epoch).entered();
            let snapshot = checkpoint::Snapshot::take(
                &model,
                optimizer.as_ref(),
                epoch,
                epochs,
                global_step,
                &rows,
                train_seconds_total,
                earlier_seconds + started.elapsed().as_secs_f64(),
            )?;
            let every = checkpoint_spec.every;
            let due = every > 0 && (epoch.is_multiple_of(every) || epoch == epochs);
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
    // A run resumed from the checkpoint of its last epoch has every row but not the last
    // evaluation's details; evaluating again gives the same numbers.
    let eval = match last_eval {
        Some(eval) => eval,
        None => match evaluate(&model, exp, &test, &test_pipe, &device, epochs, &|| {
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
        seconds: earlier_seconds + started.elapsed().as_secs_f64(),
        train_images_per_sec: (n_train * epochs) as f64 / train_seconds_total.max(1e-9),
        flags: flags.cell(),
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

#[cfg(test)]
mod tests {
    //! Interrupt and resume, in process: [`RunOptions::stop_after_steps`] stands in for the
    //! signal (the binary's own signal handling is tested in `tests/resume.rs`).

    use super::*;
    use crate::experiment::print::to_toml;
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
        let text = format!(
            r#"
name = "resume_test"
seed = 3

[data]
dataset = "synthetic"
batch_size = 16
shuffle = true
synthetic = {{ shape = [3, 8, 8], classes = 3, train_size = 64, test_size = 32 }}
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
epochs = 4
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
            log_every: 0,
            stop_after_steps,
        }
    }

    /// metrics.csv without its three timing columns.
    fn metrics_without_timing(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(METRICS_FILE))
            .expect("metrics.csv")
            .lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
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
        let weights = |d: &RunDir| std::fs::read(d.file(MODEL_FILE)).expect("weights");
        assert!(
            weights(&whole) == weights(&parted),
            "the final weights differ"
        );
        let status = RunStatus::read(&parted.path)
            .expect("status")
            .expect("a status");
        assert_eq!(status.state, RunState::Finished);
        assert_eq!(
            read_metrics(&parted.file(METRICS_FILE))
                .expect("metrics")
                .len(),
            exp.train().epochs
        );
        assert!(temporaries(&parted.path).is_empty());
    }

    #[test]
    fn sgd_with_momentum_resumes_bit_exactly_from_the_middle_of_an_epoch() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 }"#,
            r#"{ kind = "cosine" }"#,
            "",
        );
        // Step 6 of 16 is in epoch 2: the run resumes from epoch 1's checkpoint.
        assert_resume_is_exact(&exp, &graph, 6, Some(1));
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
    fn a_stop_before_the_first_epoch_ends_leaves_no_checkpoint_and_resume_starts_over() {
        let (exp, graph) = experiment(
            r#"{ kind = "sgd", lr = 0.05 }"#,
            r#"{ kind = "constant" }"#,
            "",
        );
        assert_resume_is_exact(&exp, &graph, 2, None);
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
