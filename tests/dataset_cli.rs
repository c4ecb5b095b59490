//! `runner show-data` and `runner export-images` on small files in the official formats of
//! SVHN (`.mat`, the scipy-written fixture of `scripts/svhn_fixture.py`) and STL-10 (binary,
//! written here): every pixel of the first images is where the data set's layout says.

mod common;
use common::{runner, text};

use std::path::{Path, PathBuf};

use runner::check::check_str;
use runner::plot::{data_figure, Picture, Split};

/// The pixel pattern of both fixtures: (image i, channel c, row y, column x).
fn pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
    ((i + 3 * c + 5 * y + 7 * x) % 256) as u8
}

/// The SVHN fixture's data directory (holds `svhn/`).
fn svhn_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/svhn")
}

/// Writes STL-10's four labelled files under `data_dir/stl10_binary/`: each plane
/// column-major, labels 1..=10 as the release stores them.
fn write_stl10(data_dir: &Path, train: usize, test: usize) {
    let dir = data_dir.join("stl10_binary");
    std::fs::create_dir_all(&dir).unwrap();
    let images = |n: usize| {
        let mut v = Vec::with_capacity(n * 3 * 96 * 96);
        for i in 0..n {
            for c in 0..3 {
                for x in 0..96 {
                    for y in 0..96 {
                        v.push(pixel(i, c, y, x));
                    }
                }
            }
        }
        v
    };
    let labels = |n: usize| (0..n).map(|i| (i % 10 + 1) as u8).collect::<Vec<u8>>();
    std::fs::write(dir.join("train_X.bin"), images(train)).unwrap();
    std::fs::write(dir.join("train_y.bin"), labels(train)).unwrap();
    std::fs::write(dir.join("test_X.bin"), images(test)).unwrap();
    std::fs::write(dir.join("test_y.bin"), labels(test)).unwrap();
}

/// A small experiment on `dataset` (no transforms), written to `dir/<dataset>.toml`.
fn experiment(dir: &Path, dataset: &str) -> PathBuf {
    let toml = format!(
        r#"name = "{dataset}_show"
seed = 1
[data]
dataset = "{dataset}"
[model]
layers = [{{ op = "flatten" }}, {{ op = "linear", out = 10 }}]
[train]
epochs = 1
optimizer = {{ kind = "sgd", lr = 0.1 }}
"#
    );
    let path = dir.join(format!("{dataset}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs `show-data` on `dataset` from `data_dir`, then checks that cell i of the PNG shows
/// image i of `split` with [`pixel`]'s values, at the places the grid layout gives.
fn show_data_shows_the_images(dataset: &str, side: usize, data_dir: &Path, split: Split) {
    let out = tempfile::tempdir().unwrap();
    let file = experiment(out.path(), dataset);
    let png = out.path().join("grid.png");
    let count = 3;
    let o = runner(&[
        "show-data",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--split",
        split.name(),
        "--count",
        &count.to_string(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{dataset}: {}", text(&o));
    let pic = Picture::from_png(&std::fs::read(&png).unwrap()).unwrap();
    // The layout of the same figure, drawn in-process from the same files.
    let toml = std::fs::read_to_string(&file).unwrap();
    let checked = check_str("x.toml", &toml, "x");
    let (exp, _) = checked.result.expect("valid experiment");
    let data = runner::data::load_experiment(exp.data(), data_dir, exp.seed())
        .unwrap()
        .take(split)
        .unwrap();
    let figure = data_figure(&exp, &data, split, count).unwrap();
    assert_eq!(
        (figure.picture.width, figure.picture.height),
        (pic.width, pic.height)
    );
    let l = figure.layouts[0];
    for i in 0..count {
        let (ox, oy) = l.image_origin(i);
        for (y, x) in [(0, 0), (0, 1), (1, 0), (side - 1, side - 2), (side / 2, 3)] {
            let got = pic.pixel(ox + x as u32 * l.scale, oy + y as u32 * l.scale);
            let want = [pixel(i, 0, y, x), pixel(i, 1, y, x), pixel(i, 2, y, x)];
            assert_eq!(got, want, "{dataset} image {i} pixel (row {y}, column {x})");
        }
    }
}

#[test]
fn show_data_on_svhn_mat_files() {
    show_data_shows_the_images("svhn", 32, &svhn_data(), Split::Train);
    show_data_shows_the_images("svhn", 32, &svhn_data(), Split::Test);
}

#[test]
fn show_data_on_stl10_binary_files() {
    let data = tempfile::tempdir().unwrap();
    write_stl10(data.path(), 4, 3);
    show_data_shows_the_images("stl10", 96, data.path(), Split::Train);
    show_data_shows_the_images("stl10", 96, data.path(), Split::Test);
}

#[test]
fn show_data_on_a_corrupt_svhn_file_is_one_error_and_no_picture() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("svhn");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["train_32x32.mat", "test_32x32.mat"] {
        std::fs::copy(svhn_data().join("svhn").join(name), dir.join(name)).unwrap();
    }
    let train = dir.join("train_32x32.mat");
    let bytes = std::fs::read(&train).unwrap();
    // Cut inside the compressed `X`.
    std::fs::write(&train, &bytes[..600]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = experiment(out.path(), "svhn");
    let png = out.path().join("grid.png");
    let o = runner(&[
        "show-data",
        file.to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("error:").count(), 1, "{t}");
    assert!(
        t.contains("train_32x32.mat") && t.contains("truncated") && !t.contains("panicked"),
        "{t}"
    );
    assert!(!png.exists());
}

#[test]
fn export_images_writes_svhn_as_an_image_folder_of_digits() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("svhn-png");
    let o = runner(&[
        "export-images",
        "svhn",
        "--data-dir",
        svhn_data().to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("wrote 12 training and 3 test images of `svhn` (10 classes, 3x32x32)"),
        "{t}"
    );
    // Class folders are the digits; label 10 of the file is digit 0.
    let mut folders: Vec<String> = std::fs::read_dir(dest.join("train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    // Test image 0 has label 10: it is the only image of test/0/.
    let zero: Vec<PathBuf> = std::fs::read_dir(dest.join("test/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(zero.len(), 1, "{zero:?}");
    let img = image::open(&zero[0]).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (32, 32));
    for (y, x) in [(0, 0), (0, 1), (1, 0), (31, 30), (17, 4)] {
        let want = [pixel(0, 0, y, x), pixel(0, 1, y, x), pixel(0, 2, y, x)];
        assert_eq!(img.get_pixel(x as u32, y as u32).0, want, "({y}, {x})");
    }
}
