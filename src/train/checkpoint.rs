//! Checkpoints: everything a run needs to continue exactly where one of its epochs ended.
//!
//! A checkpoint is two files in the run folder's `checkpoints/`:
//!
//! - `epoch-NNNN.safetensors`, the tensors:
//!   - `model.<name>`: every parameter and BatchNorm buffer, under its `state_dict` name;
//!   - `optim.<name>.<slot>`: the optimizer's buffers of that parameter (`momentum_buffer`;
//!     `exp_avg`, `exp_avg_sq`), for the parameters that have taken a step;
//!   - `<average>.<name>`: the state of the weight average and of Lookahead, if the run keeps
//!     them (`ema.<state_dict name>`, `lookahead.<state_dict name>`, see
//!     [`super::average::carried`]);
//!   - `metrics`: the finished epochs' `metrics.csv` rows, `f64`, one row per epoch in the
//!     column order of [`crate::report::METRICS_HEADER`] (exact, where the CSV rounds; an
//!     empty cell is NaN). A checkpoint from before the `ema_` columns has 9 columns.
//! - a manifest, `last.json` (the newest checkpoint) or `best.json` (the epoch with the best
//!   test accuracy so far), which names the tensor file and holds the rest of the state:
//!   epochs finished, optimizer steps taken, every parameter's step count, the dropout
//!   generator's position and the time spent so far. See [`Manifest`].
//!
//! The loader and the augmentation need no state: an epoch's order and every batch's random
//! transforms are functions of `(seed, epoch, batch)` ([`crate::data::epoch_batches`]), and the
//! learning-rate schedule is a function of the step. Resuming after epoch `k` therefore replays
//! epochs `k + 1, ...` bit for bit.
//!
//! Both files are written atomically (temporary file, fsync, rename), the tensors first, so a
//! manifest always names a complete tensor file. Tensor files no manifest names are removed
//! after each checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::average::Carried;
use super::optim::{Optimizer, ParamState};
use crate::model::{Model, RngState};
use crate::report::{write_atomic, EpochMetrics, ReportError};

/// The folder of a run's checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// The manifest of the newest checkpoint.
pub const LAST: &str = "last.json";
/// The manifest of the best epoch's checkpoint.
pub const BEST: &str = "best.json";
/// The manifest's `format`.
pub const FORMAT: &str = "runner-checkpoint/1";

/// Columns of the `metrics` tensor: [`crate::report::METRICS_HEADER`]'s first eleven, then a
/// mask of the optional values present (bit 0: `val_loss` and `val_acc`, bit 1: `ema_test_loss`
/// and `ema_test_acc`), then the two `ema_` cells; an absent value is stored as 0.
const METRIC_COLUMNS: usize = 14;
/// Columns of a checkpoint written before the moving average existed (the mask has bit 0 only).
const VAL_COLUMNS: usize = 12;
/// Columns of a checkpoint written before the validation split existed.
const LEGACY_COLUMNS: usize = 9;
/// Index of the presence mask in the rows of [`VAL_COLUMNS`] or [`METRIC_COLUMNS`] columns.
const MASK: usize = 11;

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The runner version that wrote it.
    pub runner_version: String,
    /// Epochs finished; the resumed run starts with epoch `epoch + 1`.
    pub epoch: usize,
    /// Epochs the run trains in all.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// The tensor file, in the same folder.
    pub tensors: String,
    /// Per trainable parameter (in `model.` order), the steps it has taken; `null` before its
    /// first.
    pub optimizer_steps: Vec<Option<u32>>,
    /// The dropout generator: ChaCha8 seed (hex), stream and word position (decimal text,
    /// since it is a 128-bit number).
    pub dropout_rng: RngText,
    /// Seconds spent training (not evaluating) in the finished epochs.
    pub train_seconds: f64,
    /// Wall-clock seconds of the run so far, for the summary's `seconds`.
    pub seconds: f64,
}

/// [`RngState`] as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngText {
    /// 64 hex digits.
    pub seed: String,
    /// The stream.
    pub stream: u64,
    /// The word position, in decimal.
    pub word_pos: String,
}

