//! `runner predict RUN_DIR | WEIGHTS.safetensors IMAGE|FOLDER...`: classify image files with
//! a trained model and print the most probable classes.
//!
//! Every image is converted to the experiment's image shape ([`crate::data::image_file`]) and
//! run through its `test_transforms` by the same [`Pipeline`] as the evaluation, so a test
//! image saved as a PNG gets the class the run's `predictions.png` shows for it.

use std::io::Write;
use std::path::PathBuf;

use candle_core::{DType, Tensor};

use super::trained::{self, Trained};
use crate::data::image_file::{self, Conversion, EXTENSIONS};
use crate::data::{derived_rng, resolve_data_dir, Pipeline, Stream};
use crate::report::text::for_terminal;
use crate::report::write_atomic;

/// Options of `runner predict`.
#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// A finished run folder (its `model.safetensors`, as its `config.toml` says), or a weights
    /// file `.safetensors` (then `--experiment` is required).
    pub target: PathBuf,
    /// PNG, JPEG, WebP or BMP files, and folders: a folder's `.png`, `.jpg`, `.jpeg`, `.webp` and `.bmp`
    /// files (not its subfolders), sorted by name.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// The experiment the weights belong to [default for a run folder: its config.toml].
    #[arg(long, value_name = "FILE")]
    pub experiment: Option<PathBuf>,
    /// How many of the most probable classes to give per image (at most the class count).
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: u32,
    /// Invert the colours first: for a dark drawing on a light (or transparent) background,
    /// such as a digit written on paper, when the data set has light ones on black (MNIST).
    #[arg(long)]
    pub invert: bool,
    /// Print a JSON array, one object per image.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV, one row per image [default when an argument is a folder].
    #[arg(long)]
    pub csv: bool,
    /// Write the table, CSV or JSON to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Images per forward pass [default: the experiment's `test_batch_size`].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Folder holding `cifar-10-batches-bin/`, whose `batches.meta.txt` names CIFAR-10's
    /// classes; nothing else is read from it [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// One class of an image's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Ranked {
    /// 1 for the most probable class.
    rank: usize,
    /// The class name.
    class: String,
    /// The class's index: the label it has in the data set.
    index: usize,
    /// Its probability (softmax of the model's outputs).
    probability: f64,
}

/// The answer for one image: its top classes, or why it could not be read.
struct Answer {
    file: PathBuf,
    outcome: Result<Vec<Ranked>, String>,
}

/// How the answers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Csv,
    Json,
}

/// Runs the verb; returns the exit code.
pub fn run(args: &PredictArgs) -> anyhow::Result<i32> {
    let target = trained::locate(&args.target, args.experiment.as_deref())?;
    let Some(Trained { exp, model, device }) = trained::open(&target)? else {
        return Ok(super::exit::ERROR);
    };
    let (files, any_folder) = image_files(&args.images)?;
    let format = match (args.json, args.csv || any_folder) {
        (true, _) => Format::Json,
        (false, true) => Format::Csv,
        (false, false) => Format::Table,
    };
    let dataset = &exp.data().dataset;
    let conversion = Conversion::new(dataset.image_shape(), args.invert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", for_terminal(exp.name())))?;
    let pipe = Pipeline::new(&exp.data().test_transforms, conversion.shape());
    let names = crate::data::class_names(dataset, &resolve_data_dir(args.data_dir.as_deref()));
    let batch = args
        .batch_size
        .map_or(exp.data().test_batch_size, |b| b as usize)
        .max(1);

    let mut answers: Vec<Answer> = Vec::with_capacity(files.len());
    let mut failed = 0usize;
    for chunk in files.chunks(batch) {
        let mut pixels = Vec::with_capacity(chunk.len() * pipe.output_len());
        let mut read = Vec::with_capacity(chunk.len());
        for file in chunk {
            match conversion.read(file) {
                Ok(raw) => {
                    let mut out = vec![0f32; pipe.output_len()];
                    // A random test transform (rare) draws from one fixed stream per image,
                    // so an image always gets the same answer.
                    let mut rng = derived_rng(exp.seed(), Stream::Augment, 0, 0);
                    pipe.apply(&raw, &mut rng, &mut out);
                    pixels.extend(out);
                    read.push(answers.len());
                    answers.push(Answer {
                        file: file.clone(),
                        outcome: Ok(Vec::new()),
                    });
                }
                Err(e) => {
                    crate::ewriteln!("error: {}", for_terminal(&e.to_string()));
                    failed += 1;
                    answers.push(Answer {
                        file: file.clone(),
                        outcome: Err(e.kind.to_string()),
                    });
                }
            }
        }
        if read.is_empty() {
            continue;
        }
        let [c, h, w] = pipe.output_shape();
        let x = Tensor::from_vec(pixels, vec![read.len(), c, h, w], &device)?;
        let logits = crate::runtime::in_pool(|| -> candle_core::Result<Vec<Vec<f32>>> {
            model.infer(&x)?.to_dtype(DType::F32)?.to_vec2::<f32>()
        })?;
        for (&i, row) in read.iter().zip(&logits) {
            answers[i].outcome = Ok(top_k(row, args.top_k as usize, &names));
        }
    }

    let k = answers
        .iter()
        .find_map(|a| a.outcome.as_ref().ok().map(Vec::len))
        .unwrap_or_else(|| (args.top_k as usize).min(dataset.classes()));
    let text = match format {
        Format::Table => table(&answers),
        Format::Csv => csv(&answers, k)?,
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&json(&answers))?),
    };
    match &args.out {
        Some(path) => {
            write_atomic(path, text.as_bytes())?;
            crate::outln!(
                "{} of {} images predicted -> {}",
                answers.len() - failed,
                answers.len(),
                path.display()
            )?;
        }
        None => {
            let mut out = super::out::stdout();
            out.write_all(text.as_bytes())?;
            out.finish()?;
        }
    }
    if failed > 0 {
        crate::ewriteln!(
            "error: {failed} of {} images could not be read",
            answers.len()
        );
        return Ok(super::exit::ERROR);
    }
    Ok(super::exit::OK)
}

