//! IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.
//!
//! Layout (big-endian): magic `0x00000803` (u8 data, 3 dimensions) then `n`, `rows`, `cols`, then
//! `n * rows * cols` pixel bytes; labels: magic `0x00000801`, `n`, then `n` label bytes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{ensure_files, DataError, Dataset, Downloader, ExpectedFile, Splits};
use crate::bounded::{self, Probe};
use crate::experiment::DatasetKind;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Training images file name.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
/// Training labels file name.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
/// Test images file name.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
/// Test labels file name.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";
/// The four files of an MNIST-like data set, in the order they are listed to the user.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file to read for `gz_name` in `dir`: the `.gz` file if present, else the uncompressed one
/// (same name without `.gz`), else `None`.
pub fn locate(dir: &Path, gz_name: &str) -> Option<PathBuf> {
    let gz = dir.join(gz_name);
    if bounded::probe(&gz) == Probe::File {
        return Some(gz);
    }
    let raw = dir.join(gz_name.strip_suffix(".gz").unwrap_or(gz_name));
    (bounded::probe(&raw) == Probe::File).then_some(raw)
}

/// The expected file for `gz_name` in `dir`: present when either form is; otherwise what is
/// wrong with the form that exists, if one does.
fn expected(dir: &Path, gz_name: &str) -> ExpectedFile {
    let gz = ExpectedFile::at(dir.join(gz_name));
    if gz.present || gz.problem.is_some() {
        return gz;
    }
    let raw = ExpectedFile::at(dir.join(gz_name.strip_suffix(".gz").unwrap_or(gz_name)));
    if raw.present || raw.problem.is_some() {
        return ExpectedFile {
            path: gz.path,
            ..raw
        };
    }
    gz
}

/// Loads the four files of MNIST or Fashion-MNIST from `data_dir/<folder>/`.
pub(crate) fn load_mnist_like(
    kind: &DatasetKind,
    data_dir: &Path,
    classes: &[&str],
    downloader: &Downloader,
) -> Result<Splits, DataError> {
    let folder = super::dataset_folder(kind).unwrap_or("mnist");
    let dir = data_dir.join(folder);
    let check = || FILES.iter().map(|name| expected(&dir, name)).collect();
    ensure_files(kind, data_dir, check, downloader)?;
    let [_, h, w] = kind.image_shape();
    let classes: Vec<String> = classes.iter().map(|s| s.to_string()).collect();
    let read = |images: &str, labels: &str| -> Result<Dataset, DataError> {
        let find = |name: &str| locate(&dir, name).unwrap_or_else(|| dir.join(name));
        let (images_path, labels_path) = (find(images), find(labels));
        let (n_images, pixels) = read_images(&images_path, [h, w])?;
        let labels = read_labels(&labels_path, classes.len())?;
        if n_images != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_path,
                n_images,
                labels: labels_path,
                n_labels: labels.len(),
            });
        }
        Ok(Dataset {
            images: pixels,
            labels,
            shape: [1, h, w],
            classes: classes.clone(),
        })
    };
    Ok(Splits {
        train: read(TRAIN_IMAGES, TRAIN_LABELS)?,
        test: read(TEST_IMAGES, TEST_LABELS)?,
    })
}

/// Reads an IDX image file whose images must be `hw = [rows, cols]`; returns the image count
/// and the pixels.
pub fn read_images(path: &Path, hw: [usize; 2]) -> Result<(usize, Vec<u8>), DataError> {
    let mut r = IdxReader::open(path)?;
    r.expect_magic(IMAGES_MAGIC, "images")?;
    let header = r.read_exact_counted(12, "IDX images header")?;
    let field =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (n, rows, cols) = (field(0), field(4), field(8));
    if [rows as usize, cols as usize] != hw {
        return Err(DataError::WrongImageSize {
            path: path.to_path_buf(),
            expected: hw,
            found: [rows, cols],
        });
    }
    // rows and cols equal the data set's (small) size, so this cannot overflow.
    let payload = u64::from(n) * (hw[0] * hw[1]) as u64;
    let pixels = r.read_exact_counted(payload, "pixel data")?;
    r.expect_end(payload, "pixel data")?;
    Ok((n as usize, pixels))
}

