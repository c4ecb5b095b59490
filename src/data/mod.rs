//! Datasets, transforms and the batch loader.
//!
//! Everything here is plain Rust over `u8`/`f32` buffers; the trainer turns [`loader::Batch`]es
//! into tensors. [`load`] reads (or generates) a data set, [`transform::Pipeline`] turns one raw
//! image into normalised floats, and [`loader::epoch_batches`] yields the batches of one epoch,
//! prepared on a background thread.

pub mod cifar;
pub mod cifar100;
pub mod download;
pub mod export;
pub mod folder;
pub mod idx;
pub mod image_file;
pub mod loader;
pub mod mat;
pub mod split;
pub mod stl10;
pub mod svhn;
pub mod synthetic;
pub mod transform;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::experiment::DatasetKind;

pub use download::{DownloadError, Downloader};
pub use loader::{epoch_batches, epoch_batches_upto, Batch, EpochBatches};
pub use split::{load_experiment, split_validation, ExperimentData, Split};
pub use transform::Pipeline;

/// Environment variable naming the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "RUNNER_DATA";

/// Data directory used when neither `--data-dir` nor [`DATA_DIR_ENV`] is set.
pub const DEFAULT_DATA_DIR: &str = "data";

/// MNIST class names, by label.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST class names, by label (from the upstream README).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Short CIFAR-10 class names (as in the seed notebook), used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
];

/// A set of images with labels, held in memory as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// All pixels, `N * C * H * W` bytes; each image is stored channel-major (CHW).
    pub images: Vec<u8>,
    /// One label per image, each `< classes.len()`.
    pub labels: Vec<u8>,
    /// Shape `[C, H, W]` of one image.
    pub shape: [usize; 3],
    /// Class names, indexed by label.
    pub classes: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`C * H * W`).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixels of image `i` (CHW).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Number of images per label, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

/// The training and test parts of a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
}

/// One file a data set needs, and whether it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFile {
    /// Where the file is expected.
    pub path: PathBuf,
    /// Whether it exists as a readable regular file (for IDX files: the `.gz` or the
    /// uncompressed file).
    pub present: bool,
    /// When it is not present but something is in its place: what (`it is a directory, not a
    /// regular file`, `a loop of symbolic links`, `permission denied`, ...).
    pub problem: Option<String>,
}

impl ExpectedFile {
    /// Looks at `path` ([`crate::bounded::probe`]).
    pub fn at(path: PathBuf) -> Self {
        let (present, problem) = match crate::bounded::probe(&path) {
            crate::bounded::Probe::File => (true, None),
            crate::bounded::Probe::Missing => (false, None),
            crate::bounded::Probe::Unusable(why) => (false, Some(why)),
        };
        ExpectedFile {
            path,
            present,
            problem,
        }
    }
}

