//! SVHN's cropped digits (format 2 of the Street View House Numbers release), from the official
//! MAT-files `train_32x32.mat` (73,257 images) and `test_32x32.mat` (26,032).
//!
//! Each file holds `X`, a `uint8` array of 32x32x3xN (height, width, channel, image) saved by
//! MATLAB, so column-major: each image is contiguous, and so is each of its colour planes, but a
//! plane is stored column by column and is transposed here to the row-major CHW the rest of
//! runner uses (torchvision's `np.transpose(X, (3, 2, 0, 1))`). `y` holds the labels 1 to 10,
//! where 10 is the digit 0; as in torchvision, 10 becomes 0, so label `d` is digit `d`.
//! The files are MAT v5 with compressed elements, read by [`super::mat`].

use std::path::Path;

use super::mat::{self, Class, Data, Wanted};
use super::{ensure_files, DataError, Dataset, Downloader, ExpectedFile, Splits};
use crate::experiment::DatasetKind;

/// Folder under the data directory.
pub const FOLDER: &str = "svhn";
/// Side of the square images.
pub const SIDE: usize = 32;
/// Bytes per image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
/// The training images.
pub const TRAIN_FILE: &str = "train_32x32.mat";
/// The test images.
pub const TEST_FILE: &str = "test_32x32.mat";
/// The extra training images (`extra = true`).
pub const EXTRA_FILE: &str = "extra_32x32.mat";
/// The class names by label: the digits.
pub const CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The most images one file may hold: the largest official file (`extra_32x32.mat`) has
/// 531,131; the bound keeps a crafted header from asking for an unbounded allocation.
const MAX_IMAGES: u64 = 1_000_000;

/// Loads SVHN's train and test sets from `data_dir/svhn/`; with `extra`, the training set is
/// `train_32x32.mat` followed by `extra_32x32.mat`.
pub(crate) fn load(
    data_dir: &Path,
    extra: bool,
    downloader: &Downloader,
) -> Result<Splits, DataError> {
    let dir = data_dir.join(FOLDER);
    let names: &[&str] = if extra {
        &[TRAIN_FILE, TEST_FILE, EXTRA_FILE]
    } else {
        &[TRAIN_FILE, TEST_FILE]
    };
    let check = || {
        names
            .iter()
            .map(|name| ExpectedFile::at(dir.join(name)))
            .collect()
    };
    ensure_files(&DatasetKind::Svhn { extra }, data_dir, check, downloader)?;
    let mut train = read_mat(&dir.join(TRAIN_FILE))?;
    if extra {
        // The small training set goes in front of the large extra one, so that only the small
        // one is held twice while they are joined (growing a large buffer moves no bytes).
        let mut all = read_mat(&dir.join(EXTRA_FILE))?;
        prepend(&mut all.images, &train.images);
        prepend(&mut all.labels, &train.labels);
        train = all;
    }
    Ok(Splits {
        train,
        test: read_mat(&dir.join(TEST_FILE))?,
    })
}

/// Puts `front` before the contents of `v` (with block moves: `Vec::splice` goes byte by byte).
fn prepend(v: &mut Vec<u8>, front: &[u8]) {
    let old = v.len();
    v.resize(old + front.len(), 0);
    v.copy_within(0..old, front.len());
    v[..front.len()].copy_from_slice(front);
}