/// Reads an IDX label file and checks every label is `< classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, DataError> {
    let mut r = IdxReader::open(path)?;
    r.expect_magic(LABELS_MAGIC, "labels")?;
    let header = r.read_exact_counted(4, "IDX labels header")?;
    let n = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let labels = r.read_exact_counted(u64::from(n), "labels")?;
    r.expect_end(u64::from(n), "labels")?;
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
            classes,
        });
    }
    Ok(labels)
}

/// A file read as a byte stream, decompressed when it starts with the gzip magic.
struct IdxReader {
    path: PathBuf,
    gz: bool,
    inner: Box<dyn Read>,
}

impl IdxReader {
    fn open(path: &Path) -> Result<Self, DataError> {
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = bounded::open(path).map_err(DataError::Read)?;
        let mut file = BufReader::with_capacity(1 << 16, file);
        let gz = file.fill_buf().map_err(io)?.starts_with(&GZIP_MAGIC);
        let inner: Box<dyn Read> = if gz {
            Box::new(GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(Self {
            path: path.to_path_buf(),
            gz,
            inner,
        })
    }

    fn error(&self, source: std::io::Error) -> DataError {
        let path = self.path.clone();
        if self.gz {
            DataError::Decompress { path, source }
        } else {
            DataError::Io { path, source }
        }
    }

    /// Reads the 4-byte magic number; checked first so that a wrong kind of file says so.
    fn expect_magic(&mut self, expected: u32, what: &'static str) -> Result<(), DataError> {
        let bytes = self.read_exact_counted(4, "IDX magic number")?;
        let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if found == expected {
            Ok(())
        } else {
            Err(DataError::BadMagic {
                path: self.path.clone(),
                what,
                expected,
                found,
            })
        }
    }

    /// Reads exactly `n` bytes; fewer is [`DataError::Truncated`].
    fn read_exact_counted(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>, DataError> {
        // Grow with the data rather than trusting the header with one big allocation.
        let mut buf = Vec::with_capacity(n.min(1 << 26) as usize);
        let read = (&mut self.inner).take(n).read_to_end(&mut buf);
        read.map_err(|e| self.error(e))?;
        if (buf.len() as u64) < n {
            return Err(DataError::Truncated {
                path: self.path.clone(),
                what,
                expected: n,
                found: buf.len() as u64,
            });
        }
        Ok(buf)
    }

    /// Fails with [`DataError::TrailingData`] if anything follows the payload.
    fn expect_end(&mut self, expected: u64, what: &'static str) -> Result<(), DataError> {
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(DataError::TrailingData {
                        path: self.path.clone(),
                        what,
                        expected,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(e)),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;
    use crate::data::tests::real_data_dir;

    pub(crate) fn images_bytes(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    pub(crate) fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).expect("write to Vec");
        enc.finish().expect("finish gzip to Vec")
    }

    /// Writes a complete tiny MNIST-like folder (28x28), `.gz` or raw per file.
    pub(crate) fn write_mnist_like(dir: &Path, n_train: u32, n_test: u32, gz: [bool; 4]) {
        std::fs::create_dir_all(dir).expect("create dir");
        let pix = |n: u32| (0..n * 784).map(|i| (i % 251) as u8).collect::<Vec<_>>();
        let lab = |n: u32| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
        let contents = [
            images_bytes(n_train, 28, 28, &pix(n_train)),
            labels_bytes(&lab(n_train)),
            images_bytes(n_test, 28, 28, &pix(n_test)),
            labels_bytes(&lab(n_test)),
        ];
        for ((name, bytes), gz) in FILES.iter().zip(contents).zip(gz) {
            if gz {
                std::fs::write(dir.join(name), gzip(&bytes)).expect("write");
            } else {
                let raw = name.strip_suffix(".gz").expect("name ends in .gz");
                std::fs::write(dir.join(raw), bytes).expect("write");
            }
        }
    }

    #[test]
    fn images_and_labels_round_trip_gz_and_raw() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pixels: Vec<u8> = (0..3 * 2 * 3).map(|i| i as u8 * 7).collect();
        let labels = [9u8, 0, 4];
        for gz in [false, true] {
            let (img, lab) = (tmp.path().join("img"), tmp.path().join("lab"));
            let wrap = |b: Vec<u8>| if gz { gzip(&b) } else { b };
            std::fs::write(&img, wrap(images_bytes(3, 2, 3, &pixels))).expect("write");
            std::fs::write(&lab, wrap(labels_bytes(&labels))).expect("write");
            let (n, got) = read_images(&img, [2, 3]).expect("images read back");
            assert_eq!((n, got.as_slice()), (3, pixels.as_slice()), "gz={gz}");
            let got = read_labels(&lab, 10).expect("labels read back");
            assert_eq!(got, labels, "gz={gz}");
        }
    }

    #[test]
    fn bad_files_give_specific_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let good_images = images_bytes(2, 2, 2, &[1; 8]);
        let mut wrong_magic = good_images.clone();
        wrong_magic[3] = 0x02;
        let mut garbage_gz = gzip(&good_images);
        let len = garbage_gz.len();
        garbage_gz[10..len - 8].iter_mut().for_each(|b| *b = 0xff);
        let mut cut_gz = gzip(&good_images);
        cut_gz.truncate(cut_gz.len() / 2);
        // (file contents, read as labels?, expected error, message)
        type Check = fn(&DataError) -> bool;
        let cases: Vec<(Vec<u8>, bool, Check, &str)> = vec![
            (
                good_images[..good_images.len() - 1].to_vec(),
                false,
                |e| {
                    matches!(
                        e,
                        DataError::Truncated {
                            expected: 8,
                            found: 7,
                            ..
                        }
                    )
                },
                "payload short by one",
            ),
            (
                good_images[..10].to_vec(),
                false,
                |e| {
                    matches!(
                        e,
                        DataError::Truncated {
                            expected: 12,
                            found: 6,
                            ..
                        }
                    )
                },
                "header cut",
            ),
            (
                Vec::new(),
                false,
                |e| matches!(e, DataError::Truncated { found: 0, .. }),
                "empty file",
            ),
            (
                [good_images.as_slice(), &[0]].concat(),
                false,
                |e| matches!(e, DataError::TrailingData { expected: 8, .. }),
                "one byte too many",
            ),
            (
                wrong_magic,
                false,
                |e| {
                    matches!(
                        e,
                        DataError::BadMagic {
                            found: 0x802,
                            expected: 0x803,
                            ..
                        }
                    )
                },
                "wrong magic",
            ),
            (
                images_bytes(2, 3, 2, &[0; 12]),
                false,
                |e| matches!(e, DataError::WrongImageSize { found: [3, 2], .. }),
                "wrong image size",
            ),
            (
                labels_bytes(&[1, 2]),
                false,
                |e| matches!(e, DataError::BadMagic { what: "images", .. }),
                "labels given as images",
            ),
            (
                good_images.clone(),
                true,
                |e| matches!(e, DataError::BadMagic { what: "labels", .. }),
                "images given as labels",
            ),
            (
                labels_bytes(&[1, 10, 3]),
                true,
                |e| {
                    matches!(
                        e,
                        DataError::LabelOutOfRange {
                            index: 1,
                            label: 10,
                            classes: 10,
                            ..
                        }
                    )
                },
                "label 10",
            ),
            (
                labels_bytes(&[1, 2])[..9].to_vec(),
                true,
                |e| {
                    matches!(
                        e,
                        DataError::Truncated {
                            what: "labels",
                            expected: 2,
                            found: 1,
                            ..
                        }
                    )
                },
                "labels cut",
            ),
            (
                garbage_gz,
                false,
                |e| matches!(e, DataError::Decompress { .. }),
                "corrupt gzip",
            ),
            (
                cut_gz,
                false,
                |e| {
                    matches!(
                        e,
                        DataError::Decompress { .. } | DataError::Truncated { .. }
                    )
                },
                "gzip cut in half",
            ),
        ];
        let path = tmp.path().join("file");
        for (bytes, labels, check, msg) in cases {
            std::fs::write(&path, &bytes).expect("write");
            let err = if labels {
                read_labels(&path, 10).expect_err(msg)
            } else {
                read_images(&path, [2, 2]).map(|_| ()).expect_err(msg)
            };
            assert!(check(&err), "{msg}: got {err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{msg}: names the file"
            );
        }
        let missing = read_images(&tmp.path().join("nope"), [2, 2]).expect_err("missing");
        assert!(
            matches!(&missing, DataError::Read(e) if e.kind.is_not_found()),
            "{missing:?}"
        );
        assert!(
            missing.to_string().contains("nope: no such file"),
            "{missing}"
        );
    }

    #[test]
    fn loads_folder_with_mixed_gz_and_raw() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_mnist_like(&tmp.path().join("mnist"), 5, 3, [true, false, false, true]);
        let s = crate::data::load_with(&DatasetKind::Mnist, tmp.path(), 0, &Downloader::disabled())
            .expect("loads");
        assert_eq!((s.train.len(), s.test.len()), (5, 3));
        assert_eq!(s.train.shape, [1, 28, 28]);
        assert_eq!(s.train.labels, [0, 1, 2, 3, 4]);
        assert_eq!(s.train.image(1)[0], (784 % 251) as u8);
        assert_eq!(s.test.classes[9], "9");
    }

    #[test]
    fn count_mismatch_is_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("fashion-mnist");
        write_mnist_like(&dir, 5, 3, [true; 4]);
        std::fs::write(dir.join(TRAIN_LABELS), gzip(&labels_bytes(&[0, 1, 2, 3]))).expect("write");
        let err = crate::data::load_with(
            &DatasetKind::FashionMnist,
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect_err("5 images, 4 labels");
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    n_images: 5,
                    n_labels: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn missing_files_are_listed_together() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("mnist");
        write_mnist_like(&dir, 2, 2, [true; 4]);
        std::fs::remove_file(dir.join(TRAIN_IMAGES)).expect("rm");
        std::fs::remove_file(dir.join(TEST_LABELS)).expect("rm");
        let err =
            crate::data::load_with(&DatasetKind::Mnist, tmp.path(), 0, &Downloader::disabled())
                .expect_err("two files missing");
        let DataError::MissingFiles { files, .. } = &err else {
            panic!("expected MissingFiles, got {err:?}");
        };
        let present: Vec<bool> = files.iter().map(|f| f.present).collect();
        assert_eq!(present, [false, true, true, false]);
        let msg = err.to_string();
        for name in FILES {
            assert!(
                msg.contains(&dir.join(name).display().to_string()),
                "lists {name}:\n{msg}"
            );
        }
    }

    #[test]
    fn real_mnist_and_fashion() {
        let Some(data) = real_data_dir("real_mnist_and_fashion") else {
            return;
        };
        let none = Downloader::disabled();
        let s = crate::data::load_with(&DatasetKind::Mnist, &data, 0, &none).expect("MNIST loads");
        assert_eq!((s.train.len(), s.test.len()), (60000, 10000));
        assert_eq!(s.train.images.len(), 60000 * 784);
        // Counts from PROVENANCE.md ("Label counts are train [...]"), the usual MNIST counts.
        assert_eq!(
            s.train.class_counts(),
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        assert_eq!(
            s.test.class_counts(),
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        let f = crate::data::load_with(&DatasetKind::FashionMnist, &data, 0, &none)
            .expect("Fashion-MNIST loads");
        assert_eq!((f.train.len(), f.test.len()), (60000, 10000));
        assert_eq!(f.train.class_counts(), [6000; 10]);
        assert_eq!(f.test.classes[9], "Ankle boot");
    }
}