/// Errors of the data stage.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `data.drop_last` drops the only, partial batch of every epoch.
    #[error("`data.drop_last` leaves no training batch: {images} training images are fewer than one batch of {batch_size} (lower `data.batch_size` or set `drop_last = false`)")]
    TooFewForDropLast {
        /// Training images per epoch.
        images: usize,
        /// `data.batch_size`.
        batch_size: usize,
    },
    /// `data.validation` asks for no image, or for every training image.
    #[error("`data.validation` asks for {wanted} of the {train} training images: the split must hold at least one and leave at least one to train on")]
    ValidationSize {
        /// Images the split would hold.
        wanted: usize,
        /// Images in the training set.
        train: usize,
    },
    /// Some files of a data set are missing and could not be downloaded.
    #[error("{}", missing_message(dataset, data_dir, files, download.as_deref()))]
    MissingFiles {
        /// Data set name as written in experiment files.
        dataset: &'static str,
        /// The data directory that was searched.
        data_dir: PathBuf,
        /// Every file the data set needs.
        files: Vec<ExpectedFile>,
        /// Why the automatic download did not help (`None`: not attempted).
        download: Option<Box<DownloadError>>,
    },
    /// A file could not be opened or read in full ([`crate::bounded`]).
    #[error(transparent)]
    Read(crate::bounded::ReadError),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `.gz` file is not valid gzip data.
    #[error("{}: corrupt gzip data: {source}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// An IDX file starts with the wrong magic number.
    #[error(
        "{}: not an IDX {what} file: expected magic number {expected:#010x}, found {found:#010x}",
        path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the file should hold (`images` or `labels`).
        what: &'static str,
        /// The magic number of that kind of file.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
    },
    /// A file ends before its header or payload is complete.
    #[error("{}: truncated: expected {expected} bytes of {what}, found {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The part that is incomplete.
        what: &'static str,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A file continues after the payload its header describes.
    #[error(
        "{}: expected exactly {expected} bytes of {what}, but the file holds more",
        path.display()
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// The payload.
        what: &'static str,
        /// Bytes the header promises.
        expected: u64,
    },
    /// An IDX image file holds images of another size than the data set's.
    #[error(
        "{}: expected {}x{} images, found {}x{}",
        path.display(), expected[0], expected[1], found[0], found[1]
    )]
    WrongImageSize {
        /// The file.
        path: PathBuf,
        /// `[height, width]` the data set has.
        expected: [usize; 2],
        /// `[height, width]` in the header.
        found: [u32; 2],
    },
    /// The images and labels files disagree on the number of samples.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels",
        images.display(), labels.display()
    )]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Its image count.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Its label count.
        n_labels: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "{}: label {label} of sample {index} is out of range (expected 0..{classes})",
        path.display()
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Sample index within the file.
        index: usize,
        /// The label found.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// A CIFAR binary file's length is not a whole number of records.
    #[error(
        "{}: expected a positive multiple of {record} bytes ({labels} label byte{} + {} pixel \
         bytes per record), found {len} bytes",
        path.display(), if *labels == 1 { "" } else { "s" }, record - labels
    )]
    CifarLength {
        /// The file.
        path: PathBuf,
        /// Bytes per record.
        record: usize,
        /// Label bytes at the start of each record (1 for CIFAR-10, 2 for CIFAR-100).
        labels: usize,
        /// The file's length.
        len: u64,
    },
    /// An image folder or CSV data set cannot be listed: a missing folder, an empty class
    /// folder, a loop of symbolic links, ...
    #[error("{}: {reason}", path.display())]
    Folder {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A row of a CSV data set is wrong.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An image of an image folder or CSV data set cannot be decoded (`on_corrupt = "error"`).
    #[error("{0}\nhelp: set `on_corrupt = \"skip\"` to leave such images out")]
    Image(image_file::ImageFileError),
    /// The declared `classes` differs from the classes found.
    #[error("{}: {found} classes found, but the experiment declares `classes = {declared}`", path.display())]
    ClassCount {
        /// The folder or CSV file.
        path: PathBuf,
        /// The declared count.
        declared: usize,
        /// The classes found.
        found: usize,
    },
    /// An STL-10 images file is not a whole number of 3x96x96 images.
    #[error(
        "{}: expected a positive multiple of {image} bytes (one 3x96x96 image each), found {len} bytes",
        path.display()
    )]
    ImageBytes {
        /// The file.
        path: PathBuf,
        /// Bytes per image.
        image: usize,
        /// The file's length.
        len: u64,
    },
    /// An STL-10 label is not one of 1..=10 (the files count classes from 1).
    #[error(
        "{}: label {label} of sample {index} is out of range (STL-10 labels are 1 to 10)",
        path.display()
    )]
    Stl10Label {
        /// The file.
        path: PathBuf,
        /// Sample index within the file.
        index: usize,
        /// The label found.
        label: u8,
    },
    /// A MAT-file cannot be read ([`mat`]).
    #[error("{}: {source}", path.display())]
    Mat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: mat::MatError,
    },
    /// A variable of a MAT-file has the wrong dimensions.
    #[error(
        "{}: `{name}` has dimensions {}, expected {expected}",
        path.display(),
        found.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
    )]
    MatShape {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
        /// The dimensions it must have.
        expected: &'static str,
        /// Its dimensions.
        found: Vec<usize>,
    },
    /// A variable of a MAT-file has the wrong class.
    #[error("{}: `{name}` is {found}, expected {expected}", path.display())]
    MatType {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: &'static str,
        /// The class it must have.
        expected: &'static str,
        /// Its class.
        found: &'static str,
    },
    /// An SVHN file's `X` and `y` disagree on the number of images.
    #[error("{}: `X` holds {images} images but `y` holds {labels} labels", path.display())]
    MatCount {
        /// The file.
        path: PathBuf,
        /// Images in `X`.
        images: usize,
        /// Labels in `y`.
        labels: usize,
    },
    /// An SVHN label is not one of 1..=10 (10 is the digit 0).
    #[error(
        "{}: label {value} of sample {index} is out of range (SVHN labels are 1 to 10)",
        path.display()
    )]
    SvhnLabel {
        /// The file.
        path: PathBuf,
        /// Sample index within the file.
        index: usize,
        /// The label found.
        value: f64,
    },
    /// The synthetic data set cannot be generated with these parameters.
    #[error("synthetic data set: {reason}")]
    InvalidSynthetic {
        /// What is wrong.
        reason: String,
    },
}

