//! `[data]`: the data set, batching, and the transforms with the image shape they produce.

use std::ops::Range;

use super::super::format::{
    Cifar100Labels, DatasetName, Interpolation, JitterRange, Numbers, OnCorrupt, RawCsv, RawData,
    RawImageFolder, RawTransform, RawTransformOp,
};
use super::super::read::{int_in, Cx, Seed, Sp};
use super::super::{
    DataSpec, DatasetKind, FolderSpec, PaddingMode, ResizeSize, SyntheticSpec, TestSource,
    Transform, Tta, TtaWhen, ValidationSize,
};
use super::{count, real};
use crate::diagnostic::Diagnostic;

/// What the model check needs from `[data]`: the data set and the training transforms.
pub struct Images {
    /// The data set.
    pub dataset: DatasetKind,
    /// The training transforms.
    pub train_transforms: Vec<Transform>,
}

impl Images {
    /// The shape the model receives: the data set's, after the training transforms.
    pub fn shape(&self) -> [usize; 3] {
        self.train_transforms
            .iter()
            .fold(self.dataset.image_shape(), |s, t| t.output_shape(s))
    }
}

/// The checked `[data]`, and, separately, the images' description, which is known as soon as the
/// data set and training transforms are valid.
pub fn validate(cx: &mut Cx<'_>, d: RawData) -> (Option<DataSpec>, Option<Images>) {
    let ds = &d.dataset;
    if ["synthetic", "image_folder", "csv"]
        .iter()
        .any(|k| d.failed.contains(k))
    {
        return (None, None);
    }
    if d.failed.contains(&"labels") || d.failed.contains(&"extra") {
        return (None, None);
    }
    let Some(dataset) = dataset_kind(cx, ds, &d) else {
        return (None, None);
    };
    for (present, table, name) in [
        (d.synthetic.is_some(), "synthetic", DatasetName::Synthetic),
        (
            d.image_folder.is_some(),
            "image_folder",
            DatasetName::ImageFolder,
        ),
        (d.csv.is_some(), "csv", DatasetName::Csv),
    ] {
        if present && dataset.id() != name {
            cx.push(
                Diagnostic::warning(
                    ds.span.clone(),
                    format!("`[data.{table}]` is ignored unless `dataset = \"{table}\"`"),
                )
                .label(format!("not {table}")),
            );
        }
    }
    if let Some(l) = &d.labels {
        if !matches!(dataset, DatasetKind::Cifar100(_)) {
            cx.push(
                Diagnostic::warning(
                    l.span.clone(),
                    "`labels` is ignored unless `dataset = \"cifar100\"`",
                )
                .label("not cifar100"),
            );
        }
    }
    if let Some(e) = &d.extra {
        if !matches!(dataset, DatasetKind::Svhn { .. }) {
            cx.push(
                Diagnostic::warning(
                    e.span.clone(),
                    "`extra` is ignored unless `dataset = \"svhn\"`",
                )
                .label("not svhn"),
            );
        }
    }
    let batch_size = count(cx, &d.batch_size, 64, 1, "batch_size");
    let test_batch_size = count(cx, &d.test_batch_size, 1000, 1, "test_batch_size");
    let train_limit = match &d.train_limit {
        None => Some(None),
        Some(_) => count(cx, &d.train_limit, 1, 1, "train_limit").map(Some),
    };
    let validation = validation(cx, &d, &dataset);
    let input = dataset.image_shape();
    let train = transforms(cx, d.train_transforms.as_ref(), input);
    let mut test = transforms(cx, d.test_transforms.as_ref(), input);
    // An alternating flip counts training epochs; a test image has none.
    for t in d.test_transforms.as_ref().map_or(&[][..], |l| &l.value[..]) {
        if let RawTransformOp::RandomHorizontalFlip {
            alternate: Some(a), ..
        } = &t.value.op
        {
            if a.value {
                cx.push(
                    Diagnostic::error(a.span.clone(), "an alternating flip in `test_transforms`")
                        .label("alternates with the training epochs; only for `train_transforms`")
                        .help("use `tta = \"flip\"` to evaluate on both mirror images"),
                );
                test = None;
            }
        }
    }
    if let (Some(t), Some((_, [_, h, w]))) = (&d.tta, &test) {
        if t.value == Tta::FlipTranslate && (*h < 2 || *w < 2) {
            cx.push(
                Diagnostic::error(
                    t.span.clone(),
                    format!(
                        "`flip_translate` reflects test images by one pixel, but they are {h}x{w}"
                    ),
                )
                .label("needs test images of at least 2x2")
                .help("use `tta = \"flip\"`"),
            );
        }
    }
    // The resolved config prints the default `every_epoch` with `tta = "none"`: only `end`
    // says something that cannot happen.
    if let Some(when) = d.tta_when.as_ref().filter(|w| w.value == TtaWhen::End) {
        if d.tta.as_ref().is_none_or(|t| t.value == Tta::None) {
            cx.push(
                Diagnostic::warning(
                    when.span.clone(),
                    "`tta_when` without test-time augmentation",
                )
                .label("has no effect")
                .help(
                    "set `tta = \"flip\"` or `tta = \"flip_translate\"`, or leave `tta_when` out",
                ),
            );
        }
    }
    if let (Some((train, tr_shape)), Some((test, te_shape))) = (&train, &test) {
        // Train/test disagreements point at the test list (else the train list, else the dataset).
        let span = d
            .test_transforms
            .as_ref()
            .or(d.train_transforms.as_ref())
            .map_or(ds.span.clone(), |t| t.span.clone());
        if tr_shape != te_shape {
            cx.push(
                Diagnostic::error(
                    span.clone(),
                    format!(
                        "training images come out as {tr_shape:?} but test images as {te_shape:?}"
                    ),
                )
                .label("transforms disagree on the image size")
                .help("add a `center_crop` to `test_transforms` with the training crop size"),
            );
        }
        let perm = |ts: &[Transform]| {
            ts.iter().find_map(|t| {
                if let Transform::PixelPermutation { seed } = t {
                    Some(*seed)
                } else {
                    None
                }
            })
        };
        if perm(train) != perm(test) {
            cx.push(
                Diagnostic::warning(
                    span,
                    "the pixel permutation differs between training and test transforms",
                )
                .label("train and test see differently arranged pixels")
                .help("put the same `{ op = \"pixel_permutation\", seed = ... }` in both lists"),
            );
        }
    }
    let images = train.as_ref().map(|(t, _)| Images {
        dataset: dataset.clone(),
        train_transforms: t.clone(),
    });
    let spec = match (
        batch_size,
        test_batch_size,
        train_limit,
        validation,
        train,
        test,
    ) {
        (
            Some(batch_size),
            Some(test_batch_size),
            Some(train_limit),
            Some(validation),
            Some((train, _)),
            Some((test, _)),
        ) => Some(DataSpec {
            dataset,
            batch_size,
            test_batch_size,
            shuffle: d.shuffle.as_ref().is_none_or(|s| s.value),
            drop_last: d.drop_last.as_ref().is_some_and(|s| s.value),
            train_limit,
            validation,
            train_transforms: train,
            test_transforms: test,
            tta: d.tta.as_ref().map_or(Tta::None, |t| t.value),
            tta_when: d.tta_when.as_ref().map_or(TtaWhen::EveryEpoch, |t| t.value),
        }),
        _ => None,
    };
    if let (Some(spec), Some(drop)) = (&spec, &d.drop_last) {
        if let Some(n) = spec
            .known_train_images()
            .filter(|&n| drop.value && n < spec.batch_size)
        {
            cx.push(
                Diagnostic::error(drop.span.clone(), "`drop_last` leaves no training batch")
                    .label(format!(
                        "{n} training images are fewer than one batch of {}",
                        spec.batch_size
                    ))
                    .help("lower `batch_size`, or set `drop_last = false`"),
            );
            return (None, images);
        }
    }
    (spec, images)
}

