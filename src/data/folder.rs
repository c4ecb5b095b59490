//! The user's own images: `dataset = "image_folder"` (one folder per class) and
//! `dataset = "csv"` (a file of `path,label` rows), decoded once and cached.
//!
//! - **Listing.** An image folder holds one sub-folder per class; class ids are the sorted
//!   folder names (byte order), as torchvision's `ImageFolder`. Each class folder is searched,
//!   with its sub-folders, for files with an image extension
//!   ([`super::image_file::has_image_extension`]: `.png`, `.jpg`, `.jpeg`, `.webp`, `.bmp`, any
//!   case); other files are ignored (and counted), hidden entries (`.name`) are skipped. Images
//!   are ordered by class, then path. Symbolic links are followed; a link back to a folder being
//!   searched is an error, not a hang. A CSV file lists `path,label` rows (a first row
//!   `path,label` is a header); paths are relative to the CSV's folder.
//! - **Decoding** ([`super::image_file::Conversion`]) runs on all cores, in listing order.
//! - **The cache.** The decoded images of one listing are written, atomically, to
//!   `<data dir>/.runner-cache/<name>.u8`: a header with a SHA-256 key of the listing (paths,
//!   labels, sizes, modification times) and of the decode options, a CRC-32 of the payload, then
//!   the labels, the indices of skipped images and the `N x C x H x W` pixels. A later load lists
//!   the files again (no decoding), reads the cache file and uses it when key, length and
//!   CRC agree; otherwise it decodes again and replaces the file. A cache that cannot be written
//!   is a warning, not an error.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::image_file::{self, Conversion, ImageFileError};
use super::{DataError, Dataset, Splits};
use crate::experiment::{DatasetKind, FolderSpec, OnCorrupt, TestSource, ValidationSize};

/// The folder, under the data directory, that holds the decode caches.
pub const CACHE_DIR: &str = ".runner-cache";

/// The first bytes of a cache file (the last two are the layout's version).
const MAGIC: &[u8; 16] = b"RUNNER-IMAGES-01";
/// Bytes of a cache file's header.
const HEADER: usize = 96;
/// The most lines read from a CSV file.
const CSV_LIMIT: u64 = 256 << 20;
/// The most images one listing may hold (labels and indices are counted in `u32`).
const MAX_IMAGES: usize = u32::MAX as usize;

/// Which kind of listing: a folder of class folders or a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Folder,
    Csv,
}

/// The image files of one split, with their labels, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The folder or CSV file listed.
    pub root: PathBuf,
    /// Class names by id.
    pub classes: Vec<String>,
    /// Image files in load order, each with its label.
    pub files: Vec<(PathBuf, u8)>,
    /// Files passed over for their extension (folders only).
    pub ignored: usize,
}

/// What `runner check` learns from the data without decoding: the listing of the training
/// images and the header of the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The training listing.
    pub train: Listing,
    /// The first image, with its width and height as its header says; `None` when its header
    /// cannot be read (the reason).
    pub first: Result<(PathBuf, u32, u32), String>,
}

fn folder_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Folder {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The spec and listing kind of a user data set.
fn spec_of(kind: &DatasetKind) -> Option<(&FolderSpec, Kind)> {
    match kind {
        DatasetKind::ImageFolder(f) => Some((f, Kind::Folder)),
        DatasetKind::Csv(f) => Some((f, Kind::Csv)),
        _ => None,
    }
}

/// Lists the training images of an image folder or CSV data set and reads the first one's
/// header: the number of classes and the native image size, without decoding.
pub fn probe(kind: &DatasetKind, data_dir: &Path) -> Result<Probe, DataError> {
    let Some((spec, k)) = spec_of(kind) else {
        return Err(folder_err(data_dir, "not an image folder or CSV data set"));
    };
    let train = list(k, &data_dir.join(&spec.path), None)?;
    check_declared(spec, &train)?;
    let first = match train.files.first() {
        Some((path, _)) => image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()))
            .map(|(w, h)| (path.clone(), w, h))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => Err("no image".into()),
    };
    Ok(Probe { train, first })
}

fn check_declared(spec: &FolderSpec, train: &Listing) -> Result<(), DataError> {
    match spec.classes {
        Some(n) if n != train.classes.len() => Err(DataError::ClassCount {
            path: train.root.clone(),
            declared: n,
            found: train.classes.len(),
        }),
        _ => Ok(()),
    }
}

/// What a load did: how many images it decoded, how many it took from the cache, which it
/// skipped as corrupt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Images decoded from their files.
    pub decoded: usize,
    /// Images taken from the decode cache.
    pub cached: usize,
    /// Files skipped as corrupt (`on_corrupt = "skip"`).
    pub skipped: Vec<PathBuf>,
}