fn missing_message(
    dataset: &str,
    data_dir: &Path,
    files: &[ExpectedFile],
    download: Option<&DownloadError>,
) -> String {
    let missing = files.iter().filter(|f| !f.present).count();
    let mut s = format!(
        "data set `{dataset}`: {missing} of {} files not found (or not readable) in data directory {}",
        files.len(),
        data_dir.display()
    );
    s.push_str("\nexpected files:");
    for f in files {
        let mark = match (f.present, &f.problem) {
            (true, _) => "found",
            (false, None) => "MISSING",
            (false, Some(_)) => "UNUSABLE",
        };
        let _ = write!(s, "\n  {mark:>8}  {}", f.path.display());
        if let Some(why) = &f.problem {
            let _ = write!(s, ": {why}");
        }
    }
    let gz = files
        .iter()
        .any(|f| f.path.extension().is_some_and(|e| e == "gz"));
    if gz {
        s.push_str("\n(.gz files may also be given uncompressed, under the same name without .gz)");
    }
    let _ = write!(
        s,
        "\nhelp: put the files at those paths, or choose another data directory (the folder that \
         holds the data set folders) with --data-dir or the {DATA_DIR_ENV} environment variable"
    );
    if let Some(d) = download {
        let _ = write!(s, "\nautomatic download failed: {d}");
    }
    s
}

/// The data directory: `--data-dir` if given, else `$RUNNER_DATA` if set and non-empty, else
/// `./data`.
pub fn resolve_data_dir(cli: Option<&Path>) -> PathBuf {
    resolve_data_dir_from(cli, std::env::var_os(DATA_DIR_ENV))
}