/// `validation`, checked against the training set's size where the data set fixes it: the
/// split must leave at least one training image.
fn validation(
    cx: &mut Cx<'_>,
    d: &RawData,
    dataset: &DatasetKind,
) -> Option<Option<ValidationSize>> {
    let Some(v) = &d.validation else {
        return Some(None);
    };
    if let Some(n) = dataset.train_images() {
        let take = v.value.images(n);
        if take == 0 || take >= n {
            cx.push(
                Diagnostic::error(
                    v.span.clone(),
                    format!(
                        "a validation split of {take} of the {n} training images of `{}`",
                        dataset.name()
                    ),
                )
                .label(if take == 0 {
                    "rounds to no image"
                } else {
                    "leaves no image to train on"
                }),
            );
            return None;
        }
    }
    Some(Some(v.value))
}

/// The keys `[data.image_folder]` and `[data.csv]` share.
struct FolderKeys<'r> {
    table: &'static str,
    span: Range<usize>,
    path: &'r Sp<String>,
    test_path: &'r Option<Sp<String>>,
    test_split: &'r Option<Sp<f64>>,
    split_seed: &'r Option<Sp<Seed>>,
    image_size: &'r Sp<Vec<Sp<u64>>>,
    channels: &'r Option<Sp<u64>>,
    classes: &'r Option<Sp<u64>>,
    on_corrupt: &'r Option<Sp<OnCorrupt>>,
}

impl<'r> FolderKeys<'r> {
    fn of_folder(t: &'r Sp<RawImageFolder>) -> Self {
        let v = &t.value;
        FolderKeys {
            table: "image_folder",
            span: t.span.clone(),
            path: &v.path,
            test_path: &v.test_path,
            test_split: &v.test_split,
            split_seed: &v.split_seed,
            image_size: &v.image_size,
            channels: &v.channels,
            classes: &v.classes,
            on_corrupt: &v.on_corrupt,
        }
    }

    fn of_csv(t: &'r Sp<RawCsv>) -> Self {
        let v = &t.value;
        FolderKeys {
            table: "csv",
            span: t.span.clone(),
            path: &v.path,
            test_path: &v.test_path,
            test_split: &v.test_split,
            split_seed: &v.split_seed,
            image_size: &v.image_size,
            channels: &v.channels,
            classes: &v.classes,
            on_corrupt: &v.on_corrupt,
        }
    }
}

/// The most classes a data set may have: labels are stored as bytes.
pub const MAX_CLASSES: u64 = 256;

