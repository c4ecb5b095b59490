//! `runner show-data FILE`: a PNG grid of the images as the experiment's transforms deliver them.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::data::{self, resolve_data_dir};
use crate::plot::{data_figure, Split};
use crate::report::write_atomic;

/// Options of `runner show-data`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowDataArgs {
    /// The experiment file.
    pub file: PathBuf,
    /// Folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`, `cifar-100-binary/` [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How many images (the first ones of the split, in file order).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub count: u64,
    /// Which split to show, through its own transforms (`train_transforms` for train,
    /// `test_transforms` for val and test).
    #[arg(long, value_enum, default_value_t = Split::Train)]
    pub split: Split,
    /// Where to write the PNG (default: `<experiment>_<split>_data.png` in the current folder).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overrides applied to the file.
    #[command(flatten)]
    pub set: super::SetArgs,
    /// For a file with a `[sweep]`: the variant to show (`runner check` lists them).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
}

/// Runs the verb; returns the exit code.
pub fn run(args: &ShowDataArgs) -> anyhow::Result<i32> {
    let Some((exp, _)) = super::run::checked_experiment(
        &args.file,
        &args.set.sets,
        args.variant.as_deref(),
        crate::check::Weights::Skip,
    ) else {
        return Ok(super::exit::ERROR);
    };
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = match data::load_experiment(exp.data(), &data_dir, exp.seed()) {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    let Some(data) = splits.take(args.split) else {
        return Err(super::eval::no_validation(&exp));
    };
    let figure = data_figure(&exp, &data, args.split, args.count as usize)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}_{}_data.png", exp.name(), args.split.name())));
    let png = figure.picture.png()?;
    write_atomic(&out, &png).with_context(|| "cannot save the picture".to_string())?;
    crate::outln!("{}", out.display())?;
    Ok(super::exit::OK)
}