/// The image files named by `inputs`, in order, each folder's images sorted by name, and
/// whether any input is a folder. A folder's other entries are named in one note on stderr;
/// a folder without images is an error.
fn image_files(inputs: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, bool)> {
    let mut files = Vec::new();
    let mut any_folder = false;
    for input in inputs {
        if !input.is_dir() {
            // A missing or unreadable file is reported in its place, with the others.
            files.push(input.clone());
            continue;
        }
        any_folder = true;
        let entries = std::fs::read_dir(input)
            .map_err(|e| anyhow::anyhow!("cannot read folder {}: {e}", input.display()))?;
        let mut images = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| anyhow::anyhow!("cannot read folder {}: {e}", input.display()))?;
            let path = entry.path();
            if image_file::has_image_extension(&path) && !path.is_dir() {
                images.push(path);
            } else {
                let mut name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    name.push('/');
                }
                skipped.push(name);
            }
        }
        if images.is_empty() {
            anyhow::bail!(
                "{} holds no image file (.{})",
                input.display(),
                EXTENSIONS.join(", .")
            );
        }
        images.sort();
        if !skipped.is_empty() {
            skipped.sort();
            let n = skipped.len();
            crate::ewriteln!(
                "note: {}: skipped {n} {} not .{} files: {}",
                for_terminal(&input.display().to_string()),
                if n == 1 {
                    "entry that is"
                } else {
                    "entries that are"
                },
                EXTENSIONS.join(", ."),
                for_terminal(&skipped.join(", "))
            );
        }
        files.extend(images);
    }
    Ok((files, any_folder))
}