fn folder_spec(cx: &mut Cx<'_>, k: FolderKeys<'_>) -> Option<FolderSpec> {
    let table = k.table;
    let mut ok = true;
    for (p, key) in [(Some(k.path), "path"), (k.test_path.as_ref(), "test_path")] {
        if let Some(p) = p {
            if p.value.trim().is_empty() {
                cx.push(
                    Diagnostic::error(p.span.clone(), format!("`{key}` is empty"))
                        .label("expected a path, relative to the data directory"),
                );
                ok = false;
            }
        }
    }
    let test = match (k.test_path, k.test_split) {
        (Some(p), None) => Some(TestSource::Path(p.value.clone())),
        (None, Some(f)) => {
            if f.value > 0.0 && f.value < 1.0 {
                Some(TestSource::Split {
                    fraction: f.value,
                    seed: k.split_seed.as_ref().map(|s| s.value.0),
                })
            } else {
                cx.push(
                    Diagnostic::error(
                        f.span.clone(),
                        format!("a test fraction must be between 0 and 1, found {}", f.value),
                    )
                    .label("expected 0 < fraction < 1"),
                );
                None
            }
        }
        (Some(_), Some(f)) => {
            cx.push(
                Diagnostic::error(
                    f.span.clone(),
                    "both `test_path` and `test_split` are given",
                )
                .label("the test set would come from two places")
                .help("keep one of them"),
            );
            None
        }
        (None, None) => {
            cx.push(
                Diagnostic::error(
                    k.span.clone(),
                    format!("`[data.{table}]` needs a test set: `test_path` or `test_split`"),
                )
                .label("no test set")
                .help("add `test_split = 0.2` to hold out a fifth of the images"),
            );
            None
        }
    };
    if let (Some(s), Some(TestSource::Path(_))) = (k.split_seed, &test) {
        cx.push(
            Diagnostic::warning(s.span.clone(), "`split_seed` is ignored with `test_path`")
                .label("only `test_split` draws"),
        );
    }
    let size = match k.image_size.value.as_slice() {
        [h, w] if [h, w].iter().all(|x| (1..=4096).contains(&x.value)) => {
            Some([h.value as usize, w.value as usize])
        }
        _ => {
            cx.push(
                Diagnostic::error(
                    k.image_size.span.clone(),
                    "`image_size` must be [height, width], each 1 to 4096",
                )
                .label("invalid size"),
            );
            None
        }
    };
    let channels = match k.channels {
        None => Some(3),
        Some(c) if c.value == 1 || c.value == 3 => Some(c.value as usize),
        Some(c) => {
            cx.push(
                Diagnostic::error(
                    c.span.clone(),
                    format!(
                        "image files convert to 1 (grey) or 3 (RGB) channels, not {}",
                        c.value
                    ),
                )
                .label("expected 1 or 3"),
            );
            None
        }
    };
    let classes = match k.classes {
        None => Some(None),
        Some(c) if (1..=MAX_CLASSES).contains(&c.value) => Some(Some(c.value as usize)),
        Some(c) => {
            cx.push(
                Diagnostic::error(
                    c.span.clone(),
                    format!("`classes` must be 1 to {MAX_CLASSES}, found {}", c.value),
                )
                .label(format!("expected 1 to {MAX_CLASSES}")),
            );
            None
        }
    };
    let ([h, w], channels, classes, test) = (size?, channels?, classes?, test?);
    ok.then(|| FolderSpec {
        path: k.path.value.clone(),
        test,
        shape: [channels, h, w],
        classes,
        on_corrupt: k.on_corrupt.as_ref().map_or(OnCorrupt::Error, |o| o.value),
    })
}

fn dataset_kind(cx: &mut Cx<'_>, ds: &Sp<DatasetName>, d: &RawData) -> Option<DatasetKind> {
    let synthetic = d.synthetic.as_ref().map(|s| &s.value);
    let labels = d.labels.as_ref().map(|l| l.value);
    let missing = |cx: &mut Cx<'_>, table: &str| {
        cx.push(
            Diagnostic::error(
                ds.span.clone(),
                format!("`dataset = \"{table}\"` needs a `[data.{table}]` table"),
            )
            .label(format!("no `[data.{table}]`"))
            .help(format!(
                "add `[data.{table}]` with `path`, `image_size` and `test_path` or `test_split`"
            )),
        );
        None
    };
    Some(match ds.value {
        DatasetName::ImageFolder => match &d.image_folder {
            Some(t) => DatasetKind::ImageFolder(folder_spec(cx, FolderKeys::of_folder(t))?),
            None => return missing(cx, "image_folder"),
        },
        DatasetName::Csv => match &d.csv {
            Some(t) => DatasetKind::Csv(folder_spec(cx, FolderKeys::of_csv(t))?),
            None => return missing(cx, "csv"),
        },
        DatasetName::Mnist => DatasetKind::Mnist,
        DatasetName::FashionMnist => DatasetKind::FashionMnist,
        DatasetName::Cifar10 => DatasetKind::Cifar10,
        DatasetName::Cifar100 => DatasetKind::Cifar100(labels.unwrap_or(Cifar100Labels::Fine)),
        DatasetName::Stl10 => DatasetKind::Stl10,
        DatasetName::Svhn => DatasetKind::Svhn {
            extra: d.extra.as_ref().is_some_and(|e| e.value),
        },
        DatasetName::Synthetic => {
            let s = synthetic;
            let none = None;
            let (shape_v, classes_v, train_v, test_v) = match s {
                Some(s) => (&s.shape, &s.classes, &s.train_size, &s.test_size),
                None => (&none, &None, &None, &None),
            };
            let shape = match shape_v {
                None => Some([1, 8, 8]),
                Some(v) => match v.value.as_slice() {
                    [c, h, w] if [c, h, w].iter().all(|x| (1..=4096).contains(&x.value)) => {
                        Some([c.value as usize, h.value as usize, w.value as usize])
                    }
                    _ => {
                        cx.push(Diagnostic::error(v.span.clone(), "synthetic `shape` must be [channels, height, width], each 1 to 4096").label("invalid shape"));
                        None
                    }
                },
            };
            let classes = count(cx, classes_v, 4, 2, "classes");
            let train = count(cx, train_v, 512, 1, "train_size");
            let test = count(cx, test_v, 256, 1, "test_size");
            DatasetKind::Synthetic(SyntheticSpec {
                shape: shape?,
                classes: classes?,
                train_size: train?,
                test_size: test?,
            })
        }
    })
}

