//! One invalid fixture per diagnostic kind (`tests/fixtures/invalid/<kind>.toml`), each with a
//! snapshot of its rendered diagnostics (`tests/snapshots/`).
//!
//! Review changed snapshots by reading them; accept with `INSTA_UPDATE=always cargo test --test
//! check_diagnostics` or `cargo insta review`.

use std::path::Path;

use runner::check::{check_bytes, Checked};
use runner::diagnostic::Severity;

/// What a fixture must produce besides its snapshot.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This many errors (the file is rejected).
    Errors(usize),
    /// Only this many warnings (the file is still valid).
    Warnings(usize),
}
use Expect::*;

/// `(fixture, expectation, what the fixture gets wrong)`.
const CASES: &[(&str, Expect, &str)] = &[
    (
        "image_folder_settings",
        Errors(4),
        "an image folder without a test set, with a 1-number size, 4 channels, 300 classes",
    ),
    (
        "alternating_flip_in_test",
        Errors(1),
        "an alternating flip in `test_transforms`",
    ),
    (
        "image_folder_test_twice",
        Errors(1),
        "both `test_path` and `test_split`",
    ),
    (
        "image_folder_output_mismatch",
        Errors(1),
        "2 outputs for 3 declared classes, at the last layer",
    ),
    (
        "csv_without_table",
        Errors(1),
        "`dataset = \"csv\"` without `[data.csv]`",
    ),
    (
        "labels_not_cifar100",
        Warnings(1),
        "`labels` on a data set other than cifar100 is ignored",
    ),
    (
        "tta_when_without_tta",
        Warnings(1),
        "`tta_when` without `tta` has no effect",
    ),
    (
        "extra_not_svhn",
        Warnings(1),
        "`extra` on a data set other than svhn is ignored",
    ),
    (
        "cifar100_coarse_output_mismatch",
        Errors(1),
        "100 outputs for CIFAR-100's 20 coarse classes",
    ),
    (
        "labels_unknown_value",
        Errors(1),
        "`labels = \"fin\"` suggests `fine`",
    ),
    (
        "init_from_wrong_shape",
        Errors(2),
        "weights whose conv1 and fc tensors have other shapes, named by layer",
    ),
    ("init_from_missing", Errors(1), "`init_from` names no file"),
    (
        "conv_padding_same",
        Errors(2),
        "`padding = \"same\"` with stride 2, and with an even kernel",
    ),
    (
        "init_spec_settings",
        Errors(4),
        "dirac on an even kernel, `images` on dirac, whitening eps 0, whitening on linear",
    ),
    (
        "init_spec_shapes",
        Errors(3),
        "whitening not on the input, dirac with out < in, whitening of the wrong width",
    ),
    (
        "init_from_not_safetensors",
        Errors(1),
        "`init_from` names a file that is not safetensors",
    ),
    (
        "sweep_not_a_list",
        Errors(1),
        "a sweep key with one value, not a list",
    ),
    (
        "sweep_zip_lengths",
        Errors(1),
        "zip lists of different lengths",
    ),
    (
        "sweep_unknown_key",
        Errors(1),
        "`lrr` in a sweep key suggests `lr`",
    ),
    (
        "sweep_bad_value",
        Errors(1),
        "batch size 0 inside the sweep list",
    ),
    (
        "sweep_duplicate_names",
        Errors(1),
        "two variants with one name",
    ),
    (
        "toml_syntax",
        Errors(1),
        "an unclosed array: the first syntax error only, not the cascade",
    ),
    (
        "not_utf8",
        Errors(1),
        "a GIF image: reported at its first invalid byte",
    ),
    ("unknown_top_level_key", Errors(1), "`sed` suggests `seed`"),
    ("unknown_optimizer_key", Errors(1), "`lrr` suggests `lr`"),
    (
        "wrong_type",
        Errors(1),
        "a string where an integer is expected",
    ),
    (
        "missing_dataset",
        Errors(1),
        "a required key, reported at its table",
    ),
    ("missing_model", Errors(1), "a required section"),
    (
        "unknown_dataset",
        Errors(1),
        "`cifar-10` suggests `cifar10`",
    ),
    (
        "unknown_layer_op",
        Errors(1),
        "`maxpool2d` suggests `max_pool2d`",
    ),
    (
        "unknown_transform_op",
        Errors(1),
        "`normalise` suggests `normalize`",
    ),
    (
        "block_params_invalid",
        Errors(2),
        "a `$`-prefixed and a duplicate parameter name, at the declaration only",
    ),
    (
        "layer_wrong_types",
        Errors(2),
        "two wrong types in one layer, both reported, no follow-up",
    ),
    (
        "setting_and_shape_errors",
        Errors(2),
        "a shape error and a setting error in one pass, nothing after them blamed",
    ),
    (
        "linear_in_mismatch",
        Errors(1),
        "the VGG classifier's 2048 vs the 512 features produce",
    ),
    (
        "conv2d_in_mismatch",
        Errors(1),
        "3 declared input channels on 1-channel MNIST",
    ),
    (
        "batch_norm_features_mismatch",
        Errors(1),
        "features = 16 after 8 channels",
    ),
    (
        "linear_unflattened",
        Errors(1),
        "linear on [C, H, W]: help suggests flatten and its size",
    ),
    (
        "spatial_size_zero",
        Errors(1),
        "the fifth pool has a 1x1 input",
    ),
    (
        "add_shape_mismatch",
        Errors(1),
        "a residual add without a projection: help suggests 1x1 conv",
    ),
    (
        "concat_mismatch",
        Errors(1),
        "concatenating 32x32 with 16x16",
    ),
    (
        "duplicate_layer_name",
        Errors(1),
        "the note names the first definition's line",
    ),
    ("dangling_input", Errors(1), "`stm` suggests `stem`"),
    ("cycle", Errors(1), "two layers reading each other"),
    ("unused_layer", Warnings(1), "a branch nothing reads"),
    ("negative_integer", Errors(1), "steps = -3"),
    ("width_too_large", Errors(1), "a width of 10^15"),
    ("batch_size_zero", Errors(1), "batch_size = 0"),
    ("validation_fraction", Errors(1), "validation = 1.5"),
    (
        "validation_too_large",
        Errors(1),
        "a validation split of every MNIST training image",
    ),
    (
        "early_stopping_without_validation",
        Errors(1),
        "early stopping on val_loss with no validation split",
    ),
    (
        "early_stopping_on_test",
        Errors(2),
        "early stopping on test_acc (not offered) with patience 0",
    ),
    (
        "nesterov_without_momentum",
        Errors(1),
        "as torch.optim.SGD rejects it",
    ),
    (
        "normalize_mean_length",
        Errors(1),
        "two means for three channels",
    ),
    ("crop_too_large", Errors(1), "a 40x40 crop of 32x32 images"),
    (
        "mixup_mixes_nothing",
        Errors(2),
        "a mixup table that mixes nothing, its probability out of range",
    ),
    (
        "tta_translate_too_small",
        Errors(1),
        "flip_translate TTA of 1x1 test images",
    ),
    (
        "color_jitter_channels",
        Errors(1),
        "color_jitter on 2-channel images",
    ),
    (
        "rand_augment_magnitude",
        Errors(1),
        "rand_augment magnitude beyond its bins",
    ),
    (
        "resize_size",
        Errors(2),
        "a resize to 0 pixels, and a size of three numbers",
    ),
    (
        "random_resized_crop_ranges",
        Errors(3),
        "a random_resized_crop to 0 pixels, a backwards scale and a ratio of 0",
    ),
    (
        "random_affine_ranges",
        Errors(3),
        "rotation degrees backwards, a 90-degree shear, a translation of 2 widths",
    ),
    (
        "random_crop_padding_mode",
        Errors(2),
        "reflect padding as large as the image; fill with edge padding",
    ),
    (
        "transform_shapes_disagree",
        Errors(1),
        "train crops to 24, test stays 32",
    ),
    (
        "output_classes_mismatch",
        Errors(1),
        "100 outputs for 10 classes",
    ),
    ("nll_without_log_softmax", Warnings(1), "nll on logits"),
    ("unknown_block", Errors(1), "`conv_nb` suggests `conv_bn`"),
    (
        "missing_block_argument",
        Errors(1),
        "an instance without `args`",
    ),
    (
        "unknown_block_param",
        Errors(1),
        "`$widht` suggests `$width`",
    ),
    (
        "param_outside_block",
        Errors(1),
        "`$width` in the model's own layers",
    ),
    (
        "block_recursion",
        Errors(1),
        "a block instantiating itself hits the nesting limit",
    ),
    (
        "schedule_key_not_applicable",
        Errors(1),
        "`milestones` with `cosine`",
    ),
    (
        "piecewise_linear_points",
        Errors(2),
        "a `piecewise_linear` knot of three numbers, and a negative factor",
    ),
    (
        "param_groups_invalid",
        Errors(2),
        "`batchnorm2d` suggests `batch_norm2d`, `bais` suggests `bias`",
    ),
    (
        "param_group_settings",
        Errors(3),
        "two negative scales, `freeze_after_epochs` with `frozen = true`",
    ),
    (
        "param_group_matches_nothing",
        Errors(2),
        "a name pattern that matches nothing, and a group earlier groups leave nothing to",
    ),
    (
        "lookahead_out_of_range",
        Errors(2),
        "`every = 0` and `alpha = 1.5` in `[train.lookahead]`",
    ),
    (
        "unknown_device",
        Errors(1),
        "`cdua` suggests `cuda` (a transposition)",
    ),
    ("seed_out_of_range", Errors(1), "2^64 does not fit a seed"),
    (
        "training_length",
        Errors(2),
        "`epochs` with `steps`, and `drop_last` with fewer images than a batch",
    ),
    ("epochs_not_positive", Errors(1), "`epochs = -0.5`"),
    (
        "accumulate_zero",
        Errors(1),
        "no batches per optimizer step",
    ),
    (
        "clip_grad_norm_and_value",
        Errors(1),
        "two kinds of clipping in one table",
    ),
    ("clip_grad_without_bound", Errors(1), "`clip_grad = {}`"),
    ("ema_decay_out_of_range", Errors(1), "decay = 1.0"),
    (
        "ema_warmup_setting_without_warmup",
        Errors(1),
        "`warmup_power` with the warm-up off",
    ),
    (
        "several_errors",
        Errors(4),
        "four mistakes in three sections, one pass, source order",
    ),
];

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid")
}

