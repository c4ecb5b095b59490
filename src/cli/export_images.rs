//! `runner export-images DATASET_OR_EXPERIMENT --out DIR`: a data set written as an image
//! folder of PNGs ([`crate::data::export`]), the layout `dataset = "image_folder"` reads.

use std::path::PathBuf;

use anyhow::bail;

use crate::data::{self, export, resolve_data_dir};
use crate::experiment::{Cifar100Labels, DatasetKind, DatasetName, SyntheticSpec};

/// Options of `runner export-images`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportImagesArgs {
    /// A data set name (`mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `stl10`, `svhn`,
    /// `synthetic`)
    /// or an experiment file, whose data set (with its seed) is exported.
    pub source: String,
    /// The folder to write `train/<class>/<index>.png` and `test/<class>/<index>.png` into
    /// (created; its `train/` and `test/` must be absent or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/` [default: $RUNNER_DATA, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides applied to an experiment file.
    #[command(flatten)]
    pub set: super::SetArgs,
}

/// The data set `source` names, and the seed it is generated with: a data set name (the
/// synthetic set at its defaults and seed 0) or an experiment file.
fn source(args: &ExportImagesArgs) -> anyhow::Result<Option<(DatasetKind, u64)>> {
    let name = args.source.as_str();
    if let Some(d) = DatasetName::ALL.iter().find(|d| d.name() == name) {
        let kind = match d {
            DatasetName::Mnist => DatasetKind::Mnist,
            DatasetName::FashionMnist => DatasetKind::FashionMnist,
            DatasetName::Cifar10 => DatasetKind::Cifar10,
            DatasetName::Cifar100 => DatasetKind::Cifar100(Cifar100Labels::Fine),
            DatasetName::Stl10 => DatasetKind::Stl10,
            DatasetName::Svhn => DatasetKind::Svhn { extra: false },
            DatasetName::Synthetic => DatasetKind::Synthetic(SyntheticSpec {
                shape: [1, 8, 8],
                classes: 4,
                train_size: 512,
                test_size: 256,
            }),
            DatasetName::ImageFolder | DatasetName::Csv => bail!(
                "`{name}` needs its `[data.{name}]` table: give an experiment file that uses it"
            ),
        };
        return Ok(Some((kind, 0)));
    }
    let file = PathBuf::from(name);
    if !file.is_file() {
        bail!(
            "`{name}` is neither a data set ({}) nor an experiment file",
            DatasetName::NAMES.join(", ")
        );
    }
    let Some((exp, _)) =
        super::run::checked_experiment(&file, &args.set.sets, None, crate::check::Weights::Skip)
    else {
        return Ok(None);
    };
    Ok(Some((exp.data().dataset.clone(), exp.seed())))
}

/// Runs the verb; returns the exit code.
pub fn run(args: &ExportImagesArgs) -> anyhow::Result<i32> {
    let Some((kind, seed)) = source(args)? else {
        return Ok(super::exit::ERROR);
    };
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = match data::load(&kind, &data_dir, seed) {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    let done = match export::export(&splits, &args.out) {
        Ok(d) => d,
        Err(e) => bail!("{e}"),
    };
    let [c, h, w] = splits.train.shape;
    let mut stdout = super::out::stdout();
    use std::io::Write as _;
    writeln!(
        stdout,
        "wrote {} training and {} test images of `{}` ({} classes, {c}x{h}x{w}) to {}/train and {}/test",
        done.counts[0],
        done.counts[1],
        kind.name(),
        done.folders.len(),
        args.out.display(),
        args.out.display()
    )?;
    writeln!(
        stdout,
        "read it back with: dataset = \"image_folder\" and [data.image_folder] path = \"{}/train\", \
         test_path = \"{}/test\", image_size = [{h}, {w}], channels = {c}",
        args.out.display(),
        args.out.display()
    )?;
    stdout.finish()?;
    Ok(super::exit::OK)
}