/// torchvision's `_setup_angle`: `d >= 0` is the range `[-d, d]`; `[min, max]` is as given.
fn degrees(cx: &mut Cx<'_>, v: &Sp<JitterRange>) -> Option<[f32; 2]> {
    let r = match &v.value {
        JitterRange::Spread(d) => [-*d, *d],
        JitterRange::Range(p) => [p[0].value, p[1].value],
    };
    if r[0] <= r[1] {
        Some(r.map(|x| x as f32))
    } else {
        cx.push(
            Diagnostic::error(v.span.clone(), "`degrees` must be d >= 0 or [min, max]")
                .label("expected d >= 0 (the range [-d, d]) or [min, max] with min <= max"),
        );
        None
    }
}

/// `random_affine`'s `shear`, as `[xmin, xmax, ymin, ymax]`: `s >= 0` is `[-s, s, 0, 0]`,
/// `[min, max]` shears x only. Each angle is kept within (-90, 90), where the shear is finite.
fn shear(cx: &mut Cx<'_>, v: &Option<Sp<Numbers>>) -> Option<[f32; 4]> {
    let Some(v) = v else {
        return Some([0.0; 4]);
    };
    let r = match v.value.0.as_slice() {
        [s] if *s >= 0.0 => Some([-*s, *s, 0.0, 0.0]),
        [a, b] if a <= b => Some([*a, *b, 0.0, 0.0]),
        [a, b, c, d] if a <= b && c <= d => Some([*a, *b, *c, *d]),
        _ => None,
    };
    match r {
        Some(r) if r.iter().all(|x| x.abs() < 90.0) => Some(r.map(|x| x as f32)),
        _ => {
            cx.push(
                Diagnostic::error(
                    v.span.clone(),
                    "`shear` must be s >= 0, [min, max] or [xmin, xmax, ymin, ymax]",
                )
                .label("expected min <= max, every angle between -90 and 90 degrees"),
            );
            None
        }
    }
}

/// `random_affine`'s `translate`: `[fx, fy]`, each 0 to 1.
fn translate(cx: &mut Cx<'_>, v: &Option<Sp<Vec<Sp<f64>>>>) -> Option<[f32; 2]> {
    let Some(v) = v else {
        return Some([0.0; 2]);
    };
    match v.value.as_slice() {
        [x, y] if (0.0..=1.0).contains(&x.value) && (0.0..=1.0).contains(&y.value) => {
            Some([x.value as f32, y.value as f32])
        }
        _ => {
            cx.push(
                Diagnostic::error(v.span.clone(), "`translate` must be [fx, fy]")
                    .label("expected two fractions of the width and height, 0 to 1"),
            );
            None
        }
    }
}

/// A `[min, max]` pair with `0 < min <= max <= limit` (`random_erasing`'s `scale` and `ratio`).
fn pair(
    cx: &mut Cx<'_>,
    v: &Option<Sp<Vec<Sp<f64>>>>,
    default: [f32; 2],
    limit: f64,
    key: &str,
) -> Option<[f32; 2]> {
    let Some(v) = v else {
        return Some(default);
    };
    match v.value.as_slice() {
        [a, b] if a.value > 0.0 && a.value <= b.value && b.value <= limit => {
            Some([a.value as f32, b.value as f32])
        }
        _ => {
            cx.push(
                Diagnostic::error(v.span.clone(), format!("`{key}` must be [min, max]"))
                    .label(format!("expected 0 < min <= max <= {limit}")),
            );
            None
        }
    }
}

/// One of `color_jitter`'s ranges, checked as torchvision's `ColorJitter._check_input`: a
/// spread `x >= 0` becomes `[center - x, center + x]` (the lower end clipped at 0 for the
/// factors, not for hue); the range must lie in `bound` and be increasing. A range of only the
/// neutral value is `None` (not applied), as torchvision drops it.
fn jitter_range(
    cx: &mut Cx<'_>,
    v: &Option<Sp<JitterRange>>,
    key: &str,
    center: f64,
    bound: [f64; 2],
) -> Result<Option<[f32; 2]>, ()> {
    let Some(v) = v else {
        return Ok(None);
    };
    let hue = center == 0.0;
    let [lo, hi] = match &v.value {
        JitterRange::Spread(x) => {
            if *x < 0.0 || (hue && *x > 0.5) {
                cx.push(
                    Diagnostic::error(
                        v.span.clone(),
                        format!(
                            "`{key}` as one number must be {}",
                            if hue { "0 to 0.5" } else { ">= 0" }
                        ),
                    )
                    .label(format!("found {x}")),
                );
                return Err(());
            }
            let lo = center - x;
            [if hue { lo } else { lo.max(0.0) }, center + x]
        }
        JitterRange::Range(p) => [p[0].value, p[1].value],
    };
    if !(bound[0] <= lo && lo <= hi && hi <= bound[1]) {
        let upper = if bound[1].is_finite() {
            format!(" <= {}", bound[1])
        } else {
            String::new()
        };
        cx.push(
            Diagnostic::error(
                v.span.clone(),
                format!("`{key}` range [{lo}, {hi}] is out of bounds or decreasing"),
            )
            .label(format!("expected {} <= min <= max{upper}", bound[0])),
        );
        return Err(());
    }
    Ok((!(lo == center && hi == center)).then_some([lo as f32, hi as f32]))
}

fn transforms(
    cx: &mut Cx<'_>,
    list: Option<&Sp<Vec<Sp<RawTransform>>>>,
    input: [usize; 3],
) -> Option<(Vec<Transform>, [usize; 3])> {
    let mut shape = input;
    let mut out = Vec::new();
    let mut ok = true;
    for t in list.map_or(&[][..], |l| &l.value[..]) {
        let checked = transform(cx, &t.value.op, &t.span, shape);
        match checked {
            Some(c) => {
                shape = c.output_shape(shape);
                out.push(c);
            }
            None => ok = false,
        }
    }
    ok.then_some((out, shape))
}