fn resolve_data_dir_from(cli: Option<&Path>, env: Option<std::ffi::OsString>) -> PathBuf {
    match (cli, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(e)) if !e.is_empty() => PathBuf::from(e),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// Loads (or generates) the training and test sets of `kind`.
///
/// `data_dir` is the folder holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`,
/// `cifar-100-binary/`, `stl10_binary/` and `svhn/`.
/// Missing files are downloaded when possible (see [`Downloader::from_env`]); `seed` only
/// matters for the synthetic data set.
#[tracing::instrument(skip_all, fields(dataset = kind.name()))]
pub fn load(kind: &DatasetKind, data_dir: &Path, seed: u64) -> Result<Splits, DataError> {
    load_with(kind, data_dir, seed, &Downloader::from_env())
}

/// [`load`] with an explicit download policy.
pub fn load_with(
    kind: &DatasetKind,
    data_dir: &Path,
    seed: u64,
    downloader: &Downloader,
) -> Result<Splits, DataError> {
    match kind {
        DatasetKind::Mnist => idx::load_mnist_like(kind, data_dir, &MNIST_CLASSES, downloader),
        DatasetKind::FashionMnist => {
            idx::load_mnist_like(kind, data_dir, &FASHION_MNIST_CLASSES, downloader)
        }
        DatasetKind::Cifar10 => cifar::load(data_dir, downloader),
        DatasetKind::Cifar100(labels) => cifar100::load(data_dir, *labels, downloader),
        DatasetKind::Stl10 => stl10::load(data_dir, downloader),
        DatasetKind::Svhn { extra } => svhn::load(data_dir, *extra, downloader),
        DatasetKind::Synthetic(spec) => synthetic::generate(spec, seed),
        DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => folder::load(kind, data_dir, seed),
    }
}

/// The class names of `kind` by label, as [`load`] gives them, without reading any image:
/// CIFAR-10's come from `batches.meta.txt` under `data_dir` when it is there.
pub fn class_names(kind: &DatasetKind, data_dir: &Path) -> Vec<String> {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
    match kind {
        DatasetKind::Mnist => names(&MNIST_CLASSES),
        DatasetKind::FashionMnist => names(&FASHION_MNIST_CLASSES),
        DatasetKind::Cifar10 => cifar::read_classes(
            &data_dir
                .join(dataset_folder(kind).unwrap_or_default())
                .join(cifar::META_FILE),
        ),
        DatasetKind::Cifar100(labels) => {
            cifar100::read_classes(&data_dir.join(cifar100::FOLDER), *labels)
        }
        DatasetKind::Stl10 => stl10::read_classes(&data_dir.join(stl10::FOLDER)),
        DatasetKind::Svhn { .. } => svhn::class_names(),
        DatasetKind::Synthetic(spec) => synthetic::class_names(spec.classes),
        DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => folder::probe(kind, data_dir)
            .map(|p| p.train.classes)
            .unwrap_or_else(|_| synthetic::class_names(kind.classes())),
    }
}

/// Folder (under the data directory) that holds a data set's files.
pub fn dataset_folder(kind: &DatasetKind) -> Option<&'static str> {
    match kind {
        DatasetKind::Mnist => Some("mnist"),
        DatasetKind::FashionMnist => Some("fashion-mnist"),
        DatasetKind::Cifar10 => Some("cifar-10-batches-bin"),
        DatasetKind::Cifar100(_) => Some(cifar100::FOLDER),
        DatasetKind::Stl10 => Some(stl10::FOLDER),
        DatasetKind::Svhn { .. } => Some(svhn::FOLDER),
        DatasetKind::Synthetic(_) | DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => None,
    }
}

/// Checks that every file is there; if not, tries the download once, then reports all files.
fn ensure_files(
    kind: &DatasetKind,
    data_dir: &Path,
    check: impl Fn() -> Vec<ExpectedFile>,
    downloader: &Downloader,
) -> Result<(), DataError> {
    let files = check();
    if files.iter().all(|f| f.present) {
        return Ok(());
    }
    let download = match downloader.fetch(kind, data_dir) {
        Ok(()) => {
            let files = check();
            if files.iter().all(|f| f.present) {
                return Ok(());
            }
            Some(Box::new(DownloadError::Incomplete))
        }
        Err(e) => Some(Box::new(e)),
    };
    Err(DataError::MissingFiles {
        dataset: kind.name(),
        data_dir: data_dir.to_path_buf(),
        files: check(),
        download,
    })
}

/// Reads a whole file, mapping errors to [`DataError::Io`].
fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    crate::bounded::read(path, limit).map_err(DataError::Read)
}

/// Purposes of derived random streams, so that no two uses of one seed share a stream.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Stream {
    /// The sample order of an epoch.
    Order = 1,
    /// Augmentation of one batch.
    Augment = 2,
    /// Synthetic data generation.
    Synthetic = 3,
    /// The validation split.
    Validation = 4,
    /// Mixup / cutmix of one training batch.
    Mix = 5,
    /// An image's alternating flip, drawn once per run.
    Flip = 6,
}