/// Loads an image folder or CSV data set: lists it, decodes (or takes from the cache) and
/// splits off the test set.
pub fn load(kind: &DatasetKind, data_dir: &Path, seed: u64) -> Result<Splits, DataError> {
    load_counting(kind, data_dir, seed).map(|(s, _)| s)
}

/// [`load`], also telling what was decoded and what came from the cache.
#[tracing::instrument(skip_all)]
pub fn load_counting(
    kind: &DatasetKind,
    data_dir: &Path,
    seed: u64,
) -> Result<(Splits, LoadStats), DataError> {
    let Some((spec, k)) = spec_of(kind) else {
        return Err(folder_err(data_dir, "not an image folder or CSV data set"));
    };
    let mut stats = LoadStats::default();
    let train_list = list(k, &data_dir.join(&spec.path), None)?;
    check_declared(spec, &train_list)?;
    let train = decoded(&train_list, spec, k, data_dir, "train", &mut stats)?;
    let splits = match &spec.test {
        TestSource::Path(p) => {
            let test_list = list(k, &data_dir.join(p), Some(&train_list.classes))?;
            let test = decoded(&test_list, spec, k, data_dir, "test", &mut stats)?;
            Splits { train, test }
        }
        TestSource::Split { fraction, seed: s } => {
            let (train, test) = super::split::split_validation(
                train,
                ValidationSize::Fraction(*fraction),
                s.unwrap_or(seed),
            )
            .map_err(|_| {
                folder_err(
                    &train_list.root,
                    format!(
                        "`test_split = {fraction}` of {} images holds no image, or all of them",
                        train_list.files.len()
                    ),
                )
            })?;
            Splits { train, test }
        }
    };
    Ok((splits, stats))
}

fn list(k: Kind, root: &Path, known: Option<&[String]>) -> Result<Listing, DataError> {
    match k {
        Kind::Folder => list_folder(root, known),
        Kind::Csv => list_csv(root, known),
    }
}

/// Lists an image folder. With `known` (the training classes), class folders must be among
/// them and keep the training ids; a class may be absent.
pub fn list_folder(root: &Path, known: Option<&[String]>) -> Result<Listing, DataError> {
    let meta = std::fs::metadata(root).map_err(|e| folder_err(root, io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(folder_err(
            root,
            "not a folder (an image folder holds one folder per class)",
        ));
    }
    let mut class_dirs = Vec::new();
    for entry in read_dir(root)? {
        let (path, name) = entry;
        let meta = std::fs::metadata(&path).map_err(|e| folder_err(&path, io_reason(&e)))?;
        if meta.is_dir() {
            class_dirs.push((name, path));
        }
    }
    class_dirs.sort();
    if class_dirs.is_empty() {
        return Err(folder_err(
            root,
            "holds no class folder (expected one folder per class, each holding its images)",
        ));
    }
    if known.is_none() && class_dirs.len() > 256 {
        return Err(folder_err(
            root,
            format!(
                "{} class folders; runner handles at most 256 classes",
                class_dirs.len()
            ),
        ));
    }
    let classes: Vec<String> = match known {
        Some(k) => k.to_vec(),
        None => class_dirs.iter().map(|(n, _)| n.clone()).collect(),
    };
    let mut files = Vec::new();
    let mut ignored = 0;
    for (name, dir) in &class_dirs {
        let Some(label) = classes.iter().position(|c| c == name) else {
            return Err(folder_err(
                dir,
                format!(
                    "class folder `{name}` is not one of the training classes ({})",
                    classes.join(", ")
                ),
            ));
        };
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        walk(dir, &mut found, &mut ignored, &mut seen)?;
        if found.is_empty() {
            return Err(folder_err(
                dir,
                format!(
                    "class folder `{name}` holds no image (looked for {} files)",
                    image_file::EXTENSIONS.join(", ")
                ),
            ));
        }
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label as u8)));
    }
    if files.len() > MAX_IMAGES {
        return Err(folder_err(root, "more than 2^32 images"));
    }
    Ok(Listing {
        root: root.to_path_buf(),
        classes,
        files,
        ignored,
    })
}

/// The entries of `dir` that do not start with `.`, as `(path, name)`; a name that is not
/// UTF-8 is an error.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| folder_err(dir, io_reason(&e)))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| folder_err(dir, io_reason(&e)))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            return Err(folder_err(&path, "the name is not valid UTF-8"));
        };
        if !name.starts_with('.') {
            out.push((path, name));
        }
    }
    Ok(out)
}

