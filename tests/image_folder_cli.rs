//! `dataset = "image_folder"` and `runner export-images` from the command line: a data set
//! exported as PNGs reads back as the same images and labels, `runner check` lists the folder
//! without decoding it, and a second load decodes nothing.

mod common;
use common::{runner, text};

use std::path::Path;

use runner::experiment::{DatasetKind, FolderSpec, OnCorrupt, SyntheticSpec, TestSource};

/// `runner export-images synthetic --out <tmp>/out`, asserted to succeed.
fn export_synthetic(tmp: &Path) {
    let out = tmp.join("out");
    let o = runner(&[
        "export-images",
        "synthetic",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("wrote 512 training and 256 test images"),
        "{}",
        text(&o)
    );
}

/// An experiment over the exported folder with the model's last layer `out` wide and the
/// `[data.image_folder]` lines `extra`.
fn experiment(tmp: &Path, out: usize, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
name = "folder_demo"
[data]
dataset = "image_folder"
batch_size = 32
[data.image_folder]
path = "out/train"
test_path = "out/test"
image_size = [8, 8]
channels = 1
{extra}
[model]
layers = [{{ op = "flatten" }}, {{ op = "linear", out = {out} }}]
[train]
epochs = 1
"#
    );
    let path = tmp.join(format!("folder_{out}.toml"));
    std::fs::write(&path, text).expect("write experiment");
    path
}

#[test]
fn an_exported_data_set_reads_back_as_the_same_images_and_labels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    export_synthetic(tmp.path());
    let out = tmp.path().join("out");
    let pngs = |split: &str| -> usize {
        (0..4)
            .map(|c| {
                std::fs::read_dir(out.join(split).join(format!("class{c}")))
                    .expect("a folder per class")
                    .filter(|e| {
                        let name = e.as_ref().expect("entry").file_name();
                        let name = name.to_string_lossy();
                        name.len() == 7 && name.ends_with(".png")
                    })
                    .count()
            })
            .sum()
    };
    assert_eq!(
        pngs("train"),
        512,
        "train/<class>/<index>.png, index of 3 digits"
    );
    assert_eq!(pngs("test"), 256);
    let again = runner(&[
        "export-images",
        "synthetic",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second export refuses to mix: {}",
        text(&again)
    );
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    let synthetic = DatasetKind::Synthetic(SyntheticSpec {
        shape: [1, 8, 8],
        classes: 4,
        train_size: 512,
        test_size: 256,
    });
    let original = runner::data::load(&synthetic, Path::new("unused"), 0).expect("generated");
    let folder = DatasetKind::ImageFolder(FolderSpec {
        path: "out/train".into(),
        test: TestSource::Path("out/test".into()),
        shape: [1, 8, 8],
        classes: Some(4),
        on_corrupt: OnCorrupt::Error,
    });
    let read = runner::data::load(&folder, tmp.path(), 0).expect("the folder loads");
    for (orig, back, split) in [
        (&original.train, &read.train, "train"),
        (&original.test, &read.test, "test"),
    ] {
        assert_eq!(back.classes, orig.classes, "{split}: class names");
        // The folder is read class by class, each class in the split's order.
        let mut order: Vec<usize> = (0..orig.len()).collect();
        order.sort_by_key(|&i| orig.labels[i]);
        assert_eq!(back.len(), orig.len(), "{split}: count");
        for (j, &i) in order.iter().enumerate() {
            assert_eq!(back.labels[j], orig.labels[i], "{split} image {i}: label");
            assert_eq!(back.image(j), orig.image(i), "{split} image {i}: pixels");
        }
    }
}

#[test]
fn check_lists_the_folder_and_flags_a_model_that_does_not_fit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    export_synthetic(tmp.path());
    let dir = tmp.path().to_str().expect("utf8");
    let fits = experiment(tmp.path(), 4, "");
    let o = runner(&[
        "check",
        "-q",
        "--data-dir",
        dir,
        fits.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("data: 512 training images in 4 classes (class0, class1, class2, class3)")
            && t.contains("first image 8x8, input [1, 8, 8]"),
        "{t}"
    );
    assert!(
        !tmp.path().join(runner::data::folder::CACHE_DIR).exists(),
        "check decodes nothing"
    );

    let wide = experiment(tmp.path(), 3, "");
    let o = runner(&[
        "check",
        "-q",
        "--data-dir",
        dir,
        wide.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("the model outputs [3] per image, but") && t.contains("has 4 classes"),
        "{t}"
    );
    assert!(
        t.contains("folder_3.toml:13:"),
        "points at the last layer: {t}"
    );

    let declared = experiment(tmp.path(), 5, "classes = 5");
    let o = runner(&[
        "check",
        "-q",
        "--data-dir",
        dir,
        declared.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("4 classes found, but the experiment declares `classes = 5`"),
        "{t}"
    );

    // Without the data, the declared classes and image size are what is checked.
    let empty = tempfile::tempdir().expect("tempdir");
    let e = empty.path().to_str().expect("utf8");
    let o = runner(&[
        "check",
        "-q",
        "--data-dir",
        e,
        declared.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not found; checked with the declared `classes = 5`"),
        "{}",
        text(&o)
    );
    let o = runner(&["check", "-q", "--data-dir", e, wide.to_str().expect("utf8")]);
    assert!(
        o.status.success(),
        "no classes declared, no data: {}",
        text(&o)
    );
}

#[test]
fn a_second_run_decodes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    export_synthetic(tmp.path());
    let dir = tmp.path().to_str().expect("utf8");
    let file = experiment(tmp.path(), 4, "");
    let results = tmp.path().join("results");
    let run = || {
        let o = runner(&[
            file.to_str().expect("utf8"),
            "--data-dir",
            dir,
            "--out",
            results.to_str().expect("utf8"),
            "--plain",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let first = run();
    assert!(
        first.contains("train images of") && first.contains("512 images decoded"),
        "{first}"
    );
    assert!(first.contains("256 images decoded"), "{first}");
    let second = run();
    assert!(
        second.contains("cache hit, 0 images decoded (512 images"),
        "{second}"
    );
    assert!(
        second.contains("cache hit, 0 images decoded (256 images"),
        "{second}"
    );
    assert!(!second.contains("images decoded;"), "{second}");
}

#[test]
fn example_experiment_checks_without_data() {
    let empty = tempfile::tempdir().expect("tempdir");
    let o = runner(&[
        "check",
        "--data-dir",
        empty.path().to_str().expect("utf8"),
        "experiments/image_folder_example.toml",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("on image_folder"), "{}", text(&o));
}

#[test]
fn export_images_takes_an_experiment_and_names_what_it_cannot_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("demo");
    let o = runner(&[
        "export-images",
        "experiments/synthetic_demo.toml",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1x12x12"), "{}", text(&o));
    assert!(out.join("test/class0").is_dir());

    let two = tmp.path().join("two");
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec![
                "export-images",
                "experiments/synthetic_demo.toml",
                "--set",
                "data.synthetic.shape=[2, 4, 4]",
                "--out",
                two.to_str().expect("utf8"),
            ],
            "2 channels cannot be exported as PNG",
        ),
        (
            vec![
                "export-images",
                "imagenet",
                "--out",
                two.to_str().expect("utf8"),
            ],
            "neither a data set",
        ),
        (
            vec![
                "export-images",
                "image_folder",
                "--out",
                two.to_str().expect("utf8"),
            ],
            "give an experiment file",
        ),
    ];
    for (args, want) in cases {
        let o = runner(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    assert!(
        !two.join("train").exists(),
        "nothing written for a refused export"
    );
}
