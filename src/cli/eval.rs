//! `runner eval RUN_DIR | WEIGHTS.safetensors`: evaluate saved weights on a split of the data
//! with the same evaluation a run uses, and write its tables and confusion matrix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::trained::{self, Trained};
use crate::data::{self, resolve_data_dir, Pipeline};
use crate::plot::{confusion_picture, Split, CONFUSION_PNG};
use crate::report::text::for_terminal;
use crate::report::{
    accuracy_cell, confusion_csv, loss_cell, per_class_csv, write_atomic, CONFUSION_FILE,
    PER_CLASS_FILE,
};
use crate::train::eval::{evaluate, evaluate_keeping_outputs, Stop};

/// File name of the evaluation's summary (the object `--json` prints).
pub const EVAL_FILE: &str = "eval.json";

/// Options of `runner eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// A finished run folder (its `model.safetensors`, evaluated as its `config.toml` says), or
    /// a weights file `.safetensors` (then `--experiment` is required).
    pub target: PathBuf,
    /// The experiment the weights belong to [default for a run folder: its config.toml].
    #[arg(long, value_name = "FILE")]
    pub experiment: Option<PathBuf>,
    /// Folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`, `cifar-100-binary/` [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The images to evaluate on, through the experiment's `test_transforms`: `train` is the
    /// training set less the validation split, `val` that split (`data.validation`).
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Where to write `per_class.csv`, `confusion.csv`, `confusion.png` and `eval.json`
    /// [default: `RUN_DIR/eval-<split>/`, or `./eval-<split>/` for a weights file].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the evaluation as one JSON object on stdout instead of lines of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the network's output for every image to FILE: a safetensors file with one
    /// `f32` tensor `logits`, `[images, classes]` in data set order (what
    /// `scripts/torch_interop.py` compares with PyTorch).
    #[arg(long, value_name = "FILE.safetensors")]
    pub logits: Option<PathBuf>,
}

/// The error of `--split val` for an experiment without a validation split.
pub(super) fn no_validation(exp: &crate::experiment::Experiment) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` has no validation split: `--split val` needs `validation = N` (or a fraction) in its `[data]`",
        crate::report::text::for_terminal(exp.name())
    )
}

/// Runs the verb; returns the exit code.
pub fn run(args: &EvalArgs) -> anyhow::Result<i32> {
    let target = trained::locate(&args.target, args.experiment.as_deref())?;
    let Some(Trained { exp, model, device }) = trained::open(&target)? else {
        return Ok(super::exit::ERROR);
    };
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = data::load_experiment(exp.data(), &data_dir, exp.seed())?;
    let data = Arc::new(splits.take(args.split).ok_or_else(|| no_validation(&exp))?);
    let pipe = Arc::new(Pipeline::new(
        &exp.data().test_transforms,
        exp.data().dataset.image_shape(),
    ));
    let evaluated = if args.logits.is_some() {
        evaluate_keeping_outputs(&model, &exp, &data, &pipe, &device, &|| None)
    } else {
        evaluate(
            &model,
            &exp,
            &data,
            &pipe,
            &device,
            exp.train().length.known_epochs().unwrap_or(1),
            &|| None,
        )
    };
    let eval = match evaluated {
        Ok(eval) => eval,
        Err(Stop::Error(e)) => anyhow::bail!("{e}"),
        Err(Stop::Signal(s)) => anyhow::bail!("interrupted by {}", s.name()),
    };
    if let Some(path) = &args.logits {
        // The model's output width is the number of classes (checked with the graph).
        let logits = candle_core::Tensor::from_slice(
            &eval.outputs,
            (data.len(), eval.outputs.len() / data.len().max(1)),
            &candle_core::Device::Cpu,
        )?;
        let bytes = safetensors::serialize([("logits", &logits)], None)
            .map_err(|e| anyhow::anyhow!("cannot serialise the logits: {e}"))?;
        write_atomic(path, &bytes)?;
    }
    let split_dir = format!("eval-{}", args.split.name());
    let out = match (&args.out, &target.run_dir) {
        (Some(out), _) => out.clone(),
        (None, Some(run)) => run.join(split_dir),
        (None, None) => PathBuf::from(split_dir),
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let confusion = eval.confusion(&exp, &data);
    write_atomic(
        &out.join(PER_CLASS_FILE),
        per_class_csv(&eval.per_class).as_bytes(),
    )?;
    write_atomic(
        &out.join(CONFUSION_FILE),
        confusion_csv(&confusion).as_bytes(),
    )?;
    let split = args.split.name();
    let summary = serde_json::json!({
        "experiment": exp.name(),
        "split": split,
        "weights": target.weights.display().to_string(),
        "images": data.len(),
        "accuracy": eval.acc,
        "loss": eval.loss,
        "per_class": eval.per_class,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    write_atomic(&out.join(EVAL_FILE), format!("{text}\n").as_bytes())?;
    // The picture last: when drawing fails, the tables are written and say everything.
    let picture = confusion_picture(exp.name(), split, &confusion)
        .and_then(|png| Ok(write_atomic(&out.join(CONFUSION_PNG), &png)?));
    if let Err(e) = picture {
        crate::ewriteln!("warning: {CONFUSION_PNG} could not be drawn: {e}");
    }
    if args.json {
        crate::outln!("{text}")?;
    } else {
        print_lines(&exp, split, &target.weights, &eval, data.len(), &out)?;
    }
    Ok(super::exit::OK)
}

/// `synthetic_demo: test accuracy 93.7500%, loss 0.123456 on 256 images ...`, then one line
/// per class; the numbers as the run's tables write them.
fn print_lines(
    exp: &crate::experiment::Experiment,
    split: &str,
    weights: &Path,
    eval: &crate::train::eval::Eval,
    images: usize,
    out: &Path,
) -> anyhow::Result<()> {
    crate::outln!(
        "{}: {split} accuracy {}%, loss {} on {images} images (weights {}) -> {}",
        for_terminal(exp.name()),
        accuracy_cell(eval.acc),
        loss_cell(eval.loss),
        weights.display(),
        out.display()
    )?;
    for c in &eval.per_class {
        crate::outln!(
            "  {}: {}/{} {}%",
            for_terminal(&c.class),
            c.correct,
            c.total,
            accuracy_cell(c.accuracy)
        )?;
    }
    Ok(())
}