impl RngText {
    fn from_state(s: &RngState) -> Self {
        RngText {
            seed: s.seed.iter().map(|b| format!("{b:02x}")).collect(),
            stream: s.stream,
            word_pos: s.word_pos.to_string(),
        }
    }

    fn to_state(&self) -> Option<RngState> {
        let bytes = self.seed.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b =
                u8::from_str_radix(std::str::from_utf8(&bytes[2 * i..2 * i + 2]).ok()?, 16).ok()?;
        }
        Some(RngState {
            seed,
            stream: self.stream,
            word_pos: self.word_pos.parse().ok()?,
        })
    }
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Writing or reading a file failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A tensor operation failed while taking or restoring the state.
    #[error("checkpoint {}: {message}", path.display())]
    Tensor {
        /// The checkpoint file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The checkpoint does not fit this experiment, or is not a checkpoint of this version.
    #[error("checkpoint {}: {message}", path.display())]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
}

/// The state at the end of an epoch, copied so that training can go on while it waits to be
/// written.
pub struct Snapshot {
    manifest: Manifest,
    tensors: Vec<(String, Tensor)>,
}

/// The state restored from a checkpoint: the model and optimizer are already set; this is the
/// rest the training loop needs.
#[derive(Debug)]
pub struct Restored {
    /// The manifest read.
    pub manifest: Manifest,
    /// The finished epochs' metrics.
    pub metrics: Vec<EpochMetrics>,
}

impl Snapshot {
    /// Copies the state of `model`, `optimizer` and the `carried` state (the weight average,
    /// Lookahead) after `epoch` of
    /// `epochs`, with the metrics so far.
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        model: &Model,
        optimizer: &dyn Optimizer,
        carried: &[Carried],
        epoch: usize,
        epochs: usize,
        steps: usize,
        metrics: &[EpochMetrics],
        train_seconds: f64,
        seconds: f64,
    ) -> candle_core::Result<Snapshot> {
        let mut tensors = Vec::new();
        for (name, t) in model.state_dict() {
            tensors.push((format!("model.{name}"), t.copy()?));
        }
        let state = optimizer.state()?;
        let slots = optimizer.slots();
        let mut optimizer_steps = Vec::with_capacity(state.len());
        for ((name, _), s) in model.named_parameters().iter().zip(state) {
            optimizer_steps.push(s.as_ref().map(|s| s.steps));
            for (slot, b) in slots.iter().zip(s.into_iter().flat_map(|s| s.buffers)) {
                tensors.push((format!("optim.{name}.{slot}"), b));
            }
        }
        for (prefix, state) in carried {
            for (name, var) in state {
                tensors.push((format!("{prefix}.{name}"), var.as_tensor().copy()?));
            }
        }
        let rows: Vec<f64> = metrics.iter().flat_map(metric_row).collect();
        tensors.push((
            "metrics".into(),
            Tensor::from_vec(rows, (metrics.len(), METRIC_COLUMNS), &Device::Cpu)?,
        ));
        Ok(Snapshot {
            manifest: Manifest {
                format: FORMAT.into(),
                runner_version: env!("CARGO_PKG_VERSION").into(),
                epoch,
                epochs,
                steps,
                tensors: tensor_file(epoch),
                optimizer_steps,
                dropout_rng: RngText::from_state(&model.rng_state()),
                train_seconds,
                seconds,
            },
            tensors,
        })
    }

    /// The epoch it was taken after.
    pub fn epoch(&self) -> usize {
        self.manifest.epoch
    }

    /// Writes the snapshot into `run_dir/checkpoints/`: as the newest checkpoint when `last`,
    /// as the best when `best`; then removes the tensor files neither manifest names.
    pub fn write(&self, run_dir: &Path, last: bool, best: bool) -> Result<(), CheckpointError> {
        let dir = run_dir.join(CHECKPOINT_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| ReportError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let tensor_path = dir.join(&self.manifest.tensors);
        let bytes = safetensors::serialize(self.tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| CheckpointError::Tensor {
                path: tensor_path.clone(),
                message: format!("cannot serialise the tensors: {e}"),
            })?;
        write_atomic(&tensor_path, &bytes)?;
        let mut json =
            serde_json::to_string_pretty(&self.manifest).map_err(|e| CheckpointError::Tensor {
                path: dir.join(LAST),
                message: e.to_string(),
            })?;
        json.push('\n');
        if last {
            write_atomic(&dir.join(LAST), json.as_bytes())?;
        }
        if best {
            write_atomic(&dir.join(BEST), json.as_bytes())?;
        }
        remove_unreferenced(&dir);
        Ok(())
    }
}