/// Collects the image files under `dir`, following links; `seen` holds the folders being
/// searched (canonical), so that a link back to one is reported instead of followed forever.
fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    ignored: &mut usize,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), DataError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| folder_err(dir, io_reason(&e)))?;
    if !seen.insert(canonical.clone()) {
        return Err(folder_err(
            dir,
            format!(
                "a loop of symbolic links: this folder is {}, which is already being searched",
                canonical.display()
            ),
        ));
    }
    for (path, _) in read_dir(dir)? {
        let meta = std::fs::metadata(&path).map_err(|e| folder_err(&path, io_reason(&e)))?;
        if meta.is_dir() {
            walk(&path, found, ignored, seen)?;
        } else if meta.is_file() && image_file::has_image_extension(&path) {
            found.push(path);
        } else {
            *ignored += 1;
        }
    }
    seen.remove(&canonical);
    Ok(())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ if e.raw_os_error() == Some(libc::ELOOP) => "a loop of symbolic links".into(),
        _ => e.to_string(),
    }
}

/// Lists a CSV data set. With `known` (the training classes), every label must be one of them.
pub fn list_csv(file: &Path, known: Option<&[String]>) -> Result<Listing, DataError> {
    let text = crate::bounded::read_to_string(file, CSV_LIMIT).map_err(DataError::Read)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let bad = |line: usize, reason: String| DataError::Csv {
        path: file.to_path_buf(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows: Vec<(PathBuf, String, usize)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(i + 1, |p| p.line() as usize);
            bad(line, e.to_string())
        })?;
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let [path, label] = [record.get(0), record.get(1)];
        let (Some(path), Some(label), 2) = (path, label, record.len()) else {
            return Err(bad(
                line,
                format!("expected 2 fields `path,label`, found {}", record.len()),
            ));
        };
        if rows.is_empty()
            && path.eq_ignore_ascii_case("path")
            && label.eq_ignore_ascii_case("label")
        {
            continue;
        }
        if path.is_empty() || label.is_empty() {
            return Err(bad(line, "an empty path or label".into()));
        }
        rows.push((base.join(path), label.to_string(), line));
    }
    if rows.is_empty() {
        return Err(bad(1, "no `path,label` row".into()));
    }
    let numeric = rows.iter().all(|(_, l, _)| l.parse::<u16>().is_ok());
    let classes: Vec<String> = match known {
        Some(k) => k.to_vec(),
        None if numeric => {
            let max = rows
                .iter()
                .filter_map(|(_, l, _)| l.parse::<usize>().ok())
                .max()
                .unwrap_or(0);
            if max >= 256 {
                let (_, _, line) = rows
                    .iter()
                    .find(|(_, l, _)| l.parse::<usize>().is_ok_and(|v| v >= 256))
                    .cloned()
                    .unwrap_or_default();
                return Err(bad(
                    line,
                    format!("label {max}: runner handles at most 256 classes"),
                ));
            }
            (0..=max).map(|c| c.to_string()).collect()
        }
        None => {
            let mut names: Vec<String> = rows.iter().map(|(_, l, _)| l.clone()).collect();
            names.sort();
            names.dedup();
            if names.len() > 256 {
                return Err(bad(
                    1,
                    format!(
                        "{} distinct labels; runner handles at most 256 classes",
                        names.len()
                    ),
                ));
            }
            names
        }
    };
    let mut files = Vec::with_capacity(rows.len());
    for (path, label, line) in rows {
        let Some(id) = classes.iter().position(|c| *c == label) else {
            return Err(bad(
                line,
                format!(
                    "unknown label `{label}`: the training classes are {}",
                    short_list(&classes)
                ),
            ));
        };
        files.push((path, id as u8));
    }
    if files.len() > MAX_IMAGES {
        return Err(bad(1, "more than 2^32 rows".into()));
    }
    Ok(Listing {
        root: file.to_path_buf(),
        classes,
        files,
        ignored: 0,
    })
}

fn short_list(names: &[String]) -> String {
    if names.len() <= 12 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..10].join(", "), names.len())
    }
}

