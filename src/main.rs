//! The `runner` command line: parse, dispatch, map the result to an exit code. Errors are
//! printed here, once; an error from writing to a closed pipe is a quiet success.

use std::process::ExitCode;

/// mimalloc, tuned in [`runner::runtime::tune_for_training`]: it keeps the large buffers a
/// step frees for the next step, where glibc returns them to the kernel.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use runner::cli::{
    self,
    batch::BatchArgs,
    bench::BenchArgs,
    check::CheckArgs,
    diff::DiffArgs,
    eval::EvalArgs,
    exit,
    export_images::ExportImagesArgs,
    plot::PlotArgs,
    predict::PredictArgs,
    run::{ResumeArgs, RunArgs},
    show_data::ShowDataArgs,
};

/// Run deep-learning experiments declared in TOML.
#[derive(Parser, Debug)]
#[command(
    name = "runner",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  runner experiments/mnist_cnn.toml --data-dir ../shared/data\n  runner check experiments/*.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `runner FILE [OPTIONS]` is `runner run FILE [OPTIONS]`.
    #[command(flatten)]
    run: Option<RunArgs>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train and evaluate an experiment, writing results/<experiment>/<run-id>/.
    Run(RunArgs),
    /// Continue an interrupted run from its folder's last checkpoint (bit for bit the run it
    /// would have been).
    Resume(ResumeArgs),
    /// Check experiment files: infer every shape, report every mistake, print layer tables.
    Check(CheckArgs),
    /// Run every experiment and sweep variant of files or folders as one ablation; resumable,
    /// shardable across machines; writes batch.csv and batch.md.
    Batch(BatchArgs),
    /// Evaluate a finished run's weights (or a .safetensors file with --experiment) on the test
    /// or train split: accuracy, loss, per_class.csv, confusion.csv/.png, eval.json.
    Eval(EvalArgs),
    /// Classify PNG, JPEG, WebP or BMP images (files or folders) with a finished run's weights: the
    /// top classes with probabilities, as a table, CSV (for a folder) or JSON.
    Predict(PredictArgs),
    /// Compare two summary.csv or batch.csv files with tolerances; exit 1 on a regression.
    Diff(DiffArgs),
    /// Print the JSON Schema for experiment files.
    Schema,
    /// Compare every layer op on CUDA against the CPU (forward and backward, small inputs).
    DeviceCheck,
    /// Write a data set (or an experiment's) as an image folder of PNGs:
    /// DIR/train/<class>/<index>.png and DIR/test/<class>/<index>.png.
    ExportImages(ExportImagesArgs),
    /// Draw a PNG grid of the data as the experiment's transforms deliver it.
    ShowData(ShowDataArgs),
    /// Compare finished runs: test curves overlaid, final accuracy per run.
    Plot(PlotArgs),
    /// Measure train/eval images per second and peak memory of the seed nets on random data,
    /// interleaved with PyTorch when a Python with torch is available.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    runner::runtime::tune_for_training();
    let cli = Cli::parse();
    let result = match (cli.command, cli.run) {
        (Some(Command::Check(args)), _) => cli::check::run(&args),
        (Some(Command::Batch(args)), _) => cli::batch::run(&args),
        (Some(Command::Diff(args)), _) => cli::diff::run(&args),
        (Some(Command::Eval(args)), _) => cli::eval::run(&args),
        (Some(Command::Predict(args)), _) => cli::predict::run(&args),
        (Some(Command::Run(args)), _) | (None, Some(args)) => cli::run::run(&args),
        (Some(Command::Resume(args)), _) => cli::run::resume(&args),
        (Some(Command::ShowData(args)), _) => cli::show_data::run(&args),
        (Some(Command::ExportImages(args)), _) => cli::export_images::run(&args),
        (Some(Command::Plot(args)), _) => cli::plot::run(&args),
        (Some(Command::DeviceCheck), _) => cli::device_check::run(),
        (Some(Command::Bench(args)), _) => cli::bench::run(&args),
        (Some(Command::Schema), _) => cli::schema::run(),
        (None, None) => {
            runner::ewriteln!(
                "usage: runner FILE [OPTIONS] | runner check FILE...   (see `runner --help`)"
            );
            Ok(exit::ERROR)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        // A closed stdout (`runner check ... | head -1`): the reader has what it wanted.
        Err(e) if cli::out::is_broken_pipe(&e) => ExitCode::from(exit::OK as u8),
        // The one place errors are rendered.
        Err(e) => {
            runner::ewriteln!("error: {e:#}");
            ExitCode::from(exit::ERROR as u8)
        }
    }
}