fn transform(
    cx: &mut Cx<'_>,
    t: &RawTransformOp,
    span: &Range<usize>,
    [c, h, w]: [usize; 3],
) -> Option<Transform> {
    let crop = |cx: &mut Cx<'_>, size: &Sp<u64>, pad: u64| {
        let limit = (h.min(w) as u64) + 2 * pad;
        if size.value == 0 || size.value > limit {
            cx.push(
                Diagnostic::error(
                    size.span.clone(),
                    format!(
                        "crop size {} does not fit images of {h}x{w}{}",
                        size.value,
                        if pad > 0 {
                            format!(" padded by {pad}")
                        } else {
                            String::new()
                        }
                    ),
                )
                .label(format!("expected 1 to {limit}")),
            );
            return None;
        }
        Some(size.value as usize)
    };
    match t {
        RawTransformOp::Normalize { mean, std } => {
            let mut ok = true;
            for (what, list) in [("mean", mean), ("std", std)] {
                if list.value.len() != 1 && list.value.len() != c {
                    cx.push(
                        Diagnostic::error(
                            list.span.clone(),
                            format!(
                                "`{what}` has {} values but images have {c} channel{}",
                                list.value.len(),
                                if c == 1 { "" } else { "s" }
                            ),
                        )
                        .label(format!("expected {c} (or 1 for all channels)")),
                    );
                    ok = false;
                }
            }
            for s in &std.value {
                if s.value <= 0.0 {
                    cx.push(
                        Diagnostic::error(s.span.clone(), "a standard deviation must be > 0")
                            .label("division by this"),
                    );
                    ok = false;
                }
            }
            let expand = |l: &Sp<Vec<Sp<f64>>>| -> Vec<f32> {
                (0..c)
                    .map(|i| l.value[if l.value.len() == 1 { 0 } else { i }].value as f32)
                    .collect()
            };
            ok.then(|| Transform::Normalize {
                mean: expand(mean),
                std: expand(std),
            })
        }
        RawTransformOp::RandomCrop {
            size,
            padding,
            padding_mode,
            fill,
            pad_if_needed,
        } => {
            let pad = padding.as_ref().map_or(0, |p| p.value);
            if pad > 1024 {
                let p = padding.as_ref()?;
                cx.push(
                    Diagnostic::error(p.span.clone(), format!("padding {pad} is out of range"))
                        .label("expected 0 to 1024"),
                );
                return None;
            }
            let mode = padding_mode
                .as_ref()
                .map_or(PaddingMode::Constant, |m| m.value);
            let fill_value = real(
                cx,
                fill,
                0.0,
                |x| (0.0..=255.0).contains(&x),
                "fill",
                "0 to 255",
            );
            if let (Some(f), false) = (fill, mode == PaddingMode::Constant) {
                cx.push(
                    Diagnostic::error(
                        f.span.clone(),
                        format!("`fill` has no effect with padding_mode \"{}\"", mode.name()),
                    )
                    .label("only `constant` padding uses it")
                    .help("remove `fill`, or set padding_mode = \"constant\""),
                );
                return None;
            }
            let needed = pad_if_needed.as_ref().is_some_and(|b| b.value);
            let size = if needed {
                if size.value == 0 || size.value > 4096 {
                    cx.push(
                        Diagnostic::error(
                            size.span.clone(),
                            format!("crop size {} is out of range", size.value),
                        )
                        .label("expected 1 to 4096"),
                    );
                    return None;
                }
                size.value as usize
            } else {
                crop(cx, size, pad)?
            };
            // torchvision v2 pads once, by `padding` plus what `pad_if_needed` adds; reflect
            // needs that smaller than the dimension it mirrors, symmetric at most as large.
            let mirror_fits = |dim: usize| {
                let pad = pad as usize;
                let extra = if needed {
                    size.saturating_sub(dim + 2 * pad)
                } else {
                    0
                };
                match mode {
                    PaddingMode::Reflect => pad + extra < dim,
                    PaddingMode::Symmetric => pad + extra <= dim,
                    PaddingMode::Constant | PaddingMode::Edge => true,
                }
            };
            if !(mirror_fits(h) && mirror_fits(w)) {
                let at = padding_mode
                    .as_ref()
                    .map_or(span.clone(), |m| m.span.clone());
                cx.push(
                    Diagnostic::error(
                        at,
                        format!(
                            "{} padding of {h}x{w} images by {pad}{} mirrors more than the image",
                            mode.name(),
                            if needed {
                                " (and up to the crop size)"
                            } else {
                                ""
                            }
                        ),
                    )
                    .label(if mode == PaddingMode::Reflect {
                        "reflect padding must be smaller than the image"
                    } else {
                        "symmetric padding must be at most the image size"
                    })
                    .help("use padding_mode = \"edge\" or a smaller padding"),
                );
                return None;
            }
            Some(Transform::RandomCrop {
                size,
                padding: pad as usize,
                padding_mode: mode,
                fill: fill_value? as f32,
                pad_if_needed: needed,
            })
        }
        RawTransformOp::RandomHorizontalFlip { p, alternate } => {
            let p = real(cx, p, 0.5, |x| (0.0..=1.0).contains(&x), "p", "0 to 1")?;
            Some(Transform::RandomHorizontalFlip {
                p: p as f32,
                alternate: alternate.as_ref().is_some_and(|a| a.value),
            })
        }
        RawTransformOp::RandomErasing {
            p,
            scale,
            ratio,
            value,
        } => {
            let p = real(cx, p, 0.5, |x| (0.0..=1.0).contains(&x), "p", "0 to 1");
            let value = real(cx, value, 0.0, |x| x.abs() <= 1e6, "value", "-1e6 to 1e6");
            let scale = pair(cx, scale, [0.02, 0.33], 1.0, "scale");
            let ratio = pair(cx, ratio, [0.3, 3.3], 1e3, "ratio");
            Some(Transform::RandomErasing {
                p: p? as f32,
                scale: scale?,
                ratio: ratio?,
                value: value? as f32,
            })
        }
        RawTransformOp::RandomRotation {
            degrees: d,
            interpolation,
            fill,
        } => {
            let d = degrees(cx, d);
            let fill = real(
                cx,
                fill,
                0.0,
                |x| (0.0..=255.0).contains(&x),
                "fill",
                "0 to 255",
            );
            Some(Transform::RandomRotation {
                degrees: d?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Nearest, |i| i.value),
                fill: fill? as f32,
            })
        }
        RawTransformOp::RandomAffine {
            degrees: d,
            translate: t,
            scale,
            shear: sh,
            interpolation,
            fill,
        } => {
            let d = degrees(cx, d);
            let t = translate(cx, t);
            let scale = pair(cx, scale, [1.0, 1.0], 1e3, "scale");
            let sh = shear(cx, sh);
            let fill = real(
                cx,
                fill,
                0.0,
                |x| (0.0..=255.0).contains(&x),
                "fill",
                "0 to 255",
            );
            Some(Transform::RandomAffine {
                degrees: d?,
                translate: t?,
                scale: scale?,
                shear: sh?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Nearest, |i| i.value),
                fill: fill? as f32,
            })
        }
        RawTransformOp::ColorJitter {
            brightness,
            contrast,
            saturation,
            hue,
        } => {
            let inf = f64::INFINITY;
            let b = jitter_range(cx, brightness, "brightness", 1.0, [0.0, inf]);
            let k = jitter_range(cx, contrast, "contrast", 1.0, [0.0, inf]);
            let s = jitter_range(cx, saturation, "saturation", 1.0, [0.0, inf]);
            let h = jitter_range(cx, hue, "hue", 0.0, [-0.5, 0.5]);
            let channels = color_channels(cx, span, c, "color_jitter");
            Some(Transform::ColorJitter {
                brightness: b.ok()?,
                contrast: k.ok()?,
                saturation: s.ok()?,
                hue: h.ok()?,
            })
            .filter(|_| channels)
        }
        RawTransformOp::TrivialAugmentWide {
            num_magnitude_bins,
            interpolation,
            fill,
        } => {
            let (bins, fill) = policy_keys(cx, num_magnitude_bins, fill);
            let channels = color_channels(cx, span, c, "trivial_augment_wide");
            Some(Transform::TrivialAugmentWide {
                num_magnitude_bins: bins?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Nearest, |i| i.value),
                fill: fill?,
            })
            .filter(|_| channels)
        }
        RawTransformOp::RandAugment {
            num_ops,
            magnitude,
            num_magnitude_bins,
            interpolation,
            fill,
        } => {
            let (bins, fill) = policy_keys(cx, num_magnitude_bins, fill);
            let num_ops = int_in(cx, num_ops.as_ref(), 2, 0, MAX_POLICY_OPS, "num_ops");
            // torchvision indexes the table with it (`magnitudes[self.magnitude]`).
            let magnitude = match (magnitude, bins) {
                (Some(m), Some(bins)) if m.value >= bins as u64 => {
                    cx.push(
                        Diagnostic::error(
                            m.span.clone(),
                            format!(
                                "magnitude = {} is not a bin of num_magnitude_bins = {bins}",
                                m.value
                            ),
                        )
                        .label(format!("expected 0 to {}", bins - 1))
                        .help(format!("set num_magnitude_bins = {} or more", m.value + 1)),
                    );
                    None
                }
                (None, Some(bins)) if bins <= 9 => {
                    let at = num_magnitude_bins
                        .as_ref()
                        .map_or(span.clone(), |b| b.span.clone());
                    cx.push(
                        Diagnostic::error(
                            at,
                            format!("the default magnitude 9 is not a bin of num_magnitude_bins = {bins}"),
                        )
                        .label("expected 10 or more bins")
                        .help(format!("set a magnitude from 0 to {}", bins - 1)),
                    );
                    None
                }
                (m, _) => Some(m.as_ref().map_or(9, |m| m.value as usize)),
            };
            let channels = color_channels(cx, span, c, "rand_augment");
            Some(Transform::RandAugment {
                num_ops: num_ops?,
                magnitude: magnitude?,
                num_magnitude_bins: bins?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Nearest, |i| i.value),
                fill: fill?,
            })
            .filter(|_| channels)
        }
        RawTransformOp::PixelPermutation { seed } => Some(Transform::PixelPermutation {
            seed: seed.as_ref().map_or(0, |s| s.value.0),
        }),
        RawTransformOp::Grayscale {} => {
            if c != 3 {
                cx.push(
                    Diagnostic::error(
                        span.clone(),
                        format!(
                            "`grayscale` turns 3 RGB channels into 1, but images have {c} channel{} here",
                            if c == 1 { "" } else { "s" }
                        ),
                    )
                    .label("needs RGB images"),
                );
                return None;
            }
            Some(Transform::Grayscale)
        }
        RawTransformOp::Resize {
            size,
            interpolation,
        } => {
            let side =
                |x: f64| (x.fract() == 0.0 && (1.0..=4096.0).contains(&x)).then_some(x as usize);
            let checked = match size.value.0.as_slice() {
                [s] => side(*s).map(ResizeSize::Shorter),
                [h, w] => side(*h)
                    .zip(side(*w))
                    .map(|(h, w)| ResizeSize::Exact([h, w])),
                _ => None,
            };
            if checked.is_none() {
                cx.push(
                    Diagnostic::error(size.span.clone(), "`size` must be s or [h, w]")
                        .label("expected whole numbers from 1 to 4096"),
                );
            }
            Some(Transform::Resize {
                size: checked?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Bilinear, |i| i.value),
            })
        }
        RawTransformOp::RandomResizedCrop {
            size,
            scale,
            ratio,
            interpolation,
        } => {
            let side =
                |x: f64| (x.fract() == 0.0 && (1.0..=4096.0).contains(&x)).then_some(x as usize);
            let checked = match size.value.0.as_slice() {
                [s] => side(*s).map(|s| [s, s]),
                [h, w] => side(*h).zip(side(*w)).map(|(h, w)| [h, w]),
                _ => None,
            };
            if checked.is_none() {
                cx.push(
                    Diagnostic::error(size.span.clone(), "`size` must be s or [h, w]")
                        .label("expected whole numbers from 1 to 4096"),
                );
            }
            // torchvision puts no upper bound on either; these keep `area * scale` and the
            // log-ratio finite.
            let scale = pair(cx, scale, [0.08, 1.0], 1e3, "scale");
            let ratio = pair(cx, ratio, [0.75, 4.0 / 3.0], 1e3, "ratio");
            Some(Transform::RandomResizedCrop {
                size: checked?,
                scale: scale?,
                ratio: ratio?,
                interpolation: interpolation
                    .as_ref()
                    .map_or(Interpolation::Bilinear, |i| i.value),
            })
        }
        RawTransformOp::CenterCrop { size } => {
            let _ = span;
            Some(Transform::CenterCrop {
                size: crop(cx, size, 0)?,
            })
        }
    }
}