/// The `k` most probable classes of one image's outputs, most probable first (ties: the lower
/// index first). Probabilities are the softmax of the outputs, in `f64`: for a net that ends
/// with `log_softmax` (trained with `loss = "nll"`) that is `exp` of its outputs.
fn top_k(outputs: &[f32], k: usize, names: &[String]) -> Vec<Ranked> {
    let max = outputs
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = outputs
        .iter()
        .map(|&v| (f64::from(v) - max).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    let mut order: Vec<usize> = (0..outputs.len()).collect();
    order.sort_by(|&a, &b| exps[b].total_cmp(&exps[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(r, index)| Ranked {
            rank: r + 1,
            class: names
                .get(index)
                .cloned()
                .unwrap_or_else(|| index.to_string()),
            index,
            probability: exps[index] / sum,
        })
        .collect()
}

/// A probability as the table and the CSV write it.
fn probability_cell(p: f64) -> String {
    format!("{p:.6}")
}

/// `file  rank  class  probability`, the file named on its first row only.
fn table(answers: &[Answer]) -> String {
    let rows: Vec<[String; 4]> = answers
        .iter()
        .filter_map(|a| a.outcome.as_ref().ok().map(|top| (a, top)))
        .flat_map(|(a, top)| {
            let file = for_terminal(&a.file.display().to_string()).into_owned();
            top.iter().map(move |r| {
                [
                    if r.rank == 1 {
                        file.clone()
                    } else {
                        String::new()
                    },
                    r.rank.to_string(),
                    for_terminal(&r.class).into_owned(),
                    probability_cell(r.probability),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let header = [
        "file".to_string(),
        "rank".into(),
        "class".into(),
        "probability".into(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut s = String::new();
    for r in [&header].into_iter().chain(&rows) {
        let line = format!("{:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}", r[0], r[1], r[2], r[3]);
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// One row per image: `file,class,probability,top2_class,top2_probability,...,error`, `k`
/// pairs; an image that could not be read has empty pairs and its reason under `error`.
fn csv(answers: &[Answer], k: usize) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["file".to_string(), "class".into(), "probability".into()];
    for r in 2..=k {
        header.push(format!("top{r}_class"));
        header.push(format!("top{r}_probability"));
    }
    header.push("error".into());
    w.write_record(&header)?;
    for a in answers {
        let mut row = vec![a.file.display().to_string()];
        match &a.outcome {
            Ok(top) => {
                for i in 0..k {
                    match top.get(i) {
                        Some(r) => row.extend([r.class.clone(), probability_cell(r.probability)]),
                        None => row.extend([String::new(), String::new()]),
                    }
                }
                row.push(String::new());
            }
            Err(e) => {
                row.extend(std::iter::repeat_n(String::new(), 2 * k));
                row.push(e.clone());
            }
        }
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `[{"file": ..., "top": [{"rank", "class", "index", "probability"}, ...]}, ...]`; an image
/// that could not be read has `"error"` instead of `"top"`.
fn json(answers: &[Answer]) -> serde_json::Value {
    answers
        .iter()
        .map(|a| {
            let file = a.file.display().to_string();
            match &a.outcome {
                Ok(top) => serde_json::json!({ "file": file, "top": top }),
                Err(e) => serde_json::json!({ "file": file, "error": e }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|c| format!("c{c}")).collect()
    }

    #[test]
    fn top_k_is_the_softmax_in_order_and_capped_at_the_class_count() {
        // softmax([0, ln 3, ln 6]) = [0.1, 0.3, 0.6].
        let out = [0.0, 3f32.ln(), 6f32.ln()];
        let top = top_k(&out, 10, &names(3));
        let got: Vec<(usize, &str)> = top.iter().map(|r| (r.index, r.class.as_str())).collect();
        assert_eq!(got, [(2, "c2"), (1, "c1"), (0, "c0")], "order; capped at 3");
        for (r, want) in top.iter().zip([0.6, 0.3, 0.1]) {
            assert!((r.probability - want).abs() < 1e-6, "{r:?} vs {want}");
        }
        assert_eq!(top.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(top_k(&out, 1, &names(3)).len(), 1);
        // log_softmax outputs (an `nll` net) give the same probabilities: exp of them.
        let logp: Vec<f32> = [0.1f32, 0.3, 0.6].iter().map(|p| p.ln()).collect();
        let again = top_k(&logp, 3, &names(3));
        for (a, b) in top.iter().zip(&again) {
            assert!((a.probability - b.probability).abs() < 1e-6);
        }
        // Huge outputs do not overflow; ties keep the lower index first; unnamed classes
        // are called by their index.
        let tied = top_k(&[1e30, 1e30, -1e30], 3, &names(1));
        assert_eq!(tied[0].index, 0);
        assert_eq!(tied[1].class, "1");
        assert!((tied[0].probability - 0.5).abs() < 1e-12, "{tied:?}");
        assert_eq!(tied[2].probability, 0.0);
    }

    #[test]
    fn csv_has_one_row_per_image_and_the_reason_of_a_failure() {
        let answers = [
            Answer {
                file: PathBuf::from("a,b.png"),
                outcome: Ok(top_k(&[0.0, 1.0], 2, &names(2))),
            },
            Answer {
                file: PathBuf::from("bad.png"),
                outcome: Err("corrupt or truncated PNG data: x".into()),
            },
        ];
        let text = csv(&answers, 2).expect("csv");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "file,class,probability,top2_class,top2_probability,error",
                "\"a,b.png\",c1,0.731059,c0,0.268941,",
                "bad.png,,,,,corrupt or truncated PNG data: x",
            ]
        );
        let table = table(&answers);
        assert_eq!(
            table.lines().collect::<Vec<_>>(),
            [
                "file     rank  class  probability",
                "a,b.png     1  c1        0.731059",
                "            2  c0        0.268941",
            ],
            "{table}"
        );
        let j = json(&answers);
        assert_eq!(j[0]["top"][0]["class"], "c1");
        assert_eq!(j[0]["top"][1]["index"], 0);
        assert_eq!(j[1]["error"], "corrupt or truncated PNG data: x");
    }
}
