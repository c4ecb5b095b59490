//! STL-10's labelled images in the binary release (`stl10_binary/`).
//!
//! `train_X.bin` (5,000 images) and `test_X.bin` (8,000) hold 3x96x96 bytes per image: the red,
//! green and blue planes in turn, each plane **column-major** (MATLAB order), so each plane is
//! transposed here to the row-major CHW the rest of runner uses. `train_y.bin` and `test_y.bin`
//! hold one byte per image, the class from 1 to 10, turned into 0..9. `class_names.txt` names the
//! classes. The unlabelled images of the release are not used.

use std::path::Path;

use super::{ensure_files, read_file, DataError, Dataset, Downloader, ExpectedFile, Splits};
use crate::experiment::DatasetKind;

/// Folder under the data directory (the tarball's own folder name).
pub const FOLDER: &str = "stl10_binary";
/// Side of the square images.
pub const SIDE: usize = 96;
/// Bytes per image (3 x 96 x 96).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
/// Training images.
pub const TRAIN_IMAGES: &str = "train_X.bin";
/// Training labels.
pub const TRAIN_LABELS: &str = "train_y.bin";
/// Test images.
pub const TEST_IMAGES: &str = "test_X.bin";
/// Test labels.
pub const TEST_LABELS: &str = "test_y.bin";
/// Class names, one per line (optional: built-in names otherwise).
pub const NAMES_FILE: &str = "class_names.txt";
/// Every file taken from the tarball.
pub const FILES: [&str; 5] = [
    TRAIN_IMAGES,
    TRAIN_LABELS,
    TEST_IMAGES,
    TEST_LABELS,
    NAMES_FILE,
];

/// The class names by label, as in `class_names.txt` of the official release.
pub const CLASSES: [&str; 10] = [
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
];

/// Loads STL-10's labelled train and test sets from `data_dir/stl10_binary/`.
pub(crate) fn load(data_dir: &Path, downloader: &Downloader) -> Result<Splits, DataError> {
    let dir = data_dir.join(FOLDER);
    let check = || {
        FILES[..4]
            .iter()
            .map(|name| ExpectedFile::at(dir.join(name)))
            .collect()
    };
    ensure_files(&DatasetKind::Stl10, data_dir, check, downloader)?;
    let classes = read_classes(&dir);
    let read = |images: &str, labels: &str| -> Result<Dataset, DataError> {
        let (images_path, labels_path) = (dir.join(images), dir.join(labels));
        let pixels = read_images(&images_path)?;
        let labels = read_labels(&labels_path)?;
        let n_images = pixels.len() / IMAGE_BYTES;
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
            shape: [3, SIDE, SIDE],
            classes: classes.clone(),
        })
    };
    Ok(Splits {
        train: read(TRAIN_IMAGES, TRAIN_LABELS)?,
        test: read(TEST_IMAGES, TEST_LABELS)?,
    })
}

/// The class names from `class_names.txt` under `dir` when it holds ten, else [`CLASSES`].
pub fn read_classes(dir: &Path) -> Vec<String> {
    let path = dir.join(NAMES_FILE);
    crate::bounded::read_to_string(&path, 1 << 20)
        .ok()
        .and_then(|text| {
            let names: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            (names.len() == CLASSES.len()).then_some(names)
        })
        .unwrap_or_else(|| CLASSES.iter().map(|s| s.to_string()).collect())
}

/// Reads an images file and returns its pixels as row-major CHW images.
pub fn read_images(path: &Path) -> Result<Vec<u8>, DataError> {
    // The test file holds 8,000 images (221 MB); the cap leaves room for larger ones.
    let mut bytes = read_file(path, 2 * IMAGE_BYTES as u64 * 8_000)?;
    if bytes.is_empty() || bytes.len() % IMAGE_BYTES != 0 {
        return Err(DataError::ImageBytes {
            path: path.to_path_buf(),
            image: IMAGE_BYTES,
            len: bytes.len() as u64,
        });
    }
    let mut plane = vec![0u8; SIDE * SIDE];
    for p in bytes.chunks_exact_mut(SIDE * SIDE) {
        // Stored [x][y] (column-major); wanted [y][x].
        for (x, column) in p.chunks_exact(SIDE).enumerate() {
            for (y, &v) in column.iter().enumerate() {
                plane[y * SIDE + x] = v;
            }
        }
        p.copy_from_slice(&plane);
    }
    Ok(bytes)
}