/// Most ops `rand_augment` applies per image: each is a pass over the image, and more than a
/// few dozen turn any image into noise.
const MAX_POLICY_OPS: u64 = 64;

/// Most magnitude bins: the table entries are float32 `linspace`s indexed by an f32 bin number,
/// exact up to 2^24.
const MAX_MAGNITUDE_BINS: u64 = 1 << 24;

/// The keys both augmentation policies share: `num_magnitude_bins` (at least 2, as posterize's
/// table divides by `bins - 1`) and `fill` (a uint8 pixel value, 0 to 255).
fn policy_keys(
    cx: &mut Cx<'_>,
    bins: &Option<Sp<u64>>,
    fill: &Option<Sp<f64>>,
) -> (Option<usize>, Option<f32>) {
    let bins = int_in(
        cx,
        bins.as_ref(),
        31,
        2,
        MAX_MAGNITUDE_BINS,
        "num_magnitude_bins",
    );
    let fill = real(
        cx,
        fill,
        0.0,
        |x| (0.0..=255.0).contains(&x),
        "fill",
        "0 to 255",
    );
    (bins, fill.map(|f| f as f32))
}

/// Whether images of `c` channels suit a colour transform (torchvision's colour kernels take
/// 1 or 3); reports it when not.
fn color_channels(cx: &mut Cx<'_>, span: &Range<usize>, c: usize, op: &str) -> bool {
    if c == 1 || c == 3 {
        return true;
    }
    cx.push(
        Diagnostic::error(
            span.clone(),
            format!("`{op}` works on 1- or 3-channel images, but images have {c} channels here"),
        )
        .label("needs grey or RGB images"),
    );
    false
}

