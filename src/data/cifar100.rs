//! CIFAR-100 in its binary layout (`cifar-100-binary/`).
//!
//! Each record is 3074 bytes: the coarse label byte (0..20), the fine label byte (0..100), then
//! the 1024 red, 1024 green and 1024 blue bytes of a 32x32 image, each plane row-major (already
//! CHW). `train.bin` holds the 50,000 training records, `test.bin` the 10,000 test records;
//! `fine_label_names.txt` and `coarse_label_names.txt` name the classes, one per line.

use std::path::Path;

use super::{ensure_files, read_file, DataError, Dataset, Downloader, ExpectedFile, Splits};
use crate::experiment::{Cifar100Labels, DatasetKind};

/// Folder under the data directory (the tarball's own folder name).
pub const FOLDER: &str = "cifar-100-binary";
/// Pixel bytes per image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per record: coarse label, fine label, pixels.
pub const RECORD_BYTES: usize = 2 + IMAGE_BYTES;
/// The training records.
pub const TRAIN_FILE: &str = "train.bin";
/// The test records.
pub const TEST_FILE: &str = "test.bin";
/// Names of the 100 fine classes, one per line (optional: built-in names otherwise).
pub const FINE_NAMES_FILE: &str = "fine_label_names.txt";
/// Names of the 20 coarse classes, one per line (optional: built-in names otherwise).
pub const COARSE_NAMES_FILE: &str = "coarse_label_names.txt";

/// The fine class names by label, as in `fine_label_names.txt` of the official release.
pub const FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// The coarse class names by label, as in `coarse_label_names.txt` of the official release.
pub const COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Loads CIFAR-100 from `data_dir/cifar-100-binary/` with the chosen labels.
pub(crate) fn load(
    data_dir: &Path,
    labels: Cifar100Labels,
    downloader: &Downloader,
) -> Result<Splits, DataError> {
    let dir = data_dir.join(FOLDER);
    let check = || {
        [TRAIN_FILE, TEST_FILE]
            .iter()
            .map(|name| ExpectedFile::at(dir.join(name)))
            .collect()
    };
    ensure_files(&DatasetKind::Cifar100(labels), data_dir, check, downloader)?;
    let classes = read_classes(&dir, labels);
    let read = |name: &str, capacity: usize| -> Result<Dataset, DataError> {
        let mut set = Dataset {
            images: Vec::with_capacity(capacity * IMAGE_BYTES),
            labels: Vec::with_capacity(capacity),
            shape: [3, 32, 32],
            classes: classes.clone(),
        };
        read_records_into(&dir.join(name), labels, &mut set)?;
        Ok(set)
    };
    Ok(Splits {
        train: read(TRAIN_FILE, 50_000)?,
        test: read(TEST_FILE, 10_000)?,
    })
}

/// The class names of `labels`: from the names file under `dir` when it holds the right number
/// of non-empty lines, else the built-in official names.
pub fn read_classes(dir: &Path, labels: Cifar100Labels) -> Vec<String> {
    let (file, builtin): (&str, &[&str]) = match labels {
        Cifar100Labels::Fine => (FINE_NAMES_FILE, &FINE_CLASSES),
        Cifar100Labels::Coarse => (COARSE_NAMES_FILE, &COARSE_CLASSES),
    };
    let path = dir.join(file);
    crate::bounded::read_to_string(&path, 1 << 20)
        .ok()
        .and_then(|text| {
            let names: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if names.len() == builtin.len() {
                Some(names)
            } else {
                tracing::warn!(
                    "{}: expected {} class names, found {}; using the built-in names",
                    path.display(),
                    builtin.len(),
                    names.len()
                );
                None
            }
        })
        .unwrap_or_else(|| builtin.iter().map(|s| s.to_string()).collect())
}

