//! Grids of small images with captions: `runner show-data` and `predictions.png`.
//!
//! Each image is enlarged by a whole factor (every source pixel becomes a `scale x scale`
//! block, so pixels stay crisp and can be checked exactly), centred in its cell, with caption
//! lines under it. Several [`Panel`]s sit side by side under one title, e.g. the original and the
//! pixel-permuted images.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::text;
use super::{draw_err, Picture, PlotError};
use crate::report::text::{for_picture_line, ELLIPSIS};

/// Padding inside a cell, around the image and the caption, in pixels.
pub const PAD: u32 = 6;
/// Caption font size in pixels.
pub const CAPTION_SIZE: f64 = 13.0;
/// Height of one caption line in pixels.
pub const LINE_HEIGHT: u32 = 16;
/// Narrowest cell, so short captions fit under small images.
pub const MIN_CELL_WIDTH: u32 = 104;
/// Height of the figure's title band.
pub const TITLE_HEIGHT: u32 = 30;
/// Height of a panel's title band.
pub const PANEL_TITLE_HEIGHT: u32 = 22;
/// Horizontal gap between panels.
pub const PANEL_GAP: u32 = 24;
/// Margin around the figure.
pub const MARGIN: u32 = 10;

/// One image of a grid with its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The image at its own resolution (enlarged when drawn).
    pub image: Picture,
    /// Caption lines under the image, each with its colour.
    pub caption: Vec<(String, RGBColor)>,
    /// A frame around the image (e.g. marking a mistake).
    pub frame: Option<RGBColor>,
}

/// A titled grid of tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Shown above the grid (empty: no panel title band).
    pub title: String,
    /// The tiles, row by row.
    pub tiles: Vec<Tile>,
}

/// Where a panel's cells are in the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Left edge of the first cell.
    pub left: u32,
    /// Top edge of the first cell.
    pub top: u32,
    /// Cells per row.
    pub cols: u32,
    /// Rows of cells.
    pub rows: u32,
    /// Cell width in pixels.
    pub cell_w: u32,
    /// Cell height in pixels.
    pub cell_h: u32,
    /// Enlargement factor of the images.
    pub scale: u32,
    /// Width of an enlarged image.
    pub image_w: u32,
    /// Height of an enlarged image.
    pub image_h: u32,
}

impl GridLayout {
    /// Top-left corner of image `i`'s enlarged copy (cell `i`, row by row).
    pub fn image_origin(&self, i: usize) -> (u32, u32) {
        let (col, row) = (i as u32 % self.cols, i as u32 / self.cols);
        (
            self.left + col * self.cell_w + (self.cell_w - self.image_w) / 2,
            self.top + row * self.cell_h + PAD,
        )
    }

    /// Width of the whole grid.
    pub fn width(&self) -> u32 {
        self.cols * self.cell_w
    }

    /// Height of the whole grid.
    pub fn height(&self) -> u32 {
        self.rows * self.cell_h
    }
}

/// Columns for `n` images: `ceil(sqrt(n))` (20 images: 5 columns, 4 rows, as in the seed).
pub fn default_columns(n: usize) -> usize {
    let mut c = 1;
    while c * c < n {
        c += 1;
    }
    c
}

/// Enlargement factor for images of `height x width`: about 96 pixels on the long side, at
/// least 1, at most 8.
pub fn scale_for(height: u32, width: u32) -> u32 {
    (96 / height.max(width).max(1)).clamp(1, 8)
}

