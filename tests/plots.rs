//! Pictures: grids put image i in cell i (checked pixel by pixel), confusion counts, expected
//! sizes, nothing blank, and the files `runner FILE`, `runner show-data` and `runner plot` write.

mod common;
use common::{runner, text};

use std::path::{Path, PathBuf};

use runner::check::check_str;
use runner::data::transform::pixel_permutation;
use runner::data::Dataset;
use runner::experiment::Experiment;
use runner::plot::curves::{curves_png, curves_svg, CURVES_SIZE};
use runner::plot::grid::MARGIN;
use runner::plot::{
    confusion::confusion_png, data_figure, plot_comparison, predictions_figure, ComparedRun,
    ConfusionMatrix, Picture, Split,
};
use runner::report::{EpochMetrics, Summary};

/// A synthetic experiment with `transforms` for both splits.
fn synthetic(shape: [usize; 3], classes: usize, transforms: &str) -> (Experiment, String) {
    let toml = format!(
        r#"name = "pics"
seed = 3
[data]
dataset = "synthetic"
batch_size = 16
test_batch_size = 64
synthetic = {{ shape = {shape:?}, classes = {classes}, train_size = 64, test_size = 48 }}
train_transforms = {transforms}
test_transforms = {transforms}
[model]
layers = [{{ op = "flatten" }}, {{ op = "linear", out = {classes} }}]
[train]
epochs = 2
optimizer = {{ kind = "sgd", lr = 0.05 }}
"#
    );
    let checked = check_str("pics.toml", &toml, "pics");
    let (exp, _) = checked
        .result
        .unwrap_or_else(|| panic!("valid experiment: {:?}", checked.diagnostics));
    (exp, toml)
}

fn data(exp: &Experiment, split: Split) -> Dataset {
    runner::data::load_experiment(exp.data(), Path::new("unused"), exp.seed())
        .unwrap()
        .take(split)
        .expect("the split exists")
}

/// Byte `i` of channel `c` of a CHW image.
fn chw(img: &[u8], [_, h, w]: [usize; 3], c: usize, i: usize) -> u8 {
    img[c * h * w + i]
}

/// Asserts that the enlarged copy of `expect` (per-pixel RGB from a function of the pixel index)
/// sits at `origin` in `pic`, every screen pixel of every block, within `tol`.
fn assert_block(
    pic: &Picture,
    origin: (u32, u32),
    scale: u32,
    [h, w]: [usize; 2],
    tol: u8,
    expect: impl Fn(usize) -> [u8; 3],
    what: &str,
) {
    for y in 0..h {
        for x in 0..w {
            let want = expect(y * w + x);
            for dy in 0..scale {
                for dx in 0..scale {
                    let px = origin.0 + x as u32 * scale + dx;
                    let py = origin.1 + y as u32 * scale + dy;
                    let got = pic.pixel(px, py);
                    let close = got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= tol);
                    assert!(
                        close,
                        "{what}: source pixel ({x}, {y}) at ({px}, {py}): got {got:?}, want {want:?}"
                    );
                }
            }
        }
    }
}

/// Fraction of pixels that are not the (white) background, and distinct colours.
fn ink(pic: &Picture) -> (f64, usize) {
    let n = (pic.width * pic.height) as usize;
    let white = pic
        .pixels
        .chunks_exact(3)
        .filter(|p| p == &[255, 255, 255])
        .count();
    (1.0 - white as f64 / n as f64, pic.distinct_colors())
}

fn assert_not_blank(pic: &Picture, what: &str) {
    let (ink, colours) = ink(pic);
    assert!(ink > 0.02, "{what}: only {:.2}% drawn", ink * 100.0);
    assert!(colours > 20, "{what}: only {colours} colours");
}

/// The trimmed contents of every `<text>` element of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