#[cfg(test)]
mod tests {
    use super::super::super::load_str_with;

    /// The diagnostics (messages) of a synthetic-data file with `transform` as its only training
    /// transform, on 1x7x9 images, less the one about test images keeping their size.
    fn messages(transform: &str) -> Vec<String> {
        let text = format!(
            r#"
[data]
dataset = "synthetic"
synthetic = {{ shape = [1, 7, 9], classes = 2 }}
train_transforms = [{transform}]
[model]
layers = [{{ op = "flatten" }}, {{ op = "linear", out = 2 }}]
[train]
epochs = 1
optimizer = {{ kind = "sgd", lr = 0.1 }}
"#
        );
        let loaded = load_str_with("config.toml", &text, "x", &[]).swap_remove(0);
        loaded
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            // Crops make training images smaller than the (untransformed) test images.
            .filter(|m| !m.contains("but test images as"))
            .collect()
    }

    #[test]
    fn random_crop_padding_limits() {
        // (transform, expected error or None, why). Images are 7 high and 9 wide; torchvision
        // v2 refuses reflect padding >= the dimension and symmetric padding > it.
        let mirrors = Some("mirrors more than the image");
        let cases: [(&str, Option<&str>, &str); 12] = [
            (
                r#"{ op = "random_crop", size = 7, padding = 6, padding_mode = "reflect" }"#,
                None,
                "6 < 7",
            ),
            (
                r#"{ op = "random_crop", size = 7, padding = 7, padding_mode = "reflect" }"#,
                mirrors,
                "7 = height",
            ),
            (
                r#"{ op = "random_crop", size = 7, padding = 7, padding_mode = "symmetric" }"#,
                None,
                "7 <= 7",
            ),
            (
                r#"{ op = "random_crop", size = 7, padding = 8, padding_mode = "symmetric" }"#,
                mirrors,
                "8 > 7",
            ),
            (
                r#"{ op = "random_crop", size = 7, padding = 100, padding_mode = "edge" }"#,
                None,
                "edge has no limit",
            ),
            (
                r#"{ op = "random_crop", size = 13, padding_mode = "reflect", pad_if_needed = true }"#,
                None,
                "height padded by 6 < 7",
            ),
            (
                r#"{ op = "random_crop", size = 21, padding_mode = "reflect", pad_if_needed = true }"#,
                mirrors,
                "height padded by 7",
            ),
            (
                r#"{ op = "random_crop", size = 11, padding = 2, padding_mode = "reflect", pad_if_needed = true }"#,
                None,
                "2, nothing needed",
            ),
            (
                r#"{ op = "random_crop", size = 12 }"#,
                Some("crop size 12 does not fit"),
                "no pad_if_needed",
            ),
            (
                r#"{ op = "random_crop", size = 12, pad_if_needed = true, fill = 255 }"#,
                None,
                "constant, any size",
            ),
            (
                r#"{ op = "random_crop", size = 7, fill = 256 }"#,
                Some("fill"),
                "fill above 255",
            ),
            (
                r#"{ op = "random_crop", size = 7, padding_mode = "edge", fill = 1 }"#,
                Some("`fill` has no effect"),
                "fill without constant",
            ),
        ];
        for (transform, want, why) in cases {
            let got = messages(transform);
            match want {
                None => assert!(got.is_empty(), "{why}: {transform}: {got:?}"),
                Some(w) => assert!(
                    got.len() == 1 && got[0].contains(w),
                    "{why}: {transform}: want one error with {w:?}, got {got:?}"
                ),
            }
        }
    }

