//! `runner predict`: a run's test images saved as image files get the classes its
//! `predictions.png` shows; every format, shape and failure is an answer or a named error.

mod common;
use common::{runner, text, train_demo};

use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use runner::data::Dataset;
use runner::experiment::Experiment;

/// One epoch at a small learning rate: the demo's model still gets some test images wrong
/// (7 of the 24 that `predictions.png` shows, at the time of writing), so agreeing with the
/// picture means more than agreeing with the labels.
const UNDERTRAINED: [&str; 2] = ["train.epochs=1", "train.optimizer.lr=0.003"];

/// The run's experiment (from its `config.toml`) and its test images.
fn experiment_and_test(dir: &Path) -> (Experiment, Dataset) {
    let checked = runner::check::check_file(&dir.join("config.toml"));
    let (exp, _) = checked.result.expect("the run's config.toml checks");
    let splits = runner::data::load(&exp.data().dataset, Path::new("unused"), exp.seed())
        .expect("synthetic data");
    (exp, splits.test)
}

/// Test image `i` of `test` (one grey channel) as an 8-bit grey image of its own size.
fn grey(test: &Dataset, i: usize) -> GrayImage {
    let [c, h, w] = test.shape;
    assert_eq!(c, 1, "the demo's images are grey");
    GrayImage::from_raw(w as u32, h as u32, test.image(i).to_vec()).expect("one image")
}

/// The class columns of a `runner predict` CSV: one row per image, in order, as label indices.
fn csv_classes(stdout: &[u8], test: &Dataset) -> Vec<(String, u32)> {
    let mut r = csv::Reader::from_reader(stdout);
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "file",
            "class",
            "probability",
            "top2_class",
            "top2_probability",
            "top3_class",
            "top3_probability",
            "top4_class",
            "top4_probability",
            "error"
        ],
        "the default top 5, capped at the demo's 4 classes"
    );
    r.records()
        .map(|row| {
            let row = row.expect("a row");
            assert_eq!(&row[9], "", "no error: {row:?}");
            let probabilities: f64 = (0..4)
                .map(|k| row[2 + 2 * k].parse::<f64>().expect("p"))
                .sum();
            assert!((probabilities - 1.0).abs() < 1e-5, "{row:?}");
            let index = test
                .classes
                .iter()
                .position(|c| c == &row[1])
                .unwrap_or_else(|| panic!("unknown class in {row:?}"));
            (row[0].to_string(), index as u32)
        })
        .collect()
}

