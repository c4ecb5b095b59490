//! CIFAR-10 in its binary layout.
//!
//! Each record is 3073 bytes: one label byte, then the 1024 red, 1024 green and 1024 blue bytes
//! of a 32x32 image, each plane row-major. That is already CHW, so records are copied as they are.

use std::path::Path;

use super::{ensure_files, read_file, DataError, Dataset, Downloader, ExpectedFile, Splits};
use crate::experiment::DatasetKind;

/// Pixel bytes per image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per record: the label, then the pixels.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Training batch file names, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Test batch file name.
pub const TEST_FILE: &str = "test_batch.bin";
/// Optional file with the class names, one per line.
pub const META_FILE: &str = "batches.meta.txt";

/// Loads CIFAR-10 from `data_dir/cifar-10-batches-bin/`.
pub(crate) fn load(data_dir: &Path, downloader: &Downloader) -> Result<Splits, DataError> {
    let dir = data_dir.join(super::dataset_folder(&DatasetKind::Cifar10).unwrap_or_default());
    let check = || {
        TRAIN_FILES
            .iter()
            .chain([&TEST_FILE])
            .map(|name| ExpectedFile::at(dir.join(name)))
            .collect()
    };
    ensure_files(&DatasetKind::Cifar10, data_dir, check, downloader)?;
    let classes = read_classes(&dir.join(META_FILE));
    let mut train = Dataset {
        images: Vec::with_capacity(50_000 * IMAGE_BYTES),
        labels: Vec::with_capacity(50_000),
        shape: [3, 32, 32],
        classes: classes.clone(),
    };
    for name in TRAIN_FILES {
        read_batch_into(&dir.join(name), &mut train)?;
    }
    let mut test = Dataset {
        images: Vec::with_capacity(10_000 * IMAGE_BYTES),
        labels: Vec::with_capacity(10_000),
        shape: [3, 32, 32],
        classes,
    };
    read_batch_into(&dir.join(TEST_FILE), &mut test)?;
    Ok(Splits { train, test })
}

/// Class names from `batches.meta.txt` (non-empty lines, trimmed) if it holds exactly ten, else
/// [`super::CIFAR10_CLASSES`].
pub fn read_classes(meta: &Path) -> Vec<String> {
    let from_file = crate::bounded::read_to_string(meta, 1 << 20)
        .ok()
        .and_then(|text| {
            let names: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if names.len() == 10 {
                Some(names)
            } else {
                tracing::warn!(
                    "{}: expected 10 class names, found {}; using the built-in names",
                    meta.display(),
                    names.len()
                );
                None
            }
        });
    from_file.unwrap_or_else(|| {
        super::CIFAR10_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    })
}