fn decode(path: &Path) -> Picture {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Picture::from_png(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn grid_places_image_i_at_cell_i() {
    // Non-square RGB images, so a swapped axis or channel shows.
    let (exp, _) = synthetic([3, 7, 11], 4, "[]");
    let test = data(&exp, Split::Test);
    let count = 13;
    let fig = data_figure(&exp, &test, Split::Test, count).unwrap();
    let pic = Picture::from_png(&fig.picture.png().unwrap()).unwrap();
    assert_eq!(fig.layouts.len(), 1, "no permutation: one panel");
    let l = fig.layouts[0];
    assert_eq!((l.cols, l.rows), (4, 4), "13 images: 4 columns");
    for i in 0..count {
        let img = test.image(i);
        let s = test.shape;
        assert_block(
            &pic,
            l.image_origin(i),
            l.scale,
            [7, 11],
            0,
            |p| [chw(img, s, 0, p), chw(img, s, 1, p), chw(img, s, 2, p)],
            &format!("cell {i}"),
        );
    }
    // The cell after the last image is empty.
    let (x, y) = l.image_origin(count);
    assert_eq!(pic.pixel(x + 3, y + 3), [255, 255, 255]);
}

#[test]
fn grid_undoes_normalisation_and_shows_permuted_images_beside_the_originals() {
    let transforms = r#"[{ op = "normalize", mean = [0.3], std = [0.2] }, { op = "pixel_permutation", seed = 9 }]"#;
    let (exp, _) = synthetic([1, 6, 5], 3, transforms);
    let train = data(&exp, Split::Train);
    let fig = data_figure(&exp, &train, Split::Train, 20).unwrap();
    let pic = Picture::from_png(&fig.picture.png().unwrap()).unwrap();
    assert_eq!(fig.layouts.len(), 2, "originals and permuted");
    let (orig, perm) = (fig.layouts[0], fig.layouts[1]);
    assert!(perm.left >= orig.left + orig.width(), "side by side");
    assert_eq!(
        (orig.cols, orig.rows),
        (5, 4),
        "20 images: 5 x 4 as in the seed"
    );
    let p = pixel_permutation(30, 9);
    for i in 0..20 {
        let img = train.image(i);
        let grey = |v: u8| [v, v, v];
        // Normalised and denormalised: within one grey level of the raw bytes.
        assert_block(
            &pic,
            orig.image_origin(i),
            orig.scale,
            [6, 5],
            1,
            |k| grey(img[k]),
            &format!("original {i}"),
        );
        assert_block(
            &pic,
            perm.image_origin(i),
            perm.scale,
            [6, 5],
            1,
            |k| grey(img[p[k] as usize]),
            &format!("permuted {i}"),
        );
    }
}

#[test]
fn grid_sizes_follow_the_layout() {
    let (exp, _) = synthetic([1, 28, 28], 10, "[]");
    let train = data(&exp, Split::Train);
    let fig = data_figure(&exp, &train, Split::Train, 20).unwrap();
    let l = fig.layouts[0];
    assert_eq!(l.scale, 3, "28 px images are shown 3x");
    assert_eq!((l.image_w, l.image_h), (84, 84));
    assert_eq!(fig.picture.width, l.left + l.width() + MARGIN);
    assert_eq!(fig.picture.height, l.top + l.height() + MARGIN);
    let png = Picture::from_png(&fig.picture.png().unwrap()).unwrap();
    assert_eq!(
        (png.width, png.height),
        (fig.picture.width, fig.picture.height)
    );
    assert_not_blank(&png, "data grid");
}

#[test]
fn confusion_counts_of_a_known_prediction_set() {
    let classes: Vec<String> = ["cat", "dog", "bird", "fish"].map(String::from).to_vec();
    // Class 0: 3 right, 1 as dog; class 1: 2 right; class 2: 1 as cat, 1 as fish; class 3: none.
    let truth = [0, 0, 0, 0, 1, 1, 2, 2];
    let pred = [0, 1, 0, 0, 1, 1, 0, 3];
    let cm = ConfusionMatrix::from_predictions(&classes, &truth, &pred);
    #[rustfmt::skip]
    let want: [u64; 16] = [
        3, 1, 0, 0,
        0, 2, 0, 0,
        1, 0, 0, 1,
        0, 0, 0, 0,
    ];
    assert_eq!(cm.counts, want);
    assert_eq!((cm.row_total(0), cm.row_total(3), cm.total()), (4, 0, 8));
    assert!((cm.accuracy() - 62.5).abs() < 1e-9);
    let pic = confusion_png("known", &cm).unwrap();
    assert_not_blank(&pic, "confusion matrix");
    // The darkest shade is used: cell (1, 1) holds all of its row.
    let darkest = pic.pixels.chunks_exact(3).any(|p| p == [8, 48, 107]);
    assert!(darkest, "a full row is shaded dark blue");
}

fn metrics(epochs: usize, offset: f64) -> Vec<EpochMetrics> {
    (1..=epochs)
        .map(|e| {
            let x = e as f64;
            EpochMetrics {
                epoch: e,
                train_loss: 1.5 / x + offset,
                train_acc: 60.0 + 8.0 * x - offset,
                test_loss: 1.2 / x + offset,
                test_acc: 65.0 + 7.0 * x - offset,
                lr: 0.1,
                seconds: 1.0,
                train_images_per_sec: 1000.0,
                eval_images_per_sec: 2000.0,
                val_loss: None,
                val_acc: None,
                ema_test_loss: None,
                ema_test_acc: None,
            }
        })
        .collect()
}

fn summary(name: &str, m: &[EpochMetrics]) -> Summary {
    let last = m.last().unwrap();
    Summary {
        experiment: name.into(),
        run_id: "20261127-000000".into(),
        seed: 0,
        device: "cpu".into(),
        params: 100,
        epochs: m.len(),
        train_images: 1000,
        test_acc: last.test_acc,
        best_test_acc: last.test_acc,
        best_epoch: m.len(),
        final_train_loss: last.train_loss,
        final_test_loss: last.test_loss,
        seconds: 1.0,
        train_images_per_sec: 1000.0,
        flags: String::new(),
        selected_on: "test".into(),
        best_val_acc: None,
        stop_reason: String::new(),
    }
}

#[test]
fn curves_have_their_size_and_are_drawn_for_one_epoch_or_many() {
    for epochs in [1, 4, 60] {
        let m = metrics(epochs, 0.0);
        let pic = curves_png("exp", &m).unwrap();
        assert_eq!((pic.width, pic.height), CURVES_SIZE);
        assert_not_blank(&pic, &format!("curves, {epochs} epochs"));
        // The train (blue) and test (orange) lines are there.
        for colour in [[31, 119, 180], [255, 127, 14]] {
            let n = pic.pixels.chunks_exact(3).filter(|p| *p == colour).count();
            assert!(n > 30, "{epochs} epochs: {n} pixels of {colour:?}");
        }
        let svg = curves_svg("exp", &m).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        let texts = svg_texts(&svg);
        for t in ["epoch", "accuracy (%)", "loss", "train", "test"] {
            assert!(texts.iter().any(|x| x == t), "{t} missing from {texts:?}");
        }
        assert!(svg.contains("<polyline") || svg.contains("<path"));
    }
    assert!(
        curves_png("exp", &[]).is_err(),
        "no epoch: an error, not a blank picture"
    );
}

#[test]
fn predictions_mark_mistakes() {
    let (exp, _) = synthetic([1, 8, 8], 3, "[]");
    let test = data(&exp, Split::Test);
    let truth: Vec<u32> = test.labels.iter().map(|&l| u32::from(l)).collect();
    let red = |p: &Picture| {
        p.pixels
            .chunks_exact(3)
            .filter(|p| *p == [214, 39, 40])
            .count()
    };
    let all_right = predictions_figure(&exp, &test, &truth, 24).unwrap();
    assert_not_blank(&all_right, "predictions");
    assert_eq!(red(&all_right), 0, "no mistake, no red");
    let mut wrong = truth.clone();
    wrong[0] = (wrong[0] + 1) % 3;
    let one_wrong = predictions_figure(&exp, &test, &wrong, 24).unwrap();
    assert_eq!(
        (one_wrong.width, one_wrong.height),
        (all_right.width, all_right.height)
    );
    assert!(red(&one_wrong) > 100, "the mistake is framed in red");
}

#[test]
fn comparison_pictures() {
    let out = tempfile::tempdir().unwrap();
    let runs: Vec<ComparedRun> = [("lr=0.1", 0.0), ("lr=0.01", 5.0), ("lr=0.001", 12.0)]
        .iter()
        .map(|(label, off)| {
            let m = metrics(5, *off);
            (label.to_string(), m.clone(), summary("exp", &m))
        })
        .collect();
    let paths = plot_comparison(&runs, out.path()).unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "compare_curves.png",
            "compare_curves.svg",
            "compare_accuracy.png"
        ]
    );
    let curves = decode(&paths[0]);
    assert_not_blank(&curves, "compare curves");
    let bars = decode(&paths[2]);
    assert_not_blank(&bars, "compare accuracy");
    // One colour per run, in both pictures.
    for colour in [[31, 119, 180], [255, 127, 14], [44, 160, 44]] {
        for (pic, what) in [(&curves, "curves"), (&bars, "bars")] {
            let n = pic.pixels.chunks_exact(3).filter(|p| *p == colour).count();
            assert!(n > 30, "{what}: {n} pixels of {colour:?}");
        }
    }
    let texts = svg_texts(&std::fs::read_to_string(&paths[1]).unwrap());
    for label in ["lr=0.1", "lr=0.01", "lr=0.001"] {
        assert!(
            texts.iter().any(|t| t == label),
            "legend has {label}: {texts:?}"
        );
    }
    assert!(plot_comparison(&[], out.path()).is_err());
}