/// `epoch-0005.safetensors`.
fn tensor_file(epoch: usize) -> String {
    format!("epoch-{epoch:04}.safetensors")
}

fn metric_row(m: &EpochMetrics) -> [f64; METRIC_COLUMNS] {
    let opt = |v: Option<f64>| v.unwrap_or(0.0);
    let present = u8::from(m.val_loss.is_some()) | (u8::from(m.ema_test_loss.is_some()) << 1);
    [
        m.epoch as f64,
        m.train_loss,
        m.train_acc,
        m.test_loss,
        m.test_acc,
        m.lr,
        m.seconds,
        m.train_images_per_sec,
        m.eval_images_per_sec,
        opt(m.val_loss),
        opt(m.val_acc),
        f64::from(present),
        opt(m.ema_test_loss),
        opt(m.ema_test_acc),
    ]
}

fn metric_from_row(r: &[f64]) -> EpochMetrics {
    let mask = if r.len() > LEGACY_COLUMNS {
        r[MASK] as u32
    } else {
        0
    };
    let val = mask & 1 != 0;
    let ema = mask & 2 != 0 && r.len() == METRIC_COLUMNS;
    EpochMetrics {
        epoch: r[0] as usize,
        train_loss: r[1],
        train_acc: r[2],
        test_loss: r[3],
        test_acc: r[4],
        lr: r[5],
        seconds: r[6],
        train_images_per_sec: r[7],
        eval_images_per_sec: r[8],
        val_loss: val.then(|| r[9]),
        val_acc: val.then(|| r[10]),
        ema_test_loss: ema.then(|| r[12]),
        ema_test_acc: ema.then(|| r[13]),
    }
}

/// Removes the `epoch-*.safetensors` files that neither `last.json` nor `best.json` names
/// (best effort: a leftover costs disk, not correctness).
fn remove_unreferenced(dir: &Path) {
    let named: Vec<String> = [LAST, BEST]
        .iter()
        .filter_map(|m| read_manifest(&dir.join(m)).ok().flatten())
        .map(|m| m.tensors)
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("epoch-") && name.ends_with(".safetensors") && !named.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads a manifest; `Ok(None)` when it does not exist.
pub fn read_manifest(path: &Path) -> Result<Option<Manifest>, CheckpointError> {
    let text = match crate::bounded::read_to_string(path, crate::bounded::JSON_LIMIT) {
        Ok(t) => t,
        Err(e) if e.kind.is_not_found() => return Ok(None),
        Err(e) => return Err(ReportError::from(e).into()),
    };
    let m: Manifest = serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if m.format != FORMAT {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            message: format!("format `{}`, this runner reads `{FORMAT}`", m.format),
        });
    }
    Ok(Some(m))
}

/// The newest checkpoint's manifest in `run_dir`, if there is one.
pub fn last(run_dir: &Path) -> Result<Option<Manifest>, CheckpointError> {
    read_manifest(&run_dir.join(CHECKPOINT_DIR).join(LAST))
}