/// The class names: the digits 0 to 9.
pub fn class_names() -> Vec<String> {
    CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Reads one SVHN MAT-file into a data set of row-major CHW images and labels 0..10.
pub fn read_mat(path: &Path) -> Result<Dataset, DataError> {
    let wanted = [
        Wanted {
            name: "X",
            max_elements: MAX_IMAGES * IMAGE_BYTES as u64,
        },
        Wanted {
            name: "y",
            max_elements: MAX_IMAGES,
        },
    ];
    let mat_error = |source| DataError::Mat {
        path: path.to_path_buf(),
        source,
    };
    let mut arrays = mat::read_arrays(path, &wanted).map_err(mat_error)?;
    let y = arrays.pop().expect("two wanted arrays");
    let x = arrays.pop().expect("two wanted arrays");
    let shape_error = |name, expected, found: &[usize]| DataError::MatShape {
        path: path.to_path_buf(),
        name,
        expected,
        found: found.to_vec(),
    };
    // MATLAB drops a trailing dimension of 1: a file of one image has dimensions 32x32x3.
    let n = match x.dims[..] {
        [SIDE, SIDE, 3, n] if n > 0 => n,
        [SIDE, SIDE, 3] => 1,
        _ => return Err(shape_error("X", "32x32x3xN, N > 0", &x.dims)),
    };
    let mut images = match (x.class, x.data) {
        (Class::UInt8, Data::Bytes(bytes)) => bytes,
        (class, _) => {
            return Err(DataError::MatType {
                path: path.to_path_buf(),
                name: "X",
                expected: "uint8",
                found: class.name(),
            })
        }
    };
    let values = match (&y.dims[..], y.data) {
        ([_, 1] | [1, _], Data::Values(v)) => v,
        ([_, 1] | [1, _], Data::Bytes(b)) => b.into_iter().map(f64::from).collect(),
        _ => return Err(shape_error("y", "Nx1", &y.dims)),
    };
    if values.len() != n {
        return Err(DataError::MatCount {
            path: path.to_path_buf(),
            images: n,
            labels: values.len(),
        });
    }
    let labels = values
        .iter()
        .enumerate()
        .map(|(index, &value)| match value {
            // Label 10 is the digit 0.
            10.0 => Ok(0),
            v if v.fract() == 0.0 && (1.0..=9.0).contains(&v) => Ok(v as u8),
            value => Err(DataError::SvhnLabel {
                path: path.to_path_buf(),
                index,
                value,
            }),
        })
        .collect::<Result<Vec<u8>, DataError>>()?;
    let mut plane = vec![0u8; SIDE * SIDE];
    for p in images.chunks_exact_mut(SIDE * SIDE) {
        // Stored [x][y] (column-major); wanted [y][x].
        for (x, column) in p.chunks_exact(SIDE).enumerate() {
            for (y, &v) in column.iter().enumerate() {
                plane[y * SIDE + x] = v;
            }
        }
        p.copy_from_slice(&plane);
    }
    Ok(Dataset {
        images,
        labels,
        shape: [3, SIDE, SIDE],
        classes: class_names(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::mat::tests::{write, Var};

    /// The value of pixel (channel c, row y, column x) of image i in the generated files.
    pub(crate) fn pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
        ((i + 3 * c + 5 * y + 7 * x) % 256) as u8
    }

    /// `X` of `n` images of [`pixel`], in MATLAB's column-major order (row fastest, then
    /// column, channel, image).
    pub(crate) fn x_column_major(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * IMAGE_BYTES);
        for i in 0..n {
            for c in 0..3 {
                for x in 0..SIDE {
                    for y in 0..SIDE {
                        v.push(pixel(i, c, y, x));
                    }
                }
            }
        }
        v
    }

    /// The labels `1, 2, ..., 10, 1, ...` of `n` images, as the files store them.
    pub(crate) fn y_values(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i % 10 + 1) as f64).collect()
    }

    /// An official-format SVHN file of `n` images (compressed, as the release is).
    pub(crate) fn file(n: usize) -> Vec<u8> {
        write(
            &[
                Var::uint8("X", &[32, 32, 3, n as i32], x_column_major(n)),
                Var::double("y", &[n as i32, 1], &y_values(n)),
            ],
            true,
        )
    }

    /// Writes `svhn/train_32x32.mat` and `svhn/test_32x32.mat` under `data_dir`.
    pub(crate) fn write_files(data_dir: &Path, train: usize, test: usize) {
        let dir = data_dir.join(FOLDER);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(TRAIN_FILE), file(train)).expect("write");
        std::fs::write(dir.join(TEST_FILE), file(test)).expect("write");
    }

    #[test]
    fn loads_transposes_to_chw_and_maps_label_10_to_digit_0() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_files(tmp.path(), 12, 3);
        let s = crate::data::load_with(
            &DatasetKind::Svhn { extra: false },
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect("loads");
        assert_eq!((s.train.len(), s.test.len()), (12, 3));
        assert_eq!(s.train.shape, [3, 32, 32]);
        assert_eq!(
            s.train.labels,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2],
            "10 is the digit 0"
        );
        assert_eq!(s.train.classes, CLASSES);
        for i in [0, 9, 11] {
            let img = s.train.image(i);
            // (channel, row, column): rows and columns differ, so a missing transpose shows.
            for (c, y, x) in [(0, 0, 1), (0, 1, 0), (1, 10, 3), (2, 31, 30), (2, 30, 31)] {
                assert_eq!(
                    img[c * SIDE * SIDE + y * SIDE + x],
                    pixel(i, c, y, x),
                    "image {i} ({c}, {y}, {x})"
                );
            }
        }
    }

    #[test]
    fn reads_the_files_scipy_writes() {
        // tests/fixtures/svhn/svhn: written by `scripts/svhn_fixture.py` with scipy.io.savemat
        // (compressed, as the release); its reference reading (torchvision's) printed labels
        // [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2] and [0, 9, 8], and nchw[1, 2, 3, 4] = 50.
        let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/svhn");
        let s = crate::data::load_with(
            &DatasetKind::Svhn { extra: false },
            &data_dir,
            0,
            &Downloader::disabled(),
        )
        .expect("loads");
        assert_eq!(s.train.labels, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
        assert_eq!(s.test.labels, [0, 9, 8]);
        assert_eq!(s.train.image(1)[2 * SIDE * SIDE + 3 * SIDE + 4], 50);
        for (set, n) in [(&s.train, 12), (&s.test, 3)] {
            for i in 0..n {
                let img = set.image(i);
                for (c, y, x) in [(0, 0, 0), (0, 5, 17), (1, 31, 0), (2, 7, 29)] {
                    let at = c * SIDE * SIDE + y * SIDE + x;
                    assert_eq!(img[at], pixel(i, c, y, x), "image {i} ({c}, {y}, {x})");
                }
            }
        }
    }

    #[test]
    fn uncompressed_files_one_image_files_and_narrow_label_storage_are_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("one.mat");
        // One image: MATLAB saves it as 32x32x3; `y` as a double stored in miUINT8.
        let y = Var {
            ty: 2,
            bytes: vec![10],
            ..Var::double("y", &[1, 1], &[])
        };
        let bytes = write(
            &[Var::uint8("X", &[32, 32, 3], x_column_major(1)), y],
            false,
        );
        std::fs::write(&path, bytes).expect("write");
        let d = read_mat(&path).expect("reads");
        assert_eq!(d.labels, [0]);
        assert_eq!(d.image(0)[SIDE + 2], pixel(0, 0, 1, 2));
    }

    #[test]
    fn wrong_contents_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("train_32x32.mat");
        let x = |dims: &[i32]| {
            let n = dims.iter().product::<i32>() as usize;
            Var::uint8("X", dims, vec![0; n])
        };
        let y = |values: &[f64]| Var::double("y", &[values.len() as i32, 1], values);
        // (the variables, what the message must say)
        let cases: Vec<(Vec<Var<'_>>, &str)> = vec![
            (vec![x(&[32, 32, 3, 2])], "no variable `y`"),
            (vec![y(&[1.0])], "no variable `X`"),
            (
                vec![x(&[32, 32, 4, 2]), y(&[1.0, 2.0])],
                "`X` has dimensions 32x32x4x2, expected 32x32x3xN",
            ),
            (
                vec![x(&[32, 32, 3, 0]), y(&[])],
                "`X` has dimensions 32x32x3x0",
            ),
            (
                vec![
                    Var::double("X", &[32, 32, 3, 1], &[0.0; IMAGE_BYTES]),
                    y(&[1.0]),
                ],
                "`X` is double, expected uint8",
            ),
            (
                vec![x(&[32, 32, 3, 2]), Var::double("y", &[2, 2], &[1.0; 4])],
                "`y` has dimensions 2x2, expected Nx1",
            ),
            (
                vec![x(&[32, 32, 3, 2]), y(&[1.0, 2.0, 3.0])],
                "`X` holds 2 images but `y` holds 3 labels",
            ),
            (
                vec![x(&[32, 32, 3, 3]), y(&[1.0, 0.0, 2.0])],
                "label 0 of sample 1 is out of range (SVHN labels are 1 to 10)",
            ),
            (
                vec![x(&[32, 32, 3, 2]), y(&[11.0, 2.0])],
                "label 11 of sample 0 is out of range",
            ),
            (
                vec![x(&[32, 32, 3, 2]), y(&[1.0, 2.5])],
                "label 2.5 of sample 1 is out of range",
            ),
        ];
        for (vars, needle) in cases {
            std::fs::write(&path, write(&vars, true)).expect("write");
            let text = read_mat(&path).expect_err(needle).to_string();
            assert!(text.contains(needle), "{needle}: {text}");
            assert!(
                text.contains("train_32x32.mat"),
                "{needle}: names the file: {text}"
            );
        }
        // Corrupt bytes: the file is named and the fault said.
        let mut bytes = file(2);
        bytes.truncate(bytes.len() - 100);
        std::fs::write(&path, bytes).expect("write");
        let text = read_mat(&path).expect_err("truncated").to_string();
        assert!(
            text.contains("train_32x32.mat") && text.contains("truncated"),
            "{text}"
        );
        std::fs::write(&path, b"PK\x03\x04 a zip file").expect("write");
        let text = read_mat(&path).expect_err("not mat").to_string();
        assert!(text.contains("not a MAT-file"), "{text}");
    }

    #[test]
    fn extra_is_appended_to_the_training_set() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_files(tmp.path(), 3, 2);
        let kind = DatasetKind::Svhn { extra: true };
        let none = Downloader::disabled();
        let err = crate::data::load_with(&kind, tmp.path(), 0, &none)
            .expect_err("no extra file")
            .to_string();
        assert!(
            err.contains("1 of 3 files") && err.contains("MISSING"),
            "{err}"
        );
        assert!(err.contains("svhn/extra_32x32.mat"), "{err}");
        let extra = write(
            &[
                Var::uint8("X", &[32, 32, 3, 4], x_column_major(4)),
                Var::double("y", &[4, 1], &[10.0, 10.0, 5.0, 6.0]),
            ],
            true,
        );
        std::fs::write(tmp.path().join(FOLDER).join(EXTRA_FILE), extra).expect("write");
        let s = crate::data::load_with(&kind, tmp.path(), 0, &none).expect("loads");
        assert_eq!(s.train.labels, [1, 2, 3, 0, 0, 5, 6], "train, then extra");
        assert_eq!(s.test.len(), 2);
        // Training image 4 is extra's image 1.
        assert_eq!(s.train.image(4), s.train.image(1), "same pattern index");
        assert_eq!(s.train.image(4)[SIDE + 1], pixel(1, 0, 1, 1));
    }

    #[test]
    fn missing_files_are_listed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = crate::data::load_with(
            &DatasetKind::Svhn { extra: false },
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect_err("missing")
        .to_string();
        assert!(err.contains("data set `svhn`: 2 of 2 files"), "{err}");
        assert!(err.contains("svhn/train_32x32.mat"), "{err}");
        assert!(err.contains("svhn/test_32x32.mat"), "{err}");
    }
}