/// The single run directory under `root/<experiment>/`.
fn run_dir(root: &Path, experiment: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root.join(experiment))
        .expect("experiment folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run expected in {}", root.display());
    dirs.into_iter().next().expect("one run")
}

#[test]
fn a_run_draws_its_plots_and_runner_plot_compares_runs() {
    let out = tempfile::tempdir().unwrap();
    let root = out.path().to_str().unwrap();
    let o = runner(&["experiments/synthetic_demo.toml", "--out", root, "--plain"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let dir = run_dir(out.path(), "synthetic_demo");
    let sizes = [
        ("curves.png", Some(CURVES_SIZE)),
        ("confusion.png", None),
        ("predictions.png", None),
    ];
    for (name, size) in sizes {
        let pic = decode(&dir.join(name));
        if let Some(s) = size {
            assert_eq!((pic.width, pic.height), s, "{name}");
        }
        assert!(
            pic.width >= 300 && pic.height >= 300,
            "{name}: {}x{}",
            pic.width,
            pic.height
        );
        assert_not_blank(&pic, name);
    }
    let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));

    // A second run of another experiment, then the comparison of both.
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/synthetic_demo.toml"),
    )
    .unwrap()
    .replace("name = \"synthetic_demo\"", "name = \"synthetic_slow\"")
    .replace("lr = 0.05", "lr = 0.005");
    let file = out.path().join("slow.toml");
    std::fs::write(&file, body).unwrap();
    let o = runner(&[
        file.to_str().unwrap(),
        "--out",
        root,
        "--plain",
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let slow = run_dir(out.path(), "synthetic_slow");

    let cmp = out.path().join("cmp");
    let o = runner(&[
        "plot",
        dir.to_str().unwrap(),
        // A folder of runs is expanded to its runs.
        out.path().join("synthetic_slow").to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for name in [
        "compare_curves.png",
        "compare_curves.svg",
        "compare_accuracy.png",
    ] {
        assert!(cmp.join(name).is_file(), "{name} missing");
        assert!(stdout.contains(name), "{stdout}");
    }
    let texts = svg_texts(&std::fs::read_to_string(cmp.join("compare_curves.svg")).unwrap());
    for label in ["synthetic_demo", "synthetic_slow"] {
        assert!(
            texts.iter().any(|t| t == label),
            "legend has {label}: {texts:?}"
        );
    }
    assert_not_blank(&decode(&cmp.join("compare_accuracy.png")), "accuracy bars");

    // Not a run: one clear error, exit 2.
    let o = runner(&["plot", slow.join("trace.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = runner(&["plot", out.path().join("nope").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error:") && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );
}

#[test]
fn show_data_writes_a_grid_and_reports_missing_data() {
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("grid.png");
    let o = runner(&[
        "show-data",
        "experiments/synthetic_demo.toml",
        "--count",
        "8",
        "--split",
        "test",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        png.to_str().unwrap()
    );
    assert_not_blank(&decode(&png), "show-data grid");

    let o = runner(&[
        "show-data",
        "experiments/mnist_cnn.toml",
        "--data-dir",
        out.path().join("no-data").to_str().unwrap(),
        "--out",
        out.path().join("m.png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("MISSING") && !t.contains("panicked"), "{t}");
    assert_eq!(t.matches("error:").count(), 1, "{t}");
    assert!(!out.path().join("m.png").exists());

    let o = runner(&[
        "show-data",
        "experiments/synthetic_demo.toml",
        "--count",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn show_data_on_real_mnist_with_a_permutation() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !data.join("mnist").is_dir() {
        eprintln!(
            "skipping show_data_on_real_mnist_with_a_permutation: {} not found",
            data.join("mnist").display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("perm.png");
    let o = runner(&[
        "show-data",
        "experiments/mnist_cnn_permuted.toml",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let pic = decode(&png);
    // Two panels of 5 x 4 cells of 84 px MNIST digits.
    assert!(pic.width > 2 * 5 * 84, "{}", pic.width);
    assert!(pic.height > 4 * 84, "{}", pic.height);
    assert_not_blank(&pic, "permuted MNIST");
}

/// How long drawing a picture with a 200,000-character name may take: well under a second in a
/// release build (the issue: over 60 s before names were cut); generous in a debug build.
fn drawing_bound() -> std::time::Duration {
    std::time::Duration::from_secs(if cfg!(debug_assertions) { 10 } else { 1 })
}

/// Runs `draw`, checks it took less than [`drawing_bound`] and returns its result.
fn timed<T>(what: &str, draw: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = draw();
    let took = start.elapsed();
    assert!(took < drawing_bound(), "{what} took {took:?}");
    out
}

#[test]
fn a_class_name_of_200000_characters_is_cut_and_drawn_quickly() {
    let huge = format!("{}\u{1b}[31m", "x".repeat(200_000));
    let classes: Vec<String> = [huge.as_str(), "dog", "bird"].map(String::from).to_vec();
    let cm = ConfusionMatrix::from_predictions(&classes, &[0, 1, 2, 0], &[0, 1, 1, 2]);
    let title = format!("{huge}: confusion matrix");
    let pic = timed("confusion_png", || confusion_png(&title, &cm)).expect("drawn");
    assert_not_blank(&pic, "confusion matrix with a huge class name");
    assert!(
        pic.width < 4000,
        "the name is cut: {} pixels wide",
        pic.width
    );
    assert!(!pic.png().unwrap().is_empty());

    let (exp, _) = synthetic([1, 8, 8], 3, "[]");
    let mut test = data(&exp, Split::Test);
    test.classes[0] = huge.clone();
    let fig = timed("data_figure", || data_figure(&exp, &test, Split::Test, 20)).expect("drawn");
    assert_not_blank(&fig.picture, "data grid with a huge class name");
    let truth: Vec<u32> = test.labels.iter().map(|&l| u32::from(l)).collect();
    let pic = timed("predictions_figure", || {
        predictions_figure(&exp, &test, &truth, 24)
    })
    .expect("drawn");
    assert_not_blank(&pic, "predictions with a huge class name");

    let m = metrics(3, 0.0);
    let pic = timed("curves_png", || curves_png(&huge, &m)).expect("drawn");
    assert_eq!((pic.width, pic.height), CURVES_SIZE);
    let out = tempfile::tempdir().unwrap();
    let runs: Vec<ComparedRun> = vec![
        (huge.clone(), m.clone(), summary(&huge, &m)),
        ("short".into(), m.clone(), summary("short", &m)),
    ];
    let paths = timed("plot_comparison", || plot_comparison(&runs, out.path())).expect("drawn");
    let bars = decode(&paths[2]);
    assert!(bars.width < 2000, "bar labels are cut: {}", bars.width);
    let svg = std::fs::read_to_string(&paths[1]).unwrap();
    assert!(svg.len() < 100_000, "the SVG holds the cut label only");
    assert!(!svg.contains('\u{1b}'));
}

/// A CIFAR-10 folder of `per_file` images per batch file whose `batches.meta.txt` lists `names`.
fn write_cifar(dir: &Path, per_file: usize, names: &[String]) {
    let dir = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (k, name) in files.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..per_file {
            bytes.push(((k * per_file + i) % 10) as u8);
            bytes.extend((0..3072).map(|p| ((i * 7 + p) % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join("batches.meta.txt"), names.join("\n")).unwrap();
}

#[test]
fn runner_draws_a_data_set_whose_class_name_is_200000_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
    names[0] = format!("{}\u{1b}[2J", "y".repeat(200_000));
    write_cifar(tmp.path(), 4, &names);
    let file = tmp.path().join("tiny_cifar.toml");
    std::fs::write(
        &file,
        "name = \"tiny_cifar\"\nseed = 0\n\n[data]\ndataset = \"cifar10\"\nbatch_size = 8\n\n\
         [model]\nlayers = [{ op = \"flatten\" }, { op = \"linear\", out = 10 }]\n\n\
         [train]\nepochs = 1\noptimizer = { kind = \"sgd\", lr = 0.01 }\n",
    )
    .unwrap();
    let data_dir = tmp.path().to_str().unwrap();
    let png = tmp.path().join("grid.png");
    let o = timed("runner show-data", || {
        runner(&[
            "show-data",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir,
            "--out",
            png.to_str().unwrap(),
        ])
    });
    assert!(o.status.success(), "{}", text(&o));
    assert_not_blank(&decode(&png), "show-data grid");

    let out = tmp.path().join("results");
    let start = std::time::Instant::now();
    let o = runner(&[
        file.to_str().unwrap(),
        "--data-dir",
        data_dir,
        "--out",
        out.to_str().unwrap(),
        "--plain",
    ]);
    let took = start.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    // Training itself is a few milliseconds; the bound is for a slow shared machine.
    assert!(took.as_secs() < 30, "runner took {took:?}");
    let dir = run_dir(&out, "tiny_cifar");
    for name in ["confusion.png", "predictions.png", "curves.png"] {
        assert_not_blank(&decode(&dir.join(name)), name);
    }
    assert!(
        !text(&o).contains('\u{1b}'),
        "no raw ESC reaches the terminal"
    );
}

#[test]
fn runner_plot_warns_about_non_finite_values_and_repeated_epochs_and_draws_the_rest() {
    use runner::report::{metrics_csv, summary_csv};
    let tmp = tempfile::tempdir().unwrap();
    let mut m = metrics(6, 0.0);
    m[2].test_loss = f64::NAN;
    m[3].test_loss = f64::NEG_INFINITY;
    m[4].train_acc = f64::INFINITY;
    // A resumed run wrote epoch 2 again; its last row is the one drawn.
    let mut again = m[1].clone();
    again.test_acc = 99.0;
    m.insert(2, again);
    let broken = tmp.path().join("broken");
    let clean = tmp.path().join("clean");
    for (dir, rows, name) in [(&broken, &m, "broken"), (&clean, &metrics(6, 1.0), "clean")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("metrics.csv"), metrics_csv(rows)).unwrap();
        std::fs::write(dir.join("summary.csv"), summary_csv(&summary(name, rows))).unwrap();
    }
    let csv = std::fs::read_to_string(broken.join("metrics.csv")).unwrap();
    assert!(csv.contains("NaN") && csv.contains("-inf"), "{csv}");
    let cmp = tmp.path().join("cmp");
    let o = runner(&[
        "plot",
        broken.to_str().unwrap(),
        clean.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let file = broken.join("metrics.csv");
    let file = file.display();
    let want = [
        format!(
            "runner plot: {file}: train_acc is not finite at epoch 5; test_loss at epochs 3, 4 \
             (not drawn)"
        ),
        format!("runner plot: {file}: epoch 2 appears 2 times; the last row is drawn"),
    ];
    for line in &want {
        assert!(
            stderr.lines().any(|l| l == line),
            "{line}\nnot in\n{stderr}"
        );
    }
    assert_eq!(
        stderr.lines().count(),
        2,
        "nothing about the clean run: {stderr}"
    );
    for name in [
        "compare_curves.png",
        "compare_curves.svg",
        "compare_accuracy.png",
    ] {
        assert!(cmp.join(name).is_file(), "{name} missing");
    }
    assert_not_blank(&decode(&cmp.join("compare_curves.png")), "compare curves");
    // The broken run's test loss is two pieces (epochs 1-2 and 5-6); its line never reaches the
    // bad points, so no coordinate is NaN or infinite in the SVG.
    let svg = std::fs::read_to_string(cmp.join("compare_curves.svg")).unwrap();
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "bad points drawn"
    );
    let blue = svg
        .lines()
        .filter(|l| l.contains("<polyline") && l.to_lowercase().contains("#1f77b4"))
        .count();
    let orange = svg
        .lines()
        .filter(|l| l.contains("<polyline") && l.to_lowercase().contains("#ff7f0e"))
        .count();
    assert_eq!(
        blue,
        orange + 1,
        "the broken (blue) run has one more piece than the clean (orange) one:\n{svg}"
    );
}