/// The cache key of a listing: what was listed (paths, labels, sizes, modification times) and
/// how it is decoded.
fn cache_key(
    l: &Listing,
    shape: [usize; 3],
    on_corrupt: OnCorrupt,
    k: Kind,
) -> Result<[u8; 32], DataError> {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(format!(
        "{k:?} {shape:?} {on_corrupt:?} {}\n",
        l.files.len()
    ));
    for c in &l.classes {
        h.update(c.as_bytes());
        h.update([0]);
    }
    for (path, label) in &l.files {
        let meta = std::fs::metadata(path).map_err(|e| folder_err(path, io_reason(&e)))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(path.as_os_str().as_encoded_bytes());
        h.update([0, *label]);
        h.update(meta.len().to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    Ok(h.finalize().into())
}

/// Where the cache of a listing lives: one file per listed root and decode shape, so that a
/// changed listing replaces its old cache.
fn cache_path(data_dir: &Path, l: &Listing, shape: [usize; 3], split: &str) -> PathBuf {
    let root = std::fs::canonicalize(&l.root).unwrap_or_else(|_| l.root.clone());
    let mut h = Sha256::new();
    h.update(root.as_os_str().as_encoded_bytes());
    h.update(format!("{shape:?}"));
    let digest = h.finalize();
    let mut hex = String::new();
    for b in &digest[..8] {
        let _ = write!(hex, "{b:02x}");
    }
    let stem = l
        .root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("images");
    let [c, hh, w] = shape;
    data_dir
        .join(CACHE_DIR)
        .join(format!("{stem}-{split}-{c}x{hh}x{w}-{hex}.u8"))
}

/// The images of a listing: from the cache when it is current, else decoded (and cached).
fn decoded(
    l: &Listing,
    spec: &FolderSpec,
    k: Kind,
    data_dir: &Path,
    split: &str,
    stats: &mut LoadStats,
) -> Result<Dataset, DataError> {
    let key = cache_key(l, spec.shape, spec.on_corrupt, k)?;
    let path = cache_path(data_dir, l, spec.shape, split);
    let ignored = if l.ignored > 0 {
        format!(", {} non-image files ignored", l.ignored)
    } else {
        String::new()
    };
    match read_cache(&path, &key, l, spec.shape) {
        Ok(Some((d, skipped))) => {
            crate::ewriteln!(
                "runner: {split} images of {}: cache hit, 0 images decoded ({} images{}{ignored}; {})",
                l.root.display(),
                d.len(),
                skipped_note(l, &skipped),
                path.display()
            );
            stats.cached += d.len();
            stats.skipped.extend(skipped_paths(l, &skipped));
            return Ok(d);
        }
        Ok(None) => {}
        Err(why) => crate::ewriteln!(
            "runner: decode cache {}: {why}; decoding again",
            path.display()
        ),
    }
    let (d, skipped) = decode_all(l, spec)?;
    stats.decoded += d.len();
    stats.skipped.extend(skipped_paths(l, &skipped));
    let written = write_cache(&path, &key, &d, &skipped);
    crate::ewriteln!(
        "runner: {split} images of {}: {} images decoded{}{ignored}; {}",
        l.root.display(),
        d.len(),
        skipped_note(l, &skipped),
        match &written {
            Ok(()) => format!("cached in {}", path.display()),
            Err(e) => format!("warning: not cached: {e}"),
        }
    );
    Ok(d)
}

fn skipped_paths(l: &Listing, skipped: &[u32]) -> Vec<PathBuf> {
    skipped
        .iter()
        .filter_map(|&i| l.files.get(i as usize).map(|(p, _)| p.clone()))
        .collect()
}

fn skipped_note(l: &Listing, skipped: &[u32]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut s = format!(", {} corrupt images skipped:", skipped.len());
    for &i in skipped.iter().take(20) {
        if let Some((p, _)) = l.files.get(i as usize) {
            let _ = write!(s, "\n  skipped {}", p.display());
        }
    }
    if skipped.len() > 20 {
        let _ = write!(s, "\n  ... and {} more", skipped.len() - 20);
    }
    s
}

/// Decodes every file of the listing on all cores; returns the data set and the indices of the
/// files skipped as corrupt.
fn decode_all(l: &Listing, spec: &FolderSpec) -> Result<(Dataset, Vec<u32>), DataError> {
    let conv =
        Conversion::new(spec.shape, false).map_err(|e| folder_err(&l.root, e.to_string()))?;
    let decoded: Vec<Result<Vec<u8>, ImageFileError>> =
        l.files.par_iter().map(|(p, _)| conv.read(p)).collect();
    let n = spec.shape.iter().product::<usize>();
    let mut images = Vec::with_capacity(n * l.files.len());
    let mut labels = Vec::with_capacity(l.files.len());
    let mut skipped = Vec::new();
    for (i, (r, (_, label))) in decoded.into_iter().zip(&l.files).enumerate() {
        match r {
            Ok(px) => {
                images.extend_from_slice(&px);
                labels.push(*label);
            }
            Err(e) if spec.on_corrupt == OnCorrupt::Skip => {
                tracing::warn!("skipping {e}");
                skipped.push(i as u32);
            }
            Err(e) => return Err(DataError::Image(e)),
        }
    }
    if labels.is_empty() {
        return Err(folder_err(&l.root, "every image was skipped as corrupt"));
    }
    Ok((
        Dataset {
            images,
            labels,
            shape: spec.shape,
            classes: l.classes.clone(),
        },
        skipped,
    ))
}

fn header(key: &[u8; 32], d: &Dataset, skipped: usize, crc: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..16].copy_from_slice(MAGIC);
    h[16..48].copy_from_slice(key);
    h[48..56].copy_from_slice(&(d.len() as u64).to_le_bytes());
    for (i, s) in d.shape.iter().enumerate() {
        h[56 + 4 * i..60 + 4 * i].copy_from_slice(&(*s as u32).to_le_bytes());
    }
    h[68..72].copy_from_slice(&(d.classes.len() as u32).to_le_bytes());
    h[72..76].copy_from_slice(&(skipped as u32).to_le_bytes());
    h[76..80].copy_from_slice(&crc.to_le_bytes());
    h
}

fn write_cache(path: &Path, key: &[u8; 32], d: &Dataset, skipped: &[u32]) -> Result<(), String> {
    let mut body = Vec::with_capacity(d.labels.len() + 4 * skipped.len() + d.images.len());
    body.extend_from_slice(&d.labels);
    for s in skipped {
        body.extend_from_slice(&s.to_le_bytes());
    }
    body.extend_from_slice(&d.images);
    let crc = crc32fast::hash(&body);
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(&header(key, d, skipped.len(), crc));
    bytes.extend_from_slice(&body);
    drop(body);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    crate::report::write_atomic(path, &bytes).map_err(|e| e.to_string())
}

/// The cached images of a listing: `Ok(None)` when there is no cache file, `Err` (why) when
/// it is stale or damaged.
fn read_cache(
    path: &Path,
    key: &[u8; 32],
    l: &Listing,
    shape: [usize; 3],
) -> Result<Option<(Dataset, Vec<u32>)>, String> {
    // Read, not memory-mapped: every byte is copied out anyway, and a map of a file that
    // something else truncates in place would end the process with SIGBUS instead of an error.
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.len() < HEADER || &bytes[..16] != MAGIC {
        return Err("not a runner image cache (or an older layout)".into());
    }
    if &bytes[16..48] != key {
        return Err("stale: the files or decode options changed".into());
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let n = u64::from_le_bytes(bytes[48..56].try_into().map_err(|_| "short header")?) as usize;
    let cached_shape = [
        u32_at(56) as usize,
        u32_at(60) as usize,
        u32_at(64) as usize,
    ];
    let skipped = u32_at(72) as usize;
    let crc = u32_at(76);
    let image_len: usize = shape.iter().product();
    // Every sum checked: the header of a damaged file may hold any numbers.
    let want = n
        .checked_mul(image_len)
        .and_then(|px| px.checked_add(n))
        .and_then(|x| x.checked_add(skipped.checked_mul(4)?))
        .and_then(|x| x.checked_add(HEADER));
    if cached_shape != shape || u32_at(68) as usize != l.classes.len() || want != Some(bytes.len())
    {
        return Err("damaged: its header does not match its length".into());
    }
    let body = &bytes[HEADER..];
    if crc32fast::hash(body) != crc {
        return Err("damaged: CRC mismatch".into());
    }
    let labels = body[..n].to_vec();
    let skipped: Vec<u32> = body[n..n + 4 * skipped]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if labels.iter().any(|&x| usize::from(x) >= l.classes.len()) {
        return Err("damaged: a label out of range".into());
    }
    // The images are the file's tail: drop the front in place rather than copy the tail.
    bytes.drain(..HEADER + n + 4 * skipped.len());
    let images = bytes;
    Ok(Some((
        Dataset {
            images,
            labels,
            shape,
            classes: l.classes.clone(),
        },
        skipped,
    )))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use image::{DynamicImage, ImageFormat, RgbImage};

    use super::*;

    /// A `w x h` image of one colour, saved in the format its extension names.
    fn save(path: &Path, rgb: [u8; 3], w: u32, h: u32) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb(rgb)));
        let format = ImageFormat::from_path(path).expect("known extension");
        img.save_with_format(path, format).expect("save");
    }

    fn spec(path: &str, test: TestSource, shape: [usize; 3], on_corrupt: OnCorrupt) -> FolderSpec {
        FolderSpec {
            path: path.into(),
            test,
            shape,
            classes: None,
            on_corrupt,
        }
    }

    fn split(f: f64) -> TestSource {
        TestSource::Split {
            fraction: f,
            seed: None,
        }
    }

    /// `n` images per class, solid colours, PNG.
    fn folder(root: &Path, classes: &[&str], n: usize) {
        for (c, name) in classes.iter().enumerate() {
            for i in 0..n {
                let v = (c * 40 + i) as u8;
                save(
                    &root.join(name).join(format!("{i:03}.png")),
                    [v, 255 - v, 7],
                    4,
                    4,
                );
            }
        }
    }

    #[test]
    fn class_ids_come_from_sorted_folder_names_and_every_format_reads() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("imgs");
        save(&root.join("b_cat/x.png"), [10, 20, 30], 4, 4);
        save(&root.join("b_cat/sub/y.BMP"), [40, 50, 60], 4, 4);
        save(&root.join("a_dog/z.webp"), [70, 80, 90], 8, 4);
        save(&root.join("a_dog/w.jpg"), [128, 128, 128], 4, 4);
        std::fs::write(root.join("a_dog/notes.txt"), "not an image").expect("write");
        std::fs::write(root.join("a_dog/.DS_Store"), "hidden").expect("write");
        let kind = DatasetKind::ImageFolder(spec("imgs", split(0.5), [3, 4, 4], OnCorrupt::Error));
        let listing = list_folder(&root, None).expect("lists");
        assert_eq!(
            listing.classes,
            ["a_dog", "b_cat"],
            "sorted, as ImageFolder"
        );
        assert_eq!(listing.ignored, 1, "notes.txt ignored, .DS_Store hidden");
        let labels: Vec<u8> = listing.files.iter().map(|(_, l)| *l).collect();
        assert_eq!(labels, [0, 0, 1, 1], "ordered by class");
        let (splits, stats) = load_counting(&kind, tmp.path(), 0).expect("loads");
        assert_eq!(stats.decoded, 4);
        let all = splits.train.len() + splits.test.len();
        assert_eq!(all, 4);
        // The PNG and BMP pixels are exact (lossless); find x.png's by its colour.
        let px = |d: &Dataset, i: usize| [d.image(i)[0], d.image(i)[16], d.image(i)[32]];
        let colours: Vec<[u8; 3]> = (0..splits.train.len())
            .map(|i| px(&splits.train, i))
            .chain((0..splits.test.len()).map(|i| px(&splits.test, i)))
            .collect();
        for c in [[10, 20, 30], [40, 50, 60], [70, 80, 90]] {
            assert!(colours.contains(&c), "{c:?} in {colours:?}");
        }
    }

    #[test]
    fn test_split_is_stratified_and_deterministic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        folder(&tmp.path().join("f"), &["a", "b"], 10);
        let load = |seed: Option<u64>| {
            let kind = DatasetKind::ImageFolder(spec(
                "f",
                TestSource::Split {
                    fraction: 0.2,
                    seed,
                },
                [3, 4, 4],
                OnCorrupt::Error,
            ));
            load_counting(&kind, tmp.path(), 5).expect("loads").0
        };
        let a = load(None);
        assert_eq!(a.test.len(), 4);
        assert_eq!(a.test.class_counts(), [2, 2], "stratified");
        assert_eq!(a, load(None), "same seed, same split");
        assert_eq!(
            a,
            load(Some(5)),
            "split_seed defaults to the experiment seed"
        );
        let others: Vec<_> = (100..105).map(|s| load(Some(s)).test).collect();
        assert!(
            others.iter().any(|t| *t != a.test),
            "another seed draws another split"
        );
    }

    /// A temporary data directory with a folder `f` of two classes of 3 images each (4x4 RGB),
    /// and the data set that reads it for train and test.
    fn two_class_folder() -> (tempfile::TempDir, DatasetKind) {
        let tmp = tempfile::tempdir().expect("tempdir");
        folder(&tmp.path().join("f"), &["a", "b"], 3);
        let kind = DatasetKind::ImageFolder(spec(
            "f",
            TestSource::Path("f".into()),
            [3, 4, 4],
            OnCorrupt::Error,
        ));
        (tmp, kind)
    }

    #[test]
    fn the_cache_is_hit_then_rebuilt_when_a_file_or_the_cache_changes() {
        let (tmp, kind) = two_class_folder();
        let (first, s1) = load_counting(&kind, tmp.path(), 0).expect("loads");
        assert_eq!((s1.decoded, s1.cached), (12, 0), "train and test decoded");
        let (second, s2) = load_counting(&kind, tmp.path(), 0).expect("loads");
        assert_eq!(
            (s2.decoded, s2.cached),
            (0, 12),
            "second load decodes nothing"
        );
        assert_eq!(first, second);

        // A changed file invalidates the cache.
        let changed = tmp.path().join("f/b/001.png");
        save(&changed, [1, 2, 3], 4, 4);
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&changed)
            .and_then(|f| f.set_modified(later))
            .expect("mtime");
        let (third, s3) = load_counting(&kind, tmp.path(), 0).expect("loads");
        assert_eq!(s3.decoded, 12, "stale cache rebuilt");
        assert_eq!(third.train.image(4)[0], 1, "the new pixels");

        // A damaged cache file is detected by its CRC and rebuilt.
        let cache = tmp.path().join(CACHE_DIR);
        for e in std::fs::read_dir(&cache).expect("cache dir") {
            let p = e.expect("entry").path();
            let mut bytes = std::fs::read(&p).expect("read");
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&p, bytes).expect("write");
        }
        let (fourth, s4) = load_counting(&kind, tmp.path(), 0).expect("loads");
        assert_eq!(s4.decoded, 12, "damaged cache rebuilt");
        assert_eq!(fourth, third);
        // Another size is another cache.
        let small = DatasetKind::ImageFolder(spec(
            "f",
            TestSource::Path("f".into()),
            [1, 2, 2],
            OnCorrupt::Error,
        ));
        let (_, s5) = load_counting(&small, tmp.path(), 0).expect("loads");
        assert_eq!(s5.decoded, 12, "other decode options decode again");
    }

    #[test]
    fn a_truncated_cache_is_decoded_again_not_a_crash() {
        let (tmp, kind) = two_class_folder();
        let (first, _) = load_counting(&kind, tmp.path(), 0).expect("loads");
        let caches: Vec<_> = std::fs::read_dir(tmp.path().join(CACHE_DIR))
            .expect("the cache folder")
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(!caches.is_empty(), "a cache was written");
        for c in &caches {
            let len = std::fs::metadata(c).expect("metadata").len();
            std::fs::File::options()
                .write(true)
                .open(c)
                .and_then(|f| f.set_len(len / 2))
                .expect("truncate in place");
        }
        let (again, stats) = load_counting(&kind, tmp.path(), 0).expect("decodes again");
        assert_eq!((stats.decoded, stats.cached), (12, 0));
        assert_eq!(first, again);
    }

    #[test]
    fn a_cache_header_with_any_numbers_is_refused_not_trusted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        folder(&tmp.path().join("f"), &["a"], 2);
        let l = list_folder(&tmp.path().join("f"), None).expect("lists");
        let key = [7u8; 32];
        let path = tmp.path().join("c.u8");
        for n in [u64::MAX, u64::MAX / 48, 3, 0] {
            let mut h = [0u8; HEADER];
            h[..16].copy_from_slice(MAGIC);
            h[16..48].copy_from_slice(&key);
            h[48..56].copy_from_slice(&n.to_le_bytes());
            for (i, s) in [3u32, 4, 4].iter().enumerate() {
                h[56 + 4 * i..60 + 4 * i].copy_from_slice(&s.to_le_bytes());
            }
            h[68..72].copy_from_slice(&1u32.to_le_bytes());
            h[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
            std::fs::write(&path, h).expect("write");
            let got = read_cache(&path, &key, &l, [3, 4, 4]);
            assert!(got.is_err(), "n = {n}: {got:?}");
        }
        std::fs::write(&path, b"short").expect("write");
        assert!(
            read_cache(&path, &key, &l, [3, 4, 4]).is_err(),
            "a short file"
        );
    }

    #[test]
    fn a_corrupt_image_is_an_error_or_skipped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        folder(&tmp.path().join("f"), &["a", "b"], 3);
        let bad = tmp.path().join("f/a/bad.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\n not really").expect("write");
        let kind =
            |on| DatasetKind::ImageFolder(spec("f", TestSource::Path("f".into()), [3, 4, 4], on));
        let err = load_counting(&kind(OnCorrupt::Error), tmp.path(), 0).expect_err("corrupt");
        let msg = err.to_string();
        assert!(
            msg.contains("bad.png") && msg.contains("on_corrupt"),
            "{msg}"
        );
        let (splits, stats) = load_counting(&kind(OnCorrupt::Skip), tmp.path(), 0).expect("skips");
        assert_eq!(
            stats.skipped,
            [bad.clone(), bad.clone()],
            "named, in train and test"
        );
        assert_eq!(splits.train.len(), 6);
        let (_, again) = load_counting(&kind(OnCorrupt::Skip), tmp.path(), 0).expect("cached");
        assert_eq!(
            (again.decoded, again.skipped.len()),
            (0, 2),
            "the cache remembers skips"
        );
    }

    #[test]
    fn hostile_folders_are_named_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = tmp.path();
        folder(&t.join("ok"), &["a", "b"], 1);
        std::fs::create_dir_all(t.join("empty_class/a")).expect("mkdir");
        save(&t.join("empty_class/b/x.png"), [0, 0, 0], 2, 2);
        std::fs::create_dir_all(t.join("no_classes")).expect("mkdir");
        std::fs::write(t.join("no_classes/x.png"), "").expect("write");
        folder(&t.join("unknown_test"), &["a", "zebra"], 1);
        let mut cases: Vec<(&str, TestSource, &str)> = vec![
            ("missing", split(0.5), "not found"),
            ("empty_class", split(0.5), "class folder `a` holds no image"),
            ("no_classes", split(0.5), "holds no class folder"),
            (
                "ok",
                TestSource::Path("unknown_test".into()),
                "`zebra` is not one of the training classes",
            ),
            ("ok/a/000.png", split(0.5), "not a folder"),
        ];
        #[cfg(unix)]
        {
            folder(&t.join("loop"), &["a"], 1);
            std::os::unix::fs::symlink(t.join("loop/a"), t.join("loop/a/again")).expect("link");
            folder(&t.join("selflink"), &["a"], 1);
            std::os::unix::fs::symlink("self.png", t.join("selflink/a/self.png")).expect("link");
            cases.push(("loop", split(0.5), "a loop of symbolic links"));
            cases.push(("selflink", split(0.5), "a loop of symbolic links"));
        }
        for (path, test, want) in cases {
            let kind = DatasetKind::ImageFolder(spec(path, test, [3, 2, 2], OnCorrupt::Error));
            let msg = load_counting(&kind, t, 0).expect_err(path).to_string();
            assert!(msg.contains(want), "{path}: {msg}");
        }
    }

    #[test]
    fn csv_files_list_images_with_names_or_ids() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = tmp.path();
        folder(&t.join("csvset/img"), &["x", "y"], 2);
        let write = |name: &str, text: &str| {
            std::fs::write(t.join("csvset").join(name), text).expect("csv")
        };
        write("names.csv", "path,label\nimg/x/000.png,cat\nimg/x/001.png,cat\nimg/y/000.png,ant\nimg/y/001.png,ant\n");
        write(
            "ids.csv",
            "img/x/000.png,1\nimg/x/001.png,1\n\nimg/y/000.png,0\nimg/y/001.png,2\n",
        );
        write(
            "bad_row.csv",
            "path,label\nimg/x/000.png,cat\nimg/x/001.png,cat,extra\n",
        );
        write("test_unknown.csv", "img/y/000.png,dog\n");
        write(
            "missing_image.csv",
            "img/x/nope.png,cat\nimg/x/000.png,dog\n",
        );
        let kind = |path: &str, test: TestSource| {
            DatasetKind::Csv(spec(path, test, [3, 4, 4], OnCorrupt::Error))
        };
        let (s, _) = load_counting(
            &kind(
                "csvset/names.csv",
                TestSource::Path("csvset/names.csv".into()),
            ),
            t,
            0,
        )
        .expect("names");
        assert_eq!(s.train.classes, ["ant", "cat"], "sorted names");
        assert_eq!(s.train.labels, [1, 1, 0, 0]);
        let (s, _) = load_counting(&kind("csvset/ids.csv", split(0.25)), t, 0).expect("ids");
        assert_eq!(s.train.classes, ["0", "1", "2"], "ids 0..=max");
        assert_eq!(s.train.len() + s.test.len(), 4, "blank line skipped");
        for (path, test, want) in [
            (
                "csvset/bad_row.csv",
                split(0.5),
                "bad_row.csv:3: expected 2 fields",
            ),
            (
                "csvset/names.csv",
                TestSource::Path("csvset/test_unknown.csv".into()),
                "test_unknown.csv:1: unknown label `dog`",
            ),
            ("csvset/missing_image.csv", split(0.5), "nope.png"),
            ("csvset/none.csv", split(0.5), "none.csv"),
        ] {
            let msg = load_counting(&kind(path, test), t, 0)
                .expect_err(path)
                .to_string();
            assert!(msg.contains(want), "{path}: {msg}");
        }
    }
}
