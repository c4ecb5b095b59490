//! A data set written out as an image folder of PNG files (`runner export-images`):
//! `DIR/train/<class>/<index>.png` and `DIR/test/<class>/<index>.png`, the layout
//! `dataset = "image_folder"` reads.
//!
//! - `<index>` is the image's position in its split, zero-padded to one width, so that the
//!   files of a class sort in the split's order.
//! - `<class>` is the class name, with characters a file name cannot hold (`/`, `\`, control
//!   characters, a leading `.`) replaced by `_`. When those names, sorted, would not give the
//!   classes their original ids (CIFAR-10's short names, Fashion-MNIST's), every folder is
//!   prefixed by its zero-padded id (`0_T-shirt_top`), so that the folder reads back with the
//!   same labels.
//! - Each PNG is written to a temporary file and renamed, so an interrupted export leaves only
//!   whole images. PNG is lossless: the folder reads back (at its own `image_size`) as the
//!   same pixels.

use std::path::{Path, PathBuf};

use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;

use super::{Dataset, Splits};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The images have a channel count PNG files of the image folder do not hold.
    #[error("images with {0} channels cannot be exported as PNG (1 or 3 channels only)")]
    Channels(usize),
    /// The output folder already holds an export (or anything else) where one would go.
    #[error("{} already exists and is not empty; choose a new or empty --out folder", .0.display())]
    NotEmpty(PathBuf),
    /// A folder or file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The folder or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PNG could not be encoded or written.
    #[error("{0}")]
    File(String),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The class folder names, by label.
    pub folders: Vec<String>,
    /// Images written to `train/` and `test/`.
    pub counts: [usize; 2],
}

/// The folder name of each class (see the [module](self) docs).
pub fn folder_names(classes: &[String]) -> Vec<String> {
    let clean: Vec<String> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s: String = c
                .chars()
                .map(|ch| {
                    if ch == '/' || ch == '\\' || ch.is_control() {
                        '_'
                    } else {
                        ch
                    }
                })
                .collect();
            let s = s.trim().to_string();
            let s = match s.strip_prefix('.') {
                Some(rest) => format!("_{rest}"),
                None => s,
            };
            if s.is_empty() {
                format!("class{i}")
            } else {
                s
            }
        })
        .collect();
    let in_order = clean.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes());
    if in_order {
        return clean;
    }
    let width = classes.len().saturating_sub(1).to_string().len();
    clean
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i:0width$}_{c}"))
        .collect()
}

/// Writes `splits` under `out` as `train/` and `test/` image folders.
#[tracing::instrument(skip_all)]
pub fn export(splits: &Splits, out: &Path) -> Result<Exported, ExportError> {
    let c = splits.train.shape[0];
    if c != 1 && c != 3 {
        return Err(ExportError::Channels(c));
    }
    for split in ["train", "test"] {
        let dir = out.join(split);
        if let Ok(mut entries) = std::fs::read_dir(&dir) {
            if entries.next().is_some() {
                return Err(ExportError::NotEmpty(dir));
            }
        }
    }
    let folders = folder_names(&splits.train.classes);
    let train = write_split(&splits.train, &out.join("train"), &folders)?;
    let test = write_split(&splits.test, &out.join("test"), &folders)?;
    Ok(Exported {
        folders,
        counts: [train, test],
    })
}

fn write_split(d: &Dataset, dir: &Path, folders: &[String]) -> Result<usize, ExportError> {
    let mut used = vec![false; folders.len()];
    for &l in &d.labels {
        if let Some(u) = used.get_mut(usize::from(l)) {
            *u = true;
        }
    }
    for (name, _) in folders.iter().zip(&used).filter(|(_, u)| **u) {
        let p = dir.join(name);
        std::fs::create_dir_all(&p).map_err(|source| ExportError::Write { path: p, source })?;
    }
    let width = d.len().saturating_sub(1).to_string().len();
    let [c, h, w] = d.shape;
    (0..d.len()).into_par_iter().try_for_each(|i| {
        let Some(folder) = folders.get(usize::from(d.labels[i])) else {
            return Err(ExportError::File(format!(
                "image {i}: label {} has no class name",
                d.labels[i]
            )));
        };
        let path = dir.join(folder).join(format!("{i:0width$}.png"));
        let chw = d.image(i);
        // PNG rows are interleaved (HWC).
        let mut hwc = vec![0u8; chw.len()];
        for ch in 0..c {
            for p in 0..h * w {
                hwc[p * c + ch] = chw[ch * h * w + p];
            }
        }
        let mut png = Vec::new();
        let color = if c == 1 {
            ExtendedColorType::L8
        } else {
            ExtendedColorType::Rgb8
        };
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&hwc, w as u32, h as u32, color)
            .map_err(|e| ExportError::File(format!("{}: {e}", path.display())))?;
        crate::report::write_atomic_unsynced(&path, &png)
            .map_err(|e| ExportError::File(e.to_string()))
    })?;
    Ok(d.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_keep_the_label_order() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&[&str], &[&str], &str); 5] = [
            (&["0", "1", "2"], &["0", "1", "2"], "sorted names stay"),
            (
                &["airplane", "automobile", "bird"],
                &["airplane", "automobile", "bird"],
                "CIFAR-10's long names are sorted",
            ),
            (
                &["plane", "car", "bird"],
                &["0_plane", "1_car", "2_bird"],
                "unsorted names get their id",
            ),
            (
                &["T-shirt/top", "Trouser"],
                &["T-shirt_top", "Trouser"],
                "a slash cannot be in a folder name",
            ),
            (&[".hidden", ""], &["_hidden", "class1"], "hidden and empty"),
        ];
        for (classes, want, msg) in cases {
            assert_eq!(folder_names(&names(classes)), names(want), "{msg}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("class{i}")).collect();
        let got = folder_names(&eleven);
        assert_eq!(
            got[0], "00_class0",
            "11 synthetic classes: class10 sorts before class2"
        );
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "prefixed names sort in id order"
        );
    }
}