/// Checks a fixture under a stable, relative display path (snapshots must not hold absolute paths).
fn check_fixture(kind: &str) -> (Checked, String) {
    let why = CASES.iter().find(|c| c.0 == kind).map_or("", |c| c.2);
    let path = fixture_dir().join(format!("{kind}.toml"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let display = format!("tests/fixtures/invalid/{kind}.toml");
    let checked = check_bytes(&display, &bytes, kind);
    // The fixture's leading comment says what is wrong; it becomes the snapshot's description.
    let about = String::from_utf8_lossy(&bytes)
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ");
    (
        checked,
        if about.is_empty() {
            why.to_string()
        } else {
            about
        },
    )
}

#[test]
fn every_diagnostic_kind_renders_as_snapshotted() {
    for &(kind, expect, why) in CASES {
        let (checked, about) = check_fixture(kind);
        let count = |s: Severity| {
            checked
                .diagnostics
                .iter()
                .filter(|d| d.severity == s)
                .count()
        };
        let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
        let rendered = checked.render();
        match expect {
            Errors(n) => {
                assert!(!checked.ok(), "{kind} ({why}): accepted\n{rendered}");
                assert_eq!(errors, n, "{kind} ({why}): error count\n{rendered}");
            }
            Warnings(n) => {
                assert!(checked.ok(), "{kind} ({why}): rejected\n{rendered}");
                assert_eq!((errors, warnings), (0, n), "{kind} ({why})\n{rendered}");
            }
        }
        for d in &checked.diagnostics {
            assert!(
                d.span.start <= d.span.end && d.span.end <= checked.source.text.len(),
                "{kind} ({why}): span {:?} outside the file",
                d.span
            );
        }
        insta::with_settings!({ description => about, omit_expression => true }, {
            insta::assert_snapshot!(kind, rendered);
        });
    }
}

#[test]
fn every_fixture_has_a_row_and_every_row_a_fixture() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "fixtures on disk vs rows in CASES");
}

#[test]
fn several_errors_come_in_source_order_from_every_section() {
    let (checked, _) = check_fixture("several_errors");
    let starts: Vec<usize> = checked.diagnostics.iter().map(|d| d.span.start).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "diagnostics are not in source order");
    let lines: Vec<usize> = checked
        .diagnostics
        .iter()
        .map(|d| checked.source.position(d.span.start).line)
        .collect();
    // batch_size (data), shufle (data), fc2's `in` (model), lrr (train)
    assert_eq!(lines, [8, 9, 18, 23], "{}", checked.render());
}

#[test]
fn missing_file_and_directory_are_diagnostics_not_panics() {
    let cases = [
        ("tests/fixtures/invalid/does_not_exist.toml", "cannot read"),
        ("tests/fixtures/invalid", "is a directory"),
    ];
    for (path, expected) in cases {
        let checked = runner::check::check_file(Path::new(path));
        assert!(!checked.ok(), "{path}");
        let rendered = checked.render();
        assert!(rendered.contains(expected), "{path}: {rendered}");
        assert!(
            rendered.contains(&format!("--> {path}:1:1")),
            "{path}: {rendered}"
        );
    }
}