#[test]
fn predict_gives_the_classes_that_predictions_png_shows() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &UNDERTRAINED);
    let (exp, test) = experiment_and_test(&dir);
    // predictions.png shows the first 24 test images (runner::plot::PREDICTION_COUNT).
    let shown = root.path().join("shown");
    std::fs::create_dir(&shown).expect("mkdir");
    for i in 0..24 {
        grey(&test, i)
            .save(shown.join(format!("test-{i:02}.png")))
            .expect("save png");
    }
    std::fs::write(shown.join("notes.txt"), "not an image").expect("write");

    let dir_s = dir.to_str().expect("utf8");
    let o = runner(&["predict", dir_s, shown.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("skipped 1 entry that is not") && stderr.contains("notes.txt"),
        "{stderr}"
    );
    let rows = csv_classes(&o.stdout, &test);
    let files: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
    let want: Vec<String> = (0..24)
        .map(|i| shown.join(format!("test-{i:02}.png")).display().to_string())
        .collect();
    assert_eq!(
        files, want,
        "a folder's images, sorted by name, the rest skipped"
    );
    let predicted: Vec<u32> = rows.iter().map(|&(_, c)| c).collect();
    let truth: Vec<u32> = test.labels[..24].iter().map(|&l| u32::from(l)).collect();
    assert_ne!(predicted, truth, "the undertrained model makes mistakes");

    // Drawn with these classes, the picture is the run's predictions.png, byte for byte.
    let redrawn = runner::plot::predictions_figure(&exp, &test, &predicted, 24)
        .expect("draw")
        .png()
        .expect("encode");
    assert!(
        redrawn == std::fs::read(dir.join("predictions.png")).expect("predictions.png"),
        "runner predict disagrees with predictions.png: {predicted:?}"
    );

    // One file: a table, or JSON; the top-k is capped at the 4 classes.
    let first = shown.join("test-03.png");
    let name = |c: u32| test.classes[c as usize].clone();
    let o = runner(&[
        "predict",
        dir_s,
        first.to_str().expect("utf8"),
        "--top-k",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header and two ranks: {stdout}");
    assert!(lines[0].starts_with("file") && lines[0].ends_with("probability"));
    assert!(lines[1].contains("test-03.png"), "{stdout}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[1..3], ["1", &name(predicted[3])], "{stdout}");
    let j = runner(&[
        "predict",
        dir_s,
        first.to_str().expect("utf8"),
        "--json",
        "--top-k",
        "9",
    ]);
    assert!(j.status.success(), "{}", text(&j));
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("stdout is JSON");
    let top = v[0]["top"].as_array().expect("top");
    assert_eq!(top.len(), 4, "--top-k 9 of 4 classes: {v}");
    assert_eq!(top[0]["class"], name(predicted[3]));
    assert_eq!(top[0]["index"], predicted[3]);
    assert_eq!(top[0]["rank"], 1);
    assert_eq!(v[0]["file"], first.display().to_string());
}

#[test]
fn predict_reads_every_format_and_names_every_bad_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = train_demo(root.path(), &UNDERTRAINED);
    let (_, test) = experiment_and_test(&dir);
    let dir_s = dir.to_str().expect("utf8");
    let files = root.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    let image = grey(&test, 0);
    let path = |name: &str| files.join(name).to_str().expect("utf8").to_string();
    image.save(path("a.png")).expect("png");
    // The same pixels as RGB in lossless WebP (grey to luma is exact), then as a larger RGB
    // JPEG, which is resized to 12x12.
    let rgb = DynamicImage::ImageLuma8(image.clone()).to_rgb8();
    rgb.save_with_format(path("b.webp"), ImageFormat::WebP)
        .expect("webp");
    let big = image::imageops::resize(&rgb, 48, 36, image::imageops::FilterType::Nearest);
    RgbImage::from(big)
        .save_with_format(path("c.jpg"), ImageFormat::Jpeg)
        .expect("jpeg");

    let o = runner(&[
        "predict",
        dir_s,
        &path("a.png"),
        &path("b.webp"),
        &path("c.jpg"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let answers = v.as_array().expect("an array");
    assert_eq!(answers.len(), 3, "{v}");
    assert_eq!(
        answers[0]["top"], answers[1]["top"],
        "a lossless WebP of the same pixels gives the same answer"
    );
    for a in answers {
        assert_eq!(a["top"].as_array().map(Vec::len), Some(4), "{a}");
    }

    // A corrupt file among good ones: the others are answered, the bad one named, exit 2.
    let png = std::fs::read(path("a.png")).expect("read");
    std::fs::write(path("d.png"), &png[..png.len() / 2]).expect("write");
    let out = root.path().join("answers.csv");
    let o = runner(&[
        "predict",
        dir_s,
        files.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("d.png: corrupt or truncated PNG data"),
        "{all}"
    );
    assert!(all.contains("3 of 4 images predicted ->"), "{all}");
    assert!(all.contains("1 of 4 images could not be read"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    let csv = std::fs::read_to_string(&out).expect("the CSV is written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[4].contains("d.png,,,,,,,,,corrupt or truncated PNG data"),
        "{csv}"
    );

    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("readme.md"), "no images").expect("write");
    let text_file = path("e.txt");
    std::fs::write(&text_file, "hello").expect("write");
    let missing = root.path().join("missing.png");
    let weights = dir.join("model.safetensors");
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "a folder without images",
            vec!["predict", dir_s, empty.to_str().expect("utf8")],
            "holds no image file (.png, .jpg, .jpeg, .webp, .bmp)",
        ),
        (
            "a text file named as an image",
            vec!["predict", dir_s, &text_file],
            "not a PNG, JPEG, WebP or BMP image",
        ),
        (
            "a missing file",
            vec!["predict", dir_s, missing.to_str().expect("utf8")],
            "missing.png: cannot read it: no such file",
        ),
        (
            "a top-k of 0",
            vec!["predict", dir_s, &text_file, "--top-k", "0"],
            "--top-k",
        ),
        (
            "bare weights without an experiment",
            vec!["predict", weights.to_str().expect("utf8"), &text_file],
            "--experiment FILE",
        ),
    ];
    for (what, args, message) in cases {
        let o = runner(&args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {all}");
        assert!(
            all.contains(message),
            "{what}: expected {message:?} in {all}"
        );
        assert!(!all.contains("panicked"), "{what}: {all}");
        assert!(o.stdout.is_empty(), "{what}: nothing on stdout: {all}");
    }
}