/// Appends the records of one batch file to `into` (whose shape must be `[3, 32, 32]`).
pub fn read_batch_into(path: &Path, into: &mut Dataset) -> Result<(), DataError> {
    // A batch file holds 10,000 records; the cap leaves room for larger ones of the format.
    let bytes = read_file(path, 64 * RECORD_BYTES as u64 * 10_000)?;
    if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
        return Err(DataError::CifarLength {
            path: path.to_path_buf(),
            record: RECORD_BYTES,
            labels: 1,
            len: bytes.len() as u64,
        });
    }
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if label >= 10 {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label,
                classes: 10,
            });
        }
        into.labels.push(label);
        into.images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::tests::real_data_dir;

    /// `n` records with label `i % 10` and pixels that encode (record, channel, position).
    pub(crate) fn records(n: usize, first: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * RECORD_BYTES);
        for i in first..first + n {
            v.push((i % 10) as u8);
            v.extend((0..IMAGE_BYTES).map(|p| ((i * 7 + p) % 256) as u8));
        }
        v
    }

    pub(crate) fn write_cifar(dir: &Path, per_file: usize, meta: Option<&str>) {
        std::fs::create_dir_all(dir).expect("create dir");
        for (k, name) in TRAIN_FILES.iter().chain([&TEST_FILE]).enumerate() {
            std::fs::write(dir.join(name), records(per_file, k * per_file)).expect("write");
        }
        if let Some(meta) = meta {
            std::fs::write(dir.join(META_FILE), meta).expect("write meta");
        }
    }

    fn empty() -> Dataset {
        Dataset {
            images: vec![],
            labels: vec![],
            shape: [3, 32, 32],
            classes: vec![],
        }
    }

    #[test]
    fn loads_all_batches_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_cifar(&tmp.path().join("cifar-10-batches-bin"), 3, None);
        let s = crate::data::load_with(
            &DatasetKind::Cifar10,
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect("loads");
        assert_eq!((s.train.len(), s.test.len()), (15, 3));
        assert_eq!(
            s.train.labels,
            (0..15).map(|i| (i % 10) as u8).collect::<Vec<_>>()
        );
        // Record 4 of the training set: red plane first, then green, then blue.
        let img = s.train.image(4);
        // Pixel p of record i is (7 i + p) % 256: here 28 + p.
        assert_eq!((img[0], img[1024], img[3071]), (28, 28, 27));
        assert_eq!(s.test.labels, [5, 6, 7]);
        assert_eq!(
            s.train.classes,
            crate::data::CIFAR10_CLASSES,
            "no meta file: built-in names"
        );
    }

    #[test]
    fn class_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let meta = tmp.path().join(META_FILE);
        let cases = [
            (
                Some("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"),
                "a",
                "ten names read from the file",
            ),
            (
                Some(" a \r\nb\nc\nd\ne\n\nf\ng\nh\ni\nj"),
                "a",
                "trimmed, blank lines skipped",
            ),
            (Some("a\nb\n"), "plane", "wrong count falls back"),
            (None, "plane", "absent file falls back"),
        ];
        for (text, first, msg) in cases {
            match text {
                Some(t) => std::fs::write(&meta, t).expect("write"),
                None => drop(std::fs::remove_file(&meta)),
            }
            let names = read_classes(&meta);
            assert_eq!((names.len(), names[0].as_str()), (10, first), "{msg}");
        }
    }

    #[test]
    fn bad_batches_give_specific_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("data_batch_1.bin");
        let mut bad_label = records(3, 0);
        bad_label[2 * RECORD_BYTES] = 10;
        type Check = fn(&DataError) -> bool;
        let cases: Vec<(Vec<u8>, Check, &str)> = vec![
            (
                records(2, 0)[..2 * RECORD_BYTES - 1].to_vec(),
                |e| {
                    matches!(
                        e,
                        DataError::CifarLength {
                            len: 6145,
                            record: 3073,
                            ..
                        }
                    )
                },
                "truncated record",
            ),
            (
                Vec::new(),
                |e| matches!(e, DataError::CifarLength { len: 0, .. }),
                "empty file",
            ),
            (
                bad_label,
                |e| {
                    matches!(
                        e,
                        DataError::LabelOutOfRange {
                            index: 2,
                            label: 10,
                            ..
                        }
                    )
                },
                "label 10",
            ),
        ];
        for (bytes, check, msg) in cases {
            std::fs::write(&path, bytes).expect("write");
            let err = read_batch_into(&path, &mut empty()).expect_err(msg);
            assert!(check(&err), "{msg}: got {err:?}");
            assert!(
                err.to_string().contains("data_batch_1.bin"),
                "{msg}: names the file"
            );
        }
    }

    #[test]
    fn missing_files_are_listed_together() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cifar-10-batches-bin");
        write_cifar(&dir, 1, None);
        std::fs::remove_file(dir.join("data_batch_3.bin")).expect("rm");
        let err = crate::data::load_with(
            &DatasetKind::Cifar10,
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect_err("one file missing");
        let DataError::MissingFiles { files, .. } = &err else {
            panic!("expected MissingFiles, got {err:?}");
        };
        assert_eq!(files.len(), 6);
        assert_eq!(files.iter().filter(|f| !f.present).count(), 1);
        assert!(err.to_string().contains("MISSING  "), "{err}");
    }

    #[test]
    fn a_directory_or_a_symlink_loop_in_place_of_a_file_is_named_not_missing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cifar-10-batches-bin");
        write_cifar(&dir, 1, None);
        let batch = |n: usize| dir.join(format!("data_batch_{n}.bin"));
        std::fs::remove_file(batch(2)).expect("rm");
        std::fs::create_dir(batch(2)).expect("a directory in its place");
        std::fs::remove_file(batch(3)).expect("rm");
        std::os::unix::fs::symlink(batch(3), batch(3)).expect("a link to itself");
        let err = crate::data::load_with(
            &DatasetKind::Cifar10,
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect_err("two files unusable");
        let text = err.to_string();
        assert!(!text.contains("MISSING"), "{text}");
        assert!(
            text.contains(&format!(
                "UNUSABLE  {}: it is a directory, not a regular file",
                batch(2).display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "UNUSABLE  {}: a loop of symbolic links",
                batch(3).display()
            )),
            "{text}"
        );
    }

    #[test]
    fn real_cifar() {
        let Some(data) = real_data_dir("real_cifar") else {
            return;
        };
        let s = crate::data::load_with(&DatasetKind::Cifar10, &data, 0, &Downloader::disabled())
            .expect("CIFAR-10 loads");
        assert_eq!((s.train.len(), s.test.len()), (50000, 10000));
        assert_eq!(s.train.class_counts(), [5000; 10]);
        assert_eq!(s.test.class_counts(), [1000; 10]);
        // PROVENANCE.md: record 0 is a frog with R[0:3] = 59, 43, 50 and B[-3:] = 140, 84, 72.
        let img = s.train.image(0);
        assert_eq!(
            (s.train.labels[0], &img[..3], &img[3069..]),
            (6, &[59, 43, 50][..], &[140, 84, 72][..])
        );
        assert_eq!(s.train.classes.len(), 10);
    }
}