/// Appends the records of `path` to `into` (shape `[3, 32, 32]`), keeping the `labels` byte.
pub fn read_records_into(
    path: &Path,
    labels: Cifar100Labels,
    into: &mut Dataset,
) -> Result<(), DataError> {
    // The training file holds 50,000 records; the cap leaves room for larger ones of the format.
    let bytes = read_file(path, 4 * RECORD_BYTES as u64 * 50_000)?;
    if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
        return Err(DataError::CifarLength {
            path: path.to_path_buf(),
            record: RECORD_BYTES,
            labels: 2,
            len: bytes.len() as u64,
        });
    }
    let (offset, classes) = match labels {
        Cifar100Labels::Coarse => (0, 20),
        Cifar100Labels::Fine => (1, 100),
    };
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        // Both labels are checked, so a file with one corrupt byte is refused either way.
        for (byte, n) in [(record[0], 20), (record[1], 100)] {
            if usize::from(byte) >= n {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    label: byte,
                    classes: n,
                });
            }
        }
        debug_assert!(usize::from(record[offset]) < classes);
        into.labels.push(record[offset]);
        into.images.extend_from_slice(&record[2..]);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` records: coarse label `i % 20`, fine label `(i * 7) % 100`, pixels encoding `i`.
    pub(crate) fn records(n: usize, first: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * RECORD_BYTES);
        for i in first..first + n {
            v.push((i % 20) as u8);
            v.push((i * 7 % 100) as u8);
            v.extend((0..IMAGE_BYTES).map(|p| ((i * 13 + p) % 256) as u8));
        }
        v
    }

    fn write(dir: &Path, train: usize, test: usize) {
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(dir.join(TRAIN_FILE), records(train, 0)).expect("write");
        std::fs::write(dir.join(TEST_FILE), records(test, train)).expect("write");
    }

    #[test]
    fn loads_fine_and_coarse_labels() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(FOLDER);
        write(&dir, 5, 3);
        let none = Downloader::disabled();
        // (labels, expected train labels, expected class count, first class name)
        let cases = [
            (Cifar100Labels::Fine, vec![0, 7, 14, 21, 28], 100, "apple"),
            (
                Cifar100Labels::Coarse,
                vec![0, 1, 2, 3, 4],
                20,
                "aquatic_mammals",
            ),
        ];
        for (labels, want, classes, first) in cases {
            let s = crate::data::load_with(&DatasetKind::Cifar100(labels), tmp.path(), 0, &none)
                .expect("loads");
            assert_eq!(s.train.labels, want, "{labels:?}");
            assert_eq!((s.train.len(), s.test.len()), (5, 3), "{labels:?}");
            assert_eq!(s.train.classes.len(), classes, "{labels:?}");
            assert_eq!(s.train.classes[0], first, "{labels:?}");
            assert_eq!(s.train.shape, [3, 32, 32]);
            // Record 1's pixels, channel-major as stored.
            assert_eq!(&s.train.image(1)[..3], &[13, 14, 15], "{labels:?}");
            assert_eq!(
                s.test.image(0)[0],
                65,
                "{labels:?}: record 5 starts at 5 * 13"
            );
        }
    }

    #[test]
    fn class_names_come_from_the_files_when_they_fit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let names: String = (0..20).map(|i| format!("c{i}\n")).collect();
        std::fs::write(tmp.path().join(COARSE_NAMES_FILE), names).expect("write");
        std::fs::write(tmp.path().join(FINE_NAMES_FILE), "only\ntwo\n").expect("write");
        assert_eq!(read_classes(tmp.path(), Cifar100Labels::Coarse)[19], "c19");
        assert_eq!(
            read_classes(tmp.path(), Cifar100Labels::Fine)[99],
            "worm",
            "a names file of the wrong length falls back to the built-in names"
        );
    }

    #[test]
    fn corrupt_files_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("x.bin");
        let mut bad_fine = records(2, 0);
        bad_fine[RECORD_BYTES + 1] = 100;
        let mut bad_coarse = records(2, 0);
        bad_coarse[0] = 20;
        // (bytes, labels, what the message must say)
        let cases: [(Vec<u8>, Cifar100Labels, &str); 5] = [
            (vec![], Cifar100Labels::Fine, "multiple of 3074 bytes"),
            (
                records(2, 0)[..RECORD_BYTES + 10].to_vec(),
                Cifar100Labels::Fine,
                "found 3084 bytes",
            ),
            (
                bad_fine,
                Cifar100Labels::Fine,
                "label 100 of sample 1 is out of range (expected 0..100)",
            ),
            (
                bad_coarse.clone(),
                Cifar100Labels::Coarse,
                "label 20 of sample 0 is out of range (expected 0..20)",
            ),
            (
                bad_coarse,
                Cifar100Labels::Fine,
                "label 20 of sample 0 is out of range (expected 0..20)",
            ),
        ];
        for (bytes, labels, needle) in cases {
            std::fs::write(&path, &bytes).expect("write");
            let mut set = Dataset {
                images: vec![],
                labels: vec![],
                shape: [3, 32, 32],
                classes: vec![],
            };
            let err = read_records_into(&path, labels, &mut set).expect_err(needle);
            let text = err.to_string();
            assert!(text.contains(needle), "{needle}: {text}");
            assert!(text.contains("x.bin"), "{text}");
        }
    }

    #[test]
    fn missing_files_are_listed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = crate::data::load_with(
            &DatasetKind::Cifar100(Cifar100Labels::Fine),
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect_err("missing");
        let text = err.to_string();
        assert!(text.contains("data set `cifar100`: 2 of 2 files"), "{text}");
        assert!(text.contains("cifar-100-binary/train.bin"), "{text}");
    }
}