    #[test]
    fn augmentation_policy_keys() {
        // (transform, expected error or None, why); images are 1x7x9 (grey is accepted).
        let cases: [(&str, Option<&str>, &str); 10] = [
            (r#"{ op = "trivial_augment_wide" }"#, None, "defaults"),
            (
                r#"{ op = "rand_augment", num_ops = 0, magnitude = 1, num_magnitude_bins = 2 }"#,
                None,
                "no ops, the smallest table",
            ),
            (
                r#"{ op = "trivial_augment_wide", num_magnitude_bins = 1 }"#,
                Some("num_magnitude_bins = 1 is out of range"),
                "posterize's table needs 2 bins",
            ),
            (
                r#"{ op = "trivial_augment_wide", fill = 256 }"#,
                Some("fill = 256 is out of range"),
                "fill is a uint8 value",
            ),
            (
                r#"{ op = "trivial_augment_wide", interpolation = "bicubic" }"#,
                Some("bicubic"),
                "only nearest and bilinear",
            ),
            (
                r#"{ op = "rand_augment", magnitude = 31 }"#,
                Some("magnitude = 31 is not a bin of num_magnitude_bins = 31"),
                "magnitude indexes the table",
            ),
            (
                r#"{ op = "rand_augment", magnitude = 30 }"#,
                None,
                "the last bin",
            ),
            (
                r#"{ op = "rand_augment", num_magnitude_bins = 9 }"#,
                Some("the default magnitude 9 is not a bin"),
                "the default magnitude needs 10 bins",
            ),
            (
                r#"{ op = "rand_augment", num_ops = 65 }"#,
                Some("num_ops = 65 is out of range"),
                "num_ops is bounded",
            ),
            (
                r#"{ op = "rand_augment", num_ops = -1 }"#,
                Some(""),
                "negative num_ops",
            ),
        ];
        for (transform, want, why) in cases {
            let got = messages(transform);
            match want {
                None => assert!(got.is_empty(), "{why}: {transform}: {got:?}"),
                Some(w) => assert!(
                    got.len() == 1 && got[0].contains(w),
                    "{why}: {transform}: want one error with {w:?}, got {got:?}"
                ),
            }
        }
    }

    #[test]
    fn augmentation_policies_need_grey_or_rgb() {
        let text = r#"
[data]
dataset = "synthetic"
synthetic = { shape = [2, 8, 8], classes = 2 }
train_transforms = [{ op = "trivial_augment_wide" }, { op = "rand_augment" }]
[model]
layers = [{ op = "flatten" }, { op = "linear", out = 2 }]
"#;
        let loaded = load_str_with("config.toml", text, "x", &[]).swap_remove(0);
        let got: Vec<_> = loaded.diagnostics.iter().map(|d| &d.message).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("`trivial_augment_wide` works on 1- or 3-channel images"));
        assert!(got[1].contains("`rand_augment` works on 1- or 3-channel images"));
    }

    #[test]
    fn color_jitter_ranges_follow_torchvision() {
        // (transform, expected error or None, why); images are 1x7x9.
        let cases: [(&str, Option<&str>, &str); 9] = [
            (
                r#"{ op = "color_jitter", brightness = 0.4 }"#,
                None,
                "a spread",
            ),
            (
                r#"{ op = "color_jitter", brightness = 2 }"#,
                None,
                "lower end clipped at 0",
            ),
            (
                r#"{ op = "color_jitter", contrast = [0.2, 3] }"#,
                None,
                "a range",
            ),
            (
                r#"{ op = "color_jitter", saturation = -0.1 }"#,
                Some("must be >= 0"),
                "negative spread",
            ),
            (
                r#"{ op = "color_jitter", brightness = [1.5, 0.5] }"#,
                Some("decreasing"),
                "decreasing",
            ),
            (
                r#"{ op = "color_jitter", contrast = [-0.5, 1] }"#,
                Some("out of bounds"),
                "below 0",
            ),
            (
                r#"{ op = "color_jitter", hue = 0.6 }"#,
                Some("0 to 0.5"),
                "hue spread above 0.5",
            ),
            (
                r#"{ op = "color_jitter", hue = [-0.5, 0.6] }"#,
                Some("out of bounds"),
                "hue above 0.5",
            ),
            (
                r#"{ op = "color_jitter", hue = [0.1] }"#,
                Some("2 numbers"),
                "one number in a list",
            ),
        ];
        for (transform, want, why) in cases {
            let got = messages(transform);
            match want {
                None => assert!(got.is_empty(), "{why}: {transform}: {got:?}"),
                Some(w) => assert!(
                    got.len() == 1 && got[0].contains(w),
                    "{why}: {transform}: want one error with {w:?}, got {got:?}"
                ),
            }
        }
    }
}