/// Reads a labels file (bytes 1..=10) and returns the labels 0..10.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_file(path, 1 << 20)?;
    bytes
        .iter()
        .enumerate()
        .map(|(index, &label)| match label {
            1..=10 => Ok(label - 1),
            _ => Err(DataError::Stl10Label {
                path: path.to_path_buf(),
                index,
                label,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` images whose pixel (channel c, row y, column x) of image i is `(i + 3c + 5y + 7x) % 256`,
    /// written column-major per plane as the release does.
    fn images_column_major(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * IMAGE_BYTES);
        for i in 0..n {
            for c in 0..3 {
                for x in 0..SIDE {
                    for y in 0..SIDE {
                        v.push(((i + 3 * c + 5 * y + 7 * x) % 256) as u8);
                    }
                }
            }
        }
        v
    }

    fn write(dir: &Path, train: usize, test: usize) {
        std::fs::create_dir_all(dir).expect("dir");
        let labels = |n: usize| (0..n).map(|i| (i % 10 + 1) as u8).collect::<Vec<u8>>();
        std::fs::write(dir.join(TRAIN_IMAGES), images_column_major(train)).expect("write");
        std::fs::write(dir.join(TRAIN_LABELS), labels(train)).expect("write");
        std::fs::write(dir.join(TEST_IMAGES), images_column_major(test)).expect("write");
        std::fs::write(dir.join(TEST_LABELS), labels(test)).expect("write");
    }

    #[test]
    fn loads_and_transposes_to_row_major() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write(&tmp.path().join(FOLDER), 3, 2);
        let s = crate::data::load_with(&DatasetKind::Stl10, tmp.path(), 0, &Downloader::disabled())
            .expect("loads");
        assert_eq!((s.train.len(), s.test.len()), (3, 2));
        assert_eq!(s.train.labels, [0, 1, 2], "1..10 becomes 0..9");
        assert_eq!(s.train.shape, [3, 96, 96]);
        assert_eq!(s.train.classes[7], "monkey");
        let img = s.train.image(2);
        // (channel, row, column) -> the value the generator gave that pixel.
        for (c, y, x) in [(0, 0, 1), (0, 1, 0), (1, 10, 3), (2, 95, 94)] {
            let want = ((2 + 3 * c + 5 * y + 7 * x) % 256) as u8;
            assert_eq!(img[c * SIDE * SIDE + y * SIDE + x], want, "({c}, {y}, {x})");
        }
    }

    #[test]
    fn corrupt_files_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(FOLDER);
        let load = || {
            crate::data::load_with(&DatasetKind::Stl10, tmp.path(), 0, &Downloader::disabled())
                .expect_err("corrupt")
                .to_string()
        };
        // (file to spoil, its new contents, what the message must say)
        let cases: [(&str, Vec<u8>, &str); 5] = [
            (
                TRAIN_IMAGES,
                vec![0; IMAGE_BYTES + 1],
                "multiple of 27648 bytes",
            ),
            (TRAIN_IMAGES, vec![], "found 0 bytes"),
            (
                TRAIN_LABELS,
                vec![1, 11, 2],
                "label 11 of sample 1 is out of range",
            ),
            (
                TEST_LABELS,
                vec![0, 1],
                "label 0 of sample 0 is out of range",
            ),
            (TEST_LABELS, vec![1], "holds 2 images but"),
        ];
        for (file, bytes, needle) in cases {
            write(&dir, 3, 2);
            std::fs::write(dir.join(file), bytes).expect("spoil");
            let text = load();
            assert!(text.contains(needle), "{needle}: {text}");
            assert!(text.contains(file), "{needle}: names {file}: {text}");
        }
        std::fs::remove_file(dir.join(TEST_IMAGES)).expect("rm");
        let text = load();
        assert!(
            text.contains("MISSING") && text.contains("test_X.bin"),
            "{text}"
        );
    }
}