/// Restores `model`, `optimizer` and the `carried` state from the checkpoint `manifest` (read
/// from `run_dir`'s `last.json`) and returns the metrics it holds. Every tensor must be present
/// with the model's shape; nothing is left half-restored on a mismatch that is found before
/// the first `set`.
pub fn restore(
    run_dir: &Path,
    manifest: Manifest,
    model: &Model,
    optimizer: &mut dyn Optimizer,
    carried: &[Carried],
) -> Result<Restored, CheckpointError> {
    let path = run_dir.join(CHECKPOINT_DIR).join(&manifest.tensors);
    let mismatch = |message: String| CheckpointError::Mismatch {
        path: path.clone(),
        message,
    };
    let tensor_err = |e: candle_core::Error| CheckpointError::Tensor {
        path: path.clone(),
        message: e.to_string(),
    };
    // Checked first: a FIFO or a directory in its place is refused by name, not waited on.
    crate::bounded::open(&path).map_err(ReportError::from)?;
    let mut stored: HashMap<String, Tensor> =
        candle_core::safetensors::load(&path, &Device::Cpu).map_err(tensor_err)?;
    let present: std::collections::HashSet<String> = stored.keys().cloned().collect();
    let mut take = |name: &str, dims: &[usize]| -> Result<Tensor, CheckpointError> {
        let t = stored
            .remove(name)
            .ok_or_else(|| mismatch(format!("no tensor named `{name}`")))?;
        if t.dims() != dims {
            return Err(mismatch(format!(
                "`{name}` has shape {:?}, the model needs {dims:?}",
                t.dims()
            )));
        }
        Ok(t)
    };
    let params = model.named_parameters();
    if manifest.optimizer_steps.len() != params.len() {
        return Err(mismatch(format!(
            "optimizer state for {} parameters, the model has {}",
            manifest.optimizer_steps.len(),
            params.len()
        )));
    }
    let mut model_tensors = Vec::new();
    for (name, var) in params.iter().chain(model.named_buffers()) {
        let key = format!("model.{name}");
        let t = if var.dtype().is_int() && !present.contains(&key) {
            // A checkpoint written before runner kept BatchNorm's `num_batches_tracked`: every
            // training-mode pass before a checkpoint was an optimizer step.
            Tensor::new(manifest.steps as i64, &Device::Cpu).map_err(tensor_err)?
        } else {
            take(&key, var.dims())?
        };
        model_tensors.push((t, var));
    }
    for (prefix, state) in carried {
        for (name, var) in state {
            let t = take(&format!("{prefix}.{name}"), var.dims())?;
            model_tensors.push((t, var));
        }
    }
    let slots = optimizer.slots();
    let mut state = Vec::with_capacity(params.len());
    for ((name, var), steps) in params.iter().zip(&manifest.optimizer_steps) {
        state.push(match steps {
            None => None,
            Some(steps) => Some(ParamState {
                steps: *steps,
                buffers: slots
                    .iter()
                    .map(|slot| take(&format!("optim.{name}.{slot}"), var.dims()))
                    .collect::<Result<_, _>>()?,
            }),
        });
    }
    let metrics = stored
        .remove("metrics")
        .ok_or_else(|| mismatch("no tensor named `metrics`".into()))?;
    let metrics = match metrics.dims() {
        &[rows, cols]
            if rows == manifest.epoch
                && [LEGACY_COLUMNS, VAL_COLUMNS, METRIC_COLUMNS].contains(&cols) =>
        {
            metrics
                .to_dtype(DType::F64)
                .and_then(|m| m.flatten_all())
                .and_then(|m| m.to_vec1::<f64>())
                .map_err(tensor_err)?
                .chunks(cols)
                .map(metric_from_row)
                .collect()
        }
        dims => {
            return Err(mismatch(format!(
                "`metrics` has shape {dims:?}, expected [{}, {METRIC_COLUMNS}]",
                manifest.epoch
            )))
        }
    };
    if let Some(extra) = stored.keys().min() {
        return Err(mismatch(format!(
            "unexpected tensor `{extra}` (a checkpoint of another model or optimizer?)"
        )));
    }
    let rng = manifest
        .dropout_rng
        .to_state()
        .ok_or_else(|| mismatch("`dropout_rng` cannot be read".into()))?;
    for (stored, var) in model_tensors {
        let value = stored
            .to_dtype(var.dtype())
            .and_then(|t| t.to_device(var.device()))
            .map_err(tensor_err)?;
        var.set(&value).map_err(tensor_err)?;
    }
    optimizer.restore(state).map_err(tensor_err)?;
    model.set_rng_state(&rng);
    Ok(Restored { manifest, metrics })
}