/// A ChaCha8 generator determined by `(seed, purpose, a, b)`, independent of any other tuple.
pub(crate) fn derived_rng(seed: u64, stream: Stream, a: u64, b: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&a.to_le_bytes());
    key[24..32].copy_from_slice(&b.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// Fisher-Yates shuffle of `items`, drawing `j` uniformly from `0..=i` for `i` from the end.
pub(crate) fn fisher_yates<T>(items: &mut [T], rng: &mut impl rand::Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `/work/shared/data` seen from the crate root, or `None` (with a visible note) if absent.
    pub(crate) fn real_data_dir(test: &str) -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("skipping {test}: {} not found", dir.display());
            None
        }
    }

    #[test]
    fn resolve_data_dir_precedence() {
        let cases: [(Option<&Path>, Option<&str>, &str, &str); 4] = [
            (
                Some(Path::new("/cli")),
                Some("/env"),
                "/cli",
                "flag wins over env",
            ),
            (None, Some("/env"), "/env", "env used without flag"),
            (None, Some(""), "data", "empty env ignored"),
            (None, None, "data", "default ./data"),
        ];
        for (cli, env, want, msg) in cases {
            let got = resolve_data_dir_from(cli, env.map(Into::into));
            assert_eq!(got, PathBuf::from(want), "{msg}");
        }
    }

    #[test]
    fn dataset_accessors() {
        let d = Dataset {
            images: (0..12).collect(),
            labels: vec![0, 1, 1],
            shape: [1, 2, 2],
            classes: vec!["a".into(), "b".into()],
        };
        assert_eq!(d.len(), 3);
        assert!(!d.is_empty());
        assert_eq!(d.image(1), &[4, 5, 6, 7]);
        assert_eq!(d.class_counts(), vec![1, 2]);
    }

    #[test]
    fn derived_streams_differ() {
        use rand::Rng;
        let draw = |s, st, a, b| derived_rng(s, st, a, b).random::<u64>();
        let base = draw(1, Stream::Order, 0, 0);
        assert_eq!(
            base,
            draw(1, Stream::Order, 0, 0),
            "same tuple, same stream"
        );
        for (other, msg) in [
            (draw(2, Stream::Order, 0, 0), "seed"),
            (draw(1, Stream::Augment, 0, 0), "purpose"),
            (draw(1, Stream::Order, 1, 0), "a"),
            (draw(1, Stream::Order, 0, 1), "b"),
        ] {
            assert_ne!(base, other, "changing {msg} must change the stream");
        }
    }

    #[test]
    fn missing_files_message_lists_everything() {
        let err = DataError::MissingFiles {
            dataset: "mnist",
            data_dir: PathBuf::from("/d"),
            files: vec![
                ExpectedFile {
                    path: PathBuf::from("/d/mnist/a.gz"),
                    present: true,
                    problem: None,
                },
                ExpectedFile {
                    path: PathBuf::from("/d/mnist/b.gz"),
                    present: false,
                    problem: None,
                },
                ExpectedFile {
                    path: PathBuf::from("/d/mnist/c.gz"),
                    present: false,
                    problem: Some("it is a directory, not a regular file".into()),
                },
            ],
            download: Some(Box::new(DownloadError::Disabled)),
        };
        let msg = err.to_string();
        for needle in [
            "`mnist`",
            "2 of 3 files",
            "/d/mnist/a.gz",
            "MISSING  /d/mnist/b.gz",
            "UNUSABLE  /d/mnist/c.gz: it is a directory, not a regular file",
            "--data-dir",
            "RUNNER_DATA",
            "without .gz",
            "automatic download failed",
            "RUNNER_NO_DOWNLOAD",
        ] {
            assert!(msg.contains(needle), "message lacks {needle:?}:\n{msg}");
        }
    }
}
