//! The embedded font: DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`).
//!
//! Bitmaps get their text from [`super::canvas::Canvas`], which lays glyphs out here with
//! [ab_glyph](https://docs.rs/ab_glyph) (advances, kerning and side bearings, at sub-pixel
//! positions). The font is also registered with plotters under [`FAMILY`], so that plotters'
//! own text measurements (chart layout, SVG) use the same metrics and never look up a system
//! font.

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};
use plotters::style::{FontStyle, IntoFont, RGBColor, TextStyle};

/// The font family every picture uses.
pub const FAMILY: &str = "sans-serif";

/// DejaVu Sans, compiled into the binary.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The embedded font, parsed once.
pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        // The bytes are part of the binary and checked by a test, so this cannot fail at run time.
        FontRef::try_from_slice(DEJAVU_SANS).expect("the embedded DejaVu Sans is a valid font")
    })
}

/// Registers the embedded font with plotters (once per process); returns whether it loaded.
pub fn ensure_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

/// A text style of the embedded font at `size` pixels in `color`.
pub fn text(size: f64, color: &RGBColor) -> TextStyle<'static> {
    ensure_registered();
    (FAMILY, size).into_font().color(color)
}

/// `text` laid out on one line at `size` pixels: glyphs positioned from the origin at the top
/// left of the line (baseline at the font's ascent), and the line's advance width.
pub fn layout(text: &str, size: f32) -> (Vec<Glyph>, f32) {
    let scaled = font().as_scaled(PxScale::from(size));
    let ascent = scaled.ascent();
    let mut caret = 0f32;
    let mut prev = None;
    let glyphs = text
        .chars()
        .map(|c| {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let g = id.with_scale_and_position(size, point(caret, ascent));
            caret += scaled.h_advance(id);
            prev = Some(id);
            g
        })
        .collect();
    (glyphs, caret)
}

/// Height of a line at `size` pixels (ascent to descent).
pub fn line_height(size: f32) -> f32 {
    let scaled = font().as_scaled(PxScale::from(size));
    scaled.ascent() - scaled.descent()
}

/// Width and height in whole pixels of `text` at `size` pixels.
pub fn text_size(text: &str, size: f64) -> (u32, u32) {
    let (_, w) = layout(text, size as f32);
    (w.ceil() as u32, line_height(size as f32).ceil() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_loads_and_measures_text() {
        assert!(ensure_registered());
        let (w_short, h) = text_size("i", 20.0);
        let (w_long, _) = text_size("Ankle boot", 20.0);
        assert!(w_long > 5 * w_short.max(1), "{w_short} {w_long}");
        assert!((18..=26).contains(&h), "{h}");
        // plotters measures with the same font.
        let (pw, _) = (FAMILY, 20.0).into_font().box_size("Ankle boot").unwrap();
        assert!(pw.abs_diff(w_long) <= 2, "{pw} vs {w_long}");
    }
}