/// Draws `panels` side by side under `title`, `cols` tiles per row. Returns the picture and
/// where each panel's cells are.
pub fn grid_picture(
    title: &str,
    panels: &[Panel],
    cols: usize,
) -> Result<(Picture, Vec<GridLayout>), PlotError> {
    let tiles = panels.iter().flat_map(|p| &p.tiles);
    let (img_w, img_h) = tiles.fold((0, 0), |(w, h), t| {
        (w.max(t.image.width), h.max(t.image.height))
    });
    let lines = panels
        .iter()
        .flat_map(|p| &p.tiles)
        .map(|t| t.caption.len() as u32)
        .max()
        .unwrap_or(0);
    if img_w == 0 || img_h == 0 {
        return Err(PlotError::Empty("a grid without images".into()));
    }
    let scale = scale_for(img_h, img_w);
    let (image_w, image_h) = (img_w * scale, img_h * scale);
    let cols = cols.max(1) as u32;
    let cell_w = image_w.max(MIN_CELL_WIDTH) + 2 * PAD;
    let cell_h = PAD
        + image_h
        + if lines > 0 {
            4 + lines * LINE_HEIGHT
        } else {
            0
        }
        + PAD;
    let has_panel_titles = panels.iter().any(|p| !p.title.is_empty());
    let top = MARGIN
        + if title.is_empty() { 0 } else { TITLE_HEIGHT }
        + if has_panel_titles {
            PANEL_TITLE_HEIGHT
        } else {
            0
        };
    let mut layouts = Vec::with_capacity(panels.len());
    let mut left = MARGIN;
    let mut height = top;
    for p in panels {
        let n = p.tiles.len().max(1) as u32;
        let used_cols = cols.min(n);
        let layout = GridLayout {
            left,
            top,
            cols: used_cols,
            rows: n.div_ceil(used_cols),
            cell_w,
            cell_h,
            scale,
            image_w,
            image_h,
        };
        left += layout.width() + PANEL_GAP;
        height = height.max(top + layout.height());
        layouts.push(layout);
    }
    let title = for_picture_line(title);
    let title_w = super::font::text_size(&title, 16.0).0;
    let width = (left - PANEL_GAP + MARGIN)
        .max(title_w + 3 * MARGIN)
        .max(320);
    let mut pic = Picture::new("image grid", width, height + MARGIN, WHITE)?;
    for (panel, layout) in panels.iter().zip(&layouts) {
        for (i, tile) in panel.tiles.iter().enumerate() {
            let (x, y) = layout.image_origin(i);
            pic.blit_scaled(&tile.image, x, y, scale);
            if let Some(c) = tile.frame {
                frame(&mut pic, x, y, image_w, image_h, c);
            }
        }
    }
    pic.draw("image grid", |area| {
        let err = draw_err("image grid");
        if !title.is_empty() {
            area.draw_text(&title, &text(16.0, &BLACK), (MARGIN as i32, MARGIN as i32))
                .map_err(&err)?;
        }
        let caption_w = cell_w - 2;
        for (panel, layout) in panels.iter().zip(&layouts) {
            if !panel.title.is_empty() {
                let y = (top - PANEL_TITLE_HEIGHT + 2) as i32;
                let style = text(14.0, &BLACK);
                let title = for_picture_line(&panel.title);
                area.draw_text(&title, &style, (layout.left as i32 + PAD as i32, y))
                    .map_err(&err)?;
            }
            for (i, tile) in panel.tiles.iter().enumerate() {
                let (x, y) = layout.image_origin(i);
                let cx = (x + image_w / 2) as i32;
                for (k, (line, color)) in tile.caption.iter().enumerate() {
                    let style = text(CAPTION_SIZE, color).pos(Pos::new(HPos::Center, VPos::Top));
                    let line = fit(area, line, &style, caption_w)?;
                    let ly = (y + image_h + 4 + k as u32 * LINE_HEIGHT) as i32;
                    area.draw_text(&line, &style, (cx, ly)).map_err(&err)?;
                }
            }
        }
        Ok(())
    })?;
    Ok((pic, layouts))
}

/// A 2-pixel frame just outside the `w x h` box at (`x`, `y`), one pixel away from it.
fn frame(pic: &mut Picture, x: u32, y: u32, w: u32, h: u32, color: RGBColor) {
    let RGBColor(r, g, b) = color;
    let (x0, y0) = (x as i64 - 3, y as i64 - 3);
    let (x1, y1) = (i64::from(x + w) + 2, i64::from(y + h) + 2);
    for yy in y0..=y1 {
        for xx in x0..=x1 {
            let edge = xx < x0 + 2 || xx > x1 - 2 || yy < y0 + 2 || yy > y1 - 2;
            if edge && xx >= 0 && yy >= 0 {
                pic.set(xx as u32, yy as u32, [r, g, b]);
            }
        }
    }
}

/// `line`, shortened with an ellipsis until it is at most `max_w` pixels wide in `style`.
///
/// The line is first cut to [`crate::report::text::PICTURE_LINE_MAX_CHARS`] characters (and its
/// control characters replaced, [`for_picture_line`]), then the longest prefix that fits is found
/// by bisection, so a line costs a few measurements of at most that many characters however long
/// it was.
pub(crate) fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    line: &str,
    style: &TextStyle<'_>,
    max_w: u32,
) -> Result<String, PlotError> {
    let width = |s: &str| {
        area.estimate_text_size(s, style)
            .map(|(w, _)| w)
            .map_err(draw_err("caption"))
    };
    let line = for_picture_line(line);
    if width(&line)? <= max_w {
        return Ok(line.into_owned());
    }
    let chars: Vec<char> = line.chars().collect();
    let cut = |n: usize| -> String { chars[..n].iter().chain([&ELLIPSIS]).collect() };
    // `lo` characters and the ellipsis fit (or `lo` is 0); `hi` and more do not.
    let (mut lo, mut hi) = (0, chars.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if width(&cut(mid))? <= max_w {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo == 0 && width(&cut(0))? > max_w {
        return Ok(String::new());
    }
    Ok(cut(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_scale() {
        assert_eq!(default_columns(20), 5);
        assert_eq!(default_columns(16), 4);
        assert_eq!(default_columns(1), 1);
        assert_eq!(default_columns(0), 1);
        assert_eq!(scale_for(28, 28), 3);
        assert_eq!(scale_for(32, 32), 3);
        assert_eq!(scale_for(4, 4), 8);
        assert_eq!(scale_for(500, 300), 1);
    }
}
